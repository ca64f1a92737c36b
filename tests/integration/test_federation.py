#!/usr/bin/python3
"""XMPP federation through the pair (issue #19).

Topology (loopback only, addresses in 127.0.19.0/24 so nothing collides with the other tests' 5222/5269):

  inside:  Prosody example.com (the IM&P node) on 127.0.0.1, its own DNS dnsmasq 127.0.19.54:53
           (_xmpp-server._tcp.partner.test and .partner2.test -> edge-c's inside listener 127.0.19.4)
  pair:    edge-c (inside listener 127.0.19.4) -> link -> edge-e (federation listener 127.0.19.1),
           edge-e's SRV look-ups go to dnsmasq 127.0.19.53:53
  outside: Prosody partner.test (and partner2.test) on 127.0.19.2, DNS dnsmasq 127.0.19.53:53
           (_xmpp-server._tcp.example.com -> edge-e; partner2.test only has an A record: port 5269)

The inside Prosody connects out from 127.0.0.1 (the kernel's source for loopback), which is the IM&P node address
edge-c is told to accept. `_xmpp-server._tcp.partner.test` has two targets: priority 0 points to a port nobody
listens on (so every outbound stream fails over to the second), priority 10 to the partner Prosody.

Users alice@example.com and bob@partner.test (slixmpp, each on its own server's c2s port) exchange messages and
directed presence in both directions, and alice writes to carol@partner2.test; every s2s byte between the Prosody
servers crosses edge-c, the link and edge-e (neither has any other route to the other). Then the refusals: a
denied domain in both directions, a 'to' that is not ours, a plaintext partner against security `required`, a
certificate that does not name the claimed domain, a connection to edge-c's inside listener from an address that
is not an IM&P node; a reload that denies partner.test; and the link cut under open federation streams. Two more
tests run the exchange with security `none` and `optional`.

Prosody's DNS resolver only speaks to port 53, so the test needs root (to bind 127.0.19.53/54:53); it skips
otherwise. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402

TEMPLATE = os.path.join(h.SRC, "tests", "integration", "xmpp", "prosody-s2s.cfg.lua.in")
PLUGINS = os.path.join(h.SRC, "tests", "integration", "xmpp")
EDGE_E_ADDR = "127.0.19.1"
PARTNER_ADDR = "127.0.19.2"
IMP_ADDR = "127.0.0.1"  # the inside Prosody: its outbound connections come from here
EDGE_C_INSIDE_ADDR = "127.0.19.4"
DEAD_ADDR = "127.0.19.5"
OUTSIDE_DNS = "127.0.19.53"
INSIDE_DNS = "127.0.19.54"
STRANGER_ADDR = "127.0.19.9"
ALICE = ("alice", "example.com", "Alice-Fed-1")
BOB = ("bob", "partner.test", "Bob-Fed-2")
CAROL = ("carol", "partner2.test", "Carol-Fed-3")
S2S_NS = ("xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
          "xmlns:stream='http://etherx.jabber.org/streams'")
TIMEOUT = 10.0

try:
    import slixmpp  # noqa: F401
    HAVE_SLIXMPP = True
except ImportError:  # pragma: no cover
    HAVE_SLIXMPP = False


def s2s_header(frm: str, to: str) -> bytes:
    return f"<?xml version='1.0'?><stream:stream {S2S_NS} from='{frm}' to='{to}' version='1.0'>".encode()


def recv_until(sock, pattern: bytes, timeout: float = TIMEOUT) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, buf):
        left = deadline - time.monotonic()
        if left <= 0:
            raise h.HarnessError(f"timed out waiting for {pattern!r}; got {buf!r}")
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        if not d:
            break
        buf += d
    return buf


def recv_all(sock, timeout: float = TIMEOUT) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError):
            break
        if not d:
            break
        buf += d
    return buf


class FederationTest(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("Prosody's resolver only asks port 53: binding the test DNS servers needs root")
        for a in (OUTSIDE_DNS, INSIDE_DNS):
            if not h._can_bind(a, 53, socket.SOCK_DGRAM):
                self.skipTest(f"{a}:53 is in use")
        self.pki_dir = h.pki()
        self.ports = pair.Ports()
        self.fed_port = h.free_port(EDGE_E_ADDR)
        self.inside_port = h.free_port(EDGE_C_INSIDE_ADDR)
        self.dead_port = h.free_port(DEAD_ADDR)
        self.partner_c2s, self.partner_s2s = h.free_ports(2, PARTNER_ADDR)
        self.imp_c2s, self.imp_s2s = h.free_ports(2, IMP_ADDR)

    # ---- peers -----------------------------------------------------------------------------------------

    def start_dnsmasq(self, name: str, addr: str, records: list[str]) -> None:
        dnsmasq = self.require_tool("dnsmasq")
        args = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--no-poll", "--pid-file=", "--bind-interfaces", f"--listen-address={addr}", "--port=53",
                "--log-facility=-", "--log-queries", "--user=root"] + records
        p = self.start(args, name=name)
        h.wait_udp_bound(addr, 53, timeout=10, proc=p)

    def start_dns(self) -> None:
        self.start_dnsmasq("dns-outside", OUTSIDE_DNS, [
            # Remote servers find example.com's federation at edge-e.
            f"--srv-host=_xmpp-server._tcp.example.com,expe1.example.com,{self.fed_port},0,0",
            f"--host-record=expe1.example.com,{EDGE_E_ADDR}",
            # Two targets for partner.test: the first is down, so edge-e must fail over (RFC 6120 3.2.1).
            f"--srv-host=_xmpp-server._tcp.partner.test,dead.partner.test,{self.dead_port},0,0",
            f"--srv-host=_xmpp-server._tcp.partner.test,xmpp.partner.test,{self.partner_s2s},10,0",
            f"--host-record=dead.partner.test,{DEAD_ADDR}",
            f"--host-record=xmpp.partner.test,{PARTNER_ADDR}",
            # partner2.test has no SRV record: its own address, port 5269 (RFC 6120 3.2.2).
            f"--host-record=partner2.test,{PARTNER_ADDR}",
            # badcert.test is served by the partner's server with its certificate, which names partner.test and
            # partner2.test only: in required mode edge-e must not federate with it as badcert.test.
            f"--srv-host=_xmpp-server._tcp.badcert.test,xmpp.partner.test,{self.partner_s2s},0,0",
        ])
        self.start_dnsmasq("dns-inside", INSIDE_DNS, [
            # Inside, every federated domain is reached through edge-c.
            f"--srv-host=_xmpp-server._tcp.partner.test,expc1.example.com,{self.inside_port},0,0",
            f"--srv-host=_xmpp-server._tcp.denied.test,expc1.example.com,{self.inside_port},0,0",
            f"--srv-host=_xmpp-server._tcp.partner2.test,expc1.example.com,{self.inside_port},0,0",
            f"--srv-host=_xmpp-server._tcp.badcert.test,expc1.example.com,{self.inside_port},0,0",
            f"--host-record=expc1.example.com,{EDGE_C_INSIDE_ADDR}",
        ])

    def start_prosody(self, name: str, domain: str, addr: str, c2s: int, s2s: int, dns: str, cert: str,
                      users: list[tuple[str, str, str]], require_encryption: bool = True,
                      extra_domain: str | None = None, more_hosts: tuple[str, ...] = ()) -> h.Proc:
        prosody = self.require_tool("prosody")
        prosodyctl = self.require_tool("prosodyctl")
        tmp = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(tmp, "data"), exist_ok=True)
        with open(TEMPLATE, encoding="utf-8") as f:
            text = f.read()
        s2s_ports = f"{s2s}, 5269" if extra_domain else str(s2s)  # the extra domain has no SRV record: 5269
        extra = (f'VirtualHost "{extra_domain}"\n    ssl = {{ certificate = "{self.pki_dir}/{cert}-chain.crt", '
                 f'key = "{self.pki_dir}/{cert}.key" }}\n') if extra_domain else ""
        # Hosts served with the same certificate, which does not name them.
        for host in more_hosts:
            extra += (f'VirtualHost "{host}"\n    ssl = {{ certificate = "{self.pki_dir}/{cert}-chain.crt", '
                      f'key = "{self.pki_dir}/{cert}.key" }}\n')
        subst = {"TMP": tmp, "PLUGINS": PLUGINS, "ADDR": addr, "C2S_PORT": str(c2s), "S2S_PORTS": s2s_ports,
                 "EXTRA_HOSTS": extra,
                 "DNS": dns, "CERT": f"{self.pki_dir}/{cert}-chain.crt", "KEY": f"{self.pki_dir}/{cert}.key",
                 "DOMAIN": domain, "S2S_REQUIRE_ENCRYPTION": "true" if require_encryption else "false"}
        for k, v in subst.items():
            text = text.replace(f"@{k}@", v)
        cfg = os.path.join(tmp, "prosody.cfg.lua")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(text)
        for user, dom, pw in users:
            rc, out = h.run_cmd([prosodyctl, "--config", cfg, "register", user, dom, pw], timeout=30)
            if rc != 0:
                raise h.HarnessError(f"prosodyctl register {user}@{dom} failed: {out}")
        p = self.start([prosody, "--config", cfg, "-F"], name=name)
        p.wait_port(addr, s2s, timeout=15)
        p.wait_port(addr, c2s, timeout=15)
        return p

    def start_pair(self, *, security: str = "required", deny: tuple[str, ...] = ("denied.test",),
                   allow: tuple[str, ...] = ()) -> None:
        pki = self.pki_dir
        deny_yaml = "[" + ", ".join(f'"{d}"' for d in deny) + "]"  # quoted: "*." would be a YAML alias
        allow_yaml = "[" + ", ".join(f'"{d}"' for d in allow) + "]"
        ecfg = pair.edge_e_yaml(self, self.ports, pki, extra=f"""
federation:
          xmpp:
            listen: {EDGE_E_ADDR}:{self.fed_port}
            security: {security}
            local_domains: [example.com]
            deny: {deny_yaml}
            allow: {allow_yaml}
            dns_servers: ["{OUTSIDE_DNS}:53"]
            dns_cache_ttl: 30s
            connect_timeout: 5s
            trusted_cas: {pki}/ca.crt
""".strip("\n"))
        ccfg = pair.edge_c_yaml(self, self.ports, pki, extra=f"""
federation:
          xmpp:
            listen: {EDGE_C_INSIDE_ADDR}:{self.inside_port}
            imp_nodes: ["{IMP_ADDR}:{self.imp_s2s}"]
            imp_security: required
            dial_timeout: 15s
""".strip("\n"))
        self.edge_e = pair.start_edge_e(self, ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, ccfg, self.ports)
        h.wait_port(EDGE_E_ADDR, self.fed_port, timeout=10, proc=self.edge_e)
        h.wait_port(EDGE_C_INSIDE_ADDR, self.inside_port, timeout=10, proc=self.edge_c)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st, _, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=5)
            if st == 200:
                return
            time.sleep(0.2)
        self.fail("edge-e never became ready (no link from edge-c)")

    def metrics(self, port: int) -> str:
        st, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        self.assertEqual(st, 200)
        return body if isinstance(body, str) else body.decode()

    def metric(self, port: int, name: str, labels: str) -> float:
        m = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", self.metrics(port), re.M)
        return float(m.group(1)) if m else 0.0

    # ---- the exchange ----------------------------------------------------------------------------------

    def test_messages_both_ways_and_refusals(self):
        if not HAVE_SLIXMPP:
            self.skipTest("python3-slixmpp is not installed")
        self.start_dns()
        self.start_pair()
        self.start_prosody("prosody-imp", "example.com", IMP_ADDR, self.imp_c2s, self.imp_s2s, INSIDE_DNS,
                           "tomcat-imp1", [ALICE])
        if not h._can_bind(PARTNER_ADDR, 5269, socket.SOCK_STREAM):
            self.skipTest(f"{PARTNER_ADDR}:5269 is in use")
        partner = self.start_prosody("prosody-partner", "partner.test", PARTNER_ADDR, self.partner_c2s,
                                     self.partner_s2s, OUTSIDE_DNS, "xmpp-partner", [BOB, CAROL],
                                     extra_domain="partner2.test", more_hosts=("badcert.test",))

        result = asyncio.run(asyncio.wait_for(self.exchange(fallback=True), 90))
        # No SRV record for partner2.test: edge-e used its address on 5269, and counted the SRV miss.
        self.assertEqual(result["carol_got"], "hello carol, via the A record")
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_xmpp_federation_dns_failures_total",
                                            'stage="srv"'), 1)
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_xmpp_federation_sessions_total",
                                            'direction="out",domain="partner2.test"'), 1)
        self.assertEqual(result["bob_got"], "hello bob, from example.com")
        self.assertEqual(result["alice_got"], "hello alice, from partner.test")
        self.assertEqual(result["alice_presence_from"], "bob@partner.test")
        self.assertEqual(result["bob_presence_from"], "alice@example.com")
        self.assertEqual(result["denied_error"], "error")
        self.assertEqual(result["badcert_error"], "error")
        self.edge_e.wait_log(r"TLS with \S+ failed \(certificate for badcert\.test\?\)", timeout=1)
        self.assertEqual(self.metric(self.ports.admin_e, "edgepair_xmpp_federation_sessions_total",
                                     'direction="out",domain="badcert.test"'), 0)

        # Every s2s byte crossed the pair, in both directions, and the first SRV target was failed over.
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_xmpp_federation_sessions_total",
                                            'direction="out",domain="partner.test"'), 1)
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_xmpp_federation_sessions_total",
                                            'direction="in",domain="partner.test"'), 1)
        self.assertGreaterEqual(self.metric(self.ports.admin_c, "edgepair_xmpp_federation_imp_total",
                                            'direction="out",result="ok"'), 1)
        self.assertGreaterEqual(self.metric(self.ports.admin_c, "edgepair_xmpp_federation_imp_total",
                                            'direction="in",result="ok"'), 1)
        self.edge_e.wait_log(rf"attempt at {re.escape(DEAD_ADDR)}:{self.dead_port} failed", timeout=1)
        # The denied domain: IM&P's outbound stream got a stream error written by edge-e.
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_xmpp_federation_refusals_total",
                                            'reason="denied"'), 1)

        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
        self.assertEqual(st, 200)
        status = json.loads(body)
        self.assertEqual(status["federation"]["xmpp"]["security"], "required")
        self.assertEqual(status["federation"]["xmpp"]["deny"], ["denied.test"])
        self.assertIn({"name": "xmpp_s2s", "address": f"{EDGE_E_ADDR}:{self.fed_port}"}, status["listeners"])
        # Refusals by reason and DNS failures by stage are on /status as on /metrics (every label, zeros too).
        fx = status["federation"]["xmpp"]
        for reason, n in fx["refusals"].items():
            self.assertEqual(n, self.metric(self.ports.admin_e, "edgepair_xmpp_federation_refusals_total",
                                            f'reason="{reason}"'), reason)
        self.assertGreaterEqual(fx["refusals"]["denied"], 1)
        self.assertGreaterEqual(fx["dns_failures"]["srv"], 1)
        self.assertEqual(set(fx["dns_failures"]), {"srv", "address", "domain"})
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
        self.assertEqual(st, 200)
        imp = json.loads(body)["federation"]["xmpp"]["imp"]
        self.assertGreaterEqual(imp["in/ok"], 1, imp)
        self.assertGreaterEqual(imp["out/ok"], 1, imp)
        # The streams Prosody keeps open after the exchange are on /status, per remote domain and direction.
        open_now = self.open_federation()
        self.assertGreaterEqual(open_now.get(("xmpp", "out", "partner.test"), 0), 1, open_now)
        self.assertGreaterEqual(open_now.get(("xmpp", "in", "partner.test"), 0), 1, open_now)
        self.assertNotIn(("xmpp", "out", "denied.test"), open_now)

        self.check_inbound_refusals()
        self.check_reload_and_link_loss(partner)

    def check_reload_and_link_loss(self, partner: h.Proc) -> None:
        # A reload that adds partner.test to the deny list applies to new streams.
        path = os.path.join(self.tmp, "edge-e.yaml")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace('deny: ["denied.test"]', 'deny: ["denied.test", "partner.test"]'))
        mark = len(self.edge_e.log_text())
        self.edge_e.send_signal(signal.SIGHUP)
        self.edge_e.wait_log(r"reload applied on every worker", timeout=10, start=mark)
        with socket.create_connection((EDGE_E_ADDR, self.fed_port), timeout=TIMEOUT) as s:
            s.sendall(s2s_header("partner.test", "example.com"))
            got = recv_all(s)
        self.assertIn(b"<policy-violation", got)

        # The link goes (edge-c killed): federation streams still open through it end with a stream error from
        # edge-e, which the partner reads (its inbound stream was relayed through edge-e).
        mark = len(partner.log_text())
        self.edge_c.send_signal(signal.SIGKILL)
        partner.wait_log(r"remote-connection-failed", timeout=15, start=mark)
        self.assertTrue(self.edge_e.alive)
        # Every stream that crossed the dead link has ended, and /status no longer counts it open.
        deadline = time.monotonic() + 10
        while self.open_federation() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.open_federation(), {})

    def open_federation(self) -> dict:
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
        self.assertEqual(st, 200)
        return {(o["protocol"], o["direction"], o["domain"]): o["sessions"]
                for o in json.loads(body)["federation"]["open"]}

    def test_security_none_relays_plaintext_both_ways(self):
        """security none: edge-e never starts TLS with the partner (which allows plaintext); the inside hop
        keeps its TLS. Exercises the plaintext paths: the partner's header and features relayed to IM&P, and an
        inbound stream relayed from its first header."""
        if not HAVE_SLIXMPP:
            self.skipTest("python3-slixmpp is not installed")
        self.start_dns()
        self.start_pair(security="none")
        self.start_prosody("prosody-imp", "example.com", IMP_ADDR, self.imp_c2s, self.imp_s2s, INSIDE_DNS,
                           "tomcat-imp1", [ALICE])
        self.start_prosody("prosody-partner", "partner.test", PARTNER_ADDR, self.partner_c2s, self.partner_s2s,
                           OUTSIDE_DNS, "xmpp-partner", [BOB], require_encryption=False)
        result = asyncio.run(asyncio.wait_for(self.exchange(denied=False), 90))
        self.assertEqual(result["bob_got"], "hello bob, from example.com")
        self.assertEqual(result["alice_got"], "hello alice, from partner.test")
        self.edge_e.wait_log(r"to partner\.test: federation stream from example\.com relayed to \S+ without TLS",
                             timeout=1)
        self.edge_e.wait_log(r"federation stream from partner\.test to example\.com on link stream \d+ \(tls: none\)",
                             timeout=1)
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_xmpp_federation_sessions_total",
                                            'direction="in",domain="partner.test"'), 1)

    def test_security_optional_offers_tls_in_imps_features(self):
        """security optional: a remote's stream goes through from its first header and IM&P's features come back
        with edge-e's STARTTLS offer added; Prosody takes it (the stream restarts on a new link stream), a raw
        partner may stay in plaintext and sees IM&P's dialback offer."""
        if not HAVE_SLIXMPP:
            self.skipTest("python3-slixmpp is not installed")
        self.start_dns()
        self.start_pair(security="optional", allow=("partner.test", "*.partner.test"))
        self.start_prosody("prosody-imp", "example.com", IMP_ADDR, self.imp_c2s, self.imp_s2s, INSIDE_DNS,
                           "tomcat-imp1", [ALICE])
        self.start_prosody("prosody-partner", "partner.test", PARTNER_ADDR, self.partner_c2s, self.partner_s2s,
                           OUTSIDE_DNS, "xmpp-partner", [BOB], require_encryption=False)

        with socket.create_connection((EDGE_E_ADDR, self.fed_port), timeout=TIMEOUT) as s:
            s.sendall(s2s_header("partner.test", "example.com"))
            got = recv_until(s, rb"</stream:features>")
            # IM&P's own header (its stream id) and features, with edge-e's offer first.
            self.assertIn(b"from='example.com'", got)
            self.assertIn(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", got)
            self.assertNotIn(b"<required/>", got)
            self.assertIn(b"urn:xmpp:features:dialback", got)
            # edge-e frames the remote's side: a stanza over federation.xmpp.max_stanza_size (512k) is cut there.
            s.sendall(b"<message from='x@partner.test' to='alice@example.com'><body>" + b"x" * (600 * 1024) +
                      b"</body></message>")
            got = recv_all(s)
            self.assertIn(b"<policy-violation", got)
            self.assertTrue(got.endswith(b"</stream:stream>"), got[-200:])

        # An allow list is set: a domain not on it is refused before anything reaches IM&P.
        with socket.create_connection((EDGE_E_ADDR, self.fed_port), timeout=TIMEOUT) as s:
            s.sendall(s2s_header("stranger.test", "example.com"))
            got = recv_all(s)
        self.assertIn(b"<policy-violation", got)
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_xmpp_federation_refusals_total",
                                            'reason="not_allowed"'), 1)

        result = asyncio.run(asyncio.wait_for(self.exchange(denied=False), 90))
        self.assertEqual(result["bob_got"], "hello bob, from example.com")
        self.assertEqual(result["alice_got"], "hello alice, from partner.test")
        # The partner took the offer: its restarted stream crossed the link after TLS.
        self.edge_e.wait_log(r"federation stream from partner\.test to example\.com on link stream \d+ \(tls: tls\)",
                             timeout=1)

    async def exchange(self, denied: bool = True, fallback: bool = False) -> dict:
        import slixmpp

        loop = asyncio.get_running_loop()
        result: dict = {}

        def client(user, domain, pw, addr, port):
            c = slixmpp.ClientXMPP(f"{user}@{domain}/fed", pw)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the clients are not under test; the servers' certs are fixtures
            c.ssl_context = ctx
            c.auto_reconnect = False
            c.started = loop.create_future()
            c.messages = asyncio.Queue()
            c.presences = asyncio.Queue()  # available presence from the other domain

            async def on_start(_):
                c.send_presence()
                await c.get_roster(timeout=TIMEOUT)
                if not c.started.done():
                    c.started.set_result(True)

            def on_failed_auth(_):
                if not c.started.done():
                    c.started.set_exception(AssertionError(f"{user}: SASL authentication failed"))

            c.add_event_handler("session_start", on_start)
            c.add_event_handler("failed_auth", on_failed_auth)
            c.add_event_handler("message", lambda m: c.messages.put_nowait(m))
            c.add_event_handler("presence_available",
                                lambda p: c.presences.put_nowait(p) if p["from"].domain != domain else None)
            # An error bounce has no body: slixmpp reports it as message_error only.
            c.add_event_handler("message_error", lambda m: c.messages.put_nowait(m))
            c.connect(address=(addr, port), force_starttls=True, disable_starttls=False)
            return c

        async def next_message(c, want_type=None, timeout=30):
            deadline = loop.time() + timeout
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise AssertionError("no message in time")
                m = await asyncio.wait_for(c.messages.get(), left)
                if want_type is None or m["type"] == want_type:
                    return m

        alice = client(*ALICE, IMP_ADDR, self.imp_c2s)
        bob = client(*BOB, PARTNER_ADDR, self.partner_c2s)
        try:
            await asyncio.wait_for(asyncio.gather(alice.started, bob.started), 20)
            # example.com -> partner.test: IM&P -> edge-c -> link -> edge-e -> SRV (failover) -> partner; the
            # partner's dialback check comes back in through edge-e -> link -> edge-c -> IM&P.
            alice.send_message(mto="bob@partner.test", mbody="hello bob, from example.com", mtype="chat")
            m = await next_message(bob, "chat")
            self.assertEqual(m["from"].bare, "alice@example.com")
            result["bob_got"] = m["body"]
            # partner.test -> example.com.
            bob.send_message(mto="alice@example.com", mbody="hello alice, from partner.test", mtype="chat")
            m = await next_message(alice, "chat")
            self.assertEqual(m["from"].bare, "bob@partner.test")
            result["alice_got"] = m["body"]
            # Directed presence both ways.
            bob.send_presence(pto="alice@example.com")
            p = await asyncio.wait_for(alice.presences.get(), 30)
            result["alice_presence_from"] = p["from"].bare
            alice.send_presence(pto="bob@partner.test")
            p = await asyncio.wait_for(bob.presences.get(), 30)
            result["bob_presence_from"] = p["from"].bare
            if fallback:
                carol = client(*CAROL, PARTNER_ADDR, self.partner_c2s)
                await asyncio.wait_for(carol.started, 20)
                alice.send_message(mto="carol@partner2.test", mbody="hello carol, via the A record", mtype="chat")
                m = await next_message(carol, "chat")
                result["carol_got"] = m["body"]
                carol.disconnect(wait=0)
            if not denied:
                return result
            # A denied domain: edge-e refuses IM&P's stream; IM&P bounces the message to alice.
            alice.send_message(mto="eve@denied.test", mbody="should not leave", mtype="chat")
            m = await next_message(alice, "error")
            self.assertEqual(m["from"].bare, "eve@denied.test")
            result["denied_error"] = m["type"]
            # A server whose certificate does not name the domain it was found for: edge-e gives up on it and
            # IM&P bounces the message.
            alice.send_message(mto="dave@badcert.test", mbody="should not leave either", mtype="chat")
            m = await next_message(alice, "error")
            self.assertEqual(m["from"].bare, "dave@badcert.test")
            result["badcert_error"] = m["type"]
        finally:
            for c in (alice, bob):
                try:
                    c.disconnect(wait=0)
                except Exception:  # noqa: BLE001
                    pass
            await asyncio.sleep(0.2)
        return result

    def check_inbound_refusals(self) -> None:
        port = self.ports.admin_e

        # A denied domain connecting in: our header, then policy-violation.
        before = self.metric(port, "edgepair_xmpp_federation_refusals_total", 'reason="denied"')
        with socket.create_connection((EDGE_E_ADDR, self.fed_port), timeout=TIMEOUT) as s:
            s.sendall(s2s_header("denied.test", "example.com"))
            got = recv_all(s)
        self.assertIn(b"<stream:stream", got)
        self.assertIn(b"<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>", got)
        self.assertTrue(got.endswith(b"</stream:stream>"), got)
        self.assertEqual(self.metric(port, "edgepair_xmpp_federation_refusals_total", 'reason="denied"'), before + 1)

        # Security required: a partner that goes on without STARTTLS is refused.
        with socket.create_connection((EDGE_E_ADDR, self.fed_port), timeout=TIMEOUT) as s:
            s.sendall(s2s_header("partner.test", "example.com"))
            got = recv_until(s, rb"</stream:features>")
            self.assertIn(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>", got)
            self.assertNotIn(b"urn:xmpp:features:dialback", got)  # nothing before TLS
            s.sendall(b"<db:result from='partner.test' to='example.com'>abcdef</db:result>")
            got = recv_all(s)
        self.assertIn(b"<policy-violation", got)
        self.assertGreaterEqual(self.metric(port, "edgepair_xmpp_federation_refusals_total",
                                            'reason="tls_required"'), 1)

        # A trusted certificate that names another domain than the stream claims: not-authorized.
        with socket.create_connection((EDGE_E_ADDR, self.fed_port), timeout=TIMEOUT) as s:
            s.sendall(s2s_header("partner.test", "example.com"))
            recv_until(s, rb"</stream:features>")
            s.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            recv_until(s, rb"<proceed")
            ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
            ctx.load_cert_chain(f"{self.pki_dir}/edge-c-wrongsan.crt", f"{self.pki_dir}/edge-c-wrongsan.key")
            with ctx.wrap_socket(s, server_hostname="example.com") as t:
                t.sendall(s2s_header("partner.test", "example.com"))
                got = recv_all(t)
        self.assertIn(b"<not-authorized", got)
        self.assertGreaterEqual(self.metric(port, "edgepair_xmpp_federation_refusals_total",
                                            'reason="bad_certificate"'), 1)

        # A 'to' that is not one of ours.
        with socket.create_connection((EDGE_E_ADDR, self.fed_port), timeout=TIMEOUT) as s:
            s.sendall(s2s_header("partner.test", "other.test"))
            got = recv_all(s)
        self.assertIn(b"<host-unknown", got)
        self.assertGreaterEqual(self.metric(port, "edgepair_xmpp_federation_refusals_total",
                                            'reason="host_unknown"'), 1)

        # edge-c's inside listener only takes IM&P nodes' connections.
        with socket.create_connection((EDGE_C_INSIDE_ADDR, self.inside_port), timeout=TIMEOUT,
                                      source_address=(STRANGER_ADDR, 0)) as s:
            s.sendall(s2s_header("example.com", "partner.test"))
            got = recv_all(s)
        self.assertIn(b"<policy-violation", got)
        self.assertGreaterEqual(self.metric(self.ports.admin_c, "edgepair_xmpp_federation_imp_total",
                                            'direction="out",result="not_imp_node"'), 1)


if __name__ == "__main__":
    h.run_tests()
