"""In-dialog requests between Unified CM's side and an MRA client through the pair (issue #16).

Topology: sipenv.py's (Kamailio as Unified CM's SIP side, the UCM fixture, dnsmasq, the pair). The client is the
test's SIP UA over TLS to edge-e; a second client is registered on its own connection to prove that in-dialog
requests reach the right one. "Unified CM" inside is the test's UA over TCP to Kamailio (sipdialog.InternalUA):
Kamailio record-routes, so the internal UA's in-dialog requests go Kamailio -> edge-c's Record-Route -> the
client's flow, and the client's go along the route set of its dialog (edge-e's outside entry first).

What Unified CM does in a call, in order: re-INVITE (hold/resume, media changes), REFER (transfer), in-dialog
SUBSCRIBE with Event: kpml (KPML digit collection, RFC 4730) whose NOTIFYs come back from the client, and a
NOTIFY for a REFER the client sent. Every request is checked where it arrives and every answer where it returns.
This proves consistency (our reading of RFC 3261 routing on both ends), not interoperability with Unified CM.
"""

from __future__ import annotations

import uuid

import harness as h
from sipdialog import Dialog, InternalUA, wait_final, wait_request
from sipenv import DOMAIN, UCM_ADDR, SipEnv, SipUA

SDP = ("v=0\r\no=- 1 {v} IN IP4 127.0.5.1\r\ns=-\r\nc=IN IP4 127.0.5.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0\r\na={dir}\r\n")


class SipDialogs(SipEnv):
    def client(self, user: str) -> SipUA:
        ua = SipUA(self.ports.sip, user, self.ca)
        self.addCleanup(ua.close)
        r = ua.register()
        self.assertEqual(r.status, 200, r.raw)
        return ua

    def assert_quiet(self, ua: SipUA, seconds: float = 0.5):
        try:
            m = ua.recv(seconds)
        except h.HarnessError:
            return
        self.fail(f"{ua.user} got a message meant for someone else: {m.raw[:300] if m else 'connection closed'!r}")

    def test_ucm_in_dialog_requests_reach_the_client(self):
        self.full()
        carol = self.client("carol")
        dave = self.client("dave")  # registered beside carol: must see none of carol's dialog
        bob = InternalUA(UCM_ADDR, self.kport, "bob")
        self.addCleanup(bob.close)
        self.assertEqual(bob.register().status, 200)

        # carol calls bob (Unified CM's side).
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
        from_hdr = f"<sip:carol@{DOMAIN}>;tag={tag}"
        carol.send(f"""
INVITE sip:bob@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {carol.local};branch={carol.branch()}
Max-Forwards: 70
From: {from_hdr}
To: <sip:bob@{DOMAIN}>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: {carol.contact}
Content-Type: application/sdp
""", SDP.format(v=1, dir="sendrecv"))
        inv = wait_request(bob, "INVITE", call_id=call_id)
        ucm = Dialog.as_uas(bob, inv, uuid.uuid4().hex[:8])
        self.assertGreaterEqual(len(ucm.routes), 2, f"Kamailio's and edge-c's Record-Route expected: {ucm.routes}")
        ucm.respond(inv, 200, "OK", body=SDP.format(v=1, dir="sendrecv"))
        ok = wait_final(carol, "INVITE", call_id, 1)
        self.assertEqual(ok.status, 200, ok.raw)
        client = Dialog.as_uac(carol, call_id, from_hdr, ok, 1)
        client.request("ACK")
        wait_request(bob, "ACK", call_id=call_id)

        def from_ucm(method: str, headers: str = "", body: str = "", ctype: str = "") -> tuple:
            """bob sends `method` in the dialog; returns (what carol received, its CSeq number)."""
            n = ucm.request(method, headers, body, ctype)
            got = wait_request(carol, method, call_id=call_id)
            self.assertEqual(got.get("CSeq"), f"{n} {method}", got.raw)
            self.assertIn(f"tag={tag}", got.get("To"), "the request must be in carol's dialog")
            return got, n

        # 1. re-INVITE (hold): carol answers, bob ACKs, carol gets the ACK.
        got, n = from_ucm("INVITE", body=SDP.format(v=2, dir="sendonly"), ctype="application/sdp")
        self.assertIn(b"a=sendonly", got.body)
        client.respond(got, 200, "OK", body=SDP.format(v=2, dir="recvonly"))
        r = wait_final(bob, "INVITE", call_id, n)
        self.assertEqual(r.status, 200, r.raw)
        self.assertIn(b"a=recvonly", r.body)
        ucm.request("ACK")
        wait_request(carol, "ACK", call_id=call_id)

        # 2. REFER (transfer to dave): 202 back to bob, carol's NOTIFY (refer sipfrag) reaches bob, 200 back.
        got, n = from_ucm("REFER", f"Refer-To: <sip:dave@{DOMAIN}>\nReferred-By: <sip:bob@{DOMAIN}>\n")
        self.assertEqual(got.get("Refer-To"), f"<sip:dave@{DOMAIN}>", got.raw)
        client.respond(got, 202, "Accepted")
        r = wait_final(bob, "REFER", call_id, n)
        self.assertEqual(r.status, 202, r.raw)
        n = client.request("NOTIFY", "Event: refer\nSubscription-State: terminated;reason=noresource\n",
                           "SIP/2.0 200 OK\r\n", "message/sipfrag;version=2.0")
        notify = wait_request(bob, "NOTIFY", call_id=call_id)
        self.assertEqual((notify.get("Event"), notify.body), ("refer", b"SIP/2.0 200 OK\r\n"), notify.raw)
        ucm.respond(notify, 200, "OK")
        self.assertEqual(wait_final(carol, "NOTIFY", call_id, n).status, 200)

        # 3. KPML: in-dialog SUBSCRIBE from bob; carol's 200 and her NOTIFY with the digits reach bob.
        kpml = ('<?xml version="1.0" encoding="UTF-8"?>\r\n<kpml-request xmlns="urn:ietf:params:xml:ns:kpml-request"'
                ' version="1.0"><pattern persist="persist"><regex tag="dtmf">[x#*ABCD]</regex></pattern>'
                '</kpml-request>\r\n')
        got, n = from_ucm("SUBSCRIBE", "Event: kpml\nExpires: 7200\nAccept: application/kpml-response+xml\n",
                          kpml, "application/kpml-request+xml")
        self.assertEqual(got.get("Event"), "kpml")
        self.assertEqual(got.body, kpml.encode(), "the KPML request body must pass unchanged")
        client.respond(got, 200, "OK", "Expires: 7200\n")
        r = wait_final(bob, "SUBSCRIBE", call_id, n)
        self.assertEqual(r.status, 200, r.raw)
        digits = ('<?xml version="1.0" encoding="UTF-8"?>\r\n<kpml-response xmlns="urn:ietf:params:xml:ns:'
                  'kpml-response" version="1.0" code="200" text="OK" digits="5" tag="dtmf"/>\r\n')
        n = client.request("NOTIFY", "Event: kpml\nSubscription-State: active;expires=7200\n", digits,
                           "application/kpml-response+xml")
        notify = wait_request(bob, "NOTIFY", call_id=call_id)
        self.assertEqual((notify.get("Event"), notify.body), ("kpml", digits.encode()), notify.raw)
        ucm.respond(notify, 200, "OK")
        self.assertEqual(wait_final(carol, "NOTIFY", call_id, n).status, 200)

        # 4. carol transfers (REFER to bob); bob's NOTIFY (sipfrag) reaches carol and her 200 gets back.
        n = client.request("REFER", f"Refer-To: <sip:dave@{DOMAIN}>\n")
        refer = wait_request(bob, "REFER", call_id=call_id)
        ucm.respond(refer, 202, "Accepted")
        self.assertEqual(wait_final(carol, "REFER", call_id, n).status, 202)
        got, n = from_ucm("NOTIFY", "Event: refer\nSubscription-State: terminated;reason=noresource\n",
                          "SIP/2.0 180 Ringing\r\n", "message/sipfrag;version=2.0")
        self.assertEqual(got.body, b"SIP/2.0 180 Ringing\r\n")
        client.respond(got, 200, "OK")
        self.assertEqual(wait_final(bob, "NOTIFY", call_id, n).status, 200)

        # 5. bob hangs up.
        got, n = from_ucm("BYE")
        client.respond(got, 200, "OK")
        self.assertEqual(wait_final(bob, "BYE", call_id, n).status, 200)

        self.assert_quiet(dave)


if __name__ == "__main__":
    h.run_tests()
