#!/usr/bin/python3
"""Automated intrusion protection on edge-e (issue #17, the single-process part), against the real pair of
test_http_edge.py (edge-c, the Unified CM fixture, nginx as the origin).

Distinct sources are distinct loopback addresses: every client here binds its own 127.0.0.x before it
connects (curl --interface, socket source_address), and edge-e keys bans by the source address it accepted.

- a source sending bad credentials `threshold` times is banned: its next TCP connections are closed at accept
  (curl from that address cannot even handshake), the refusal is counted by listener, the ban is listed on the
  admin port with its category and count and logged once;
- meanwhile another source's request still goes through the pair to nginx (nginx's access log shows it);
- the admin lift lets the first source back;
- the keep-alive connection whose answer made the ban is closed after that answer (Connection: close);
- path tricks the gate refuses (http-ce-intrusion) ban too;
- an exempt network is never banned, however many failures it sends;
- the resource-access-failure category (404s) is off by default: nothing is counted, nobody is banned;
- XMPP protocol violations (a stanza before STARTTLS) ban under xmpp-intrusion, on every listener;
- SIP: REGISTERs refused with credentials ban under sip-auth (the first challenge does not count), through the
  pair to Kamailio (SipIntrusionTest, the topology of test_sip.py).

These prove edgepair's own behaviour (our detectors against real peers); Expressway's exact counting rules are
not public (docs/SECURITY.md, "Automated intrusion protection").

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_intrusion.py
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import test_http_edge as base  # noqa: E402
from sipenv import DOMAIN, SipEnv, SipUA  # noqa: E402
from test_http_edge import ALICE, DOMAIN_B64, EDGE  # noqa: E402

THRESHOLD = 4  # http-ce-auth, set below; the other categories keep their defaults (5 in 60 s, 10 min)
EXEMPT = "127.0.0.9"
BAD = ("alice", "wrong-password")


class IntrusionTest(base.HttpEdgeTopology):
    EDGE_E_EXTRA = (f"protection: {{exempt: [127.0.0.1/32, {EXEMPT}/32], "
                    f"categories: {{http-ce-auth: {{threshold: {THRESHOLD}, window: 60s, ban: 10m}}}}}}\n"
                    "http: {rate_limit: {enabled: false}}")

    # ---- clients bound to a source address ------------------------------------------------------------

    def curl_from(self, src: str, path: str, user: tuple[str, str] | None = ALICE, *args: str):
        """(curl exit code, HTTP status or 0, body) for one request from source address `src`."""
        out = os.path.join(self.tmp, "curl.out")
        if os.path.exists(out):
            os.unlink(out)
        cmd = [self.require_tool("curl"), "--http1.1", "-sS", "-o", out, "-w", "%{http_code}",
               "--interface", src, "--max-time", "20", "--cacert", f"{self.pki_dir}/ca.crt",
               "--resolve", f"{EDGE}:{self.ports.https}:127.0.0.1", *args]
        if user:
            cmd += ["-u", f"{user[0]}:{user[1]}"]
        cmd.append(self.url(path))
        r = subprocess.run(cmd, capture_output=True, timeout=30)
        body = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
        return r.returncode, int(r.stdout.decode() or 0), body

    def tls_from(self, src: str):
        ctx = h._client_context(f"{self.pki_dir}/ca.crt", None, None, True, ["http/1.1"])
        raw = socket.create_connection(("127.0.0.1", self.ports.https), timeout=10, source_address=(src, 0))
        return ctx.wrap_socket(raw, server_hostname=EDGE)

    def config_path(self) -> str:
        return f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds"

    def hello_path(self) -> str:
        return self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")

    def admin(self, method: str, path: str):
        return h.http_request(f"http://127.0.0.1:{self.ports.admin_e}{path}", method, timeout=5)

    def bans(self) -> list[dict]:
        st, _, body = self.admin("GET", "/protection/bans")
        self.assertEqual(st, 200, body)
        return json.loads(body)["bans"]

    def ban_of(self, src: str):
        return next((b for b in self.bans() if b["address"] == src), None)

    def nginx_hits(self, path: str = "/files/hello.txt") -> int:
        with open(self.access_log) as f:
            return sum(1 for line in f if line.startswith(f"GET {path} 200"))

    def wait_nginx_hits(self, n: int, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while self.nginx_hits() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.nginx_hits()

    def wait_ban_everywhere(self, src: str) -> None:
        # The worker that made the ban refuses at once; the others from their next loop turn.
        time.sleep(0.2)

    # ---- tests ----------------------------------------------------------------------------------------

    def test_bad_credentials_ban_the_source_and_spare_the_others(self):
        src, other = "127.0.0.5", "127.0.0.6"
        failures0 = self.metric("e", "edgepair_intrusion_failures_total", {"category": "http-ce-auth"})
        # Below the threshold nothing happens: the source still gets edge-c's answer.
        for i in range(THRESHOLD):
            rc, st, body = self.curl_from(src, self.config_path(), BAD)
            self.assertEqual((rc, st), (0, 401), f"attempt {i + 1}: {body!r}")
        self.assertEqual(
            self.metric("e", "edgepair_intrusion_failures_total", {"category": "http-ce-auth"}) - failures0,
            THRESHOLD)
        self.wait_ban_everywhere(src)

        # Banned: several connections, so that whichever worker accepts them refuses before TLS.
        refused0 = self.metric("e", "edgepair_intrusion_refused_connections_total", {"listener": "https"})
        for _ in range(4):
            rc, st, _ = self.curl_from(src, self.config_path(), ALICE)
            self.assertNotEqual(rc, 0, "a banned source completed a request")
            self.assertEqual(st, 0)
        self.assertEqual(
            self.metric("e", "edgepair_intrusion_refused_connections_total", {"listener": "https"}) - refused0, 4)
        self.assertEqual(self.metric("e", "edgepair_intrusion_bans_total", {"category": "http-ce-auth"}), 1)

        ban = self.ban_of(src)
        self.assertIsNotNone(ban, self.bans())
        self.assertEqual(ban["category"], "http-ce-auth")
        self.assertEqual(ban["count"], THRESHOLD)
        self.assertRegex(ban["until"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertGreater(ban["remaining_s"], 590)
        self.assertLessEqual(ban["remaining_s"], 600)
        _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
        prot = json.loads(body)["protection"]
        self.assertEqual(prot["bans"], 1)
        self.assertTrue(prot["enabled"])
        cats = {c["name"]: c for c in prot["categories"]}
        self.assertEqual(cats["http-ce-auth"]["threshold"], THRESHOLD)
        self.assertFalse(cats["http-ce-access"]["enabled"])
        # Logged once, with what made it.
        lines = [ln for ln in self.edge_e.log_text().splitlines() if f"address {src} banned" in ln]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"{THRESHOLD} http-ce-auth failures", lines[0])

        # Another source is served through the pair: nginx receives its request.
        hits = self.nginx_hits()
        rc, st, body = self.curl_from(other, self.hello_path(), ALICE)
        self.assertEqual((rc, st), (0, 200), body)
        self.assertEqual(body, self.hello)
        self.assertEqual(self.wait_nginx_hits(hits + 1), hits + 1)

        # The administrator lifts the ban: the source is served again (and reaches nginx).
        st, _, body = self.admin("DELETE", f"/protection/bans?address={src}")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["lifted"], src)
        st, _, _ = self.admin("DELETE", f"/protection/bans?address={src}")
        self.assertEqual(st, 404)
        self.assertIsNone(self.ban_of(src))
        time.sleep(0.2)  # the lift is posted to every worker
        hits = self.nginx_hits()
        for _ in range(3):
            rc, st, body = self.curl_from(src, self.hello_path(), ALICE)
            self.assertEqual((rc, st), (0, 200), body)
        self.assertEqual(self.wait_nginx_hits(hits + 3), hits + 3)

    def test_the_connection_that_made_the_ban_is_not_kept_alive(self):
        src = "127.0.0.10"
        s = self.tls_from(src)
        self.addCleanup(s.close)
        auth = base.basic(*BAD)
        answers = []
        s.settimeout(15)
        buf = b""
        for i in range(THRESHOLD):
            s.sendall(f"GET {self.config_path()} HTTP/1.1\r\nHost: {EDGE}\r\nAuthorization: {auth}\r\n\r\n".encode())
            # One whole answer (edge-c's 401 carries a Content-Length).
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                self.assertTrue(chunk, f"closed before answer {i + 1}")
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            n = int(m.group(1)) if m else 0
            while len(rest) < n:
                chunk = s.recv(65536)
                self.assertTrue(chunk)
                rest += chunk
            buf = rest[n:]
            answers.append(head)
        self.assertTrue(all(a.startswith(b"HTTP/1.1 401") for a in answers), answers)
        # Before the ban the connection was kept; the answer that made it says close, and it closes.
        for a in answers[:-1]:
            self.assertNotIn(b"connection: close", a.lower())
        self.assertIn(b"connection: close", answers[-1].lower())
        self.assertEqual(s.recv(65536), b"")
        self.assertIsNotNone(self.ban_of(src))

    def test_path_tricks_ban_under_http_ce_intrusion(self):
        src = "127.0.0.11"
        path = f"/{DOMAIN_B64}/http/cucm1.example.com/{self.web_port}/files/../../etc/passwd"
        for i in range(5):  # the default threshold
            rc, st, body = self.curl_from(src, path, None, "--path-as-is")
            self.assertEqual((rc, st), (0, 400), f"attempt {i + 1}: {body!r}")
        self.wait_ban_everywhere(src)
        rc, st, _ = self.curl_from(src, self.hello_path(), ALICE)
        self.assertNotEqual(rc, 0)
        ban = self.ban_of(src)
        self.assertIsNotNone(ban)
        self.assertEqual(ban["category"], "http-ce-intrusion")
        self.assertEqual(self.metric("e", "edgepair_intrusion_bans_total", {"category": "http-ce-intrusion"}), 1)
        # nginx never saw the traversal attempts.
        with open(self.access_log) as f:
            self.assertNotIn("passwd", f.read())

    def test_xmpp_protocol_violations_ban_under_xmpp_intrusion(self):
        src = "127.0.0.12"
        header = (f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  f"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>").encode()

        def session(send_stanza: bool) -> bytes:
            with socket.create_connection(("127.0.0.1", self.ports.xmpp), timeout=10,
                                          source_address=(src, 0)) as s:
                s.settimeout(10)
                got = b""
                try:
                    s.sendall(header)
                    if send_stanza:
                        s.sendall(b"<message to='bob@example.com'><body>before TLS</body></message>")
                    for _ in range(100):
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                except (ConnectionResetError, BrokenPipeError):
                    pass
                return got

        # A stanza before STARTTLS is a policy violation the client caused: five of them (the default).
        for i in range(5):
            got = session(True)
            self.assertIn(b"policy-violation", got, f"attempt {i + 1}")
        self.wait_ban_everywhere(src)
        refused0 = self.metric("e", "edgepair_intrusion_refused_connections_total", {"listener": "xmpp"})
        for _ in range(3):
            self.assertEqual(session(False), b"", "a banned source got stream features")
        self.assertEqual(
            self.metric("e", "edgepair_intrusion_refused_connections_total", {"listener": "xmpp"}) - refused0, 3)
        ban = self.ban_of(src)
        self.assertIsNotNone(ban)
        self.assertEqual(ban["category"], "xmpp-intrusion")
        # The ban is per address, not per listener: HTTPS from that source is refused too.
        rc, _, _ = self.curl_from(src, self.hello_path(), ALICE)
        self.assertNotEqual(rc, 0)

    def test_exempt_network_is_never_banned(self):
        failures0 = self.metric("e", "edgepair_intrusion_failures_total", {"category": "http-ce-auth"})
        # Twice the threshold (edge-c's own per-user failed-check limit, 10 a minute, would answer 429 beyond).
        for i in range(THRESHOLD * 2):
            rc, st, _ = self.curl_from(EXEMPT, self.config_path(), BAD)
            self.assertEqual((rc, st), (0, 401), f"attempt {i + 1}")
        # Counted (the failures are real), never banned.
        self.assertEqual(
            self.metric("e", "edgepair_intrusion_failures_total", {"category": "http-ce-auth"}) - failures0,
            THRESHOLD * 2)
        time.sleep(0.2)
        self.assertIsNone(self.ban_of(EXEMPT))
        self.assertEqual(self.metric("e", "edgepair_intrusion_bans_total", {}), 0)
        hits = self.nginx_hits()
        rc, st, body = self.curl_from(EXEMPT, self.hello_path(), ALICE)
        self.assertEqual((rc, st), (0, 200), body)
        self.assertEqual(self.wait_nginx_hits(hits + 1), hits + 1)

    def test_resource_access_failures_are_off_by_default(self):
        src = "127.0.0.7"
        missing = self.proxy("http", "cucm1.example.com", self.web_port, "/files/missing.txt")
        unknown = f"/{DOMAIN_B64}/no_such_service/x"
        for i in range(15):  # three times the default threshold of the other categories
            rc, st, body = self.curl_from(src, missing if i % 2 else unknown, ALICE)
            self.assertEqual((rc, st), (0, 404), f"attempt {i + 1}: {body!r}")
        time.sleep(0.2)
        self.assertEqual(self.metric("e", "edgepair_intrusion_failures_total", {"category": "http-ce-access"}), 0)
        self.assertIsNone(self.ban_of(src))
        rc, st, body = self.curl_from(src, self.hello_path(), ALICE)
        self.assertEqual((rc, st), (0, 200), body)
        # nginx did get the 404 requests it was asked (they were not refused by protection).
        with open(self.access_log) as f:
            self.assertGreaterEqual(sum(1 for ln in f if ln.startswith("GET /files/missing.txt 404")), 7)


class SipIntrusionTest(SipEnv):
    """sip-auth through the pair to Kamailio (Unified CM's SIP side), whose config challenges the user
    "intruder" without credentials and refuses it with them (tests/integration/sip/kamailio.cfg.in)."""

    def register(self, ua: SipUA, authorization: str | None):
        ua.cseq += 1
        auth = f"\nAuthorization: {authorization}" if authorization else ""
        ua.send(f"""
REGISTER sip:{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
Max-Forwards: 70
From: <sip:{ua.user}@{DOMAIN}>;tag={ua.tag}
To: <sip:{ua.user}@{DOMAIN}>
Call-ID: {ua.reg_call_id}
CSeq: {ua.cseq} REGISTER
Contact: {ua.contact}
Expires: 3600{auth}
""")

    def failures(self) -> float:
        return self.metric(self.ports.admin_e, "edgepair_intrusion_failures_total", {"category": "sip-auth"})

    def test_wrong_sip_credentials_ban_the_source(self):
        self.full()
        src = "127.0.0.13"
        ua = SipUA(self.ports.sip, "intruder", self.ca, source=src)
        self.addCleanup(ua.close)
        ua.reg_call_id = "intrusion-" + str(time.monotonic_ns())
        # The first REGISTER carries no credentials: its 401 is the challenge, not a failure.
        self.register(ua, None)
        self.assertEqual(ua.recv_final("REGISTER").status, 401)
        self.assertEqual(self.failures(), 0)
        digest = ('Digest username="intruder", realm="example.com", nonce="intruder", uri="sip:example.com", '
                  'response="00000000000000000000000000000000"')
        for i in range(5):  # the default threshold
            self.register(ua, digest)
            self.assertEqual(ua.recv_final("REGISTER").status, 401, f"attempt {i + 1}")
        self.assertEqual(self.failures(), 5)
        time.sleep(0.2)
        # The flow that made the ban ends at its next message; a new connection is closed before TLS.
        self.register(ua, digest)
        self.assertIsNone(ua.recv(timeout=5))
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            SipUA(self.ports.sip, "intruder", self.ca, source=src).close()
        self.assertEqual(self.metric(self.ports.admin_e, "edgepair_intrusion_refused_connections_total",
                                     {"listener": "sip_tls"}), 1)
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/protection/bans", timeout=5)
        bans = json.loads(body)["bans"]
        self.assertEqual([(b["address"], b["category"], b["count"]) for b in bans], [(src, "sip-auth", 5)])
        # Another source registers as usual.
        other = SipUA(self.ports.sip, "alice", self.ca, source="127.0.0.14")
        self.addCleanup(other.close)
        self.assertEqual(other.register().status, 200)


if __name__ == "__main__":
    h.run_tests()
