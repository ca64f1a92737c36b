#!/usr/bin/python3
"""Per-user MRA access policy (issue #15 item 5; seed 004 "MRA Policies").

The UCM fixture serves each user's profile over AXL (getUser -> userProfile, getUserProfileProvision ->
enableMra, mraPolicy_Desktop, mraPolicy_Mobile, the field names of Unified CM's AXL schema); edge-c reads and
caches it and enforces it per service and device class:
- "No service": 403 on get_edge_config (and every proxied request) and on SIP;
- "IM & Presence only": signs in over HTTP, but REGISTER and INVITE get 403 with a Warning naming the policy;
- desktop and mobile apart: the device name's type (CSF desktop, TCT mobile) picks the policy.
Each refusal is counted in edgepair_mra_policy_refused_total{service,policy}; Kamailio never sees a refused
REGISTER. SIP identities come from SIP OAuth (test_sip_oauth.py's topology): MRA policies are "based on OAuth".

XMPP (MraPolicyXmppTest, with Prosody as IM&P): edge-c reads the user from the client's SASL <auth> before
relaying it; a user whose policy has no IM gets a policy-violation stream error and Prosody never sees the
<auth> (the user is registered in Prosody with that very password, so a leaked <auth> would succeed).

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_mra_policy.py
"""

from __future__ import annotations

import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from impenv import ImpEnv  # noqa: E402
from test_sip_oauth import USERS, SipOAuthEnv  # noqa: E402

EDGE = "expe1.example.com"
DOMAIN_B64 = base64.b64encode(b"example.com").decode().rstrip("=")
EDGE_CONFIG = f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin"


class MraPolicyTest(SipOAuthEnv):
    MRA_POLICY = True

    def refused(self, service: str, policy: str) -> float:
        return self.metric(self.ports.admin_c, "edgepair_mra_policy_refused_total",
                           {"service": service, "policy": policy})

    def edge_config(self, token: str, ua: str = "Jabber (Windows)"):
        return h.http_request(f"https://{EDGE}:{self.ports.https}{EDGE_CONFIG}", "GET",
                              headers={"Authorization": f"Bearer {token}", "User-Agent": ua},
                              cafile=self.ca, connect_to=("127.0.0.1", self.ports.https), timeout=20)

    def test_im_only_signs_in_but_no_voice(self):
        tok = self.token("ivy")
        st, _, body = self.edge_config(tok)
        self.assertEqual(st, 200, body[:300])

        ivy = self.ua("ivy")
        before = self.kam_requests("REGISTER")
        r = self.register(ivy, "CSFIVY", tok)
        self.assertEqual(r.status, 403, r.raw)
        self.assertIn("im_only", r.get("Warning"))
        self.assertTrue(r.get("Warning").startswith("399 "), r.get("Warning"))
        self.assert_never_reached(before, "IM-only REGISTER")
        self.assertEqual(self.bindings("ivy"), [])
        self.assertEqual(self.refused("sip", "im_only"), 1)

        r = self.invite(ivy, "alice")
        self.assertEqual(r.status, 403, r.raw)
        self.assertIn("im_only", r.get("Warning"))
        self.assertEqual(self.kam_requests("INVITE"), 0)
        self.assertEqual(self.refused("sip", "im_only"), 2)
        self.assertGreaterEqual(self.sip_errors("mra_policy"), 2)

    def test_no_service_gets_nothing(self):
        tok = self.token("nora")
        st, _, body = self.edge_config(tok)
        self.assertEqual(st, 403, body[:300])
        self.assertEqual(self.refused("http", "no_service"), 1)

        nora = self.ua("nora")
        before = self.kam_requests("REGISTER")
        r = self.register(nora, "CSFNORA", tok)
        self.assertEqual(r.status, 403, r.raw)
        self.assertIn("no_service", r.get("Warning"))
        self.assert_never_reached(before, "no-service REGISTER")
        self.assertEqual(self.refused("sip", "no_service"), 1)

    def test_desktop_and_mobile_policies_apart(self):
        # mia: desktop "IM & Presence, Voice and Video calls", mobile "IM & Presence only".
        tok = self.token("mia")
        desk = self.ua("mia")
        r = self.register(desk, "CSFMIA", tok)
        self.assertEqual(r.status, 200, r.raw)
        self.wait_bindings("mia", lambda b: len(b) == 1)

        mobile = self.ua("mia")
        n = self.kam_requests("REGISTER")
        r = self.register(mobile, "TCTMIA", tok)
        self.assertEqual(r.status, 403, r.raw)
        self.assertIn("im_only", r.get("Warning"))
        self.assert_never_reached(n, "mobile REGISTER under an IM-only mobile policy")
        self.assertEqual(self.refused("sip", "im_only"), 1)

        # Over HTTP the class comes from the User-Agent: an iPhone client still signs in (IM is allowed).
        st, _, body = self.edge_config(tok, ua="Jabber iPhone")
        self.assertEqual(st, 200, body[:300])

    def test_full_policy_calls_reach_unified_cm(self):
        alice = self.ua("alice")
        r = self.register(alice, "CSFALICE", self.token("alice"))
        self.assertEqual(r.status, 200, r.raw)
        before = self.kam_requests("INVITE")
        r = self.invite(alice, "nobody")
        # Kamailio answers (no such user): what matters is that the INVITE got there.
        self.assertNotEqual(r.status, 403, r.raw)
        self.assertEqual(self.kam_requests("INVITE"), before + 1)
        self.assertEqual(self.refused("sip", "im_voice_video"), 0)


class MraPolicyXmppTest(ImpEnv):
    """Prosody as IM&P imp1 (a free 127.0.1.x:5222), the UCM fixture as cucm1 (AXL user profiles) and imp1."""

    def test_xmpp_by_policy(self):
        # IM & Presence only: chat is allowed, so the sign-in reaches Prosody and succeeds.
        got = self.sign_in("ivy")
        self.assertIn(b"<success", got)
        # No service: refused by edge-c with a policy-violation; Prosody never got the (valid) credentials.
        got = self.sign_in("nora")
        self.assertIn(b"<policy-violation", got)
        self.assertNotIn(b"<success", got)
        self.assertIn(b"no_service", got)
        self.assertEqual(self.refused("xmpp", "no_service"), 1)
        for proc in (self.edge_c, self.edge_e):  # edge-c read the <auth>: it must not log the password
            for u in ("ivy", "nora"):
                self.assertNotIn(USERS[u]["password"], proc.log_text(), proc.name)

    def test_xmpp_token_checked_at_the_edge(self):
        # An expired access token in OAUTHBEARER: edge-c refuses it (not-authorized), IM&P never answers.
        expired = self.issuer.access_token(self.issuer.claims("ivy", -600))
        got = self.sign_in("ivy", expired)
        self.assertIn(b"<not-authorized", got)
        self.assertNotIn(b"<failure", got)
        self.assertEqual(self.oauth_refused("expired"), 1)
        # nora's valid token: the policy of the token's user applies.
        got = self.sign_in("nora", self.issuer.access_token(self.issuer.claims("nora", 300)))
        self.assertIn(b"<policy-violation", got)
        self.assertEqual(self.refused("xmpp", "no_service"), 1)
        # ivy's valid token goes on to IM&P. Prosody cannot validate Unified CM's tokens (it does not offer the
        # mechanism): its <failure> is the proof the <auth> reached it. A real IM&P would sign ivy in.
        got = self.sign_in("ivy", self.issuer.access_token(self.issuer.claims("ivy", 300)))
        self.assertIn(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'", got)
        self.assertNotIn(b"<stream:error", got)
        self.assertEqual(self.oauth_refused("expired"), 1)

    def test_xmpp_edge_token_stays_at_the_edge(self):
        # An edge token (the pair's own, issue #21) is no IM&P credential: edge-c refuses any token of that form
        # before IM&P sees it (no <failure> from Prosody, which answers every <auth> it gets).
        token = "ept1." + base64.urlsafe_b64encode(os.urandom(60)).decode().rstrip("=")
        got = self.sign_in("ivy", token)
        self.assertIn(b"<not-authorized", got)
        self.assertIn(b"edge tokens do not sign in", got)
        self.assertNotIn(b"<failure", got)
        self.assertNotIn(b"<success", got)
        for proc in (self.edge_c, self.edge_e, self.prosody):
            self.assertNotIn(token[5:], proc.log_text(), proc.name)
        # The refusal is the edge token's: ivy's password still signs her in on the same pair.
        self.assertIn(b"<success", self.sign_in("ivy"))


if __name__ == "__main__":
    h.run_tests()
