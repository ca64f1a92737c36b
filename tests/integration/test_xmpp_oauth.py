#!/usr/bin/python3
"""XMPP sign-in with an OAuth access token, end to end (issue #15): Prosody as IM&P with Debian's prosody-modules
mod_sasl_oauthbearer and mod_auth_oauthbearer, which check a token by an HTTPS GET to tools/fixtures/oauth_issuer.py
(/fixture/token-check, HTTP Basic with Prosody's client id and secret).

A client gets its access token through the edge (authorization code grant, test_oauth.py's way), opens XMPP on
edge-e (STARTTLS), signs in with SASL OAUTHBEARER (RFC 7628), binds a resource and exchanges a message with a
second user signed in the same way. Refused at the edge, before Prosody sees the <auth/> (so the fixture's
token-check is never called): an expired token, user A's token naming user B (`a=`: Prosody signs in whom `a=`
names and its token check does not bind the token to a user, so the edge is the check), a domain other than the
stream's, and a user removed from Unified CM (the MRA access policy's unknown user: No service). Refused by the
token's issuer through Prosody: a revoked token and one the issuer never issued (the edge validates tokens without
a round trip and cannot know either).

What this proves: interoperability with Prosody's real OAUTHBEARER modules, and consistency with our own fixture's
token format. Not Jabber's mechanism towards IM&P over MRA, which is not public (docs/SECURITY.md).

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_xmpp_oauth.py
"""

from __future__ import annotations

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import test_xmpp as tx  # noqa: E402
from impenv import ImpEnv  # noqa: E402
from test_http_edge import DOMAIN_B64, HttpEdgeTopology  # noqa: E402
from test_oauth import ADMIN, ISS, Issuer, OAuthTopology, start_issuer  # noqa: E402
from test_sip_oauth import USERS  # noqa: E402

OAUTH_MODULES = "/usr/lib/prosody/modules/mod_auth_oauthbearer/mod_auth_oauthbearer.lua"
# Prosody's client credentials towards the token check (the module's oauth_client_id / oauth_client_secret).
CHECK_CLIENT = ("prosody-imp1", "Imp1-Check-Secr3t")
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
EDGE_CONFIG = f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin"


class XmppOAuthTest(ImpEnv):
    OFFERED = b"<mechanism>OAUTHBEARER</mechanism>"
    POLICY_CACHE_TTL = "0s"  # a user removed from Unified CM is seen at the next sign-in
    # The OAuth endpoints pass without edge credentials only on a discovered Unified CM node.
    READY_NODES = (tx.IMP_NAME, "cucm1.example.com")

    # HTTP through the edge and the fixture's administrator calls, as test_oauth.py makes them.
    url = HttpEdgeTopology.url
    get = HttpEdgeTopology.get
    proxy = HttpEdgeTopology.proxy
    ssosp = OAuthTopology.ssosp
    direct = OAuthTopology.direct
    sign_in_oauth = OAuthTopology.sign_in_oauth

    def setUp(self):
        if not os.path.exists(OAUTH_MODULES):
            self.skipTest("Debian's prosody-modules is not installed (mod_auth_oauthbearer)")
        super().setUp()

    # ---- topology: ImpEnv's, with the issuer running and Prosody asking it ------------------------------

    def start_prosody(self):
        start_issuer(self, {"users": {u: USERS[u]["password"] for u in ("alice", "bob")}, "admin": list(ADMIN),
                            "token_check_clients": {CHECK_CLIENT[0]: CHECK_CLIENT[1]}}, 300, "--compact-claims",
                     *self.issuer_args())
        os.makedirs(os.path.join(self.tmp, "prosody-data"), exist_ok=True)
        # Host options after the VirtualHost line: only the OAuth modules authenticate, so no password signs
        # anyone in. The module resolves with the system resolver, hence the address; it does not verify the
        # issuer's certificate (LuaSec's https default), a limit of the module noted in docs/SECURITY.md.
        check_url = f"https://127.0.1.1:{self.oport}/fixture/token-check?token={{{{password}}}}"
        text = self.prosody_config() + f"""
    authentication = "oauthbearer"
    modules_enabled = {{ "sasl_oauthbearer" }}
    oauth_client_id = "{CHECK_CLIENT[0]}"
    oauth_client_secret = "{CHECK_CLIENT[1]}"
    oauth_url = "{check_url}"
"""
        cfg = os.path.join(self.tmp, "prosody.cfg.lua")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(text)
        self.prosody = self.start([self.require_tool("prosody"), "--config", cfg, "-F"], name="prosody")
        self.prosody.wait_port(self.imp_addr, tx.XMPP_PORT, timeout=15)

    OAUTH_EXTRA = ""  # more keys of edge-c's `oauth:` mapping, flow style ("require_active_user: true, ")

    def issuer_args(self) -> list[str]:
        """More oauth_issuer.py arguments (test_sso_oauth.py: the SAML assertion grant)."""
        return []

    def oauth_section(self) -> str:
        self.issuer = Issuer.load(self.private)  # the running issuer's keys: mints tokens it never issued
        return (f"oauth: {{{self.OAUTH_EXTRA}clusters: [{{name: cucm-cluster-1, issuer: \"{ISS}\", "
                f"keys_file: {self.keys}}}]}}")

    def edge_c_extra(self) -> str:
        return ("\n        allow_list:\n          rules:\n"
                f'            - {{url: "https://cucm1.example.com:{self.oport}/", methods: [GET, POST], '
                "description: ssosp}")

    # ---- clients ----------------------------------------------------------------------------------------

    def token(self, user: str) -> str:
        """An access token the issuer granted `user`, asked for through the edge."""
        grant = self.sign_in_oauth(auth=(user, USERS[user]["password"]))
        return grant["access_token"]

    def mint(self, user: str, lifetime: int) -> str:
        """A token with the issuer's keys that the issuer never issued, compact as its own (or Prosody would
        refuse it as malformed before asking anyone)."""
        claims = self.issuer.claims(user, lifetime)
        del claims["scopes"]
        return self.issuer.access_token(claims)

    def checks(self) -> list[dict]:
        """The fixture's token-check calls so far (Prosody's, the only client of that endpoint)."""
        st, _, body = self.direct("GET", "/fixture/token-checks")
        self.assertEqual(st, 200, body)
        return json.loads(body)["checks"]

    def session(self, user: str, token: str, resource: str):
        """Signed in with OAUTHBEARER through the pair, stream restarted, `resource` bound: the TLS socket."""
        t = self.starttls(self.client())
        try:
            t.sendall(tx.header())
            got = tx.recv_until(t, rb"</stream:features>")
            self.assertIn(self.OFFERED, got)
            self.assertNotIn(b"<mechanism>PLAIN</mechanism>", got)
            got = self.sasl(t, "OAUTHBEARER", f"n,a={user}@example.com,\x01auth=Bearer {token}\x01\x01")
            self.assertIn(f"<success xmlns='{SASL_NS}'".encode(), got)
            t.sendall(tx.header())
            got = tx.recv_until(t, rb"</stream:features>")
            self.assertIn(b"urn:ietf:params:xml:ns:xmpp-bind", got)
            t.sendall(b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      b"<resource>" + resource.encode() + b"</resource></bind></iq>")
            got = tx.recv_until(t, rb"</iq>")
            self.assertIn(f"<jid>{user}@example.com/{resource}</jid>".encode(), got)
            t.sendall(b"<presence/>")
            return t
        except BaseException:
            t.close()
            raise

    def assert_refused_at_edge(self, got: bytes, text: bytes, checks_before: int) -> None:
        self.assertIn(b"<not-authorized", got)
        self.assertIn(text, got)
        self.assertNotIn(b"<failure", got)  # Prosody answers every <auth> it gets: it got none
        self.assertNotIn(b"<success", got)
        self.assertEqual(len(self.checks()), checks_before, "Prosody asked the issuer about a refused token")

    # ---- tests ------------------------------------------------------------------------------------------

    def chat(self, a, b, text: bytes) -> None:
        """alice (resource desk on a) writes `text` to bob (phone on b), who answers: each gets the other's
        message with the sender's full JID, stamped by Prosody."""
        a.sendall(b"<message to='bob@example.com/phone' type='chat' id='m1'><body>" + text + b"</body></message>")
        got = tx.recv_until(b, re.escape(text) + rb".*?</message>")
        m = re.search(rb"<message[^>]*>", got)
        self.assertIsNotNone(m, got)
        self.assertIn(b"from='alice@example.com/desk'", m.group(0).replace(b'"', b"'"))
        b.sendall(b"<message to='alice@example.com/desk' type='chat' id='m2'><body>hi alice</body></message>")
        got = tx.recv_until(a, rb"hi alice.*?</message>")
        self.assertIn(b"bob@example.com/phone", got)

    def test_oauthbearer_sign_in_and_chat(self):
        alice_tok, bob_tok = self.token("alice"), self.token("bob")
        self.assertEqual(self.checks(), [])
        with self.session("alice", alice_tok, "desk") as a, self.session("bob", bob_tok, "phone") as b:
            # Prosody asked the issuer once per sign-in, with its client credentials, and was told yes.
            self.assertEqual([(c["client"], c["sub"], c["status"]) for c in self.checks()],
                             [(CHECK_CLIENT[0], "alice", 200), (CHECK_CLIENT[0], "bob", 200)])
            self.chat(a, b, b"hello bob, signed in with a token")
        for reason in ("identity_mismatch", "expired"):
            self.assertEqual(self.oauth_refused(reason), 0)
        for proc in (self.edge_c, self.edge_e, self.issuer_proc):
            for tok in (alice_tok, bob_tok):
                self.assertNotIn(tok, proc.log_text(), proc.name)

    def test_refused_at_the_edge(self):
        alice_tok = self.token("alice")
        n = len(self.checks())

        # Expired (the issuer's own keys and form, exp in the past): the validator's refusal.
        expired = self.mint("alice", -600)
        self.assert_refused_at_edge(self.sign_in("alice", expired), b"invalid access token", n)
        self.assertEqual(self.oauth_refused("expired"), 1)
        # (Prosody's module logs the check URL, token included, at debug level: it never had this one.)
        self.assertNotIn(expired, self.prosody.log_text())

        # Alice's valid token naming bob: Prosody would sign bob in (its check only asks whether the token is
        # valid), so edge-c refuses it, counted, logged once without the token.
        got = self.sign_in("alice", alice_tok, authzid="bob@example.com")
        self.assert_refused_at_edge(got, b"the access token belongs to another user", n)
        self.assertEqual(self.oauth_refused("identity_mismatch"), 1)
        mismatch = r"the token is user alice's, the message names bob@example.com"
        self.edge_c.wait_log(mismatch, timeout=5)
        self.assertEqual(len(re.findall(mismatch, self.edge_c.log_text())), 1)
        # The local part is compared without case; the domain, when named, must be the stream's.
        got = self.sign_in("alice", alice_tok, authzid="BOB@Example.com")
        self.assert_refused_at_edge(got, b"belongs to another user", n)
        got = self.sign_in("alice", alice_tok, authzid="alice@example.org")
        self.assert_refused_at_edge(got, b"belongs to another user", n)
        self.assertEqual(self.oauth_refused("identity_mismatch"), 3)

        # The same token naming its own user (any case) signs in: the refusals above were the identity's.
        got = self.sign_in("alice", alice_tok, authzid="Alice@EXAMPLE.com")
        self.assertIn(f"<success xmlns='{SASL_NS}'".encode(), got)
        self.assertEqual(len(self.checks()), n + 1)
        for proc in (self.edge_c, self.edge_e, self.issuer_proc):
            self.assertNotIn(alice_tok, proc.log_text(), proc.name)

    def test_revoked_and_unissued_refused_by_the_issuer(self):
        # Revoked on the issuer: still valid for the edge (no round trip), so Prosody asks and is told no.
        tok = self.token("alice")
        st, _, body = self.direct("POST", "/fixture/revoke-access?user_id=alice")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["revoked"], 1)
        got = self.sign_in("alice", tok)
        self.assertIn(f"<failure xmlns='{SASL_NS}'><not-authorized/>".encode(), got.replace(b'"', b"'"))
        self.assertEqual([(c["sub"], c["status"]) for c in self.checks()], [("alice", 401)])
        # A token with the issuer's keys that it never issued: the same.
        minted = self.mint("bob", 300)
        got = self.sign_in("bob", minted)
        self.assertIn(b"<failure", got)
        self.assertNotIn(b"<success", got)
        self.assertEqual([(c["sub"], c["status"]) for c in self.checks()], [("alice", 401), ("bob", 401)])
        # Neither was the edge's refusal.
        self.assertEqual(sum(self.oauth_refused(r) for r in ("expired", "identity_mismatch")), 0)

    def test_user_removed_from_unified_cm(self):
        tok = self.token("bob")
        self.assertIn(b"<success", self.sign_in("bob", tok))
        n = len(self.checks())
        st, _, body = self.get(EDGE_CONFIG, headers={"Authorization": f"Bearer {tok}"})
        self.assertEqual(st, 200, body[:300])

        # Removed from Unified CM (the fixtures re-read their cluster file): the token has not expired, but
        # the MRA access policy's look-up no longer finds bob, which is No service, on XMPP and on HTTP.
        self.write_cluster({u: v for u, v in USERS.items() if u != "bob"})
        got = self.sign_in("bob", tok)
        self.assertIn(b"<policy-violation", got)
        self.assertIn(b"no_service", got)
        self.assertNotIn(b"<failure", got)
        self.assertEqual(len(self.checks()), n, "Prosody asked the issuer about a removed user's token")
        self.assertEqual(self.refused("xmpp", "no_service"), 1)
        st, _, body = self.get(EDGE_CONFIG, headers={"Authorization": f"Bearer {tok}"})
        self.assertEqual(st, 403, body[:300])
        self.assertEqual(self.refused("http", "no_service"), 1)


class ActiveUserTest(XmppOAuthTest):
    """oauth.require_active_user without the MRA access policy: the same AXL look-up, only for a token's user."""

    MRA_POLICY = False
    OAUTH_EXTRA = "require_active_user: true, "

    # XmppOAuthTest's tests run in that class; here, only what this key changes.
    test_oauthbearer_sign_in_and_chat = None
    test_refused_at_the_edge = None
    test_revoked_and_unissued_refused_by_the_issuer = None

    def test_user_removed_from_unified_cm(self):
        tok = self.token("bob")
        self.assertIn(b"<success", self.sign_in("bob", tok))
        st, _, body = self.get(EDGE_CONFIG, headers={"Authorization": f"Bearer {tok}"})
        self.assertEqual(st, 200, body[:300])
        n = len(self.checks())

        self.write_cluster({u: v for u, v in USERS.items() if u != "bob"})
        got = self.sign_in("bob", tok)
        self.assertIn(b"<not-authorized", got)
        self.assertNotIn(b"<failure", got)
        self.assertEqual(len(self.checks()), n, "Prosody asked the issuer about a removed user's token")
        self.assertEqual(self.oauth_refused("user_not_active"), 1)
        st, hd, body = self.get(EDGE_CONFIG, headers={"Authorization": f"Bearer {tok}"})
        self.assertEqual(st, 401, body[:300])
        self.assertIn('Bearer error="invalid_token"', hd.get_all("WWW-Authenticate"))
        self.assertEqual(self.oauth_refused("user_not_active"), 2)
        # Alice, still on Unified CM, signs in as before: the key refuses removed users, nobody else.
        self.assertIn(b"<success", self.sign_in("alice", self.token("alice")))
        self.assertEqual(self.refused("xmpp", "no_service") + self.refused("http", "no_service"), 0)


if __name__ == "__main__":
    h.run_tests()
