#!/usr/bin/python3
"""A multi-cluster estate through the pair (issue #16): tools/fixtures/estate-demo.yaml, for real.

  cucm-a (mixed mode)  cucma1 (publisher), cucma2, cucma3   Kamailio on cucma1 (TCP + TLS)   alice
  cucm-b               cucmb1 (publisher), cucmb2, cucmb3   Kamailio on cucmb1               bob, esmith
  cucm-c               cucmc1 (publisher), cucmc2, cucmc3   Kamailio on cucmc1               carol
  imp-central          imp1 (publisher), imp2: one presence redundancy group; Prosody on each (5222)
  cuc                  cuc1 (Unity Connection, CUPI)

Every node is a ucm_fixture.py process on its own loopback address (AXL, UDS, CUPI); each cluster's publisher
address also runs Kamailio as that cluster's registrar (its SIP ports are what getCallManager reports); the two
IM&P nodes run Prosody with tests/integration/xmpp/mod_home_node.lua, which plays IM&P's user assignment:
alice and bob on imp1, carol and esmith on imp2, a user signing in on the other node redirected with
<see-other-host/> (edgepair's assumption about IM&P's home-node hint, docs/PROTOCOL-FACTS.md).

What this proves, and of which kind:
- Sign-in (consistency with the UDS API reference shapes): each user's get_edge_config names a node of their
  home cluster as userUdsServer, the password reaches that cluster only; an address sign-in is checked under
  the UDS id clusterUser's email= answer names.
- Registration (interoperability with Kamailio as the registrar): each REGISTER goes to the home cluster's
  registrar; the binding keeps the device UUID and records the client in orig-hostport; no other registrar
  saw it.
- Chat (interoperability with Prosody, consistency for the hint): a message between users homed on
  different Unified CM clusters through the central IM&P; each stream ends on the user's home IM&P node.
- Calls (consistency: both ends are this test; interoperability with Kamailio as registrar and proxy): users
  homed on different clusters call each other with audio and video, the caller's registrar relaying the INVITE
  to the callee's by route[ICT] (the stand-in for Unified CM's inter-cluster trunk and ILS, not modelled); each
  client receives edge-e's media address and its own keys, SRTP flows both ways on both m-lines through both
  edges' relays, ACK and BYE cross both registrars, and the BYE releases every media session. Two edge-c
  workers (MultiClusterCallTest), so the two call halves cross different workers.
- Outages: a user whose cluster is down gets 503 and signs in again once it is back; the home IM&P node down
  -> the stream goes to its backup (the redundancy group peer discovered over AXL).

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_multicluster.py
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
import sipdialog as sd  # noqa: E402
import test_media as tm  # noqa: E402
import test_media_av as av  # noqa: E402
from sipenv import KAM_MODULES, SIP_DIR, SipUA  # noqa: E402
from test_http_edge import port_free_on  # noqa: E402

try:
    import yaml  # Debian python3-yaml
except ImportError:  # pragma: no cover
    yaml = None
try:
    import slixmpp  # noqa: F401
    HAVE_SLIXMPP = True
except ImportError:  # pragma: no cover
    HAVE_SLIXMPP = False

FIXTURE = os.path.join(h.SRC, "tools", "fixtures", "ucm_fixture.py")
ESTATE = os.path.join(h.SRC, "tools", "fixtures", "estate-demo.yaml")
PROSODY_TEMPLATE = os.path.join(h.SRC, "tests", "integration", "xmpp", "prosody.cfg.lua.in")
XMPP_DIR = os.path.join(h.SRC, "tests", "integration", "xmpp")
PY = "/usr/bin/python3"
EDGE = "expe1.example.com"
DOMAIN = "example.com"
DOMAIN_B64 = base64.b64encode(DOMAIN.encode()).decode().rstrip("=")
EC_PATH = f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin"
XMPP_PORT = 5222
TIMEOUT = 10.0


def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


class MultiClusterEnv(h.TestCase):
    """The estate and the pair (no tests here: MultiClusterTest and MultiClusterCallTest below run on it)."""

    WORKERS = 1     # edge-c workers
    XMPP = True     # Prosody on the IM&P nodes
    MEDIA = False   # media relays on both edges (test_media.py's addresses)

    def setUp(self) -> None:
        super().setUp()
        if yaml is None:
            self.skipTest("python3-yaml is not installed")
        for tool in ("kamailio", "kamcmd", "dnsmasq") + (("prosody", "prosodyctl") if self.XMPP else ()):
            self.require_tool(tool)
        self.require_binary("edge-e")
        self.require_binary("edge-c")
        with open(ESTATE, encoding="utf-8") as f:
            self.estate = yaml.safe_load(f)
        self.pki_dir = h.pki()
        self.nodes = {n["name"]: dict(n, cluster=c["name"]) for c in self.estate["clusters"] for n in c["nodes"]}
        self.users = self.estate["end_users"]
        self.cluster_nodes = {c["name"]: [n["name"] for n in c["nodes"]] for c in self.estate["clusters"]}
        self.addr = {name: n["address"] for name, n in self.nodes.items()}
        self.imps = [n for n, v in self.nodes.items() if v["type"] == "imp"]
        for n in self.imps if self.XMPP else ():
            if not h._can_bind(self.addr[n], XMPP_PORT, socket.SOCK_STREAM):
                self.skipTest(f"{self.addr[n]}:{XMPP_PORT} is in use")
        self.ucm_port = port_free_on(list(self.addr.values()))
        self.ports = pair.Ports()
        self.fixtures: dict[str, h.Proc] = {}
        self.kam: dict[str, dict] = {}
        self.prosody: dict[str, h.Proc] = {}
        self.start_dns()
        ucm_clusters = [c["name"] for c in self.estate["clusters"] if any(n["type"] == "ucm" for n in c["nodes"])]
        # Every registrar's ports first: each one's inter-cluster route names the others'.
        self.kam_ports = {}
        for c in ucm_clusters:
            addr = self.addr[self.publisher(c)]
            self.kam_ports[c] = (h.free_port(addr), h.free_port(addr))
        for c in ucm_clusters:
            self.start_kamailio(c)
        self.write_estate()
        for name in self.nodes:
            self.start_fixture(name, wait=False)
        for name in self.nodes:
            self.fixtures[name].wait_log(r"^READY$", timeout=20)
        for n in self.imps if self.XMPP else ():
            self.start_prosody(n)
        self.start_pair()

    # ---- peers -----------------------------------------------------------------------------------------

    def start_dns(self) -> None:
        def argv(port: int) -> list:
            args = [self.require_tool("dnsmasq"), "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                    "--no-hosts", "--no-poll", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1",
                    f"--port={port}", "--log-facility=-"]
            if os.geteuid() == 0:
                args.append("--user=root")
            args += [f"--address=/{name}/{ip}" for name, ip in self.addr.items()]
            return args

        _, self.dns_port = h.start_dnsmasq(self.start, "127.0.0.1", argv)

    def publisher(self, cluster: str) -> str:
        c = next(c for c in self.estate["clusters"] if c["name"] == cluster)
        return next(n["name"] for n in c["nodes"] if n.get("publisher"))

    def start_kamailio(self, cluster: str) -> None:
        """The cluster's registrar on its publisher's address (tests/integration/sip/kamailio.cfg.in), with an
        inter-cluster route (route[ICT]) to the other clusters' registrars."""
        addr = self.addr[self.publisher(cluster)]
        port, tlsport = self.kam_ports[cluster]
        d = os.path.join(self.tmp, f"kam-{cluster}")
        os.makedirs(d)
        ctl = os.path.join(d, "ctl")
        tls_cfg = os.path.join(d, "tls.cfg")
        with open(os.path.join(SIP_DIR, "tls.cfg.in")) as f:
            text = f.read().replace("@CERT@", f"{self.pki_dir}/callmanager-cucm1-chain.crt")
        with open(tls_cfg, "w") as f:
            f.write(text.replace("@KEY@", f"{self.pki_dir}/callmanager-cucm1.key"))
        with open(os.path.join(SIP_DIR, "kamailio.cfg.in")) as f:
            cfg = f.read()
        for k, v in {"@ADDR@": addr, "@PORT@": str(port), "@MPATH@": KAM_MODULES, "@CTL@": ctl,
                     "@TLSPORT@": str(tlsport), "@TLSCFG@": tls_cfg}.items():
            cfg = cfg.replace(k, v)
        cfg = self.with_inter_cluster_route(cfg, cluster)
        path = os.path.join(d, "kamailio.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        p = self.start(["kamailio", "-DD", "-E", "-f", path, "-Y", d, "-w", d], name=f"kamailio-{cluster}")
        p.wait_port(addr, port, timeout=15)
        self.kam[cluster] = {"proc": p, "port": port, "tls_port": tlsport, "ctl": ctl}

    def with_inter_cluster_route(self, cfg: str, cluster: str) -> str:
        """kamailio.cfg with route[ICT]: a call to a user homed on another cluster is relayed (over TCP, Request-URI
        unchanged, record-routed) to that cluster's registrar; a user of this cluster is looked up locally.

        This stands in for Unified CM's inter-cluster trunk (SIP trunk between clusters) and ILS, which learns
        which cluster owns which directory URI: neither is modelled, the test writes the directory (each user's
        home_cluster in estate-demo.yaml) into every registrar. A peer's registrar never relays the call on (the
        user is its own), so there is no loop."""
        lines = ["route[ICT] {",
                 "    # Unified CM's inter-cluster trunk / ILS directory stand-in (not modelled): see the test."]
        for user, v in sorted(self.users.items()):
            home = v["home_cluster"]
            if home == cluster or home not in self.kam_ports:
                continue
            peer = f"sip:{self.addr[self.publisher(home)]}:{self.kam_ports[home][0]};transport=tcp"
            lines += [f'    if ($rU == "{user}") {{',
                      f'        xlog("L_INFO", "ICT $rm $ru to {home} ({peer})\\n");',
                      f'        $du = "{peer}";',
                      # From the registrar's own address (Kamailio otherwise lets the kernel pick 127.0.0.1).
                      f"        force_send_socket(tcp:{self.addr[self.publisher(cluster)]}:{self.kam_ports[cluster][0]});",
                      "        if (!t_relay()) sl_reply_error();",
                      "        exit;",
                      "    }"]
        lines.append("}")
        call_path = '    record_route();\n    if (!lookup("location")) {'
        self.assertEqual(cfg.count(call_path), 1, "kamailio.cfg.in's call path changed: update route[ICT]")
        cfg = cfg.replace(call_path, '    record_route();\n    route(ICT);\n    if (!lookup("location")) {')
        return cfg + "\n" + "\n".join(lines) + "\n"

    def write_estate(self) -> None:
        """The estate file with this run's ports: every node's HTTPS port, and each Unified CM node's SIP ports
        pointing at its cluster's Kamailio (what getCallManager reports)."""
        doc = json.loads(json.dumps(self.estate))
        doc["https_port"] = self.ucm_port
        for c in doc["clusters"]:
            k = self.kam.get(c["name"])
            for n in c["nodes"]:
                if k and n["type"] == "ucm":
                    n["sip_port"], n["sip_tls_port"] = k["port"], k["tls_port"]
        self.estate_file = os.path.join(self.tmp, "estate.json")
        with open(self.estate_file, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)

    def start_fixture(self, node: str, wait: bool = True) -> h.Proc:
        # Every node presents cucm1's tomcat certificate; discovery runs with tls_verify off (what is under test
        # is whom edge-c asks, not TLS naming).
        p = self.start([PY, FIXTURE, "--cluster", self.estate_file, "--node", node, "--listen",
                        f"{self.addr[node]}:{self.ucm_port}", "--cert", f"{self.pki_dir}/tomcat-cucm1-chain.crt",
                        "--key", f"{self.pki_dir}/tomcat-cucm1.key"], name=f"fixture-{node.split('.')[0]}")
        self.fixtures[node] = p
        if wait:
            p.wait_log(r"^READY$", timeout=20)
        return p

    def write_home_map(self, node: str, takeover: str | None = None) -> None:
        lines = [f"{u} {v['imp_node']}" for u, v in self.users.items()]
        if takeover:
            lines.append(f"takeover {takeover}")
        with open(os.path.join(self.tmp, f"prosody-{node}", "homes.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def start_prosody(self, node: str) -> h.Proc:
        d = os.path.join(self.tmp, f"prosody-{node}")
        os.makedirs(os.path.join(d, "prosody-data"), exist_ok=True)
        with open(PROSODY_TEMPLATE, encoding="utf-8") as f:
            text = f.read()
        for k, v in {"TMP": d, "ADDR": self.addr[node], "PORT": str(XMPP_PORT),
                     "CERT": f"{self.pki_dir}/tomcat-imp1-chain.crt", "KEY": f"{self.pki_dir}/tomcat-imp1.key"}.items():
            text = text.replace(f"@{k}@", v)
        # IM&P offers PLAIN (and CISCO-VTG-TOKEN), not SCRAM; the user assignment module plays the home node.
        text = text.replace('modules_enabled = { "roster",', 'modules_enabled = { "home_node", "roster",', 1)
        text = text.replace("c2s_require_encryption = true", "c2s_require_encryption = true\n"
                            f'plugin_paths = {{ "{XMPP_DIR}" }}\n'
                            f'home_node_self = "{node}"\n'
                            f'home_nodes_file = "{d}/homes.txt"\n'
                            'disable_sasl_mechanisms = { "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", '
                            '"SCRAM-SHA-256-PLUS", "DIGEST-MD5" }', 1)
        self.assertIn('"home_node"', text)
        cfg = os.path.join(d, "prosody.cfg.lua")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(text)
        self.write_home_map(node)
        if not os.path.exists(os.path.join(d, "prosody-data", "example%2ecom")):
            # Every IM&P node of the cluster knows every user (one database, replicated).
            for user, v in self.users.items():
                rc, out = h.run_cmd([self.require_tool("prosodyctl"), "--config", cfg, "register", user, DOMAIN,
                                     v["password"]], timeout=30)
                if rc != 0:
                    raise h.HarnessError(f"prosodyctl register {user} on {node} failed: {out}")
        p = self.start([self.require_tool("prosody"), "--config", cfg, "-F"], name=f"prosody-{node.split('.')[0]}")
        p.wait_port(self.addr[node], XMPP_PORT, timeout=15)
        self.prosody[node] = p
        return p

    def start_pair(self) -> None:
        def entry(node: str, verify: bool = False) -> str:
            return (f'  - {{address: {node}, port: {self.ucm_port}, username: axladmin, password: "Axl-Passw0rd", '
                    f'tls_verify: {"true" if verify else "false"}}}')
        ucm = [self.publisher(c["name"]) for c in self.estate["clusters"]
               if any(n["type"] == "ucm" for n in c["nodes"])]
        imp = [n for n in self.nodes if self.nodes[n]["type"] == "imp" and self.nodes[n].get("publisher")]
        cuc = [n for n in self.nodes if self.nodes[n]["type"] == "cuc"]
        disc = ("unified_cm:\n" + "\n".join(entry(n) for n in ucm) + "\nim_and_presence:\n" +
                "\n".join(entry(n) for n in imp) + "\nunity_connection:\n" + "\n".join(entry(n) for n in cuc))
        extra = (f'dns: {{servers: ["127.0.0.1:{self.dns_port}"]}}\n        http: {{upstream_timeout: 3s}}\n'
                 "        credentials: {home_cache: 10m}")
        ecfg_extra = ""
        if self.MEDIA:
            # test_media.py's media topology: edge-e's relays on E_MEDIA_IP (public address E_PUBLIC, written in
            # SDP only), edge-c's on C_MEDIA_IP, SRTP forced on the inside leg as there.
            self.e_lo = h.free_port_range(100, tm.E_MEDIA_IP)
            self.e_hi = self.e_lo + 99
            self.t_lo = h.free_port_range(4, tm.TRAVERSAL_IP)
            self.c_lo = h.free_port_range(100, tm.C_MEDIA_IP)
            self.c_hi = self.c_lo + 99
            ecfg_extra = (f"media: {{listen: {tm.E_MEDIA_IP}, public_address: {tm.E_PUBLIC}, "
                          f"ports: {self.e_lo}-{self.e_hi}, traversal_listen: {tm.TRAVERSAL_IP}, "
                          f"traversal_ports: {self.t_lo}-{self.t_lo + 3}, idle_timeout: 60s}}")
            extra += (f"\n        media: {{address: {tm.C_MEDIA_IP}, ports: {self.c_lo}-{self.c_hi}, "
                      "encryption: force, idle_timeout: 60s}")
        ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra=ecfg_extra)
        # One edge-c worker for MultiClusterTest (WORKERS): the XMPP service's round-robin start is then
        # deterministic enough to see both a direct sign-in and a redirect, and every cache is the one worker's.
        ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=disc, extra=extra, workers=self.WORKERS)
        self.edge_e = pair.start_edge_e(self, ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, ccfg, self.ports)
        deadline = time.monotonic() + 45
        last = None
        while time.monotonic() < deadline:
            try:
                st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
                last = json.loads(body)
                nodes = {n["name"]: n for n in (last.get("discovery") or {}).get("nodes", [])}
                ready = st == 200 and sorted(nodes) == sorted(self.nodes)
                if ready and nodes["imp1.example.com"].get("imp_peer") == "imp2.example.com":
                    s2, _, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=5)
                    if s2 == 200:
                        self.status = last
                        return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        self.fail(f"estate not discovered within 45s; edge-c status: {json.dumps(last)[:3000]}")

    # ---- clients ---------------------------------------------------------------------------------------

    def edge_config(self, login: str, password: str):
        return h.http_request(f"https://{EDGE}:{self.ports.https}{EC_PATH}", "GET",
                              headers={"Authorization": basic(login, password)}, timeout=20,
                              cafile=f"{self.pki_dir}/ca.crt", connect_to=("127.0.0.1", self.ports.https))

    def sign_in(self, user: str, login: str | None = None) -> str:
        st, _, body = self.edge_config(login or user, self.users[user]["password"])
        self.assertEqual(st, 200, body)
        uds = ET.fromstring(body).findtext("edgeConfig/userUdsServer/server/address")
        self.assertIn(uds, self.cluster_nodes[self.users[user]["home_cluster"]], f"{user}: {body[:800]!r}")
        return uds

    def bindings(self, cluster: str, user: str) -> list[str]:
        r = subprocess.run(["kamcmd", "-s", f"unix:{self.kam[cluster]['ctl']}", "ul.dump"], capture_output=True,
                           text=True, timeout=10)
        out, in_aor = [], False
        for line in r.stdout.splitlines():
            s = line.strip()
            if s.lower().startswith("aor:"):
                in_aor = s.split(":", 1)[1].strip() == user
            elif in_aor and s.startswith("Address:"):
                out.append(s.split(":", 1)[1].strip())
        return out

    def register(self, user: str, node: str, source: str | None = None) -> tuple[SipUA, str]:
        """A Jabber-shaped REGISTER (TechNote 217244's Contact: device UUID as user part, +sip.instance) to the
        home cluster's node, as the device's configuration names it. The UA's later requests use that Contact."""
        ua = SipUA(self.ports.sip, user, f"{self.pki_dir}/ca.crt", source=source)
        self.addCleanup(ua.close)
        dev = str(uuid.uuid4())
        ua.contact = f"<sip:{dev}@{ua.local};transport=tls>"
        ua.send(f"""
REGISTER sip:{node} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
Max-Forwards: 70
From: <sip:{user}@{DOMAIN}>;tag={ua.tag}
To: <sip:{user}@{DOMAIN}>
Call-ID: {uuid.uuid4().hex}
CSeq: 1 REGISTER
Contact: <sip:{dev}@{ua.local};transport=tls>;+sip.instance="<urn:uuid:{dev}>";+u.sip!devicename.ccm.cisco.com="CSF{user.upper()}";+u.sip!model.ccm.cisco.com="503";video;x-cisco-mra-ha=AR_SK;x-cisco-reg-id=1
Expires: 3600
""")
        r = ua.recv_final("REGISTER")
        self.assertEqual(r.status, 200, r.raw[:600])
        return ua, dev

    def make_client(self, user: str):
        import slixmpp

        loop = asyncio.get_running_loop()
        c = slixmpp.ClientXMPP(f"{user}@{DOMAIN}/mra", self.users[user]["password"])
        c.ca_certs = f"{self.pki_dir}/ca.crt"
        c.auto_reconnect = False
        c.started = loop.create_future()

        async def on_start(_):
            c.send_presence()
            await c.get_roster(timeout=TIMEOUT)
            if not c.started.done():
                c.started.set_result(True)

        def on_failed(_):
            if not c.started.done():
                c.started.set_exception(AssertionError(f"{user}: SASL authentication failed"))

        def on_end(_=None):
            if not c.started.done():
                c.started.set_exception(AssertionError(f"{user}: disconnected before the session started"))

        c.add_event_handler("session_start", on_start)
        c.add_event_handler("failed_auth", on_failed)
        c.add_event_handler("disconnected", on_end)
        c.connect(address=("127.0.0.1", self.ports.xmpp), force_starttls=True, disable_starttls=False)
        return c

    async def chat(self, sender: str, receiver: str, others: tuple[str, ...] = ()) -> str:
        loop = asyncio.get_running_loop()
        clients = {}
        got = loop.create_future()
        try:
            # One at a time: the order of sign-ins decides which node each stream opens on first.
            for u in (sender, receiver) + others:
                clients[u] = self.make_client(u)
                await asyncio.wait_for(clients[u].started, 20)

            def on_message(msg):
                if msg["type"] in ("chat", "normal") and not got.done():
                    got.set_result(f"{msg['from'].bare}: {msg['body']}")

            clients[receiver].add_event_handler("message", on_message)
            clients[sender].send_message(mto=f"{receiver}@{DOMAIN}", mbody="across clusters", mtype="chat")
            return await asyncio.wait_for(got, TIMEOUT)
        finally:
            for c in clients.values():
                try:
                    c.disconnect(wait=0)
                except Exception:  # noqa: BLE001
                    pass
            await asyncio.sleep(0.3)

    def accepted_on(self, user: str) -> list[str]:
        return [n for n, p in self.prosody.items() if f"home_node: accepted {user}" in p.log_text()]

    def metric(self, name: str, labels: str) -> float:
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/metrics", timeout=5)
        text = body.decode() if isinstance(body, bytes) else body
        m = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0


class MultiClusterTest(MultiClusterEnv):
    def test_estate_sign_in_register_and_chat(self):
        # The discovered estate: 3 + 3 + 3 Unified CM nodes, both IM&P nodes paired, Unity Connection; cucm-a's
        # nodes have TLS zones (mixed mode).
        nodes = {n["name"]: n for n in self.status["discovery"]["nodes"]}
        self.assertEqual(nodes["imp2.example.com"]["imp_peer"], "imp1.example.com")
        self.assertEqual(nodes["cucma2.example.com"]["security_mode"], "mixed")
        self.assertEqual(nodes["cucmb2.example.com"]["security_mode"], "non-secure")

        # Sign-in: userUdsServer on the home cluster; the password went only there.
        uds = {u: self.sign_in(u) for u in ("alice", "bob", "carol")}
        for user in ("alice", "bob", "carol"):
            home = self.users[user]["home_cluster"]
            # The fixture logs a request after answering it: wait for the line where it must be.
            self.fixtures[uds[user]].wait_log(re.escape(f"/cucm-uds/user/{user}/devices"), timeout=5)
            for n, p in self.fixtures.items():
                sent = f"/cucm-uds/user/{user}/devices" in p.log_text()
                self.assertEqual(sent, n == uds[user], f"{user}'s password at {n}")
            self.assertIn(uds[user], self.cluster_nodes[home])
        # An address sign-in: clusterUser?email= names the UDS id, and the check uses it.
        self.assertEqual(self.sign_in("esmith", login="erin.smith@example.com"), "cucmb1.example.com")
        self.fixtures["cucmb1.example.com"].wait_log(re.escape('"GET /cucm-uds/user/esmith/devices" 200'), timeout=5)
        everything = "".join(p.log_text() for p in self.fixtures.values())
        self.assertIn("clusterUser?email=erin.smith%40example.com", everything)
        self.assertNotIn("/cucm-uds/user/erin.smith", everything)

        # Registration: each user's REGISTER reaches their home cluster's registrar only; the binding keeps
        # the device UUID and names the client in orig-hostport.
        uas = {}
        for user in ("alice", "bob", "carol"):
            ua, dev = self.register(user, uds[user])
            uas[user] = ua
            home = self.users[user]["home_cluster"]
            b = self.bindings(home, user)
            self.assertEqual(len(b), 1, b)
            self.assertTrue(b[0].startswith(f"sip:{dev}@"), b)
            self.assertIn("orig-hostport=", b[0])
            for other in self.kam:
                if other != home:
                    self.assertEqual(self.bindings(other, user), [], f"{user} registered on {other}")
        # cucm-a is in mixed mode: alice's REGISTER went over TLS to its registrar.
        kam_a = self.kam["cucm-a"]["proc"].log_text()
        self.assertRegex(kam_a, r"REQ REGISTER sip:cucma1\.example\.com")

        # Chat through the central IM&P between users of different Unified CM clusters (alice on cucm-a, bob on
        # cucm-b; both homed on imp1), with carol (cucm-c, imp2) signed in too.
        if not HAVE_SLIXMPP:
            self.skipTest("python3-slixmpp is not installed")
        got = asyncio.run(asyncio.wait_for(self.chat("alice", "bob", ("carol",)), 90))
        self.assertEqual(got, "alice@example.com: across clusters")
        for user in ("alice", "bob", "carol"):
            self.assertEqual(self.accepted_on(user), [self.users[user]["imp_node"]], user)
        # With one worker the streams open round-robin on imp1, imp2, imp1: bob's first landed on imp2, which
        # redirected him; edge-c followed to imp1 and the client never saw it.
        redirected = sum(p.log_text().count("home_node: redirected") for p in self.prosody.values())
        self.assertGreaterEqual(redirected, 1)
        self.assertEqual(self.metric("edgepair_xmpp_home_redirects_total", 'result="followed"'), redirected)

    def test_cluster_down_then_back_and_imp_failover(self):
        # Carol's whole cluster goes down: 503 (never 401), others unaffected, and she recovers.
        for n in self.cluster_nodes["cucm-c"]:
            self.fixtures[n].stop()
        for _ in range(2):
            st, hd, body = self.edge_config("carol", self.users["carol"]["password"])
            self.assertEqual(st, 503, body)
            self.assertIsNone(hd.get("WWW-Authenticate"))
        self.sign_in("bob")
        for n in self.cluster_nodes["cucm-c"]:
            self.start_fixture(n)
        deadline = time.monotonic() + 20
        while True:
            st, _, body = self.edge_config("carol", self.users["carol"]["password"])
            if st == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(st, 200, body)
        self.assertIn(ET.fromstring(body).findtext("edgeConfig/userUdsServer/server/address"),
                      self.cluster_nodes["cucm-c"])

        if not HAVE_SLIXMPP:
            self.skipTest("python3-slixmpp is not installed")
        # alice (cucm-a) and bob (cucm-b) are both homed on imp1, which serves them first. (Two Prosody
        # instances do not route to each other, so a chat needs both users on one node.) Then imp1 fails and
        # imp2, its redundancy group peer, takes its users over (the module's "takeover", as IM&P's fail-over
        # does); their next streams end on imp2, found through the discovered pair, not through a hint.
        got = asyncio.run(asyncio.wait_for(self.chat("alice", "bob"), 60))
        self.assertEqual(got, "alice@example.com: across clusters")
        self.assertEqual(self.accepted_on("alice"), ["imp1.example.com"])
        self.prosody["imp1.example.com"].stop()
        self.write_home_map("imp2.example.com", takeover="imp1.example.com")
        before = len(self.prosody["imp2.example.com"].log_text())
        got = asyncio.run(asyncio.wait_for(self.chat("alice", "bob"), 60))
        self.assertEqual(got, "alice@example.com: across clusters")
        imp2 = self.prosody["imp2.example.com"].log_text()[before:]
        self.assertIn("home_node: accepted alice", imp2)
        self.assertIn("home_node: accepted bob", imp2)
        self.assertNotIn("home_node: redirected", imp2)
        # At least one of the two streams was sent to imp1 first (remembered home, or round-robin) and went on
        # to imp2 after the connection failed.
        self.assertRegex(self.edge_c.log_text(), r"IM&P attempt failed: imp1\.example\.com")


class MultiClusterCallTest(MultiClusterEnv):
    """Calls between users homed on different Unified CM clusters, each signed in and registered through the pair,
    with audio and video through both edges' media relays. The caller's registrar relays the INVITE to the
    callee's registrar by its inter-cluster route (route[ICT]: the stand-in for Unified CM's inter-cluster trunk
    and ILS, which are not modelled); each registrar record-routes, so ACK and BYE cross both clusters too.
    Both SIP ends and both media ends are this test: what it proves is consistency with our own reading
    (RFC 3261 routing, RFC 3264 / 4568 / 5761 SDP) through two real Kamailio registrars, not interoperability
    with Unified CM. Two edge-c workers: the two clients' flows land on different workers (edge-e hands
    consecutive flows to its links in turn), so each half of the call crosses a different worker."""

    WORKERS = 2
    XMPP = False
    MEDIA = True
    CLIENT_IPS = {"alice": tm.CLIENT_IP, "bob": "127.0.5.2", "carol": "127.0.5.3"}  # each client's own address

    # test_media.py's / test_media_av.py's helpers, shared rather than copied (a TestCase of theirs imported here
    # would run its tests too, hence the borrowed methods).
    invite = tm.MediaEnv.invite
    wait_response = tm.MediaEnv.wait_response
    media_status = tm.MediaEnv.media_status
    sessions = tm.MediaEnv.sessions
    wait_sessions = tm.MediaEnv.wait_sessions
    exchange = av.AvThroughPair.exchange
    check_no_stray = av.AvThroughPair.check_no_stray

    def setUp(self) -> None:
        if tm.pylibsrtp is None:
            self._missing("python3-pylibsrtp not installed (tools/test.sh installs it)")
        super().setUp()

    def stream(self, ip: str) -> av.Stream:
        st = av.Stream(ip)
        self.addCleanup(st.close)
        return st

    def sign_in_and_register(self, user: str) -> None:
        node = self.sign_in(user)
        self.clients[user] = self.register(user, node, source=self.CLIENT_IPS[user])
        self.assertEqual(len(self.bindings(self.users[user]["home_cluster"], user)), 1)

    def kam_log(self, cluster: str) -> str:
        return self.kam[cluster]["proc"].log_text()

    def check_sdp_at_client(self, s: tm.Sdp, what: str, other_ip: str) -> list[int]:
        """SDP an outside client receives: edge-e's public address, audio and video on edge-e ports (each its own),
        SRTP with one key each, rtcp-mux kept on the video line (the caller offered it); nothing of the other
        client's or the inside's addresses. Returns the two ports."""
        self.assertEqual(s.all("c="), [f"c=IN IP4 {tm.E_PUBLIC}"], f"{what}\n{s.lines}")
        self.assertEqual(s.origin_address(), tm.E_PUBLIC, f"{what}\n{s.lines}")
        self.assertEqual([(s.m(i)[0], s.m(i)[2]) for i in range(len(s.media))],
                         [("audio", "RTP/SAVP"), ("video", "RTP/SAVP")], f"{what}: both m-lines, SRTP\n{s.lines}")
        ports = [s.m(i)[1] for i in range(2)]
        for p in ports:
            self.assertTrue(self.e_lo <= p <= self.e_hi and p % 2 == 0,
                            f"{what}: port {p} not an even port of edge-e's media.ports\n{s.lines}")
        self.assertNotEqual(ports[0], ports[1], f"{what}: each m-line needs its own relay\n{s.lines}")
        self.assertEqual([len(s.attrs(i, "crypto")) for i in range(2)], [1, 1], f"{what}\n{s.lines}")
        self.assertEqual([s.attrs(i, "rtcp-mux") for i in range(2)], [[], [""]], f"{what}\n{s.lines}")
        text = "\n".join(s.lines)
        for leak in (other_ip, tm.C_MEDIA_IP, "127.0.4."):
            self.assertNotIn(leak, text, f"{what}: {leak} must not reach an outside client\n{text}")
        return ports

    def call(self, caller: str, callee: str) -> None:
        """caller (signed in and registered on their home cluster) calls callee (on another cluster) with audio
        and video; callee answers; media both ways on both m-lines; caller hangs up."""
        home_a, home_b = self.users[caller]["home_cluster"], self.users[callee]["home_cluster"]
        self.assertNotEqual(home_a, home_b)
        others = [c for c in self.kam if c not in (home_a, home_b)]
        mark = {c: len(self.kam_log(c)) for c in self.kam}
        (ua_a, _), (ua_b, dev_b) = self.clients[caller], self.clients[callee]
        ip_a, ip_b = self.CLIENT_IPS[caller], self.CLIENT_IPS[callee]
        self.assertEqual(self.sessions(), (0, 0))

        aa, av_ = self.stream(ip_a), self.stream(ip_a)
        ba, bv = self.stream(ip_b), self.stream(ip_b)
        ka, kv = tm.Crypto.new(1), tm.Crypto.new(1)
        call = self.invite(ua_a, callee, av.sdp_body("jabber", ip_a, 1, [
            [f"m=audio {aa.port} RTP/SAVP 0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
             ka.line(), f"a=rtcp:{aa.port + 1}", "a=sendrecv"],
            [f"m=video {av_.port} RTP/SAVP 97", "a=rtpmap:97 H264/90000", "a=rtcp-fb:* nack pli", kv.line(),
             "a=rtcp-mux", "a=sendrecv"]]))
        from_hdr = f"<sip:{caller}@{DOMAIN}>;tag={call['tag']}"

        # The INVITE reaches the callee's device (the Contact it registered, restored by edge-c) with edge-e's
        # media address and fresh keys; it crossed both clusters' registrars and no other.
        inv = sd.wait_request(ua_b, "INVITE", timeout=20, call_id=call["call_id"])
        self.assertTrue(inv.start.startswith(f"INVITE sip:{dev_b}@{ua_b.local}"), inv.start)
        self.assertIn(f"sip:{caller}@{DOMAIN}", inv.get("From"))
        g = tm.Sdp(inv.body)
        b_ports = self.check_sdp_at_client(g, f"INVITE at {callee}", ip_a)
        b_edge = [tm.Crypto.parse(g.attrs(i, "crypto")[0]) for i in range(2)]
        self.assertNotIn(ka.key, [k.key for k in b_edge], "the caller's key must not reach the callee")
        log_a = self.kam_log(home_a)[mark[home_a]:]
        log_b = self.kam_log(home_b)[mark[home_b]:]
        peer_a = self.addr[self.publisher(home_a)]
        self.assertRegex(log_a, rf"ICT INVITE sip:{callee}@{re.escape(DOMAIN)} to {home_b} ",
                         f"{home_a}'s registrar must relay the call over the inter-cluster route")
        self.assertRegex(log_b, rf"REQ INVITE sip:{callee}@{re.escape(DOMAIN)} from {re.escape(peer_a)}:",
                         f"{home_b}'s registrar must get the INVITE from {home_a}'s")
        for c in others:
            self.assertNotIn("REQ INVITE", self.kam_log(c)[mark[c]:], f"the call must not touch {c}")

        # The callee answers with its own keys and rtcp-mux on video.
        mine_b = [tm.Crypto.new(k.tag) for k in b_edge]
        ba.keys(mine_b[0], b_edge[0])
        bv.keys(mine_b[1], b_edge[1])
        dlg_b = sd.Dialog.as_uas(ua_b, inv, uuid.uuid4().hex[:8])
        dlg_b.respond(inv, 200, "OK", body=av.sdp_body("jabber", ip_b, 1, [
            [f"m=audio {ba.port} RTP/SAVP 0", "a=rtpmap:0 PCMU/8000", mine_b[0].line(), f"a=rtcp:{ba.port + 1}",
             "a=sendrecv"],
            [f"m=video {bv.port} RTP/SAVP 97", "a=rtpmap:97 H264/90000", mine_b[1].line(), "a=rtcp-mux",
             "a=sendrecv"]]))
        ok = self.wait_response(ua_a, call, timeout=20)
        self.assertEqual(ok.status, 200, ok.raw[:1500])
        s = tm.Sdp(ok.body)
        a_ports = self.check_sdp_at_client(s, f"200 at {caller}", ip_b)
        self.assertEqual(len(set(a_ports + b_ports)), 4, "each call half needs its own edge-e ports")
        a_edge = [tm.Crypto.parse(s.attrs(i, "crypto")[0]) for i in range(2)]
        self.assertNotIn(mine_b[0].key, [k.key for k in a_edge], "the callee's key must not reach the caller")
        aa.keys(ka, a_edge[0])
        av_.keys(kv, a_edge[1])
        # The caller's route set: edge-e first (what the client reaches), then the inside entries of both
        # clusters' registrars; the ACK follows it and reaches the callee.
        # The Record-Route the caller got, callee side first: edge-e and edge-c of the callee's half, the callee's
        # registrar, the caller's (two entries where it changes transport, TLS to TCP), edge-c and edge-e of the
        # caller's half. The caller's first route is edge-e over TLS, as it reached it.
        rr = sd.route_entries(ok.all("Record-Route"))
        outside = f"<sip:{EDGE}:{self.ports.sip};transport=tls;lr>"
        self.assertEqual((rr[0], rr[-1]), (outside, outside), rr)
        hosts = [re.sub(r"^<sip:(?:[^@>]*@)?([^:;>]+).*", r"\1", e) for e in rr]
        peer_b = self.addr[self.publisher(home_b)]
        self.assertEqual([x for i, x in enumerate(hosts) if i == 0 or x != hosts[i - 1]],
                         [EDGE, tm.C_MEDIA_IP, peer_b, peer_a, tm.C_MEDIA_IP, EDGE],
                         f"edge-e, edge-c, {home_b}, {home_a}, edge-c, edge-e: {rr}")
        dlg_a = sd.Dialog.as_uac(ua_a, call["call_id"], from_hdr, ok, 1)
        dlg_a.request("ACK")
        sd.wait_request(ua_b, "ACK", call_id=call["call_id"])
        self.assertEqual(self.sessions(), (2, 2), "one media session per call half on each edge")

        # Media: the callee speaks first (latches its side), then every stream both ways.
        E = tm.E_MEDIA_IP
        ba.rtp_sock.sendto(ba.out(tm.rtp(0, 1, 0, 0xB0A1, b"latch" * 10)), (E, b_ports[0]))
        bv.rtp_sock.sendto(bv.out(tm.rtp(97, 1, 0, 0xB0B1, b"latch" * 10)), (E, b_ports[1]))
        av.recv_all(aa.rtp_sock, 0.5)
        av.recv_all(av_.rtp_sock, 0.5)
        a_aud = [tm.rtp(0, n, 160 * n, 0xA0A1, b"%s-audio-%d" % (caller.encode(), n) * 16) for n in range(1, 4)]
        a_vid = [tm.rtp(97, n, 3000 * n, 0xA0B1, b"%s-video-%d" % (caller.encode(), n) * 40)
                 for n in range(1, 4)] + [tm.rtcp_sr(0xA0B1, 1)]
        b_aud = [tm.rtp(0, 10 + n, 160 * n, 0xB0A1, b"%s-audio-%d" % (callee.encode(), n) * 16) for n in range(3)]
        b_vid = [tm.rtp(97, 10 + n, 3000 * n, 0xB0B1, b"%s-video-%d" % (callee.encode(), n) * 40)
                 for n in range(3)] + [tm.rtcp_sr(0xB0B1, 2)]
        self.assertEqual(self.exchange(aa, (E, a_ports[0]), ba, a_aud, expect_src=(E, b_ports[0])), a_aud,
                         f"{caller}'s audio at {callee}")
        self.assertEqual(self.exchange(av_, (E, a_ports[1]), bv, a_vid, expect_src=(E, b_ports[1])), a_vid,
                         f"{caller}'s video and muxed RTCP at {callee}'s one video port")
        self.assertEqual(self.exchange(ba, (E, b_ports[0]), aa, b_aud, expect_src=(E, a_ports[0])), b_aud,
                         f"{callee}'s audio at {caller}")
        self.assertEqual(self.exchange(bv, (E, b_ports[1]), av_, b_vid, expect_src=(E, a_ports[1])), b_vid,
                         f"{callee}'s video and muxed RTCP at {caller}'s one video port")
        self.check_no_stray(aa.rtp_sock, aa.rtcp_sock, av_.rtp_sock, av_.rtcp_sock, ba.rtp_sock, ba.rtcp_sock,
                            bv.rtp_sock, bv.rtcp_sock)
        for port in (self.ports.admin_e, self.ports.admin_c):
            for reason in ("srtp_auth", "srtp_replay", "srtp_bad", "wrong_source", "unknown_channel"):
                self.assertEqual(self.metric_sum(port, "edgepair_media_dropped_total", reason), 0,
                                 f"dropped packets ({reason}) on :{port}")

        # BYE from the caller along its route set: through both registrars to the callee; both media sessions
        # (one per call half on each edge) are released at once, not by the idle timer.
        n = dlg_a.request("BYE")
        bye = sd.wait_request(ua_b, "BYE", call_id=call["call_id"])
        dlg_b.respond(bye, 200, "OK")
        self.assertEqual(sd.wait_final(ua_a, "BYE", call["call_id"], n).status, 200)
        self.wait_sessions(lambda x: x == (0, 0), timeout=5, what="after BYE")
        for c in (home_a, home_b):
            self.assertIn("REQ BYE", self.kam_log(c)[mark[c]:], f"the BYE must cross {c}'s registrar")
        late = tm.rtp(0, 99, 99, 0xA0A1, b"after-bye")
        aa.rtp_sock.sendto(aa.out(late), (E, a_ports[0]))
        self.assertEqual(av.recv_all(ba.rtp_sock, 0.5), [], "relayed after BYE")

    def metric_sum(self, port: int, name: str, reason: str) -> float:
        st, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        text = body.decode() if isinstance(body, bytes) else body
        return sum(float(m.group(1)) for m in
                   re.finditer(rf'^{re.escape(name)}\{{[^}}]*reason="{re.escape(reason)}"[^}}]*\}} (\S+)$', text, re.M))

    def test_calls_between_clusters_audio_and_video(self):
        # alice (cucm-a, mixed mode: edge-c reaches its registrar over TLS) calls bob (cucm-b, TCP); then carol
        # (cucm-c) calls alice: into the mixed-mode cluster from the other side.
        self.clients: dict[str, tuple[SipUA, str]] = {}
        for user in ("alice", "bob", "carol"):
            self.sign_in_and_register(user)
        self.call("alice", "bob")
        self.call("carol", "alice")

if __name__ == "__main__":
    h.run_tests()
