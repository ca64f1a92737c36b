"""SIP hardening (issue #14 items 7-10): one client never breaks another, and nothing a client writes steers
Unified CM's side (Kamailio here) to an internal host.

Every test runs several clients on ONE edge-e worker and ONE edge-c worker, so they share edge-c's single
connection to the node. What the node received is read from Kamailio's log (the `REQ <method> <ruri> from
<addr>` xlog line of tests/integration/sip/kamailio.cfg.in) and its stored bindings (kamcmd ul.dump); an
"internal host" is a TCP listener on 127.0.3.9 that must see nothing. Where a defence is what stops a request,
a control sends the same request to Kamailio directly and shows that it would have reached the listener.
"""

from __future__ import annotations

import re
import signal
import socket
import threading
import time
import uuid

import harness as h
from sipenv import DOMAIN, UCM_ADDR, PlainSipUA, SipEnv, SipUA
from test_sip import SDP, answer_call

INTERNAL = "127.0.3.9"


class Listener:
    """A TCP 'internal host': records every connection and byte it receives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((INTERNAL, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.data = b""
        self.connections = 0
        self.stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            c.settimeout(0.5)
            try:
                while not self.stop:
                    try:
                        d = c.recv(65536)
                    except socket.timeout:
                        continue
                    if not d:
                        break
                    self.data += d
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stop = True
        self.sock.close()


class SipHardening(SipEnv):
    def setUp(self):
        super().setUp()
        self.uas: list = []

    def tearDown(self):
        for ua in self.uas:
            ua.close()
        super().tearDown()

    def ua(self, user: str) -> SipUA:
        u = SipUA(self.ports.sip, user, self.ca)
        self.uas.append(u)
        return u

    def registered(self, *users: str) -> list[SipUA]:
        out = []
        for user in users:
            u = self.ua(user)
            r = u.register()
            self.assertEqual(r.status, 200, r.raw)
            out.append(u)
        return out

    def kam_requests(self, method: str) -> list[str]:
        return re.findall(rf"REQ {method} (\S+) from (\S+)", self.kam.log_text())

    def call(self, caller: SipUA, callee: SipUA):
        """caller (through the pair) calls callee (through the pair) via Kamailio; callee hangs up."""
        errors: list = []
        t = threading.Thread(target=answer_call, args=(callee, errors, True), daemon=True)
        t.start()
        call_id = uuid.uuid4().hex
        caller.send(f"""
INVITE sip:{callee.user}@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {caller.local};branch={caller.branch()}
Max-Forwards: 70
From: <sip:{caller.user}@{DOMAIN}>;tag=t{call_id[:6]}
To: <sip:{callee.user}@{DOMAIN}>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: {caller.contact}
Content-Type: application/sdp
""", SDP)
        final = caller.recv_final("INVITE", 15)
        self.assertEqual(final.status, 200, final.raw)
        routes = "".join(f"Route: {r}\n" for r in reversed(final.all("Record-Route")))
        target = re.search(r"<([^>]+)>", final.get("Contact")).group(1)
        caller.send(f"""
ACK {target} SIP/2.0
Via: SIP/2.0/TLS {caller.local};branch={caller.branch()}
{routes}Max-Forwards: 70
From: <sip:{caller.user}@{DOMAIN}>;tag=t{call_id[:6]}
To: {final.get('To')}
Call-ID: {call_id}
CSeq: 1 ACK
""".replace("\n\n", "\n"))
        bye = caller.recv(10)
        self.assertIsNotNone(bye, "caller's connection closed during the call")
        self.assertEqual(bye.start.split()[0], "BYE", bye.raw)
        caller.respond(bye, 200, "OK")
        t.join(15)
        self.assertFalse(t.is_alive(), "callee thread stuck")
        self.assertEqual(errors, [])

    def message(self, sender: SipUA, to: str, body: str, extra: str = "") -> None:
        sender.cseq += 1
        sender.send(f"""
MESSAGE sip:{to}@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {sender.local};branch={sender.branch()}
Max-Forwards: 70
From: <sip:{sender.user}@{DOMAIN}>;tag={sender.tag}
To: <sip:{to}@{DOMAIN}>
Call-ID: {uuid.uuid4().hex}
CSeq: {sender.cseq} MESSAGE
{extra}Content-Type: text/plain
""".replace("\n\n", "\n"), body)

    def flows_closed(self) -> float:
        return self.metric(self.ports.admin_c, "edgepair_sip_flows_closed_total",
                           {"reason": "node_connection_lost"})

    # ---- item 7: size limit, both directions ----------------------------------------------------------------

    def test_oversized_client_message_costs_only_that_message(self):
        self.full()
        alice, bob, carol = self.registered("alice", "bob", "carol")
        self.message(alice, "bob", "x" * 16000)  # ~16 kB: what made Kamailio drop the shared connection
        r = alice.recv_final("MESSAGE")
        self.assertEqual(r.status, 513, r.raw)
        self.assertEqual(self.kam_requests("MESSAGE"), [], "the oversized MESSAGE reached the node")
        # alice's own connection goes on (the message was skipped, not the stream), and so do the others.
        self.assertEqual(alice.register().status, 200)
        self.call(carol, bob)
        self.assertEqual(self.flows_closed(), 0)
        self.assertEqual(self.metric(self.ports.admin_e, "edgepair_sip_errors_total",
                                     {"reason": "message_too_large"}), 1)

    def test_oversized_node_message_costs_only_that_message(self):
        # edge-c's node-side framer limit at its minimum (4 KiB) so that Kamailio, which itself relays only
        # up to about 16 kB, can deliver an over-limit message: the same path as one just over 64 KiB.
        self.start_kamailio()
        self.start_dns()
        self.start_fixture()
        self.start_pair(extra_c="limits: {max_sip_message: 4k}")
        bob, carol = self.registered("bob", "carol")
        internal = PlainSipUA(UCM_ADDR, self.kport, "desk")
        self.uas.append(internal)
        self.message(internal, "bob", "y" * 6000)
        r = internal.recv_final("MESSAGE")
        self.assertEqual(r.status, 513, r.raw)  # edge-c answered the node, and kept framing
        # bob saw nothing of it, and his flow still works through the same node connection.
        self.message(internal, "bob", "small")
        m = bob.recv(10)
        self.assertIsNotNone(m, "bob's connection was closed")
        self.assertEqual((m.method, m.body), ("MESSAGE", b"small"), m.raw)
        bob.respond(m, 200, "OK")
        self.assertEqual(internal.recv_final("MESSAGE").status, 200)
        self.call(carol, bob)
        self.assertEqual(self.flows_closed(), 0)
        self.assertEqual(self.metric(self.ports.admin_c, "edgepair_sip_errors_total",
                                     {"reason": "upstream_message_too_large"}), 1)
        self.assertEqual(self.metric(self.ports.admin_c, "edgepair_sip_errors_total",
                                     {"reason": "upstream_framing"}), 0)

    def test_node_loss_closes_flows(self):
        self.full()
        bob, carol = self.registered("bob", "carol")
        # Kamailio goes away with both bindings: their flows must be told at once, not at the next refresh.
        self.kam.stop(sig=signal.SIGKILL)
        t0 = time.monotonic()
        for u in (bob, carol):
            self.assertIsNone(u.recv(5), f"{u.user}: connection still open after the node connection died")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.flows_closed(), 2)

    # ---- item 8: every Contact rewritten or refused -----------------------------------------------------------

    def test_seventeen_contacts_reach_nothing_internal(self):
        self.full()
        listener = Listener()
        try:
            eve = self.ua("eve")
            contacts = [f"<sip:eve{i}@10.1.2.{i};transport=tls>" for i in range(16)]
            contacts.append(f"<sip:eve@{INTERNAL}:{listener.port};transport=tcp>")
            eve.cseq += 1
            eve.send(f"""
REGISTER sip:{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {eve.local};branch={eve.branch()}
Max-Forwards: 70
From: <sip:eve@{DOMAIN}>;tag={eve.tag}
To: <sip:eve@{DOMAIN}>
Call-ID: {uuid.uuid4().hex}
CSeq: {eve.cseq} REGISTER
""" + "".join(f"Contact: {c}\n" for c in contacts) + "Expires: 600\n")
            r = eve.recv_final("REGISTER")
            self.assertEqual(r.status, 403, r.raw)
            self.assertEqual(self.bindings("eve"), [])
            # 16 on one connection are fine, all rewritten; the 17th in a later REGISTER is refused too.
            eve.cseq += 1
            eve.send(f"""
REGISTER sip:{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {eve.local};branch={eve.branch()}
Max-Forwards: 70
From: <sip:eve@{DOMAIN}>;tag={eve.tag}
To: <sip:eve@{DOMAIN}>
Call-ID: {uuid.uuid4().hex}
CSeq: {eve.cseq} REGISTER
""" + "".join(f"Contact: {c}\n" for c in contacts[:16]) + "Expires: 600\n")
            self.assertEqual(eve.recv_final("REGISTER").status, 200)
            b = self.wait_bindings("eve", lambda b: len(b) == 16)
            for binding in b:
                # Issue #16's Contact form: the client's user part kept, host and port edge-c's, the client's own
                # address only as orig-hostport (never a host Kamailio would send to).
                self.assertRegex(binding["Address"], r"^sip:eve\d+@127\.0\.0\.1:\d+;transport=tcp;"
                                 r"ep-flow=[a-z2-7]{20,};orig-hostport=127\.0\.0\.1:\d+;epc=\d+$")
            eve.contact = contacts[16]
            r = eve.register()
            self.assertEqual(r.status, 403, r.raw)
            self.assertNotIn(INTERNAL, self.ul_dump())
            # A call to eve reaches the 16 rewritten bindings (all through edge-c), never the listener.
            caller = self.registered("frank")[0]
            caller.send(f"""
INVITE sip:eve@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {caller.local};branch={caller.branch()}
Max-Forwards: 70
From: <sip:frank@{DOMAIN}>;tag=f1
To: <sip:eve@{DOMAIN}>
Call-ID: {uuid.uuid4().hex}
CSeq: 1 INVITE
Contact: {caller.contact}
""")
            inv = eve.recv(10)
            self.assertIsNotNone(inv)
            self.assertEqual(inv.method, "INVITE", inv.raw)
            time.sleep(1)
            self.assertEqual((listener.connections, listener.data), (0, b""))
        finally:
            listener.close()

    # ---- item 9: Route naming another host -----------------------------------------------------------------

    def _in_dialog_bye(self, ua_local: str, route: str) -> str:
        return (f"BYE sip:bob@{INTERNAL} SIP/2.0\r\nVia: SIP/2.0/TCP {ua_local};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                f"Route: {route}\r\nMax-Forwards: 70\r\nFrom: <sip:mallory@{DOMAIN}>;tag=m1\r\n"
                f"To: <sip:bob@{DOMAIN}>;tag=b1\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: 2 BYE\r\n"
                "Content-Length: 0\r\n\r\n")

    def test_foreign_route_reaches_nothing_internal(self):
        self.full()
        listener = Listener()
        try:
            route = f"<sip:{INTERNAL}:{listener.port};transport=tcp;lr>"
            # Control: the same in-dialog request sent to Kamailio directly is routed to the listener.
            direct = PlainSipUA(UCM_ADDR, self.kport, "control")
            self.uas.append(direct)
            direct.send_raw(self._in_dialog_bye(direct.local, route).encode())
            deadline = time.monotonic() + 10
            while b"BYE sip:bob@" not in listener.data and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertIn(b"BYE sip:bob@", listener.data, "control: Kamailio did not follow the Route")
            listener.data, listener.connections = b"", 0
            before = len(self.kam_requests("BYE"))

            mallory = self.registered("mallory")[0]
            for r in (route, f"<sip:expe1.example.com;lr>, {route}", f"<sip:{UCM_ADDR}:8443;lr>"):
                mallory.send_raw(self._in_dialog_bye(mallory.local, r).replace("SIP/2.0/TCP", "SIP/2.0/TLS")
                                 .encode())
                resp = mallory.recv_final("BYE")
                self.assertEqual(resp.status, 403, resp.raw)
            time.sleep(1)
            self.assertEqual((listener.connections, listener.data), (0, b""))
            self.assertEqual(len(self.kam_requests("BYE")), before, "a BYE with a foreign Route reached the node")
        finally:
            listener.close()

    # ---- item 10: 420 and 400 ------------------------------------------------------------------------------

    def test_bad_extension_and_bad_header_line(self):
        self.full()
        alice, bob = self.registered("alice", "bob")
        self.message(alice, "bob", "hi", extra="Proxy-Require: foo, bar\n")
        r = alice.recv_final("MESSAGE")
        self.assertEqual(r.status, 420, r.raw)
        self.assertEqual(r.get("Unsupported"), "foo, bar")
        # One bad header line in a well-framed message: 400, and the connection goes on.
        alice.cseq += 1
        alice.send_raw((f"MESSAGE sip:bob@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TLS {alice.local};branch={alice.branch()}"
                        f"\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag={alice.tag}\r\n"
                        f"To: <sip:bob@{DOMAIN}>\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: {alice.cseq} MESSAGE\r\n"
                        "This is not a header line\r\nContent-Length: 2\r\n\r\nhi").encode())
        r = alice.recv_final("MESSAGE")
        self.assertEqual(r.status, 400, r.raw)
        self.assertEqual(self.kam_requests("MESSAGE"), [], "a refused MESSAGE reached the node")
        self.assertEqual(alice.register().status, 200)
        # And a good MESSAGE still gets through to bob.
        self.message(alice, "bob", "hello")
        m = bob.recv(10)
        self.assertIsNotNone(m)
        self.assertEqual(m.body, b"hello")
        bob.respond(m, 200, "OK")
        self.assertEqual(alice.recv_final("MESSAGE").status, 200)


if __name__ == "__main__":
    h.run_tests()
