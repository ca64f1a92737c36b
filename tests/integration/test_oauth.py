#!/usr/bin/python3
"""OAuth access tokens validated by edge-c (issue #15, parts 2-4): Unified CM's self-describing tokens (RS256 JWS
wrapping a dir/A128CBC-HS256 JWE) accepted on get_edge_config and proxied HTTP without a round trip; alg:none,
tampered, wrong-key, wrong-issuer, expired, undecryptable and refresh-as-access tokens refused with a clean 401
(`WWW-Authenticate: Bearer error="invalid_token"`), each counted under its own reason; the OAuth endpoints
reachable through the edge without edge credentials (and only those); a revoked refresh token fails at the next
refresh; regenerated keys picked up on reload, after which the old tokens get a 401, never a 500.

Topology: test_edge_token.py's (the HTTP edge topology plus a recording internal server) and
tools/fixtures/oauth_issuer.py as Unified CM's OAuth service on cucm1's address (TLS, the tomcat-cucm1 cert).

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_oauth.py
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "fixtures"))

import harness as h  # noqa: E402
from oauth_issuer import Issuer  # noqa: E402
from test_edge_token import EDGE_CONFIG, EdgeTokenTopology  # noqa: E402
from test_http_edge import ADDRS, ALICE, PY, basic, indent, port_free_on  # noqa: E402

ISSUER_SCRIPT = os.path.join(h.SRC, "tools", "fixtures", "oauth_issuer.py")
ISS = "https://cucm1.example.com:8443/ssosp"
ADMIN = ("ccmadmin", "Adm1n-Passw0rd")
REDIRECT = "jabber://oauth/callback"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def start_issuer(tc: h.TestCase, users_doc: dict, access_lifetime: int, *more: str) -> None:
    """oauth_issuer.py as Unified CM's OAuth service on cucm1's address (TLS, the tomcat-cucm1 certificate), with
    the --users document `users_doc` and `more` arguments; sets tc.oport, tc.keys (edge-c's JWKS), tc.private and
    tc.issuer_proc."""
    tc.oport = port_free_on([ADDRS["cucm1.example.com"]])
    tc.keys = os.path.join(tc.tmp, "oauth-keys.json")
    tc.private = os.path.join(tc.tmp, "oauth-private.json")
    crt = f"{tc.pki_dir}/tomcat-cucm1-chain.crt"
    if not os.path.exists(crt):
        crt = f"{tc.pki_dir}/tomcat-cucm1.crt"
    users = os.path.join(tc.tmp, "oauth-users.json")
    with open(users, "w", encoding="utf-8") as f:
        json.dump(users_doc, f)
    p = tc.start([PY, ISSUER_SCRIPT, "--listen", f"{ADDRS['cucm1.example.com']}:{tc.oport}", "--cert", crt,
                  "--key", f"{tc.pki_dir}/tomcat-cucm1.key", "--issuer", ISS, "--users", users, "--keys-out", tc.keys,
                  "--private-out", tc.private, "--access-lifetime", str(access_lifetime), *more],
                 name="oauth-issuer")
    p.wait_log(r"^READY$", timeout=15)
    tc.issuer_proc = p


class OAuthTopology(EdgeTokenTopology):
    KEY_SOURCE = "file"  # or "fetch": edge-c fetches the JWKS from the fixture's key endpoint over HTTPS
    ACCESS_LIFETIME = 300
    OAUTH_EXTRA = ""  # more keys of the `oauth:` mapping, flow style ("clock_skew: 0s, ")
    CREDENTIALS_EXTRA = ""  # more keys of the `credentials:` mapping, flow style

    def start_ucm(self) -> None:
        super().start_ucm()
        start_issuer(self, {"users": {ALICE[0]: ALICE[1]}, "admin": list(ADMIN)}, self.ACCESS_LIFETIME)

    def key_source(self) -> str:
        if self.KEY_SOURCE == "file":
            return f"keys_file: {self.keys}"
        return (f'keys_fetch: {{url: "https://cucm1.example.com:{self.oport}/fixture/jwks", '
                f'username: {ADMIN[0]}, password: "{ADMIN[1]}"}}')

    def start_pair(self) -> None:
        if self.CREDENTIALS_EXTRA:
            self.EDGE_C_EXTRA = self.EDGE_C_EXTRA.replace("credentials: {", "credentials: {" + self.CREDENTIALS_EXTRA)
        self.EDGE_C_EXTRA += (f"\noauth:\n  {self.OAUTH_EXTRA}\n  clusters:\n    - {{name: cucm-cluster-1, "
                              f"issuer: \"{ISS}\", {self.key_source()}}}" if self.OAUTH_EXTRA else
                              f"\noauth:\n  clusters:\n    - {{name: cucm-cluster-1, issuer: \"{ISS}\", "
                              f"{self.key_source()}}}")
        oauth_rule = (f'{{url: "https://cucm1.example.com:{self.oport}/", methods: [GET, POST], '
                      f'description: ssosp}}')
        from test_edge_token import pair  # the same module object the base class uses
        rules = self.edge_c_extra(f'{{url: "http://cucm1.example.com:{self.rec_port}/rec/", description: recorder}}',
                                  oauth_rule, tail=self.EDGE_C_EXTRA)
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra=indent(self.EDGE_E_EXTRA or "# -"))
        self.ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher(), extra=rules)
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()
        if self.KEY_SOURCE == "fetch":
            self.wait_keys(1)

    # ---- helpers -------------------------------------------------------------------------------------

    def ssosp(self, path: str) -> str:
        return self.proxy("https", "cucm1.example.com", self.oport, path)

    def direct(self, method: str, path: str, auth=ADMIN):
        """A request straight to the fixture (an administrator's action on Unified CM, not through the edge)."""
        return h.http_request(f"https://cucm1.example.com:{self.oport}{path}", method,
                              headers={"Authorization": basic(*auth)}, cafile=f"{self.pki_dir}/ca.crt",
                              connect_to=(ADDRS["cucm1.example.com"], self.oport))

    def oauth_refused(self, reason: str) -> int:
        return self.metric("c", "edgepair_oauth_refused_total", {"reason": reason})

    def sign_in_oauth(self, auth=ALICE) -> dict:
        """Authorization code grant through the edge, with no edge credentials: Unified CM checks the user."""
        q = urllib.parse.urlencode({"response_type": "code", "client_id": "jabber", "redirect_uri": REDIRECT,
                                    "scope": "UnifiedCommunications:readwrite", "state": "s1"})
        st, hd, body = self.get(self.ssosp(f"/ssosp/oauth/authorize?{q}"), auth=auth)
        self.assertEqual(st, 302, body)
        loc = urllib.parse.urlsplit(hd["Location"])
        code = urllib.parse.parse_qs(loc.query)["code"][0]
        form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "client_id": "jabber",
                                       "redirect_uri": REDIRECT})
        st, _, body = self.get(self.ssosp("/ssosp/oauth/token"), method="POST", body=form,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, body)
        return json.loads(body)

    def refresh(self, refresh_token: str):
        form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return self.get(self.ssosp("/ssosp/oauth/token"), method="POST", body=form,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})

    def assert_refused(self, token: str, reason: str) -> None:
        before = self.oauth_refused(reason)
        n = len(self.rec.requests)
        st, hd, _ = self.get(self.rec_path("refused"), headers=self.bearer(token))
        self.assertEqual(st, 401, reason)
        challenges = hd.get_all("WWW-Authenticate") or []
        self.assertIn('Bearer error="invalid_token"', challenges, reason)
        self.assertEqual(self.oauth_refused(reason), before + 1, reason)
        self.assertEqual(len(self.rec.requests), n, f"{reason}: the internal host was asked")

    def key_status(self) -> dict:
        _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
        return json.loads(body)["oauth_keys"][0]

    def wait_keys(self, fetches: int) -> dict:
        """Until edge-c finished `fetches` key fetches and holds keys (the fetch runs on its main loop)."""
        deadline = time.monotonic() + 15
        st = {}
        while time.monotonic() < deadline:
            st = self.key_status()
            if st["fetches"] >= fetches and st["state"] == "ok" and st["has_keys"]:
                return st
            time.sleep(0.1)
        self.fail(f"edge-c did not fetch the keys: {st}")

    def refresh_discovery(self) -> None:
        st, _, body = h.http_request(f"http://127.0.0.1:{self.ports.admin_c}/discovery/refresh", "POST", timeout=5)
        self.assertEqual(st, 202, body)

    def reload_edge_c(self) -> None:
        before = self.metric("c", "edgepair_config_reloads_total", {"result": "ok"})
        self.edge_c.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.metric("c", "edgepair_config_reloads_total", {"result": "ok"}) > before:
                return
            time.sleep(0.1)
        self.fail("edge-c did not reload")


class OAuthTest(OAuthTopology):
    # ---- tests ---------------------------------------------------------------------------------------

    def test_oauth_sign_in_refusals_refresh_revoke_regenerate(self):
        # A path of the same Unified CM host outside the OAuth endpoints still needs edge credentials.
        st, _, _ = self.get(self.ssosp("/ssosp/other"))
        self.assertEqual(st, 401)

        grant = self.sign_in_oauth()
        access, refresh = grant["access_token"], grant["refresh_token"]
        self.assertEqual(len(access.split(".")), 3)
        self.assertGreaterEqual(self.metric("c", "edgepair_http_auth_total", {"result": "oauth_endpoint"}), 2)

        # The access token signs the user in and reaches internal hosts unchanged (they validate it too).
        st, _, body = self.get(EDGE_CONFIG, headers=self.bearer(access))
        self.assertEqual(st, 200, body)
        self.assertEqual(ET.fromstring(body).tag, "getEdgeConfigResponse")
        st, _, body = self.get(self.rec_path("oauth"), headers=self.bearer(access))
        self.assertEqual(st, 200, body)
        self.assertEqual(self.rec.last().get("authorization"), ["Bearer " + access])
        ok_uds = self.metric("c", "edgepair_http_auth_total", {"result": "ok"})
        self.assertEqual(ok_uds, 0)  # no password was ever checked: validated without a round trip
        self.assertEqual(self.metric("c", "edgepair_http_auth_total", {"result": "oauth"}), 2)

        # Refusals, each with its reason.
        iss = Issuer.load(self.private)
        claims = iss.claims("alice", 300)
        good = iss.access_token(claims)
        st, _, _ = self.get(self.rec_path("minted"), headers=self.bearer(good))
        self.assertEqual(st, 200)  # the minted token is valid: each refusal below comes from its one change
        hdr, payload, sig = good.split(".")
        none_hdr = b64url(json.dumps({"alg": "none", "kid": iss.signing.get("kid")}).encode())
        mid = len(payload) // 2
        tampered_payload = payload[:mid] + ("A" if payload[mid] != "A" else "B") + payload[mid + 1:]
        cases = [
            (f"{none_hdr}.{payload}.", "alg_none"),
            (f"{hdr}.{tampered_payload}.{sig}", "bad_signature"),
            (iss.access_token(claims, signing=Issuer.new_signing()), "unknown_key"),
            (iss.access_token(dict(claims, iss="https://rogue.example.com:8443/ssosp")), "wrong_issuer"),
            (iss.access_token(dict(claims, exp=int(time.time()) - 3600)), "expired"),
            (iss.access_token(claims, encryption=Issuer.new_encryption()), "decrypt_failed"),
            (refresh, "not_access_token"),
            ("not.a.jws", "malformed"),
        ]
        for token, reason in cases:
            with self.subTest(reason=reason):
                self.assert_refused(token, reason)
        # get_edge_config refuses the same way (the client refreshes instead of asking for a password).
        st, hd, _ = self.get(EDGE_CONFIG, headers=self.bearer(cases[4][0]))
        self.assertEqual(st, 401)
        self.assertIn('Bearer error="invalid_token"', hd.get_all("WWW-Authenticate"))

        # Refresh through the edge, then revocation on Unified CM: the next refresh fails.
        st, _, body = self.refresh(refresh)
        self.assertEqual(st, 200, body)
        fresh = json.loads(body)["access_token"]
        st, _, _ = self.get(self.rec_path("refreshed"), headers=self.bearer(fresh))
        self.assertEqual(st, 200)
        st, _, body = self.direct("POST", "/ssosp/token/revoke?user_id=alice")
        self.assertEqual(st, 200, body)
        self.assertGreaterEqual(json.loads(body)["revoked"], 1)
        st, _, body = self.refresh(refresh)
        self.assertEqual(st, 400, body)
        self.assertEqual(json.loads(body)["error"], "invalid_grant")

        # Keys regenerated on Unified CM, edge-c reloaded: the old tokens get a clean 401, new ones work.
        st, _, body = self.direct("POST", "/fixture/regenerate?key=both")
        self.assertEqual(st, 200, body)
        self.reload_edge_c()
        self.assert_refused(fresh, "unknown_key")
        new = self.sign_in_oauth()["access_token"]
        st, _, body = self.get(self.rec_path("new-keys"), headers=self.bearer(new))
        self.assertEqual(st, 200, body)
        self.assertEqual(self.metric("c", "edgepair_http_requests_total", {"status": "500"}), 0)

        self.assert_no_secret_in_logs(ALICE[1], ADMIN[1], access, refresh, fresh, new, good)


class OAuthFetchedKeysTest(OAuthTopology):
    """Keys fetched from the issuer over HTTPS (oauth.clusters[].keys_fetch), short access tokens, and the
    per-user authorization limit."""

    KEY_SOURCE = "fetch"
    ACCESS_LIFETIME = 8  # short, but room for a 2048-bit key generation on a loaded machine
    OAUTH_EXTRA = "clock_skew: 0s"
    CREDENTIALS_EXTRA = "max_authorizations: 3, authorization_period: 120s, "

    def test_fetched_keys_regenerated_then_refreshed(self):
        # Signed in with keys edge-c fetched at start (no keys_file anywhere in its configuration).
        self.assertNotIn("keys_file", open(self.ccfg).read())
        st0 = self.key_status()
        tok = self.sign_in_oauth()["access_token"]
        st, _, body = self.get(self.rec_path("fetched"), headers=self.bearer(tok))
        self.assertEqual(st, 200, body)

        # Regenerated on the issuer: until edge-c refreshes, it still holds the old keys (the fetch is what
        # changes them, not a side channel), so the old token still passes.
        st, _, body = self.direct("POST", "/fixture/regenerate?key=both")
        self.assertEqual(st, 200, body)
        st, _, _ = self.get(self.rec_path("before-refresh"), headers=self.bearer(tok))
        self.assertEqual(st, 200)

        # A refresh (POST /discovery/refresh: "when discovery runs") fetches the new set.
        self.refresh_discovery()
        self.wait_keys(st0["fetches"] + 1)
        self.assertGreaterEqual(self.metric("c", "edgepair_oauth_key_fetches_total", {"result": "ok"}), 2)
        n = len(self.rec.requests)
        before = self.oauth_refused("unknown_key")
        st, hd, body = self.get(self.rec_path("old-token"), headers=self.bearer(tok))
        self.assertEqual(st, 401, body)  # never a 500
        self.assertIn('Bearer error="invalid_token"', hd.get_all("WWW-Authenticate"))
        self.assertEqual(self.oauth_refused("unknown_key"), before + 1)
        self.assertEqual(len(self.rec.requests), n, "the internal host was asked with a refused token")
        with open(self.edge_c.log_path, encoding="utf-8", errors="replace") as f:
            self.assertRegex(f.read(), r"OAuth token refused: unknown_key")
        new = self.sign_in_oauth()["access_token"]
        st, _, body = self.get(self.rec_path("new-token"), headers=self.bearer(new))
        self.assertEqual(st, 200, body)
        self.assertEqual(self.metric("c", "edgepair_http_requests_total", {"status": "500"}), 0)

        # A failed fetch (the issuer gone) keeps the last good keys and raises an alarm.
        self.issuer_proc.stop()
        self.refresh_discovery()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.key_status()["state"] != "error":
            time.sleep(0.1)
        self.assertEqual(self.key_status()["state"], "error")
        self.assertTrue(self.key_status()["has_keys"])
        st, _, body = self.get(self.rec_path("after-failed-fetch"), headers=self.bearer(new))
        self.assertEqual(st, 200, body)
        deadline = time.monotonic() + 15
        alarms = []
        while time.monotonic() < deadline:
            _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/alarms", timeout=5)
            alarms = json.loads(body)
            alarms = alarms.get("alarms", alarms) if isinstance(alarms, dict) else alarms
            if any(a.get("id") == "oauth.keys:cucm-cluster-1" and a.get("state") == "raised" for a in alarms):
                break
            time.sleep(0.2)
        self.assertTrue(any(a.get("id") == "oauth.keys:cucm-cluster-1" and a.get("state") == "raised" for a in alarms), alarms)

    def test_expiry_refresh_revocation(self):
        grant = self.sign_in_oauth()
        access, refresh = grant["access_token"], grant["refresh_token"]
        self.assertEqual(grant["expires_in"], self.ACCESS_LIFETIME)
        st, _, body = self.get(self.rec_path("fresh"), headers=self.bearer(access))
        self.assertEqual(st, 200, body)
        # Past the configured lifetime (clock_skew 0s): refused with what makes a client refresh.
        time.sleep(self.ACCESS_LIFETIME + 1.2)
        n = len(self.rec.requests)
        before = self.oauth_refused("expired")
        for path in (self.rec_path("expired"), EDGE_CONFIG):
            st, hd, _ = self.get(path, headers=self.bearer(access))
            self.assertEqual(st, 401)
            self.assertIn('Bearer error="invalid_token"', hd.get_all("WWW-Authenticate"))
        self.assertEqual(self.oauth_refused("expired"), before + 2)
        self.assertEqual(len(self.rec.requests), n)
        # The refresh grant through the edge (no edge credentials) gives a working token.
        st, _, body = self.refresh(refresh)
        self.assertEqual(st, 200, body)
        fresh = json.loads(body)["access_token"]
        self.assertNotEqual(fresh, access)
        st, _, body = self.get(self.rec_path("refreshed"), headers=self.bearer(fresh))
        self.assertEqual(st, 200, body)
        self.assertEqual(self.rec.last().get("authorization"), ["Bearer " + fresh])
        # Revoked on Unified CM: the next refresh fails; the access token already out lives to its expiry.
        st, _, body = self.direct("POST", "/ssosp/token/revoke?user_id=alice")
        self.assertEqual(st, 200, body)
        st, _, body = self.refresh(refresh)
        self.assertEqual(st, 400, body)
        self.assertEqual(json.loads(body)["error"], "invalid_grant")

    def test_authorization_rate_per_user(self):
        def limited(method: str) -> int:
            return self.metric("c", "edgepair_auth_rate_limited_total", {"reason": "authorizations", "method": method})

        checks = lambda: sum(self.metric("c", "edgepair_http_auth_total", {"result": r}) for r in ("ok", "cached", "denied"))
        for _ in range(3):
            st, _, body = self.get(EDGE_CONFIG, auth=ALICE)
            self.assertEqual(st, 200, body)
        n_checks = checks()
        st, hd, body = self.get(EDGE_CONFIG, auth=ALICE)
        self.assertEqual(st, 429, body)
        self.assertGreaterEqual(int(hd["Retry-After"]), 1)
        self.assertEqual(limited("basic"), 1)
        self.assertEqual(checks(), n_checks, "the password was checked although the limit refused the sign-in")

        # The same user with a token is the same user: its sign-in is refused too...
        iss = Issuer.load(self.private)
        alice_tok = iss.access_token(iss.claims("alice", 300))
        st, hd, body = self.get(EDGE_CONFIG, headers=self.bearer(alice_tok))
        self.assertEqual(st, 429, body)
        self.assertIn("Retry-After", hd)
        self.assertEqual(limited("oauth"), 1)
        # ...but what it signed in for keeps working (only sign-ins count), and the limit is per user.
        st, _, body = self.get(self.rec_path("after-limit"), headers=self.bearer(alice_tok))
        self.assertEqual(st, 200, body)
        carol = iss.access_token(iss.claims("carol", 300))
        for _ in range(3):
            st, _, body = self.get(EDGE_CONFIG, headers=self.bearer(carol))
            self.assertEqual(st, 200, body)
        st, _, _ = self.get(EDGE_CONFIG, headers=self.bearer(carol))
        self.assertEqual(st, 429)
        self.assertEqual(limited("oauth"), 2)
        # No user name is a metric label.
        _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/metrics", timeout=5)
        for name in ("alice", "carol"):
            self.assertNotIn(name.encode(), body)


if __name__ == "__main__":
    h.run_tests()
