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


class MultiClusterTest(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        if yaml is None:
            self.skipTest("python3-yaml is not installed")
        for tool in ("kamailio", "kamcmd", "dnsmasq", "prosody", "prosodyctl"):
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
        for n in self.imps:
            if not h._can_bind(self.addr[n], XMPP_PORT, socket.SOCK_STREAM):
                self.skipTest(f"{self.addr[n]}:{XMPP_PORT} is in use")
        self.ucm_port = port_free_on(list(self.addr.values()))
        self.ports = pair.Ports()
        self.fixtures: dict[str, h.Proc] = {}
        self.kam: dict[str, dict] = {}
        self.prosody: dict[str, h.Proc] = {}
        self.start_dns()
        for c in self.estate["clusters"]:
            if any(n["type"] == "ucm" for n in c["nodes"]):
                self.start_kamailio(c["name"])
        self.write_estate()
        for name in self.nodes:
            self.start_fixture(name, wait=False)
        for name in self.nodes:
            self.fixtures[name].wait_log(r"^READY$", timeout=20)
        for n in self.imps:
            self.start_prosody(n)
        self.start_pair()

    # ---- peers -----------------------------------------------------------------------------------------

    def start_dns(self) -> None:
        self.dns_port = h.free_port(udp=True)
        args = [self.require_tool("dnsmasq"), "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--no-poll", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1",
                f"--port={self.dns_port}", "--log-facility=-"]
        if os.geteuid() == 0:
            args.append("--user=root")
        args += [f"--address=/{name}/{ip}" for name, ip in self.addr.items()]
        p = self.start(args, name="dnsmasq")
        h.wait_udp_bound("127.0.0.1", self.dns_port, timeout=10, proc=p)

    def publisher(self, cluster: str) -> str:
        c = next(c for c in self.estate["clusters"] if c["name"] == cluster)
        return next(n["name"] for n in c["nodes"] if n.get("publisher"))

    def start_kamailio(self, cluster: str) -> None:
        """The cluster's registrar on its publisher's address (tests/integration/sip/kamailio.cfg.in)."""
        addr = self.addr[self.publisher(cluster)]
        port, tlsport = h.free_port(addr), h.free_port(addr)
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
        path = os.path.join(d, "kamailio.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        p = self.start(["kamailio", "-DD", "-E", "-f", path, "-Y", d, "-w", d], name=f"kamailio-{cluster}")
        p.wait_port(addr, port, timeout=15)
        self.kam[cluster] = {"proc": p, "port": port, "tls_port": tlsport, "ctl": ctl}

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
        ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir)
        # One worker each: the XMPP service's round-robin start is then deterministic enough to see both a
        # direct sign-in and a redirect, and every cache is the one worker's.
        ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=disc, extra=extra, workers=1)
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

    def register(self, user: str, node: str) -> tuple[SipUA, str]:
        """A Jabber-shaped REGISTER (TechNote 217244's Contact: device UUID as user part, +sip.instance) to the
        home cluster's node, as the device's configuration names it."""
        ua = SipUA(self.ports.sip, user, f"{self.pki_dir}/ca.crt")
        self.addCleanup(ua.close)
        dev = str(uuid.uuid4())
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

    # ---- tests -----------------------------------------------------------------------------------------

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

if __name__ == "__main__":
    h.run_tests()
