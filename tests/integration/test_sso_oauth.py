#!/usr/bin/python3
"""Single sign-on that ends in Unified CM OAuth tokens, then IM over XMPP (issue #21, `sso_tokens: unified_cm`).

The browser signs in at the pysaml2 IdP (saml_idp.py) through the pair as in test_saml_sso.py; with the domain's
`sso_tokens: unified_cm`, edge-c does not answer an edge token but hands the assertion to the user's home Unified
CM (RFC 7522 assertion grant on /ssosp/oauth/token; assumed, docs/PROTOCOL-FACTS.md) and answers the client the
access and refresh tokens Unified CM issued. Unified CM here: ucm_fixture.py (cucm1), which passes /ssosp/* on its
own port to oauth_issuer.py, started with the IdP's metadata and the edge's entity ID as the audience it trusts
(pysaml2 checks the signature, audience, times and uid). Then, with those tokens: UDS through the pair with the
Bearer token (the fixture validates it: uds:user:bearer:<id>), XMPP sign-in with OAUTHBEARER through edge-e to
Prosody (mod_auth_oauthbearer asks the issuer) and a message to another user signed in the same way, and a
refresh through the pair. Refused: an assertion for a user the issuer does not know (502), Unified CM's OAuth
service down (503), and (OtherIdpTest) an issuer that trusts another key for the IdP (502): the client gets a clear
error and no token, and the issuer's record shows why.

Topology: test_xmpp_oauth.py's (Prosody as IM&P, the issuer, ucm_fixture cucm1 and imp1, dnsmasq, the pair with
the MRA access policy and OAuth), plus the IdP and the SSO configuration on both edges.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_sso_oauth.py
"""

from __future__ import annotations

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import test_saml_sso as ts  # noqa: E402 - a module, not its classes: their tests must not run here
import test_xmpp as tx  # noqa: E402
import test_xmpp_oauth as txo  # noqa: E402
from test_http_edge import EDGE  # noqa: E402
from test_oauth import OAuthTopology  # noqa: E402 - no tests of its own

SP_ENTITY = "https://expc1.example.com/saml/sp"
CLIENT_ID = "jabber-test"  # what ts.SamlTopology.authorize names as client_id
# IdP login -> (password, uid). ivy is a Unified CM user (home cluster found) that the issuer does not know.
IDP_USERS = dict(ts.IDP_USERS, **{"ivy.idp": ("Idp-Passw0rd", "ivy")})
EDGE_TOKEN_PREFIX = "ept1."  # edge-c/edge_token.h kEdgeTokenPrefix


class SsoOAuthTest(txo.XmppOAuthTest):
    # The parent's tests run in test_xmpp_oauth.py.
    test_oauthbearer_sign_in_and_chat = None
    test_refused_at_the_edge = None
    test_revoked_and_unissued_refused_by_the_issuer = None
    test_user_removed_from_unified_cm = None

    # The browser's steps, as test_saml_sso.py drives them.
    authorize = ts.SamlTopology.authorize
    at_idp = ts.SamlTopology.at_idp
    response_form = ts.SamlTopology.response_form
    post_form = ts.SamlTopology.post_form
    refresh = OAuthTopology.refresh

    TRUST_OTHER_KEY = False  # OtherIdpTest: the issuer holds the IdP's metadata with another certificate

    # ---- topology ---------------------------------------------------------------------------------------

    def issuer_args(self) -> list[str]:
        if ts.SAML_IMPORT_ERROR:
            self.skipTest(ts.SAML_IMPORT_ERROR)
        self.require_tool("xmlsec1")
        self.idp = ts.SamlIdp(self.tmp, IDP_USERS)
        self.addCleanup(self.idp.close)
        sp_key, self.sp_crt = ts.make_key_pair(self.tmp, "sp-signing", "expc1.example.com")
        self.sp_key = sp_key
        metadata = self.idp.metadata_file
        if self.TRUST_OTHER_KEY:
            # The same IdP entity with a certificate the IdP does not sign with: the issuer's signature check
            # must fail although edge-c (holding the real metadata) accepted the assertion.
            _, other_crt = ts.make_key_pair(self.tmp, "other-idp", "idp.example.com")
            with open(other_crt, encoding="ascii") as f:
                other_b64 = "".join(line for line in f.read().splitlines() if "-----" not in line)
            with open(metadata, encoding="utf-8") as f:
                text = f.read()
            swapped, n = re.subn(r"(<(?:\w+:)?X509Certificate>)[^<]+(</(?:\w+:)?X509Certificate>)",
                                 rf"\g<1>{other_b64}\g<2>", text)
            self.assertEqual(n, 1, "the IdP metadata's certificate was not found")
            metadata = os.path.join(self.tmp, "issuer-idp-metadata.xml")
            with open(metadata, "w", encoding="utf-8") as f:
                f.write(swapped)
        return ["--saml-idp-metadata", metadata, "--saml-audience", SP_ENTITY]

    def fixture_args(self, node: str) -> list[str]:
        if node != "cucm1.example.com":
            return []
        self.ucm_state = os.path.join(self.tmp, "ucm-cucm1.json")
        return ["--state-file", self.ucm_state, "--oauth-keys", self.private,
                "--ssosp", f"127.0.1.1:{self.oport}", "--ssosp-ca", f"{self.pki_dir}/ca.crt"]

    def edge_e_extra(self) -> str:
        return "sso: {check_internal_availability: true, domains: [{name: example.com, mode: on}]}"

    def domains_yaml(self) -> str:
        return "- {name: example.com, sso: on, idp: idp1, sso_tokens: unified_cm}"

    def edge_c_extra(self) -> str:
        return super().edge_c_extra() + (
            "\n        sso:"
            f"\n          entity_id: {SP_ENTITY}"
            f"\n          signing: {{cert: {self.sp_crt}, key: {self.sp_key}}}"
            f'\n          edge_e_addresses: ["{EDGE}:{self.ports.https}"]'
            f"\n          identity_providers: [{{name: idp1, metadata_file: {self.idp.metadata_file}}}]")

    def start_pair(self):
        super().start_pair()
        st, _, md = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/sso/metadata", timeout=5)
        self.assertEqual(st, 200, md)
        self.idp.trust_sp(md.decode())

    # ---- helpers ----------------------------------------------------------------------------------------

    def sso(self, login: str):
        """The whole browser sign-in of IdP user `login`: (status, headers, body) of the POST to the edge."""
        action, fields = self.response_form(login=(login, IDP_USERS[login][0]))
        return self.post_form(action, fields)

    def grants(self) -> list[dict]:
        """The assertion grants the issuer received (its own record)."""
        st, _, body = self.direct("GET", "/fixture/saml-grants")
        self.assertEqual(st, 200, body)
        return json.loads(body)["grants"]

    def ucm_count(self, key: str) -> int:
        with open(self.ucm_state, encoding="utf-8") as f:
            return json.load(f).get("requests", {}).get(key, 0)

    def assert_unified_cm_tokens(self, st: int, hd, body: bytes, user: str) -> dict:
        """A 200 with Unified CM's tokens for `user`, and nothing of an edge token."""
        self.assertEqual(st, 200, body[:400])
        self.assertIsNone(hd.get("Set-Cookie"), "an X-Auth cookie: edge-c issued an edge token")
        answer = json.loads(body)
        self.assertEqual(answer["token_type"], "Bearer")
        self.assertEqual(answer["user"], user)
        for k in ("access_token", "refresh_token"):
            self.assertFalse(answer[k].startswith(EDGE_TOKEN_PREFIX), f"{k} is an edge token")
        # The issuer's own token for this user and the client Jabber named at authorize.
        claims = self.issuer.read_access(answer["access_token"])
        self.assertIsNotNone(claims, "the access token is not the issuer's")
        self.assertEqual((claims["sub"], claims["ccid"]), (user, CLIENT_ID))
        refresh = self.issuer.read_refresh(answer["refresh_token"])
        self.assertEqual((refresh["sub"], refresh["ctyp"]), (user, "refresh"))
        return answer

    def metric_c(self, name: str, **labels: str) -> float:
        """edge-c's counter `name` summed over the series with `labels` (a counter without labels too)."""
        _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/metrics", timeout=5)
        total = 0.0
        for line in body.decode().splitlines():
            series, _, value = line.rpartition(" ")
            if (series == name or series.startswith(name + "{")) and \
                    all(f'{k}="{v}"' in series for k, v in labels.items()):
                total += float(value)
        return total

    # ---- tests ------------------------------------------------------------------------------------------

    def test_sso_to_unified_cm_tokens_uds_xmpp_refresh(self):
        st, hd, body = self.sso("alice.idp")
        alice = self.assert_unified_cm_tokens(st, hd, body, "alice")
        # What the issuer received: one assertion grant, through the node's own port, for this client, with
        # the assertion the IdP made for the edge (its audience), and it issued.
        self.assertEqual(self.ucm_count("ssosp"), 1)
        [g] = self.grants()
        self.assertEqual((g["client_id"], g["uid"], g["issuer"], g["status"], g["reason"]),
                         (CLIENT_ID, "alice", self.idp.entity_id, 200, "ok"))
        self.assertEqual(g["audiences"], [SP_ENTITY])
        self.assertRegex(g["assertion_id"], r"^\S+$")
        self.assertEqual(self.metric_c("edgepair_saml_responses_total", result="ok"), 1)
        self.assertEqual(self.metric_c("edgepair_sso_tokens_total", kind="unified_cm"), 1)
        self.assertEqual(self.metric_c("edgepair_sso_tokens_total", kind="edge"), 0)
        self.assertEqual(self.metric_c("edgepair_edge_tokens_issued_total"), 0)
        # The AuthnRequest carried the client id in its ID (what the IdP echoed as InResponseTo).
        self.assertTrue(self.idp.requests[-1]["id"].endswith(".c" + CLIENT_ID.encode().hex()),
                        self.idp.requests[-1]["id"])

        # UDS through the pair with the Bearer token: validated by edge-c, passed on, and accepted by the node
        # as its own token for alice (no password anywhere).
        uds = self.proxy("https", "cucm1.example.com", self.fport["cucm1.example.com"], "/cucm-uds/user/alice")
        st, _, body = self.get(uds, headers={"Authorization": f"Bearer {alice['access_token']}"})
        self.assertEqual(st, 200, body[:300])
        self.assertIn(b"<userName>alice</userName>", body)
        self.assertEqual(self.ucm_count("uds:user:bearer:alice"), 1)
        self.assertEqual(self.ucm_count("uds:user:401"), 0)

        # IM: bob signs in the same way, both sign in to XMPP with OAUTHBEARER through edge-e, and chat.
        st, hd, body = self.sso("bob.idp")
        bob = self.assert_unified_cm_tokens(st, hd, body, "bob")
        self.assertEqual(self.checks(), [])
        with self.session("alice", alice["access_token"], "desk") as a, \
                self.session("bob", bob["access_token"], "phone") as b:
            self.assertEqual([(c["client"], c["sub"], c["status"]) for c in self.checks()],
                             [(txo.CHECK_CLIENT[0], "alice", 200), (txo.CHECK_CLIENT[0], "bob", 200)])
            self.chat(a, b, b"hello bob, signed in at the IdP")

        # The refresh token through the pair (Unified CM's token endpoint passes without edge credentials).
        st, _, body = self.refresh(alice["refresh_token"])
        self.assertEqual(st, 200, body[:300])
        fresh = json.loads(body)["access_token"]
        self.assertNotEqual(fresh, alice["access_token"])
        self.assertEqual(self.issuer.read_access(fresh)["sub"], "alice")
        st, _, body = self.get(uds, headers={"Authorization": f"Bearer {fresh}"})
        self.assertEqual(st, 200, body[:300])
        self.assertEqual(self.ucm_count("uds:user:bearer:alice"), 2)

        # No token, and no assertion, in any log.
        for proc in (self.edge_c, self.edge_e, self.issuer_proc):
            for tok in (alice["access_token"], alice["refresh_token"], bob["access_token"], fresh):
                self.assertNotIn(tok, proc.log_text(), proc.name)

    def test_refused_or_unavailable_unified_cm(self):
        # ivy is on Unified CM (her home cluster is found) but the issuer does not know her: it refuses the
        # grant, and the client gets a clear error and no token.
        st, hd, body = self.sso("ivy.idp")
        self.assertEqual(st, 502, body)
        self.assertIn(b"Unified CM did not issue tokens", body)
        self.assertNotIn(b"access_token", body)
        self.assertIsNone(hd.get("Set-Cookie"))
        [g] = self.grants()
        self.assertEqual((g["uid"], g["status"], g["reason"]), ("ivy", 400, "unknown user"))
        self.assertEqual(self.metric_c("edgepair_saml_responses_total", result="ucm_refused"), 1)
        self.assertEqual(self.metric_c("edgepair_saml_responses_total", result="ok"), 0)
        self.assertEqual(self.metric_c("edgepair_sso_tokens_total"), 0)
        self.edge_c.wait_log(r"SSO user ivy: Unified CM cucm1\.example\.com:\d+ answered 400 \(invalid_grant\)",
                             timeout=5)

        # Unified CM's OAuth service down (the node answers 500): 503 to the client, no token, counted apart.
        self.issuer_proc.stop()
        st, hd, body = self.sso("alice.idp")
        self.assertEqual(st, 503, body)
        self.assertIn(b"Unified CM unavailable", body)
        self.assertNotIn(b"access_token", body)
        self.assertIsNone(hd.get("Set-Cookie"))
        self.assertEqual(self.metric_c("edgepair_saml_responses_total", result="ucm_unavailable"), 1)
        self.assertEqual(self.metric_c("edgepair_sso_tokens_total"), 0)
        self.edge_c.wait_log(r"SSO user alice: Unified CM cucm1\.example\.com:\d+ answered 500", timeout=5)


class OtherIdpTest(SsoOAuthTest):
    """The issuer trusts another certificate for the IdP: edge-c accepts the assertion, Unified CM does not."""

    TRUST_OTHER_KEY = True
    test_sso_to_unified_cm_tokens_uds_xmpp_refresh = None
    test_refused_or_unavailable_unified_cm = None

    def test_assertion_refused_by_the_issuer(self):
        st, hd, body = self.sso("alice.idp")
        self.assertEqual(st, 502, body)
        self.assertNotIn(b"access_token", body)
        self.assertIsNone(hd.get("Set-Cookie"))
        [g] = self.grants()
        self.assertEqual((g["uid"], g["status"]), (None, 400))
        self.assertTrue(g["reason"].startswith("signature"), g)
        self.assertEqual(g["issuer"], self.idp.entity_id)
        self.assertEqual(self.metric_c("edgepair_saml_responses_total", result="ucm_refused"), 1)
        self.assertEqual(self.metric_c("edgepair_sso_tokens_total"), 0)


class SsoOAuthExclusiveTest(SsoOAuthTest):
    """Exclusive: the IdP is the only way in, over XMPP too. A SASL mechanism without a token (a password) is
    refused at edge-c in the stream, before Prosody sees it; OAUTHBEARER with the Unified CM token the sign-in
    bought still signs in."""

    test_sso_to_unified_cm_tokens_uds_xmpp_refresh = None
    test_refused_or_unavailable_unified_cm = None

    def edge_e_extra(self) -> str:
        return "sso: {check_internal_availability: true, domains: [{name: example.com, mode: exclusive}]}"

    def domains_yaml(self) -> str:
        return "- {name: example.com, sso: exclusive, idp: idp1, sso_tokens: unified_cm}"

    def refused_in_stream(self) -> float:
        return self.metric_c("edgepair_xmpp_signin_refused_total", reason="sso_exclusive")

    def assert_refused_exclusive(self, got: bytes) -> None:
        self.assertIn(b"<not-authorized", got)
        self.assertIn(b"this domain signs in through single sign-on only", got)
        self.assertNotIn(b"<failure", got)  # Prosody answers every <auth> it gets: it got none
        self.assertNotIn(b"<success", got)

    def test_passwords_refused_on_xmpp_tokens_sign_in(self):
        n = len(self.checks())
        # PLAIN with alice's Unified CM password, and CISCO-VTG-TOKEN (IM&P's one-time password form).
        self.assert_refused_exclusive(self.sign_in("alice"))
        self.assertEqual(self.refused_in_stream(), 1)
        self.edge_c.wait_log(r"SASL PLAIN refused: the domain signs in through single sign-on only", timeout=5)
        with self.starttls(self.client()) as t:
            t.sendall(tx.header())
            tx.recv_until(t, rb"</stream:features>")
            self.assert_refused_exclusive(self.sasl(t, "CISCO-VTG-TOKEN", "userid=alice@example.com\0token=12345"))
        self.assertEqual(self.refused_in_stream(), 2)
        # A password in a stanza instead of <auth/> (XEP-0078): refused too.
        with self.starttls(self.client()) as t:
            t.sendall(tx.header())
            tx.recv_until(t, rb"</stream:features>")
            t.sendall(b"<iq type='set' id='a1'><query xmlns='jabber:iq:auth'><username>alice</username>"
                      b"<password>" + txo.USERS["alice"]["password"].encode() + b"</password>"
                      b"<resource>desk</resource></query></iq>")
            self.assert_refused_exclusive(tx.recv_until(t, rb"</stream:stream>"))
        self.assertEqual(self.refused_in_stream(), 3)
        # A token Prosody refuses (the issuer never issued it; edge-c, validating offline, cannot tell), then
        # PLAIN on the same stream: the retry is read like the first <auth/>.
        with self.starttls(self.client()) as t:
            t.sendall(tx.header())
            tx.recv_until(t, rb"</stream:features>")
            got = self.sasl(t, "OAUTHBEARER", f"n,a=bob@example.com,\x01auth=Bearer {self.mint('bob', 300)}\x01\x01")
            self.assertIn(b"<failure", got)
            self.assertEqual(len(self.checks()), n + 1)
            self.assert_refused_exclusive(self.sasl(t, "PLAIN", f"\0bob\0{txo.USERS['bob']['password']}"))
        self.assertEqual(self.refused_in_stream(), 4)
        # Prosody saw none of the passwords: it was asked about one token, and its log (debug: every stanza it
        # received) names no password mechanism.
        self.assertEqual(len(self.checks()), n + 1)
        prosody_log = self.prosody.log_text()
        self.assertIn("mechanism='OAUTHBEARER'", prosody_log)  # what reached it is in its log
        for what in ("mechanism='PLAIN'", "mechanism='CISCO-VTG-TOKEN'", "jabber:iq:auth"):
            self.assertNotIn(what, prosody_log)
        for user in ("alice", "bob"):
            self.assertNotIn(txo.USERS[user]["password"], prosody_log)

        # The sign-in through the IdP, then OAUTHBEARER with its Unified CM token: in.
        st, hd, body = self.sso("alice.idp")
        alice = self.assert_unified_cm_tokens(st, hd, body, "alice")
        with self.session("alice", alice["access_token"], "desk"):
            self.assertEqual([(c["sub"], c["status"]) for c in self.checks()[n + 1:]], [("alice", 200)])
        self.assertEqual(self.refused_in_stream(), 4)


if __name__ == "__main__":
    h.run_tests()
