#!/usr/bin/python3
"""XMPP over MRA through the pair (issue #7).

Topology (loopback only): edge-e and edge-c on 127.0.0.1 free ports; the IM&P node imp1.example.com is
127.0.1.3, where the AXL fixture (tools/fixtures/ucm_fixture.py) answers discovery on a free port and Prosody
(Debian's /usr/bin/prosody, config from tests/integration/xmpp/prosody.cfg.lua.in) serves c2s on 5222 with
STARTTLS required and the fixture's tomcat-imp1 certificate. dnsmasq answers imp1.example.com for edge-c
(`dns.servers`). Clients are slixmpp (Debian python3-slixmpp) and raw sockets for the error cases.

Every wait is bounded: sockets have timeouts, slixmpp scenarios run under asyncio.wait_for.
"""

from __future__ import annotations

import asyncio
import base64
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

FIXTURE = os.path.join(h.SRC, "tools", "fixtures", "ucm_fixture.py")
DEMO_JSON = os.path.join(h.SRC, "tools", "fixtures", "cluster-demo.json")
PROSODY_TEMPLATE = os.path.join(h.SRC, "tests", "integration", "xmpp", "prosody.cfg.lua.in")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
AXL_USER, AXL_PASSWORD = "axladmin", "Axl-Passw0rd"
IMP_ADDR, IMP_NAME, XMPP_PORT = "127.0.1.3", "imp1.example.com", 5222
USERS = {"alice": "Alice-Xmpp-1", "bob": "Bob-Xmpp-2"}
STREAM_NS = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
TIMEOUT = 10.0

try:
    import slixmpp  # noqa: F401
    HAVE_SLIXMPP = True
except ImportError:  # pragma: no cover
    HAVE_SLIXMPP = False


def header(to: str = "example.com") -> bytes:
    return f"<?xml version='1.0'?><stream:stream {STREAM_NS} to='{to}' version='1.0'>".encode()


def recv_until(sock, pattern: bytes, timeout: float = TIMEOUT) -> bytes:
    """Reads until `pattern` (a regex) matches or the peer closes; returns what was read."""
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
    """Everything until the peer closes (bounded)."""
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


class XmppTest(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.pki_dir = h.pki()
        self.ports = pair.Ports()
        self.dns_port = None
        self.fixture_port = None
        self.edge_c = None

    # ---- peers -----------------------------------------------------------------------------------------

    def start_dns(self) -> None:
        dnsmasq = self.require_tool("dnsmasq")
        def argv(port: int) -> list:
            args = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--no-poll", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1",
                    f"--port={port}", "--log-facility=-", f"--address=/{IMP_NAME}/{IMP_ADDR}"]
            if os.geteuid() == 0:
                args.append("--user=root")
            return args

        _, self.dns_port = h.start_dnsmasq(self.start, "127.0.0.1", argv)

    def start_fixture(self) -> None:
        with open(DEMO_JSON, encoding="utf-8") as f:
            doc = json.load(f)
        cluster = os.path.join(self.tmp, "cluster.json")
        with open(cluster, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        self.fixture_port = h.free_port(IMP_ADDR)
        p = self.start([PY, FIXTURE, "--cluster", cluster, "--node", IMP_NAME, "--listen",
                        f"{IMP_ADDR}:{self.fixture_port}", "--cert", f"{self.pki_dir}/tomcat-imp1-chain.crt",
                        "--key", f"{self.pki_dir}/tomcat-imp1.key"], name="fixture-imp1")
        p.wait_log(r"^READY$", timeout=15)

    def start_prosody(self) -> h.Proc:
        prosody = self.require_tool("prosody")
        prosodyctl = self.require_tool("prosodyctl")
        if not h._can_bind(IMP_ADDR, XMPP_PORT, socket.SOCK_STREAM):
            self.skipTest(f"{IMP_ADDR}:{XMPP_PORT} is in use")
        os.makedirs(os.path.join(self.tmp, "prosody-data"), exist_ok=True)
        os.makedirs(os.path.join(self.tmp, "certs"), exist_ok=True)
        with open(PROSODY_TEMPLATE, encoding="utf-8") as f:
            text = f.read()
        for k, v in {"TMP": self.tmp, "ADDR": IMP_ADDR, "PORT": str(XMPP_PORT),
                     "CERT": f"{self.pki_dir}/tomcat-imp1-chain.crt", "KEY": f"{self.pki_dir}/tomcat-imp1.key"}.items():
            text = text.replace(f"@{k}@", v)
        cfg = os.path.join(self.tmp, "prosody.cfg.lua")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(text)
        for user, pw in USERS.items():
            rc, out = h.run_cmd([prosodyctl, "--config", cfg, "register", user, "example.com", pw], timeout=30)
            if rc != 0:
                raise h.HarnessError(f"prosodyctl register {user} failed: {out}")
        p = self.start([prosody, "--config", cfg, "-F"], name="prosody")
        p.wait_port(IMP_ADDR, XMPP_PORT, timeout=15)
        return p

    def start_pair(self, *, imp: bool) -> None:
        """edge-e and edge-c; with imp, edge-c discovers imp1 from the fixture (else it has no IM&P node)."""
        disc = ""
        extra = ""
        if imp:
            self.start_dns()
            self.start_fixture()
            disc = (f"  im_and_presence:\n    - {{address: {IMP_NAME}, port: {self.fixture_port}, "
                    f"username: {AXL_USER}, password: \"{AXL_PASSWORD}\", tls_verify: true}}\n")
            extra = f'dns: {{servers: ["127.0.0.1:{self.dns_port}"]}}'
        ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir)
        pki = self.pki_dir
        ccfg = self.write_yaml("edge-c.yaml", f"""
node_name: expc1.example.com
workers: 2
log: {{level: debug}}
admin: {{listen: 127.0.0.1:{self.ports.admin_c}}}
tls:
  certificate: {{cert: {pki}/edge-c.crt, key: {pki}/edge-c.key}}
  trusted_cas: {pki}/ca.crt
link:
  peers: [127.0.0.1:{self.ports.link}]
  username: {pair.DEMO_LINK_USER}
  password: "{pair.DEMO_LINK_PASSWORD}"
  reconnect_min: 200ms
  reconnect_max: 2s
  ping_interval: 1s
  ping_timeout: 3s
discovery:
  state_file: {self.tmp}/edge-c-state.json
{disc}domains:
  - {{name: example.com}}
{extra}
""")
        self.edge_e = pair.start_edge_e(self, ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, ccfg, self.ports)
        # edge-e serves once edge-c's snapshot arrived (and, with imp, it names the IM&P node).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
            snap = json.loads(body).get("snapshot") if st == 200 else None
            if snap and "example.com" in snap["domains"] and (not imp or IMP_NAME in snap["nodes"]):
                return
            time.sleep(0.2)
        self.fail(f"edge-e never got a snapshot with example.com{' and ' + IMP_NAME if imp else ''}")

    def metrics(self, port: int) -> str:
        st, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        self.assertEqual(st, 200)
        return body if isinstance(body, str) else body.decode()

    def client(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.ports.xmpp), timeout=TIMEOUT)

    def starttls(self, sock: socket.socket, domain: str = "example.com") -> ssl.SSLSocket:
        sock.sendall(header(domain))
        got = recv_until(sock, rb"</stream:features>")
        self.assertIn(b"urn:ietf:params:xml:ns:xmpp-tls", got)
        self.assertIn(b"<required/>", got)
        sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        recv_until(sock, rb"<proceed")
        ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
        tls = ctx.wrap_socket(sock, server_hostname=domain)
        return tls

    # ---- error cases (no IM&P needed) -------------------------------------------------------------------

    def test_stream_errors_before_and_after_starttls(self):
        self.start_pair(imp=False)

        # Garbage before the stream: our header, then not-well-formed, then the connection closes.
        with self.client() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got = recv_all(s)
            self.assertIn(b"<stream:stream", got)
            self.assertIn(b"<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>", got)
            self.assertTrue(got.endswith(b"</stream:stream>"), got)

        # A domain edge-c does not serve.
        with self.client() as s:
            s.sendall(header("unknown.example.net"))
            got = recv_all(s)
            self.assertIn(b"<host-unknown", got)

        # A client that never sends STARTTLS: features say it is required; a stanza in the clear is refused.
        with self.client() as s:
            s.sendall(header())
            got = recv_until(s, rb"</stream:features>")
            self.assertIn(b"from='example.com'", got)
            self.assertIn(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>", got)
            s.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>")
            got = recv_all(s)
            self.assertIn(b"<policy-violation", got)

        # Whitespace keep-alives before STARTTLS are fine; then TLS with the edge certificate for example.com,
        # and edge-c has no IM&P node to relay to: remote-connection-failed after the restarted header.
        with self.client() as s:
            s.sendall(header())
            recv_until(s, rb"</stream:features>")
            s.sendall(b"  \n ")
            s.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            recv_until(s, rb"<proceed")
            ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
            with ctx.wrap_socket(s, server_hostname="example.com") as t:
                t.sendall(header())
                got = recv_all(t)
                self.assertIn(b"<stream:stream", got)
                self.assertIn(b"<remote-connection-failed", got)

        self.assertTrue(self.edge_c.alive, "edge-c died serving the refusal")
        m = self.metrics(self.ports.admin_e)
        for cond in ("not-well-formed", "host-unknown", "policy-violation", "remote-connection-failed"):
            self.assertRegex(m, rf'edgepair_xmpp_errors_total\{{condition="{cond}"\}} [1-9]')

    # ---- real peers -------------------------------------------------------------------------------------

    def test_chat_and_presence_through_the_pair_then_link_cut(self):
        if not HAVE_SLIXMPP:
            self.skipTest("python3-slixmpp is not installed")
        prosody = self.start_prosody()
        self.start_pair(imp=True)

        # Raw first: the features IM&P offers after TLS come through, without channel-binding mechanisms,
        # and an oversized stanza is cut at edge-e.
        with self.starttls(self.client()) as t:
            t.sendall(header())
            got = recv_until(t, rb"</stream:features>")
            self.assertIn(b"urn:ietf:params:xml:ns:xmpp-sasl", got)
            self.assertNotIn(b"-PLUS<", got)
            self.assertNotIn(b"xmpp-tls", got)  # IM&P sees a TLS stream (edge-c did STARTTLS)
            t.sendall(b"<message to='bob@example.com'><body>" + b"x" * (80 * 1024) + b"</body></message>")
            got = recv_all(t)
            self.assertIn(b"<policy-violation", got)

        result = asyncio.run(asyncio.wait_for(self.chat_scenario(), 60))
        self.assertEqual(result["bob_got"], "hello bob, via the edge")
        self.assertEqual(result["alice_presence_from"], "bob@example.com")
        self.assertIn("remote-connection-failed", result["link_cut"])
        self.assertTrue(prosody.alive)
        st, _, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/health", timeout=5)
        self.assertEqual(st, 200)  # edge-e survived the cut
        self.assertRegex(self.metrics(self.ports.admin_e),
                         r'edgepair_xmpp_errors_total\{condition="remote-connection-failed"\} [1-9]')

    def test_last_stanzas_before_the_close_arrive(self):
        """A client sends a message and </stream:stream> and closes its connection at once: the message still
        reaches its recipient. edge-e is stopped (SIGSTOP) while the client writes and closes, so it reads the
        stanza, the closing tag and the end of the connection in one turn: the case where it used to reset the
        link stream, and the reset discarded what was still queued on it."""
        self.start_prosody()
        self.start_pair(imp=True)
        bob = self.login("bob")
        alice = self.login("alice")
        self.edge_e.send_signal(signal.SIGSTOP)
        try:
            alice.sendall(b"<message to='bob@example.com/raw' type='chat' id='last'><body>last words</body>"
                          b"</message></stream:stream>")
            alice.close()
            time.sleep(0.3)
        finally:
            self.edge_e.send_signal(signal.SIGCONT)
        got = recv_until(bob, rb"last words")
        bob.close()
        self.assertIn(b"last words", got, "the message the client sent before closing was lost")

    def login(self, user: str) -> ssl.SSLSocket:
        """A raw client through edge-e: STARTTLS, SASL PLAIN, resource `raw` bound."""
        t = self.starttls(self.client())
        t.sendall(header())
        self.assertIn(b">PLAIN<", recv_until(t, rb"</stream:features>"))
        cred = base64.b64encode(f"\0{user}\0{USERS[user]}".encode()).decode()
        t.sendall(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{cred}</auth>".encode())
        self.assertIn(b"<success", recv_until(t, rb"<success|<failure"))
        t.sendall(header())
        recv_until(t, rb"</stream:features>")
        t.sendall(b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  b"<resource>raw</resource></bind></iq>")
        self.assertIn(b"<jid>", recv_until(t, rb"</iq>"))
        return t

    def test_imp_unreachable_then_gone_mid_session(self):
        if not HAVE_SLIXMPP:
            self.skipTest("python3-slixmpp is not installed")
        self.start_pair(imp=True)

        # IM&P discovered but not listening: edge-c answers the stream with a refusal, edge-e with a stream error.
        if not h._can_bind(IMP_ADDR, XMPP_PORT, socket.SOCK_STREAM):
            self.skipTest(f"{IMP_ADDR}:{XMPP_PORT} is in use")
        with self.starttls(self.client()) as t:
            t.sendall(header())
            got = recv_all(t)
            self.assertIn(b"<remote-connection-failed", got)
            self.assertIn(b"IM and Presence unreachable", got)
        time.sleep(0.3)
        self.assertTrue(self.edge_c.alive, "edge-c died serving the refusal")

        prosody = self.start_prosody()
        result = asyncio.run(asyncio.wait_for(self.gone_scenario(prosody), 60))
        self.assertEqual(result["bob_end"], "disconnected")  # a clean close stays clean through the pair
        self.assertIn("remote-connection-failed", result["alice_end"])
        self.assertRegex(self.metrics(self.ports.admin_c), r'edgepair_xmpp_upstream_total\{result="unreachable"\} 1')

    async def gone_scenario(self, prosody: h.Proc) -> dict:
        alice, bob = self.make_client("alice"), self.make_client("bob")
        result: dict = {}
        try:
            for c in (alice, bob):
                c.connect(address=("127.0.0.1", self.ports.xmpp), force_starttls=True, disable_starttls=False)
            await asyncio.wait_for(asyncio.gather(alice.started, bob.started), 20)
            bob.disconnect(wait=2)
            await asyncio.wait_for(bob.ended, TIMEOUT)
            result["bob_end"] = "stream-error" if bob.stream_error else "disconnected"
            prosody.send_signal(signal.SIGKILL)
            result["alice_end"] = await asyncio.wait_for(alice.ended, 15)
        finally:
            for c in (alice, bob):
                try:
                    c.disconnect(wait=0)
                except Exception:  # noqa: BLE001
                    pass
            await asyncio.sleep(0.2)
        return result

    def make_client(self, user: str):
        import slixmpp

        loop = asyncio.get_running_loop()
        c = slixmpp.ClientXMPP(f"{user}@example.com/test", USERS[user])
        c.ca_certs = f"{self.pki_dir}/ca.crt"
        c.whitespace_keepalive = True
        c.whitespace_keepalive_interval = 1  # keep-alives must pass edge-e's framer
        c.auto_reconnect = False
        c.started = loop.create_future()
        c.ended = loop.create_future()
        c.stream_error = None

        async def on_start(_):
            c.send_presence()
            await c.get_roster(timeout=TIMEOUT)
            if not c.started.done():
                c.started.set_result(True)

        def on_end(ev=None):
            if not c.ended.done():
                c.ended.set_result("disconnected")

        def on_stream_error(err):
            c.stream_error = err["condition"]
            if not c.ended.done():
                c.ended.set_result("stream-error:" + err["condition"])

        def on_failed_auth(_):
            if not c.started.done():
                c.started.set_exception(AssertionError(f"{user}: SASL authentication failed"))

        c.add_event_handler("session_start", on_start)
        c.add_event_handler("failed_auth", on_failed_auth)
        c.add_event_handler("stream_error", on_stream_error)
        c.add_event_handler("disconnected", on_end)
        return c

    async def chat_scenario(self) -> dict:
        loop = asyncio.get_running_loop()
        result: dict = {}
        make = self.make_client

        alice, bob = make("alice"), make("bob")
        got_message = loop.create_future()
        got_presence = loop.create_future()

        def bob_message(msg):
            if msg["type"] in ("chat", "normal") and not got_message.done():
                got_message.set_result(msg["body"])

        def alice_presence(p):
            if p["from"].bare == "bob@example.com" and p["type"] == "available" and not got_presence.done():
                got_presence.set_result(p["from"].bare)

        bob.add_event_handler("message", bob_message)
        alice.add_event_handler("presence_available", alice_presence)
        try:
            for c in (alice, bob):
                c.connect(address=("127.0.0.1", self.ports.xmpp), force_starttls=True, disable_starttls=False)
            await asyncio.wait_for(asyncio.gather(alice.started, bob.started), 20)
            await asyncio.sleep(2.5)  # a few whitespace keep-alives cross the pair
            bob.send_presence(pto="alice@example.com")  # directed presence
            alice.send_message(mto="bob@example.com", mbody="hello bob, via the edge", mtype="chat")
            result["bob_got"] = await asyncio.wait_for(got_message, TIMEOUT)
            result["alice_presence_from"] = await asyncio.wait_for(got_presence, TIMEOUT)

            # Cut the link: edge-c dies; both sessions get a stream error from edge-e, not a hang.
            self.edge_c.send_signal(signal.SIGKILL)
            result["link_cut"] = await asyncio.wait_for(alice.ended, 15)
        finally:
            for c in (alice, bob):
                try:
                    c.disconnect(wait=0)
                except Exception:  # noqa: BLE001
                    pass
            await asyncio.sleep(0.2)
        return result


if __name__ == "__main__":
    h.run_tests()
