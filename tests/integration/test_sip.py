"""SIP over MRA through the pair (issue #6), with real peers.

Topology (loopback): Kamailio as Unified CM's SIP side (registrar + record-routing proxy) on 127.0.1.1:<port>
over TCP; the UCM fixture (tools/fixtures/ucm_fixture.py) as cucm1.example.com so edge-c discovers the node
and generates its CEtcp- zone; dnsmasq resolving cucm1.example.com for edge-c; edge-e (SIP/TLS) and edge-c.

Clients: sipp (Debian sip-tester) for the scripted client. That build has no TLS transport, so sipp speaks TCP
to a small TLS relay in this test that opens one TLS connection to edge-e 5061 per sipp connection (the pair
only ever sees TLS). The called side and the malformed batch use a minimal SIP UA over Python ssl.

Kamailio's stored bindings are read with kamcmd ul.dump over its ctl socket in the test's temp dir. The
topology, the SIP UA and the TLS relay are in sipenv.py (shared with test_media.py).
"""

from __future__ import annotations

import re
import ssl
import threading
import time
import uuid

import harness as h
from sipenv import DOMAIN, SipEnv, SipUA, TlsRelay


SDP = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n"


def answer_call(ua: SipUA, errors: list, hangup: bool = False):
    """Callee: INVITE -> 180, 200 -> ACK; then wait for BYE (or send it when hangup)."""
    try:
        inv = ua.recv(15)
        if inv is None or not inv.is_request or inv.method != "INVITE":
            raise AssertionError(f"callee {ua.user}: expected INVITE, got {inv and inv.start}")
        ua.invite = inv
        tag = uuid.uuid4().hex[:8]
        ua.respond(inv, 180, "Ringing", tag, contact=True)
        ua.respond(inv, 200, "OK", tag, contact=True, body=SDP)
        ack = ua.recv(10)
        if ack is None or ack.method != "ACK":
            raise AssertionError(f"callee {ua.user}: expected ACK, got {ack and ack.start}")
        if hangup:
            # In-dialog BYE from the callee: the route set is the Record-Route list as received.
            routes = "".join(f"Route: {r}\n" for r in inv.all("Record-Route"))
            caller_contact = re.search(r"<([^>]+)>", inv.get("Contact")).group(1)
            ua.send(f"""
BYE {caller_contact} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
{routes}Max-Forwards: 70
From: {inv.get('To')};tag={tag}
To: {inv.get('From')}
Call-ID: {inv.get('Call-ID')}
CSeq: 1 BYE
""".replace("\n\n", "\n"))
            r = ua.recv_final("BYE")
            if r.status != 200:
                raise AssertionError(f"callee BYE answered {r.start}")
        else:
            bye = ua.recv(10)
            if bye is None or bye.method != "BYE":
                raise AssertionError(f"callee {ua.user}: expected BYE, got {bye and bye.start}")
            ua.respond(bye, 200, "OK")
    except Exception as e:  # noqa: BLE001 - reported by the test thread
        errors.append(e)


# ------------------------------------------------------------------------------------------------------------


class SipOverMra(SipEnv):
    # ---- tests ----

    def _register_cycle(self, path_headers: bool, mixed: bool = False):
        self.full(path_headers, mixed)
        transport = "tls" if mixed else "tcp"
        relay = TlsRelay(self.ports.sip, self.ca)
        try:
            p = self.sipp("register.xml", relay, {"user": "alice", "domain": DOMAIN}, ["-d", "3000"])
            b = self.wait_bindings("alice", lambda b: len(b) == 1, timeout=15)
            addr = b[0]["Address"]
            if path_headers:
                self.assertIn("sip:alice@127.0.0.1:", addr, b)  # the client's own Contact, kept
                self.assertIn("lr", b[0].get("Path", ""), b)
                self.assertRegex(b[0].get("Path", ""), r"<sip:[a-z2-7]{20,}@127\.0\.0\.1:\d+;transport=" + transport + ";lr>")
            else:
                # Expressway's form (issue #16): the client's user part kept, the flow token in a parameter, the
                # client (here the TLS relay's address) in orig-hostport.
                self.assertRegex(addr, r"^sip:alice@127\.0\.0\.1:\d+;transport=" + transport
                                 + r";ep-flow=[a-z2-7]{20,};orig-hostport=127\.0\.0\.1:\d+;epc=0$", b)
                self.assertIn(b[0].get("Path", "").strip(), ("", "<null>", "[not set]"), b)
            self.wait_exit(p)
            # Expires 0 removed the binding.
            self.wait_bindings("alice", lambda b: len(b) == 0, timeout=10)
        finally:
            relay.close()

    def test_register_contact_rewrite(self):
        self._register_cycle(False)

    def test_register_path_headers(self):
        self._register_cycle(True)

    def test_register_tls_zone_mixed_mode(self):
        # Mixed-mode cluster: edge-c uses the CEtls- zone (TLS to sip_tls_port, certificate verified because
        # discovery ran with tls_verify on) and the stored binding says transport=tls.
        self._register_cycle(False, mixed=True)
        self.assertIn("over TLS", self.edge_c.log_text())

    def test_call_both_directions_and_flow_removal(self):
        self.full()
        bob = SipUA(self.ports.sip, "bob", self.ca)
        carol = SipUA(self.ports.sip, "carol", self.ca)
        try:
            self.assertEqual(bob.register().status, 200)
            r = carol.register()
            self.assertEqual(r.status, 200)
            # The client sees its own Contact in the 200, not the rewritten one Kamailio stores.
            self.assertIn(f"sip:carol@{carol.local}", r.get("Contact"))

            # 1. sipp (alice, client -> Unified CM INVITE) calls bob (Unified CM -> client INVITE); alice hangs up.
            relay = TlsRelay(self.ports.sip, self.ca)
            errors: list = []
            t = threading.Thread(target=answer_call, args=(bob, errors), daemon=True)
            t.start()
            p = self.sipp("call.xml", relay, {"user": "alice", "domain": DOMAIN, "callee": "bob"}, name="sipp-call")
            self.wait_exit(p)
            t.join(15)
            self.assertFalse(t.is_alive(), "callee thread stuck")
            self.assertEqual(errors, [])
            # bob got the Request-URI he registered, and edge-c record-routed.
            self.assertIn(f"sip:bob@{bob.local}", bob.invite.start)
            self.assertTrue(any("@127.0.0.1:" in rr for rr in bob.invite.all("Record-Route")))
            relay.close()

            # 2. carol calls bob's line from the Python UA; bob hangs up (BYE from Unified CM to carol).
            errors = []
            t = threading.Thread(target=answer_call, args=(bob, errors, True), daemon=True)
            t.start()
            call_id = uuid.uuid4().hex
            carol.send(f"""
INVITE sip:bob@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {carol.local};branch={carol.branch()}
Max-Forwards: 70
From: <sip:carol@{DOMAIN}>;tag=c1
To: <sip:bob@{DOMAIN}>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: {carol.contact}
Content-Type: application/sdp
""", SDP)
            final = None
            while final is None:
                m = carol.recv(10)
                self.assertIsNotNone(m, "carol's connection closed during the call")
                if not m.is_request and m.method == "INVITE" and m.status >= 200:
                    final = m
            self.assertEqual(final.status, 200, final.raw)
            routes = "".join(f"Route: {r}\n" for r in reversed(final.all("Record-Route")))
            callee = re.search(r"<([^>]+)>", final.get("Contact")).group(1)
            carol.send(f"""
ACK {callee} SIP/2.0
Via: SIP/2.0/TLS {carol.local};branch={carol.branch()}
{routes}Max-Forwards: 70
From: <sip:carol@{DOMAIN}>;tag=c1
To: {final.get('To')}
Call-ID: {call_id}
CSeq: 1 ACK
""".replace("\n\n", "\n"))
            bye = carol.recv(10)
            self.assertIsNotNone(bye)
            self.assertEqual(bye.start.split()[0], "BYE", bye.raw)
            carol.respond(bye, 200, "OK")
            t.join(15)
            self.assertFalse(t.is_alive(), "callee thread stuck")
            self.assertEqual(errors, [])

            # 3. UPDATE is refused (501) by the pair, in-dialog or not.
            carol.send(f"""
UPDATE sip:bob@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {carol.local};branch={carol.branch()}
Max-Forwards: 70
From: <sip:carol@{DOMAIN}>;tag=c1
To: <sip:bob@{DOMAIN}>
Call-ID: {call_id}
CSeq: 3 UPDATE
""")
            self.assertEqual(carol.recv_final("UPDATE").status, 501)

            # 4. bob disconnects: his flow is gone, a call to him fails fast instead of hanging.
            bob.close()
            time.sleep(0.5)
            carol.send(f"""
INVITE sip:bob@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {carol.local};branch={carol.branch()}
Max-Forwards: 70
From: <sip:carol@{DOMAIN}>;tag=c2
To: <sip:bob@{DOMAIN}>
Call-ID: {uuid.uuid4().hex}
CSeq: 1 INVITE
Contact: {carol.contact}
""")
            r = carol.recv_final("INVITE", timeout=10)
            self.assertGreaterEqual(r.status, 400, r.raw)
            self.assertIn(r.status, (430, 480, 404, 408, 503), r.raw)
        finally:
            bob.close()
            carol.close()

    def test_malformed_batch_and_no_link(self):
        self.start_kamailio()
        self.start_dns()
        self.start_fixture()
        self.start_pair(edge_c=False)
        # No link yet: a request gets 503 from edge-e, not a hang.
        ua = SipUA(self.ports.sip, "dave", self.ca)
        self.assertEqual(ua.register().status, 503)
        ua.close()
        self.start_edge_c()

        def req(start="REGISTER sip:example.com SIP/2.0", extra="", via=None, cl=None, body=""):
            via = via if via is not None else "Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK" + uuid.uuid4().hex
            lines = [start, via, "Max-Forwards: 70", "From: <sip:eve@example.com>;tag=1",
                     "To: <sip:eve@example.com>", "Call-ID: " + uuid.uuid4().hex, "CSeq: 1 " + start.split()[0]]
            if extra:
                lines.append(extra)
            lines.append(f"Content-Length: {len(body) if cl is None else cl}")
            return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

        # (name, bytes, outcome): "400"-class status expected, or "close".
        batch = [
            ("ncl negative Content-Length", req(cl="-999"), "close_or_400"),
            ("no Content-Length", b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKx\r\n"
                                  b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n\r\n",
             "close_or_400"),
            ("binary garbage", bytes(range(256)) * 4, "close"),
            ("HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "close"),
            ("badvers SIP/7.0", req(start="OPTIONS sip:a@example.com SIP/7.0"), 505),
            ("unknown scheme", req(start="OPTIONS nobody:a@example.com SIP/2.0"), 416),
            ("two Call-IDs", req(extra="Call-ID: second"), 400),
            ("CSeq method mismatch", req(start="INVITE sip:b@example.com SIP/2.0").replace(b"CSeq: 1 INVITE",
                                                                                             b"CSeq: 1 OPTIONS"), 400),
            ("Max-Forwards 300", req().replace(b"Max-Forwards: 70", b"Max-Forwards: 300"), 400),
            ("two Max-Forwards", req(extra="Max-Forwards: 69"), 400),
            ("escaped headers in Request-URI", req(start="OPTIONS sip:a@example.com?Route=%3Csip:x%3E SIP/2.0"), 400),
            ("no branch", req(via="Via: SIP/2.0/TLS 192.0.2.1:5061"), 400),
            ("multicast Via", req(via="Via: SIP/2.0/TLS 224.0.0.1:5061;branch=z9hG4bKmc"), 400),
            ("huge message", req(body="x" * (200 * 1024)), "close_or_413"),
            ("no From tag", req().replace(b";tag=1", b""), 400),
        ]
        before = self.metric(self.ports.admin_e, "edgepair_sip_errors_total")
        for name, data, outcome in batch:
            with self.subTest(name):
                u = SipUA(self.ports.sip, "eve", self.ca)
                try:
                    try:
                        u.send_raw(data)
                    except (OSError, ssl.SSLError):
                        pass  # edge-e may close before a large message is fully sent
                    m = u.recv(5)
                finally:
                    u.close()
                if outcome == "close":
                    self.assertIsNone(m, f"{name}: expected close, got {m and m.start}")
                elif isinstance(outcome, int):
                    self.assertIsNotNone(m, f"{name}: closed without a response")
                    self.assertEqual(m.status, outcome, m.raw)
                else:
                    self.assertTrue(m is None or 400 <= m.status < 600, f"{name}: {m and m.start}")
        self.assertTrue(self.edge_e.alive, "edge-e died on the malformed batch")
        self.assertTrue(self.edge_c.alive, "edge-c died on the malformed batch")
        after = self.metric(self.ports.admin_e, "edgepair_sip_errors_total")
        self.assertGreaterEqual(after - before, len(batch) - 1)
        # Keep-alive ping answered by edge-e, and edge-e still serves a good REGISTER.
        ua = SipUA(self.ports.sip, "frank", self.ca)
        ua.send_raw(b"\r\n\r\n")
        ua.sock.settimeout(5)
        self.assertEqual(ua.sock.recv(16), b"\r\n")
        self.assertEqual(ua.register().status, 200)
        ua.close()


if __name__ == "__main__":
    h.run_tests()
