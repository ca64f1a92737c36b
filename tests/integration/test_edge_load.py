"""edge-load: short runs against a local nginx (plain and TLS), JSON summary, exit status, the loopback-only
rule; then the session scenarios (sip-register, sip-call, xmpp, mra-login) through the real pair with real
peers: Kamailio as Unified CM's registrar and call proxy, sipp as the called internal endpoint, Prosody as
IM&P, the UCM fixture for discovery/UDS, nginx as the TFTP file service and dnsmasq as the DNS that publishes
_collab-edge._tls (topology of test_sip.py, test_xmpp.py, test_media.py and test_http_edge.py, which start the
same peers the same way). Bounded: every run is capped by --requests/--duration and by run_cmd's timeout."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402


def peer_addresses(port: int) -> dict[str, int]:
    """Established TCP connections to local `port`, counted by the client's address, as the kernel has them."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=True, timeout=10).stdout
    peers: dict[str, int] = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4:
            ip = f[3].rsplit(":", 1)[0]
            peers[ip] = peers.get(ip, 0) + 1
    return peers


class WatchingLoad:
    """edge-load in the background while the test reads who is connected to a port (the server's view)."""

    load: str

    def run_load_watching(self, port: int, want: int, *args: str, timeout: float = 20) -> tuple[dict, dict[str, int]]:
        """edge-load in the background; the client addresses of the connections to local `port` are read
        (ss) once `want` of them are established. Returns the JSON summary and those addresses."""
        p = subprocess.Popen([self.load, "--no-progress", "--json", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        peers: dict[str, int] = {}
        try:
            deadline = time.monotonic() + timeout / 2
            while time.monotonic() < deadline and p.poll() is None:
                peers = peer_addresses(port)
                if sum(peers.values()) >= want:
                    break
                time.sleep(0.05)
            out, _ = p.communicate(timeout=timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, out)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        self.assertEqual(len(lines), 1, out)
        return json.loads(lines[0]), peers


class EdgeLoadTest(WatchingLoad, h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.load = self.require_binary("edge-load")
        nginx = self.require_tool("nginx")
        self.pki = h.pki()
        self.plain, self.tls = h.free_ports(2)
        conf = self.write_yaml("nginx.conf", """
            daemon off;
            master_process off;
            worker_processes 1;
            pid {tmp}/nginx.pid;
            error_log stderr warn;
            events {{ worker_connections 512; }}
            http {{
              access_log off;
              client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
              uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
              server {{ listen 127.0.0.1:{plain}; location / {{ return 200 "ok\\n"; }} }}
              server {{
                listen 127.0.0.1:{tls} ssl;
                ssl_certificate {pki}/edge-e.crt;
                ssl_certificate_key {pki}/edge-e.key;
                location / {{ return 200 "ok\\n"; }}
                location /missing {{ return 404; }}
              }}
            }}
        """, tmp=self.tmp, plain=self.plain, tls=self.tls, pki=self.pki)
        p = self.start([nginx, "-p", self.tmp, "-c", conf], name="nginx")
        p.wait_port("127.0.0.1", self.plain)
        p.wait_port("127.0.0.1", self.tls)

    def run_load(self, *args: str, expect_rc: int | None = 0, timeout: float = 20) -> dict:
        rc, out = h.run_cmd([self.load, "--no-progress", "--json", *args], timeout=timeout)
        if expect_rc is not None:
            self.assertEqual(rc, expect_rc, out)
        # The JSON summary is the one line of stdout that is an object (stderr is merged by run_cmd).
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        self.assertEqual(len(lines), 1, out)
        return json.loads(lines[0])

    def assert_clean(self, j: dict, ok: int) -> None:
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["ok"], ok, j)
        self.assertEqual(j["unfinished"], 0, j)
        self.assertEqual(j["latency_us"]["count"], ok, j)
        lat = j["latency_us"]
        self.assertTrue(0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat)

    def test_http_plain_keepalive(self):
        j = self.run_load("--scenario", "http", "--plain", "--target", f"127.0.0.1:{self.plain}",
                          "--connections", "4", "--requests", "200", "--duration", "10")
        self.assert_clean(j, 200)
        self.assertEqual(j["requests"], 200, j)
        self.assertEqual(j["status"]["2xx"], 200, j)
        self.assertEqual(j["connects"], 4, j)  # keep-alive: one connection per slot
        self.assertEqual(j["handshakes"], 0, j)

    def test_http_tls_verified_two_threads(self):
        j = self.run_load("--scenario", "http", "--target", f"127.0.0.1:{self.tls}", "--cafile",
                          f"{self.pki}/ca.crt", "--threads", "2", "--connections", "4", "--requests", "200")
        self.assert_clean(j, 200)
        self.assertEqual(j["handshakes"], 4, j)
        self.assertEqual(j["threads"], 2, j)

    def test_handshake(self):
        j = self.run_load("--scenario", "handshake", "--target", f"127.0.0.1:{self.tls}", "--cafile",
                          f"{self.pki}/ca.crt", "--connections", "5", "--requests", "50")
        self.assert_clean(j, 50)
        self.assertEqual(j["handshakes"], 50, j)
        self.assertEqual(j["requests"], 0, j)
        # With --request: one GET per connection, still one handshake each.
        j = self.run_load("--scenario", "handshake", "--request", "--target", f"127.0.0.1:{self.tls}",
                          "--insecure", "--connections", "5", "--requests", "50")
        self.assert_clean(j, 50)
        self.assertEqual(j["handshakes"], 50, j)
        self.assertEqual(j["status"]["2xx"], 50, j)

    def test_open_loop(self):
        j = self.run_load("--scenario", "http", "--plain", "--target", f"127.0.0.1:{self.plain}", "--rate", "400",
                          "--connections", "4", "--requests", "200")
        self.assert_clean(j, 200)
        self.assertEqual(j["mode"], "open", j)
        # 200 arrivals 2.5 ms apart take about 0.5 s, whatever the server's speed.
        self.assertGreater(j["duration_s"], 0.4, j)

    def test_edge_config_and_http_errors(self):
        j = self.run_load("--scenario", "edge-config", "--target", f"127.0.0.1:{self.tls}", "--insecure",
                          "--user", "alice", "--password", "pw", "--requests", "20")
        self.assert_clean(j, 20)
        j = self.run_load("--scenario", "http", "--path", "/missing", "--target", f"127.0.0.1:{self.tls}",
                          "--insecure", "--requests", "10", expect_rc=1)
        self.assertEqual(j["errors"]["http_4xx"], 10, j)
        self.assertEqual(j["ok"], 0, j)
        j = self.run_load("--scenario", "http", "--path", "/missing", "--expect-status", "404", "--target",
                          f"127.0.0.1:{self.tls}", "--insecure", "--requests", "10")
        self.assert_clean(j, 10)

    def test_idle(self):
        ready = os.path.join(self.tmp, "ready")
        j = self.run_load("--scenario", "idle", "--target", f"127.0.0.1:{self.tls}", "--insecure",
                          "--connections", "20", "--duration", "1.5", "--ready-file", ready)
        self.assertEqual(j["idle"]["established"], 20, j)
        self.assertEqual(j["idle"]["alive_at_end"], 20, j)
        self.assertEqual(j["errors_total"], 0, j)
        self.assertTrue(os.path.exists(ready))

    def test_idle_from_a_source_range(self):
        """--source-range on the idle scenario: the server's kernel sees each connection from the next address
        of the range (read with ss on nginx's listening port while they are held), round robin."""
        j, peers = self.run_load_watching(self.tls, 8, "--scenario", "idle", "--target", f"127.0.0.1:{self.tls}",
                                          "--insecure", "--connections", "8", "--duration", "3",
                                          "--source-range", "127.0.61.1-127.0.61.4")
        self.assertEqual(peers, {f"127.0.61.{i}": 2 for i in range(1, 5)}, peers)
        self.assertEqual(j["idle"]["alive_at_end"], 8, j)

    def test_connect_failure_exits_nonzero(self):
        dead = h.free_port()  # nothing listens there
        j = self.run_load("--scenario", "http", "--plain", "--target", f"127.0.0.1:{dead}", "--requests", "5",
                          "--duration", "5", expect_rc=1)
        self.assertEqual(j["errors"]["connect"], 5, j)
        self.assertEqual(j["ok"], 0, j)

    def test_refuses_non_loopback_and_bad_usage(self):
        for target in ("10.1.2.3:443", "192.0.2.1:8443", "[2001:db8::1]:443", "0.0.0.0:443"):
            rc, out = h.run_cmd([self.load, "--scenario", "http", "--plain", "--target", target, "--requests", "1"],
                                timeout=10)
            self.assertEqual(rc, 2, out)
            self.assertIn("loopback", out)
        for args, want in (
            (["--scenario", "sip-register", "--target", f"127.0.0.1:{self.tls}", "--insecure"], "--user"),
            (["--scenario", "sip-call", "--target", f"127.0.0.1:{self.tls}", "--insecure", "--user", "a",
              "--password", "b"], "--callee"),
            (["--scenario", "mra-login", "--target", f"127.0.0.1:{self.tls}", "--insecure", "--user", "a",
              "--password", "b", "--dns", "127.0.0.1:53"], "--target does not apply"),
            (["--scenario", "mra-login", "--insecure", "--user", "a", "--password", "b", "--dns", "192.0.2.1:53"],
             "loopback"),
            (["--scenario", "xmpp", "--target", f"127.0.0.1:{self.tls}", "--insecure", "--user", "a",
              "--password", "b", "--plain"], "--plain"),
        ):
            with self.subTest(args=args):
                rc, out = h.run_cmd([self.load, *args], timeout=10)
                self.assertEqual(rc, 2, out)
                self.assertIn(want, out)


# ------------------------------------------------------------------------------------------------------------
# session scenarios through the pair

UCM_ADDR, IMP_ADDR, IMP_NAME, XMPP_PORT = "127.0.1.1", "127.0.1.3", "imp1.example.com", 5222
KAM_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
SIP_DIR = os.path.join(h.SRC, "tests", "integration", "sip")
FIXTURE = os.path.join(h.SRC, "tools", "fixtures", "ucm_fixture.py")
PROSODY_TEMPLATE = os.path.join(h.SRC, "tests", "integration", "xmpp", "prosody.cfg.lua.in")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
EDGE = "expe1.example.com"
ALICE = ("alice", "Alice-Passw0rd")  # the same password at Unified CM (UDS) and IM&P (Prosody), as with LDAP
SIP_DIGEST_PASSWORD = "Sip-Digest-1"
FAR = "far.example.org"  # an SRV target outside loopback: mra-login must refuse to dial it
# sip-call's media (as test_media.py): edge-e's client-facing media address, and the internal endpoint (sipp).
E_MEDIA_IP, C_MEDIA_IP, INTERNAL_IP = "127.0.4.1", "127.0.0.1", "127.0.3.1"


class PairPeers(h.TestCase):
    """The pair and its real peers (Kamailio, Prosody, the fixtures, nginx, dnsmasq), each started on demand;
    no tests here, so that tools/soak.py can build on it without running these tests again."""

    def setUp(self) -> None:
        super().setUp()
        self.load = self.require_binary("edge-load")
        self.require_binary("edge-e")
        self.require_binary("edge-c")
        self.pki = h.pki()
        self.ca = f"{self.pki}/ca.crt"
        self.ports = pair.Ports()
        self.kport = self.ktlsport = self.web_port = None
        self.imp = False

    # ---- peers (as tests/integration/test_sip.py, test_xmpp.py, test_http_edge.py start them) ----

    def start_kamailio(self, digest_password: str | None = None, udp: bool = False) -> None:
        """udp: also listen on UDP at the TCP port, for internal endpoints such as sipp (as sipenv.py does)."""
        self.require_tool("kamailio")
        self.kport = h.free_port(UCM_ADDR, udp=udp)
        self.ktlsport = h.free_port(UCM_ADDR)
        self.ctl = os.path.join(self.tmp, "kamailio_ctl")
        tls_cfg = os.path.join(self.tmp, "kamailio-tls.cfg")
        with open(os.path.join(SIP_DIR, "tls.cfg.in")) as f:
            text = f.read().replace("@CERT@", f"{self.pki}/callmanager-cucm1-chain.crt")
        with open(tls_cfg, "w") as f:
            f.write(text.replace("@KEY@", f"{self.pki}/callmanager-cucm1.key"))
        with open(os.path.join(SIP_DIR, "kamailio.cfg.in")) as f:
            cfg = f.read()
        for k, v in {"@ADDR@": UCM_ADDR, "@PORT@": str(self.kport), "@MPATH@": KAM_MODULES, "@CTL@": self.ctl,
                     "@TLSPORT@": str(self.ktlsport), "@TLSCFG@": tls_cfg}.items():
            cfg = cfg.replace(k, v)
        if udp:
            tcp_listen = f"listen=tcp:{UCM_ADDR}:{self.kport}\n"
            assert tcp_listen in cfg
            cfg = cfg.replace(tcp_listen, tcp_listen + f"listen=udp:{UCM_ADDR}:{self.kport}\n", 1)
        if digest_password:
            # Unified CM challenges REGISTERs when digest authentication is on in the phone security profile:
            # the same registrar, with a 401 challenge (qop=auth) and a fixed password for every user.
            cfg = cfg.replace('loadmodule "ctl.so"', 'loadmodule "ctl.so"\nloadmodule "auth.so"')
            old = '    if (is_method("REGISTER")) {\n'
            assert old in cfg
            cfg = cfg.replace(old, old + f'        if (!pv_www_authenticate("$td", "{digest_password}", "0")) {{\n'
                                         '            www_challenge("$td", "1");\n            exit;\n        }\n')
        path = os.path.join(self.tmp, "kamailio.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        self.kam = self.start(["kamailio", "-DD", "-E", "-f", path, "-Y", self.tmp, "-w", self.tmp], name="kamailio")
        self.kam.wait_port(UCM_ADDR, self.kport, timeout=15)

    def start_dns(self) -> None:
        dnsmasq = self.require_tool("dnsmasq")
        def argv(port: int) -> list:
            args = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--no-poll", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1",
                    f"--port={port}", "--log-facility=-",
                    f"--address=/cucm1.example.com/{UCM_ADDR}", f"--address=/{IMP_NAME}/{IMP_ADDR}",
                    f"--address=/{EDGE}/127.0.0.1", f"--address=/{FAR}/192.0.2.10",
                    # What public DNS says for the user's domain (MRA-PROTOCOL.md, Discovery).
                    f"--srv-host=_collab-edge._tls.example.com,{EDGE},{self.ports.https}",
                    f"--srv-host=_collab-edge._tls.example.org,{FAR},8443"]
            if os.geteuid() == 0:
                args.append("--user=root")
            return args

        _, self.dns_port = h.start_dnsmasq(self.start, "127.0.0.1", argv)

    def start_fixtures(self) -> None:
        self.fport = h.free_port(UCM_ADDR)
        nodes = [{"name": "cucm1.example.com", "address": UCM_ADDR, "type": "ucm", "publisher": True,
                  "sip_port": self.kport or 5060, "sip_tls_port": self.ktlsport or 5061}]
        if self.imp:
            nodes.append({"name": IMP_NAME, "address": IMP_ADDR, "type": "imp", "publisher": True})
        cluster = {"name": "cucm-cluster-1", "version": "14.0.1.10000-20", "security_mode": 0, "nodes": nodes,
                   "axl_users": {"axladmin": {"password": "Axl-Passw0rd", "roles": ["axl"]}},
                   "end_users": {ALICE[0]: {"password": ALICE[1]}}}
        path = os.path.join(self.tmp, "cluster.json")
        with open(path, "w") as f:
            json.dump(cluster, f)
        p = self.start([PY, FIXTURE, "--cluster", path, "--node", "cucm1.example.com", "--listen",
                        f"{UCM_ADDR}:{self.fport}", "--cert", f"{self.pki}/tomcat-cucm1-chain.crt", "--key",
                        f"{self.pki}/tomcat-cucm1.key"], name="fixture-cucm1")
        p.wait_log(r"^READY$", timeout=15)
        if self.imp:
            self.imp_fport = h.free_port(IMP_ADDR)
            p = self.start([PY, FIXTURE, "--cluster", path, "--node", IMP_NAME, "--listen",
                            f"{IMP_ADDR}:{self.imp_fport}", "--cert", f"{self.pki}/tomcat-imp1-chain.crt", "--key",
                            f"{self.pki}/tomcat-imp1.key"], name="fixture-imp1")
            p.wait_log(r"^READY$", timeout=15)

    def start_prosody(self) -> None:
        prosody = self.require_tool("prosody")
        prosodyctl = self.require_tool("prosodyctl")
        if not h._can_bind(IMP_ADDR, XMPP_PORT, socket.SOCK_STREAM):
            self.skipTest(f"{IMP_ADDR}:{XMPP_PORT} is in use")
        os.makedirs(os.path.join(self.tmp, "prosody-data"), exist_ok=True)
        with open(PROSODY_TEMPLATE, encoding="utf-8") as f:
            text = f.read()
        for k, v in {"TMP": self.tmp, "ADDR": IMP_ADDR, "PORT": str(XMPP_PORT),
                     "CERT": f"{self.pki}/tomcat-imp1-chain.crt", "KEY": f"{self.pki}/tomcat-imp1.key"}.items():
            text = text.replace(f"@{k}@", v)
        cfg = os.path.join(self.tmp, "prosody.cfg.lua")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(text)
        rc, out = h.run_cmd([prosodyctl, "--config", cfg, "register", ALICE[0], "example.com", ALICE[1]], timeout=30)
        if rc != 0:
            raise h.HarnessError(f"prosodyctl register failed: {out}")
        p = self.start([prosody, "--config", cfg, "-F"], name="prosody")
        p.wait_port(IMP_ADDR, XMPP_PORT, timeout=15)
        self.imp = True

    def start_nginx(self) -> None:
        nginx = self.require_tool("nginx")
        self.web_port = h.free_port(UCM_ADDR)
        root = os.path.join(self.tmp, "www", "files")
        os.makedirs(root)
        with open(os.path.join(root, "jabber-config.xml"), "w") as f:
            f.write("<config version='1.0'><Policies><EnableTelephony>true</EnableTelephony></Policies></config>\n")
        ngx = os.path.join(self.tmp, "nginx")
        os.makedirs(ngx)
        conf = self.write_yaml("nginx/nginx.conf", """
            daemon off;
            master_process off;
            worker_processes 1;
            pid {ngx}/nginx.pid;
            error_log {ngx}/error.log warn;
            events {{ worker_connections 256; }}
            http {{
              access_log {ngx}/access.log;
              client_body_temp_path {ngx}; proxy_temp_path {ngx}; fastcgi_temp_path {ngx};
              uwsgi_temp_path {ngx}; scgi_temp_path {ngx};
              server {{ listen {addr}:{port}; root {root}; }}
            }}
        """, ngx=ngx, addr=UCM_ADDR, port=self.web_port, root=os.path.join(self.tmp, "www"))
        p = self.start([nginx, "-c", conf, "-p", ngx], name="nginx")
        p.wait_port(UCM_ADDR, self.web_port, timeout=10)

    def start_callee(self, *uas_args: str, expires: int = 3600) -> h.Proc:
        """The callee "bob": sipp's UAS (tests/integration/sip/media-uas.xml, as test_media.py runs it) on UDP
        behind Kamailio, answering with plain RTP, registered at Kamailio by a second sipp whose Contact names
        the UAS. uas_args: more sipp options (-m, -rtp_echo, traces). Needs start_kamailio(udp=True)."""
        self.require_tool("sipp")
        uas_port = h.free_port(INTERNAL_IP, udp=True)
        media_port = h.free_port_range(2, INTERNAL_IP)
        uas = self.start(["sipp", "-sf", os.path.join(SIP_DIR, "media-uas.xml"), "-t", "u1", "-i", INTERNAL_IP,
                          "-p", str(uas_port), "-mi", INTERNAL_IP, "-mp", str(media_port), "-nostdin", *uas_args],
                         name="sipp-uas")
        h.wait_udp_bound(INTERNAL_IP, uas_port, timeout=10, proc=uas)
        reg = self.start(["sipp", "-sf", os.path.join(SIP_DIR, "media-register.xml"), "-t", "u1",
                          f"{UCM_ADDR}:{self.kport}", "-i", INTERNAL_IP, "-p", str(h.free_port(INTERNAL_IP, udp=True)),
                          "-m", "1", "-timeout", "30", "-nostdin", "-key", "user", "bob", "-key", "domain",
                          "example.com", "-key", "contact_ip", INTERNAL_IP, "-key", "contact_port", str(uas_port),
                          "-key", "expires", str(expires)], name="sipp-register")
        if reg.wait(30) != 0:
            raise h.HarnessError(f"registering the callee failed: {reg.tail()}")
        return uas

    def start_pair(self, media: bool = False) -> None:
        """media: both edges relay call media (their `media:` sections, as test_media.py configures them)."""
        disc = (f"unified_cm:\n  - {{address: cucm1.example.com, port: {self.fport}, username: axladmin, "
                f"password: \"Axl-Passw0rd\", tls_verify: true}}")
        if self.imp:
            disc += (f"\nim_and_presence:\n  - {{address: {IMP_NAME}, port: {self.imp_fport}, username: axladmin, "
                     f"password: \"Axl-Passw0rd\", tls_verify: true}}")
        extra = f'dns: {{servers: ["127.0.0.1:{self.dns_port}"]}}'
        if self.web_port:
            extra += ("\nallow_list:\n  rules:\n"
                      f'    - {{url: "http://cucm1.example.com:{self.web_port}/files/", methods: [GET], '
                      "description: tftp}")
        extra_e = ""
        if media:
            e_lo, t_lo, c_lo = h.free_port_range(100, E_MEDIA_IP), h.free_port_range(2), h.free_port_range(100)
            extra_e = (f"media: {{listen: {E_MEDIA_IP}, ports: {e_lo}-{e_lo + 99}, traversal_listen: 127.0.0.1, "
                       f"traversal_ports: {t_lo}-{t_lo + 1}}}")
            extra += f"\nmedia: {{address: {C_MEDIA_IP}, ports: {c_lo}-{c_lo + 99}, encryption: force}}"
            self.c_media_ports = (c_lo, c_lo + 99)
        lines = extra.splitlines()
        extra = "\n".join([lines[0]] + [" " * 8 + ln for ln in lines[1:]])
        ecfg = pair.edge_e_yaml(self, self.ports, self.pki, workers=1, extra=extra_e)
        ccfg = pair.edge_c_yaml(self, self.ports, self.pki, workers=1, discovery=disc, extra=extra)
        pair.start_edge_e(self, ecfg, self.ports)
        pair.start_edge_c(self, ccfg, self.ports)
        # Ready: the link is up and edge-e's snapshot names the nodes (and edge-c has the SIP zone).
        want = ["cucm1.example.com"] + ([IMP_NAME] if self.imp else [])
        deadline = time.monotonic() + 30
        last = None
        while time.monotonic() < deadline:
            try:
                st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
                last = json.loads(body)
                snap = last.get("snapshot") or {}
                st_c, _, body_c = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
                if (st == 200 and all(n in (snap.get("nodes") or {}) for n in want)
                        and (not self.kport or b"CEtcp-cucm1.example.com" in body_c)):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        self.fail(f"pair not ready within 30s: {json.dumps(last)[:2000]}")



class EdgeLoadPairTest(WatchingLoad, PairPeers):
    """edge-load's session scenarios against edge-e/edge-c and real upstreams (each test starts what it needs)."""

    def run_load(self, *args: str, expect_rc: int | None = 0, timeout: float = 60) -> dict:
        rc, out = h.run_cmd([self.load, "--no-progress", "--json", "--cafile", self.ca, *args], timeout=timeout)
        if expect_rc is not None:
            self.assertEqual(rc, expect_rc, out)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        self.assertEqual(len(lines), 1, out)
        return json.loads(lines[0])

    def ul_contacts(self) -> str:
        r = subprocess.run(["kamcmd", "-s", f"unix:{self.ctl}", "ul.dump"], capture_output=True, text=True, timeout=10)
        return r.stdout

    # ---- tests ----

    def test_sip_register_with_digest_refresh_and_keepalive(self):
        self.start_kamailio(digest_password=SIP_DIGEST_PASSWORD)
        self.start_dns()
        self.start_fixtures()
        self.start_pair()
        sip = ["--scenario", "sip-register", "--target", f"127.0.0.1:{self.ports.sip}", "--sni", EDGE]
        # 5 clients (5 AORs), each registered, refreshed every 0.4 s and pinging every 0.3 s for 3 s.
        j = self.run_load(*sip, "--connections", "5", "--user", "load%d", "--password", SIP_DIGEST_PASSWORD,
                          "--expires", "120", "--interval", "0.4", "--keepalive", "0.3", "--duration", "3")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["unit"], "registers")
        self.assertGreaterEqual(j["ok"], 5 * 4, j)  # the first REGISTER and at least 3 refreshes each
        self.assertEqual(j["latency_us"]["count"], j["ok"], j)
        self.assertEqual(j["auth_challenges"], j["ok"], j)  # Kamailio challenges every REGISTER
        self.assertEqual(j["sessions"]["up_at_end"], 5, j)
        self.assertEqual(j["sessions"]["logins"], 5, j)  # no registration was lost and redone
        self.assertEqual(j["steps_us"]["connect"]["count"], 5, j)
        self.assertEqual(j["connects"], 5, j)
        self.assertGreaterEqual(j["keepalive"]["pings"], 5 * 5, j)
        self.assertGreaterEqual(j["keepalive"]["pongs"], j["keepalive"]["pings"] - 5, j)  # last ones may be in flight
        dump = self.ul_contacts()
        for i in range(5):
            self.assertRegex(dump, rf"AoR: load{i}\n")

        # The same clients from a source range (what a 100,000-client run needs: one address has about 28,000
        # ports to one target): edge-e's kernel sees them from the range's addresses, and they register.
        j, peers = self.run_load_watching(self.ports.sip, 4, *sip, "--cafile", self.ca, "--connections", "4", "--user", "src%d",
                                          "--password", SIP_DIGEST_PASSWORD, "--expires", "120", "--duration", "2",
                                          "--source-range", "127.0.62.1-127.0.62.2")
        self.assertEqual(peers, {"127.0.62.1": 2, "127.0.62.2": 2}, peers)
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["sessions"]["up_at_end"], 4, j)
        dump = self.ul_contacts()
        for i in range(4):
            self.assertRegex(dump, rf"AoR: src{i}\n")

        # Open loop: 60 REGISTERs at 40/s over 3 clients, each one challenged.
        j = self.run_load(*sip, "--connections", "3", "--user", "open%d", "--password", SIP_DIGEST_PASSWORD,
                          "--rate", "40", "--requests", "60", "--duration", "10")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["mode"], "open", j)
        self.assertEqual(j["ok"], 60, j)
        self.assertGreater(j["duration_s"], 1.3, j)

        # A wrong digest password: every REGISTER is refused after its challenge, counted as auth errors.
        j = self.run_load(*sip, "--connections", "2", "--user", "bad%d", "--password", "wrong",
                          "--interval", "0.2", "--duration", "1.5", expect_rc=1)
        self.assertEqual(j["ok"], 0, j)
        self.assertGreaterEqual(j["errors"]["auth"], 2, j)
        self.assertEqual(j["errors_total"], j["errors"]["auth"], j)
        self.assertEqual(j["sessions"]["up_at_end"], 0, j)

    def test_sip_call_through_pair_counted_at_the_callee(self):
        """sip-call: registered clients call an internal endpoint (sipp answering on UDP behind Kamailio) through
        the pair with media relaying on; what sipp received must match what edge-load counted."""
        self.require_tool("sipp")
        self.start_kamailio(udp=True)
        self.start_dns()
        self.start_fixtures()
        self.start_pair(media=True)
        calls, direct_calls = 24, 6
        msg_log = os.path.join(self.tmp, "sipp-uas-messages.log")
        uas = self.start_callee("-m", str(calls + direct_calls), "-timeout", "60", "-trace_msg", "-message_file",
                                msg_log, "-trace_err", "-error_file", os.path.join(self.tmp, "sipp-uas-errors.log"))

        j = self.run_load("--scenario", "sip-call", "--target", f"127.0.0.1:{self.ports.sip}", "--sni", EDGE,
                          "--domain", "example.com", "--user", "caller%d", "--password", "x", "--callee", "bob",
                          "--connections", "3", "--requests", str(calls), "--duration", "30", "--timeout", "10")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["unit"], "calls")
        self.assertEqual(j["ok"], calls, j)
        self.assertEqual(j["calls"], {"callee": "bob", "invites": calls, "answered": calls, "completed": calls}, j)
        self.assertEqual(j["latency_us"]["count"], calls, j)  # set-up: INVITE to 200
        self.assertEqual(j["steps_us"]["register"]["count"], 3, j)
        self.assertEqual(j["steps_us"]["call"]["count"], calls, j)
        # A whole call (to the BYE's 200) takes longer than its set-up.
        self.assertGreaterEqual(j["steps_us"]["call"]["max"], j["latency_us"]["max"], j)
        self.assertEqual(j["sessions"]["logins"], 3, j)
        # The same straight at Kamailio's TLS listener (tools/bench.sh's kamailio-direct row): no pair, no media.
        j = self.run_load("--scenario", "sip-call", "--target", f"{UCM_ADDR}:{self.ktlsport}", "--sni",
                          "cucm1.example.com", "--domain", "example.com", "--user", "direct%d", "--password", "x",
                          "--callee", "bob", "--connections", "2", "--requests", str(direct_calls), "--duration", "30")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["calls"]["completed"], direct_calls, j)

        # The callee's side: sipp ran its scenario to the end for every call (it exits after -m calls), and its
        # message log holds, per Call-ID, the INVITE, the ACK and the BYE: as many calls as edge-load counted.
        # edge-load sends the BYE right after the ACK, and Kamailio's processes may pass them on in the other
        # order: sipp then answers the BYE and counts that call failed ("unexpected BYE"), nothing else may fail.
        rc = uas.wait(20)
        errors_log = os.path.join(self.tmp, "sipp-uas-errors.log")
        events = []
        if os.path.exists(errors_log):
            with open(errors_log, encoding="utf-8", errors="replace") as f:
                events = re.findall(r"\d+\.\d+: ([^\n]*?)(?=\d{4}-\d\d-\d\d\t|$)", f.read())
        self.assertTrue(rc == 0 or (events and all("unexpected BYE" in e for e in events)), (rc, events, uas.tail()))
        with open(msg_log, encoding="utf-8", errors="replace") as f:
            text = f.read()
        by_method: dict[str, set[str]] = {"INVITE": set(), "ACK": set(), "BYE": set()}
        offers: dict[str, str] = {}  # by Call-ID (a retransmitted INVITE is logged again)
        for chunk in re.split(r"\n-{10,}[^\n]*\n", "\n" + text):
            body = re.sub(r"^[^\n]*message (?:received|sent)[^\n]*\n+", "", chunk.lstrip("\n"), count=1)
            method = body.split(" ", 1)[0]
            cid = re.search(r"(?im)^(?:Call-ID|i)\s*:\s*(\S+)", body)
            if method in by_method and cid:
                by_method[method].add(cid.group(1))
                if method == "INVITE":
                    offers[cid.group(1)] = body
        self.assertEqual(len(by_method["INVITE"]), calls + direct_calls, by_method)
        self.assertEqual(by_method["ACK"], by_method["INVITE"])
        self.assertEqual(by_method["BYE"], by_method["INVITE"])
        # Media relaying was set up for each call through the pair: the offer sipp got names edge-c's media address
        # and a port of edge-c's media.ports.
        lo, hi = self.c_media_ports
        relayed = [o for o in offers.values() if "From: <sip:caller" in o]
        self.assertEqual(len(relayed), calls)
        for o in relayed:
            self.assertIn(f"c=IN IP4 {C_MEDIA_IP}", o, o)
            m = re.search(r"(?m)^m=audio (\d+) ", o)
            self.assertTrue(m and lo <= int(m.group(1)) <= hi, f"offer at the callee not on edge-c's ports:\n{o}")
        # Each call's media was released at its BYE: no session left open on either edge.
        for port in (self.ports.admin_e, self.ports.admin_c):
            _, _, body = h.http_get(f"http://127.0.0.1:{port}/status", timeout=5)
            self.assertEqual(json.loads(body)["media"]["sessions"], 0, body[:2000])

    def test_sip_call_media_echoed_through_pair(self):
        """sip-call --media-seconds: each call sends SRTP (libsrtp2 in edge-load) to edge-e's answer address;
        edge-c decrypts it (OpenSSL by default) and sends plain RTP to sipp, which echoes it (-rtp_echo); the
        echo comes back encrypted with the key of edge-e's answer. Interop of two SRTP implementations on the
        client leg; the internal leg is sipp's. What crossed is checked on the edges' packet counters too."""
        self.require_tool("sipp")
        self.start_kamailio(udp=True)
        self.start_dns()
        self.start_fixtures()
        self.start_pair(media=True)
        self.start_callee("-rtp_echo", "-timeout", "60")

        def packets(port: int) -> float:
            _, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            m = re.search(r"(?m)^edgepair_media_packets_total(?:\{\})? (\S+)$", body.decode())
            return float(m.group(1)) if m else 0.0

        before = {p: packets(p) for p in (self.ports.admin_e, self.ports.admin_c)}
        # --timeout below the media time: it bounds the call without its media.
        calls, secs = 4, 6
        j = self.run_load("--scenario", "sip-call", "--target", f"127.0.0.1:{self.ports.sip}", "--sni", EDGE,
                          "--domain", "example.com", "--user", "media%d", "--password", "x", "--callee", "bob",
                          "--connections", "2", "--requests", str(calls), "--media-seconds", str(secs),
                          "--duration", "50", "--timeout", "5")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["calls"]["completed"], calls, j)
        media = j["media"]
        # 50 packets/s for 6 s per call; every one of them sent, and all but a few that may still have been on
        # their way when the BYE went back, authenticated.
        self.assertEqual(media["sent"], calls * secs * 50, j)
        self.assertGreaterEqual(media["received"], 0.9 * media["sent"], j)
        self.assertEqual(media["bad"], 0, j)
        # Each packet crossed each edge twice (in and echoed back): the edges' own counters saw at least that.
        for port in (self.ports.admin_e, self.ports.admin_c):
            self.assertGreaterEqual(packets(port) - before[port], media["sent"] + media["received"], port)
        for port in (self.ports.admin_e, self.ports.admin_c):
            _, _, body = h.http_get(f"http://127.0.0.1:{port}/status", timeout=5)
            self.assertEqual(json.loads(body)["media"]["sessions"], 0, body[:2000])
        # Without --media-seconds no media is sent and the summary says so.
        j = self.run_load("--scenario", "sip-call", "--target", f"127.0.0.1:{self.ports.sip}", "--sni", EDGE,
                          "--domain", "example.com", "--user", "nomedia%d", "--password", "x", "--callee", "bob",
                          "--connections", "1", "--requests", "1", "--duration", "20")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["media"], {"seconds_per_call": 0, "sent": 0, "received": 0, "bad": 0}, j)

    def test_xmpp_messages_between_sessions(self):
        self.start_prosody()
        self.start_dns()
        self.start_fixtures()
        self.start_pair()
        xmpp = ["--scenario", "xmpp", "--target", f"127.0.0.1:{self.ports.xmpp}", "--domain", "example.com"]
        # 4 sessions of alice (4 resources); each sends 25 messages to the next one.
        j = self.run_load(*xmpp, "--connections", "4", "--user", ALICE[0], "--password", ALICE[1],
                          "--messages", "25", "--keepalive", "0.2", "--duration", "20")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["unit"], "messages")
        self.assertEqual(j["ok"], 100, j)
        self.assertEqual(j["messages"], {"sent": 100, "received": 100}, j)

        # From a source range: edge-e's kernel sees the sessions from the range's addresses.
        j2, peers = self.run_load_watching(self.ports.xmpp, 2, *xmpp, "--cafile", self.ca, "--connections", "2", "--user", ALICE[0],
                                           "--password", ALICE[1], "--duration", "2",
                                           "--source-range", "127.0.63.1-127.0.63.2")
        self.assertEqual(peers, {"127.0.63.1": 1, "127.0.63.2": 1}, peers)
        self.assertEqual(j2["errors_total"], 0, j2)
        self.assertGreater(j2["ok"], 0, j2)
        self.assertEqual(j["sessions"]["logins"], 4, j)
        for step in ("connect", "starttls", "auth", "bind", "login"):
            self.assertEqual(j["steps_us"][step]["count"], 4, (step, j))
        lat = j["latency_us"]
        self.assertTrue(0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"], lat)

        # Open loop with one session sending to itself, two threads.
        j = self.run_load(*xmpp, "--connections", "2", "--threads", "2", "--user", ALICE[0], "--password",
                          ALICE[1], "--rate", "50", "--requests", "50", "--duration", "15")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["ok"], 50, j)

        # Wrong password: SASL <failure/> on every login attempt, no message sent.
        j = self.run_load(*xmpp, "--connections", "2", "--user", ALICE[0], "--password", "wrong",
                          "--duration", "1.5", expect_rc=1)
        self.assertEqual(j["ok"], 0, j)
        self.assertGreaterEqual(j["errors"]["auth"], 2, j)
        self.assertEqual(j["messages"]["sent"], 0, j)

    def test_mra_login_end_to_end(self):
        self.start_kamailio()
        self.start_prosody()
        self.start_dns()
        self.start_fixtures()
        self.start_nginx()
        self.start_pair()
        mra = ["--scenario", "mra-login", "--dns", f"127.0.0.1:{self.dns_port}", "--domain", "example.com",
               "--tftp-port", str(self.web_port), "--tftp-file", "/files/jabber-config.xml", "--expires", "60"]
        j = self.run_load(*mra, "--connections", "2", "--requests", "6", "--user", ALICE[0], "--password", ALICE[1],
                          "--duration", "30")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["unit"], "logins")
        self.assertEqual(j["ok"], 6, j)
        steps = j["steps_us"]
        self.assertEqual(list(steps), ["dns", "edge_config", "uds", "tftp", "sip_register", "xmpp_login"])
        for name, hist in steps.items():
            self.assertEqual(hist["count"], 6, (name, j))
        self.assertEqual(j["connects"], 3 * 6, j)  # HTTPS, SIP/TLS and XMPP (STARTTLS) per sign-in
        # The whole login is the sum of its steps, measured as one.
        self.assertGreaterEqual(j["latency_us"]["max"], max(hist["min"] for hist in steps.values()), j)
        with open(os.path.join(self.tmp, "nginx", "access.log")) as f:
            self.assertEqual(f.read().count("GET /files/jabber-config.xml"), 6)
        # Each sign-in registered, then signed out (Expires 0) so that bindings do not pile up at the registrar.
        self.assertEqual(self.kam.log_text().count("REQ REGISTER sip:example.com"), 2 * 6)
        self.assertNotRegex(self.ul_contacts(), r"AoR: alice\n")

        # Wrong password: get_edge_config answers 401; nothing after it is tried.
        j = self.run_load(*mra, "--connections", "1", "--requests", "3", "--user", ALICE[0], "--password", "nope",
                          expect_rc=1)
        self.assertEqual(j["ok"], 0, j)
        self.assertEqual(j["errors"]["auth"], 3, j)
        self.assertEqual(j["steps_us"]["dns"]["count"], 3, j)
        self.assertEqual(j["steps_us"]["edge_config"]["count"], 0, j)

        # A domain whose edge is not on loopback: counted as dns errors, never dialled.
        j = self.run_load(*mra[:5], "example.org", "--connections", "1", "--requests", "2", "--user", ALICE[0],
                          "--password", ALICE[1], expect_rc=1)
        self.assertEqual(j["errors"]["dns"], 2, j)
        self.assertEqual(j["connects"], 0, j)


class SignInStormTest(h.TestCase):
    """edge-load --scenario sign-in (issue #17): a small storm over 2 edge-e and 2 edge-c peers (each edge-c
    linked to both edge-e, one edge-token key for both edge-c), from 254 loopback source addresses, with
    intrusion protection and the per-address limit at their defaults. What edge-load counts is checked against
    what the edges' metrics and the UCM fixture's request log saw."""

    E_ADDRS = ["127.0.18.11", "127.0.18.12"]
    C_ADDRS = ["127.0.18.21", "127.0.18.22"]
    USERS = 20
    N = 200
    WRONG_EVERY = 10

    def setUp(self) -> None:
        super().setUp()
        self.load = self.require_binary("edge-load")
        self.require_binary("edge-e")
        self.require_binary("edge-c")
        dnsmasq = self.require_tool("dnsmasq")
        self.pki = h.pki()
        self.ca = f"{self.pki}/ca.crt"
        self.ports = pair.Ports()
        def argv(port: int) -> list:
            args = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
                    "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1", f"--port={port}",
                    "--log-facility=-", f"--address=/cucm1.example.com/{UCM_ADDR}",
                    # edge-c checks that each edge-e's certificate names the host it dialled: two names of the
                    # test certificate, one per peer address.
                    f"--address=/expe1.example.com/{self.E_ADDRS[0]}",
                    f"--address=/collab-edge.example.com/{self.E_ADDRS[1]}"]
            if os.geteuid() == 0:
                args.append("--user=root")
            return args

        _, self.dns_port = h.start_dnsmasq(self.start, "127.0.0.1", argv)
        self.fport = h.free_port(UCM_ADDR)
        users = {f"load{i}": {"password": "Load-Passw0rd"} for i in range(self.USERS)}
        cluster = {"name": "cucm-cluster-1", "version": "14.0.1.10000-20", "security_mode": 0,
                   "nodes": [{"name": "cucm1.example.com", "address": UCM_ADDR, "type": "ucm", "publisher": True}],
                   "axl_users": {"axladmin": {"password": "Axl-Passw0rd", "roles": ["axl"]}}, "end_users": users}
        path = os.path.join(self.tmp, "cluster.json")
        with open(path, "w") as f:
            json.dump(cluster, f)
        self.fixture = self.start([PY, FIXTURE, "--cluster", path, "--node", "cucm1.example.com", "--listen",
                                   f"{UCM_ADDR}:{self.fport}", "--cert", f"{self.pki}/tomcat-cucm1-chain.crt",
                                   "--key", f"{self.pki}/tomcat-cucm1.key"], name="fixture-cucm1")
        self.fixture.wait_log(r"^READY$", timeout=15)
        auth_db = pair.write_auth_db(self)
        # Both edge-c seal and open edge tokens with one key: a sign-in's token request may take the other one.
        key = os.path.join(self.tmp, "token.key")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(key, 0o600)
        P = self.ports
        for i, a in enumerate(self.E_ADDRS):
            cfg = self.write_yaml(f"edge-e{i + 1}.yaml", f"""
                node_name: expe{i + 1}.example.com
                workers: 1
                log: {{level: info}}
                admin: {{listen: {a}:{P.admin_e}}}
                tls:
                  default_certificate: {{cert: {self.pki}/edge-e.crt, key: {self.pki}/edge-e.key}}
                  trusted_cas: {self.pki}/ca.crt
                listeners:
                  https: {{listen: {a}:{P.https}}}
                link:
                  listen: {a}:{P.link}
                  tls_verify_subject_name: expc1.example.com
                  auth_database: {auth_db}
                cluster: {{name: storm}}
            """)
            self.start([self.require_binary("edge-e"), "-c", cfg], name=f"edge-e{i + 1}").wait_http(
                f"http://{a}:{P.admin_e}/health", timeout=15)
        peers = f"expe1.example.com:{P.link}, collab-edge.example.com:{P.link}"
        for i, a in enumerate(self.C_ADDRS):
            cfg = self.write_yaml(f"edge-c{i + 1}.yaml", f"""
                node_name: expc{i + 1}.example.com
                workers: 1
                log: {{level: info}}
                admin: {{listen: {a}:{P.admin_c}}}
                tls:
                  certificate: {{cert: {self.pki}/edge-c.crt, key: {self.pki}/edge-c.key}}
                  trusted_cas: {self.pki}/ca.crt
                link:
                  peers: [{peers}]
                  username: {pair.DEMO_LINK_USER}
                  password: "{pair.DEMO_LINK_PASSWORD}"
                  reconnect_min: 200ms
                  reconnect_max: 2s
                discovery:
                  state_file: {self.tmp}/edge-c{i + 1}-state.json
                  unified_cm:
                    - {{address: cucm1.example.com, port: {self.fport}, username: axladmin, password: "Axl-Passw0rd", tls_verify: true}}
                domains:
                  - {{name: example.com}}
                dns: {{servers: ["127.0.0.1:{self.dns_port}"]}}
                credentials: {{token_key_file: {key}}}
                cluster: {{name: storm}}
            """)
            self.start([self.require_binary("edge-c"), "-c", cfg], name=f"edge-c{i + 1}").wait_http(
                f"http://{a}:{P.admin_c}/health", timeout=15)
        deadline = time.monotonic() + 30
        last = None
        while time.monotonic() < deadline:
            try:
                ready = True
                for a in self.E_ADDRS:
                    _, _, body = h.http_get(f"http://{a}:{P.admin_e}/status", timeout=5)
                    last = json.loads(body)
                    peers_up = {p["node"]: p["links_up"] for p in last["link"]["edge_c_peers"]}
                    ready = ready and "cucm1.example.com" in ((last.get("snapshot") or {}).get("nodes") or {}) \
                        and set(peers_up) == {"expc1.example.com", "expc2.example.com"} \
                        and all(n >= 1 for n in peers_up.values())
                # Each edge-c has discovered cucm1 itself (until then it answers sign-ins 503).
                for a in self.C_ADDRS:
                    _, _, body = h.http_get(f"http://{a}:{P.admin_c}/status", timeout=5)
                    ready = ready and b'"discovered_via"' in body
                if ready:
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        self.fail(f"2+2 cluster not ready within 30 s: {json.dumps(last)[:2000]}")

    def metrics(self, addr: str, port: int) -> dict[tuple[str, frozenset], float]:
        _, _, body = h.http_get(f"http://{addr}:{port}/metrics", timeout=5)
        out: dict[tuple[str, frozenset], float] = {}
        for line in body.decode().splitlines():
            m = re.match(r"^([^{ #]+)(?:\{(.*)\})? (\S+)$", line)
            if m:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    @staticmethod
    def total(ms: dict, name: str, **labels: str) -> int:
        want = set(labels.items())
        return int(sum(v for (n, ls), v in ms.items() if n == name and want <= ls))

    def test_sign_in_storm_over_two_peers(self):
        P = self.ports
        before_e = [self.metrics(a, P.admin_e) for a in self.E_ADDRS]
        before_c = [self.metrics(a, P.admin_c) for a in self.C_ADDRS]
        fixture_log_at = len(self.fixture.log_text())
        targets = [arg for a in self.E_ADDRS for arg in ("--target", f"{a}:{P.https}")]
        rc, out = h.run_cmd([self.load, "--no-progress", "--json", "--cafile", self.ca, "--sni", "expe1.example.com",
                             "--scenario", "sign-in", *targets, "--domain", "example.com", "--user", "load%d",
                             "--users", str(self.USERS), "--password", "Load-Passw0rd", "--wrong-password-every",
                             str(self.WRONG_EVERY), "--source-range", "127.0.50.1-127.0.50.254", "--connections", "8",
                             "--requests", str(self.N), "--duration", "45", "--timeout", "10"], timeout=60)
        self.assertEqual(rc, 0, out)
        j = json.loads(next(ln for ln in out.splitlines() if ln.startswith("{")))
        wrong = self.N // self.WRONG_EVERY
        ok = self.N - wrong
        si = j["sign_in"]
        # edge-load's own view: every sign-in accounted for, every wrong password refused, nothing else failed.
        self.assertEqual(j["unit"], "sign-ins")
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["attempts"], self.N, j)
        self.assertEqual(j["ok"], ok, j)
        self.assertEqual(si["wrong_password"], {"sent": wrong, "refused": wrong}, j)
        self.assertEqual(si["tokens"], ok, j)
        self.assertEqual([t["ok"] for t in si["by_target"]], [ok // 2, ok // 2], j)
        self.assertEqual([t["refused"] for t in si["by_target"]], [wrong // 2, wrong // 2], j)
        self.assertEqual(list(j["steps_us"]), ["connect", "edge_config", "home_cluster", "uds"])
        self.assertEqual(j["steps_us"]["uds"]["count"], ok, j)
        self.assertEqual(j["connects"], self.N, j)  # one TLS connection per sign-in

        # What the edges saw. Each edge-e: three requests per sign-in that got through, one per refused one.
        after_e = [self.metrics(a, P.admin_e) for a in self.E_ADDRS]
        after_c = [self.metrics(a, P.admin_c) for a in self.C_ADDRS]
        for i in range(2):
            t = si["by_target"][i]
            got = (self.total(after_e[i], "edgepair_http_requests_total")
                   - self.total(before_e[i], "edgepair_http_requests_total"))
            self.assertEqual(got, 3 * t["ok"] + t["refused"], f"edge-e{i + 1}")
            # Each refused password counts once against its source address; 200 sign-ins over 254 addresses
            # make no ban.
            fails = (self.total(after_e[i], "edgepair_intrusion_failures_total", category="http-ce-auth")
                     - self.total(before_e[i], "edgepair_intrusion_failures_total", category="http-ce-auth"))
            self.assertEqual(fails, t["refused"], f"edge-e{i + 1}")
            self.assertEqual(self.total(after_e[i], "edgepair_intrusion_bans_total"), 0, f"edge-e{i + 1}")

        def c_delta(name: str, **labels: str) -> int:
            return sum(self.total(a, name, **labels) - self.total(b, name, **labels)
                       for a, b in zip(after_c, before_c))

        # edge-c (both together): two Basic checks per sign-in (get_edge_config, UDS user), answered by
        # Unified CM or the cache; each wrong password denied; one token issued per sign-in and accepted once.
        checks = c_delta("edgepair_http_auth_total", result="ok") + c_delta("edgepair_http_auth_total", result="cached")
        self.assertEqual(checks, 2 * ok)
        self.assertEqual(c_delta("edgepair_http_auth_total", result="denied"), wrong)
        self.assertEqual(c_delta("edgepair_edge_tokens_issued_total"), ok)
        self.assertEqual(c_delta("edgepair_http_auth_total", result="edge_token"), ok)
        self.assertEqual(c_delta("edgepair_edge_token_refused_total"), 0)
        # Both edge-c served (the link choice spreads the streams).
        for a, b in zip(after_c, before_c):
            self.assertGreater(self.total(a, "edgepair_edge_tokens_issued_total")
                               - self.total(b, "edgepair_edge_tokens_issued_total"), 0)

        # The UCM fixture: each sign-in's UDS user request, for the user it was made for; each wrong password
        # refused by Unified CM in edge-c's check (/devices, TechNote 211304's call: refusals are not cached);
        # the sign-ins' home-cluster look-ups, plus at most one of edge-c's own per user and edge-c.
        log = self.fixture.log_text()[fixture_log_at:]
        users = re.findall(r'"GET /cucm-uds/user/(load\d+)" 200', log)
        self.assertEqual(len(users), ok, log[-2000:])
        self.assertEqual(len(set(users)), self.USERS)
        self.assertEqual(len(re.findall(r'"GET /cucm-uds/user/load\d+/devices" 401', log)), wrong, log[-2000:])
        looked_up = len(re.findall(r'"GET /cucm-uds/clusterUser\?username=load\d+" 200', log))
        self.assertGreaterEqual(looked_up, ok)
        self.assertLessEqual(looked_up, ok + 2 * self.USERS)

if __name__ == "__main__":
    h.run_tests()
