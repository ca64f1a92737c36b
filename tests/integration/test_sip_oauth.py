#!/usr/bin/python3
"""SIP OAuth and identity binding (issue #15 items 2 and 6; CVE-2024-20497).

With oauth.clusters[].sip_oauth on, a REGISTER through the pair must carry the cluster's access token
(`Authorization: Bearer`, RFC 8898's form: an assumption, see edge-c/sip_access.h). edge-c validates it with the
same OAuthValidator as HTTP and binds the flow to the token's user and to the device the Contact names
(+u.sip!devicename.ccm.cisco.com), which must be one of that user's devices (AXL getUser associatedDevices on the
UCM fixture). The tests assert what Kamailio (Unified CM's SIP side) received, not only what the client saw:
every refused REGISTER never reaches it.

Consistency, not interoperability: both the token form (tools/fixtures/oauth_issuer.py) and the header are our
reading of the public documents; no Jabber client is involved.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_sip_oauth.py
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "fixtures"))

import harness as h  # noqa: E402
from oauth_issuer import Issuer  # noqa: E402
from sipenv import DOMAIN, FIXTURE, UCM_ADDR, SipEnv, SipUA  # noqa: E402

ISS = "https://cucm1.example.com:8443/ssosp"
FULL = "IM & Presence, Voice and Video calls"
IM_ONLY = "IM & Presence only"
NONE = "No Service"

# The directory the UCM fixture serves over AXL: users, their devices and their user profiles.
USERS = {
    "alice": {"password": "Alice-Passw0rd", "devices": ["CSFALICE", "TCTALICE"], "user_profile": "full"},
    "bob": {"password": "Bob-Passw0rd", "devices": ["CSFBOB"], "user_profile": "full"},
    "ivy": {"password": "Ivy-Passw0rd", "devices": ["CSFIVY"], "user_profile": "im-only"},
    "nora": {"password": "Nora-Passw0rd", "devices": ["CSFNORA"], "user_profile": "no-service"},
    "mia": {"password": "Mia-Passw0rd", "devices": ["CSFMIA", "TCTMIA"], "user_profile": "desktop-full"},
}
PROFILES = {
    "full": {"enable_mra": True, "mra_policy_desktop": FULL, "mra_policy_mobile": FULL},
    "im-only": {"enable_mra": True, "mra_policy_desktop": IM_ONLY, "mra_policy_mobile": IM_ONLY},
    "no-service": {"enable_mra": True, "mra_policy_desktop": NONE, "mra_policy_mobile": NONE},
    "desktop-full": {"enable_mra": True, "mra_policy_desktop": FULL, "mra_policy_mobile": IM_ONLY},
}


class SipOAuthEnv(SipEnv):
    """SipEnv with users in the fixture, an in-process token issuer, and SIP OAuth on for the cluster."""

    MRA_POLICY = False
    # edge-c's mra_policy mapping when MRA_POLICY is off (YAML, flow style); none: the defaults.
    MRA_POLICY_OFF_YAML = ""

    def start_fixture(self, mixed: bool = False):
        self.fport = h.free_port(UCM_ADDR)
        cluster = {
            "name": "cucm-cluster-1", "version": "14.0.1.10000-20", "security_mode": 1 if mixed else 0,
            "nodes": [{"name": "cucm1.example.com", "address": UCM_ADDR, "type": "ucm", "publisher": True,
                       "sip_port": self.kport, "sip_tls_port": self.ktlsport}],
            "axl_users": {"axladmin": {"password": "Axl-Passw0rd", "roles": ["axl"]}},
            "end_users": USERS,
            "user_profiles": PROFILES,
        }
        path = os.path.join(self.tmp, "cluster.json")
        with open(path, "w") as f:
            json.dump(cluster, f)
        self.fixture = self.start(["/usr/bin/python3", FIXTURE, "--cluster", path, "--node", "cucm1.example.com",
                                   "--listen", f"{UCM_ADDR}:{self.fport}", "--cert",
                                   f"{self.pki}/tomcat-cucm1-chain.crt", "--key", f"{self.pki}/tomcat-cucm1.key"],
                                  name="ucm-fixture")
        self.fixture.wait_port(UCM_ADDR, self.fport, timeout=15)

    def setUp(self):
        super().setUp()
        self.issuer = Issuer(ISS)
        self.keys = os.path.join(self.tmp, "oauth-keys.json")
        self.issuer.write(self.keys, None)
        self.start_kamailio()
        self.start_dns()
        self.start_fixture()
        policy = ("\n        mra_policy: {enabled: true, cache_ttl: 60s}" if self.MRA_POLICY else
                  f"\n        mra_policy: {self.MRA_POLICY_OFF_YAML}" if self.MRA_POLICY_OFF_YAML else "")
        extra = (f"oauth:\n          clusters:\n            - {{name: cucm-cluster-1, issuer: \"{ISS}\", "
                 f"keys_file: {self.keys}, sip_oauth: true}}{policy}")
        self.start_pair(extra_c=extra)

    # ---- helpers ----

    def token(self, user: str, lifetime: int = 300) -> str:
        return self.issuer.access_token(self.issuer.claims(user, lifetime))

    def ua(self, user: str) -> SipUA:
        ua = SipUA(self.ports.sip, user, self.ca)
        self.addCleanup(ua.close)
        return ua

    def register(self, ua: SipUA, device: str, token: str | None, aor: str | None = None,
                 expires: int = 3600):
        """A Jabber-style REGISTER (TechNote 217244's Contact) with `token` as the bearer; the final response."""
        ua.cseq += 1
        ua.reg_call_id = getattr(ua, "reg_call_id", None) or uuid.uuid4().hex
        aor = aor or ua.user
        auth = f"\nAuthorization: Bearer {token}" if token else ""
        ua.send(f"""
REGISTER sip:{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
Max-Forwards: 70
From: <sip:{aor}@{DOMAIN}>;tag={ua.tag}
To: <sip:{aor}@{DOMAIN}>
Call-ID: {ua.reg_call_id}
CSeq: {ua.cseq} REGISTER
Contact: <sip:{uuid.uuid4()}@{ua.local};transport=tls>;+sip.instance="<urn:uuid:{uuid.uuid4()}>";+u.sip!devicename.ccm.cisco.com="{device}";+u.sip!model.ccm.cisco.com="503"
Expires: {expires}{auth}
""")
        return ua.recv_final("REGISTER")

    def invite(self, ua: SipUA, to: str):
        ua.cseq += 1
        ua.send(f"""
INVITE sip:{to}@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
Max-Forwards: 70
From: <sip:{ua.user}@{DOMAIN}>;tag={ua.tag}
To: <sip:{to}@{DOMAIN}>
Call-ID: {uuid.uuid4().hex}
CSeq: {ua.cseq} INVITE
Contact: {ua.contact}
""")
        return ua.recv_final("INVITE")

    def kam_requests(self, method: str) -> int:
        """How many `method` requests Kamailio logged receiving (its cfg xlogs every request)."""
        return self.kam.log_text().count(f"REQ {method} ")

    def sip_errors(self, reason: str) -> float:
        return self.metric(self.ports.admin_c, "edgepair_sip_errors_total", {"reason": reason})

    def assert_never_reached(self, before: int, what: str):
        time.sleep(0.5)  # anything that leaked would have reached Kamailio by now
        self.assertEqual(self.kam_requests("REGISTER"), before, f"{what}: Kamailio saw the REGISTER")


class SipOAuthTest(SipOAuthEnv):
    def test_token_required_and_identity_bound(self):
        alice = self.ua("alice")

        # No token: 401 with a Bearer challenge, and Unified CM never sees the REGISTER.
        before = self.kam_requests("REGISTER")
        r = self.register(alice, "CSFALICE", None)
        self.assertEqual(r.status, 401, r.raw)
        self.assertIn("Bearer", r.get("WWW-Authenticate"))
        self.assert_never_reached(before, "no token")
        self.assertGreaterEqual(self.sip_errors("sip_oauth_no_token"), 1)

        # A tampered token: 401 invalid_token, counted under the validator's own reason.
        good = self.token("alice")
        head, payload, sig = good.split(".")
        bad = f"{head}.{payload}.{sig[:-4]}AAAA"
        r = self.register(alice, "CSFALICE", bad)
        self.assertEqual(r.status, 401, r.raw)
        self.assertIn('error="invalid_token"', r.get("WWW-Authenticate"))
        self.assert_never_reached(before, "tampered token")
        self.assertGreaterEqual(self.metric(self.ports.admin_c, "edgepair_oauth_refused_total",
                                            {"reason": "bad_signature"}), 1)

        # CVE-2024-20497: alice's valid token registering bob's device is refused, and Kamailio sees nothing.
        r = self.register(alice, "CSFBOB", good, aor="bob")
        self.assertEqual(r.status, 403, r.raw)
        self.assert_never_reached(before, "alice registering bob's device")
        self.assertEqual(self.bindings("bob"), [])
        self.assertGreaterEqual(self.sip_errors("identity_mismatch"), 1)

        # Nor can the flow call before it registered with a token.
        r = self.invite(alice, "bob")
        self.assertEqual(r.status, 403, r.raw)
        self.assertEqual(self.kam_requests("INVITE"), 0)

        # Her own device registers, and Kamailio stores the binding.
        r = self.register(alice, "CSFALICE", good)
        self.assertEqual(r.status, 200, r.raw)
        self.wait_bindings("alice", lambda b: len(b) == 1)
        self.assertEqual(self.kam_requests("REGISTER"), before + 1)

        # The flow keeps alice's identity: bob's token (valid, his own device) on alice's flow is refused...
        n = self.kam_requests("REGISTER")
        r = self.register(alice, "CSFBOB", self.token("bob"), aor="bob")
        self.assertEqual(r.status, 403, r.raw)
        # ...and so is alice's token for her other device on the flow bound to CSFALICE.
        r = self.register(alice, "TCTALICE", good)
        self.assertEqual(r.status, 403, r.raw)
        self.assert_never_reached(n, "another identity on a bound flow")
        self.assertEqual(self.bindings("bob"), [])

        # A re-REGISTER with the same identity goes through.
        again = self.token("alice")
        r = self.register(alice, "CSFALICE", again)
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(self.kam_requests("REGISTER"), n + 1)

        # No token (nor its signature alone) in either edge's log (debug level).
        for proc in (self.edge_c, self.edge_e):
            text = proc.log_text()
            for t in (good, bad, again):
                self.assertNotIn(t.rsplit(".", 1)[1], text, proc.name)

    def test_bob_registers_his_own_device_on_his_flow(self):
        # The refusal above is not a blanket one: bob with his own token and device is accepted.
        bob = self.ua("bob")
        r = self.register(bob, "CSFBOB", self.token("bob"))
        self.assertEqual(r.status, 200, r.raw)
        self.wait_bindings("bob", lambda b: len(b) == 1)
        # An expired token is refused with invalid_token (the client refreshes and registers again).
        other = self.ua("bob")
        expired = self.issuer.access_token(self.issuer.claims("bob", -600))
        n = self.kam_requests("REGISTER")
        r = self.register(other, "CSFBOB", expired)
        self.assertEqual(r.status, 401, r.raw)
        self.assertIn('error="invalid_token"', r.get("WWW-Authenticate"))
        self.assert_never_reached(n, "expired token")


class SipOAuthRemovedUserTest(SipOAuthEnv):
    """A user removed from Unified CM after the token was issued, without the MRA access policy: the REGISTER's
    device look-up no longer finds the user, who owns no device (docs/SECURITY.md "User still active")."""

    MRA_POLICY_OFF_YAML = "{enabled: false, cache_ttl: 0s}"  # the look-up's cache, so the removal shows at once

    def remove_user(self, user: str) -> None:
        path = os.path.join(self.tmp, "cluster.json")
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        del doc["end_users"][user]
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(path + ".tmp", path)  # the fixture re-reads a file whose inode or mtime changed

    def test_removed_user_cannot_register(self):
        tok = self.token("bob")
        bob = self.ua("bob")
        r = self.register(bob, "CSFBOB", tok)
        self.assertEqual(r.status, 200, r.raw)
        self.wait_bindings("bob", lambda b: len(b) == 1)

        self.remove_user("bob")
        n = self.kam_requests("REGISTER")
        mismatches = self.sip_errors("identity_mismatch")
        # His token is still valid, but neither his bound flow's re-REGISTER nor a new flow gets through.
        r = self.register(bob, "CSFBOB", tok)
        self.assertEqual(r.status, 403, r.raw)
        r = self.register(self.ua("bob"), "CSFBOB", tok)
        self.assertEqual(r.status, 403, r.raw)
        self.assert_never_reached(n, "a removed user's REGISTER")
        self.assertEqual(self.sip_errors("identity_mismatch"), mismatches + 2)
        # Alice, still on Unified CM, registers as before.
        r = self.register(self.ua("alice"), "CSFALICE", self.token("alice"))
        self.assertEqual(r.status, 200, r.raw)


if __name__ == "__main__":
    h.run_tests()
