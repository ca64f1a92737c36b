#!/usr/bin/python3
"""Secrets never reach a log, /status, /alarms or /metrics (issue #15, item 9).

One run of the pair at debug log level with the access logs on signs in every way the HTTP edge knows, good and
bad: Basic (right and wrong password), the edge token (as cookie and as bearer, and a forged one), OAuth (the
authorization-code grant through the edge, the access token, a refresh, a revoked refresh, and tampered /
wrong-issuer / expired tokens), with edge-c fetching the OAuth keys with an administrator password. Then every
log file of the run (each process's output, nginx's, the access logs) and both edges' /status, /alarms and
/metrics are searched for every password, token, cookie value and authorization code used, and for the Basic
field values that carry the passwords: none may appear.

Topology: test_oauth.py's (HTTP edge, recording internal server, the OAuth fixture on cucm1's address) with
keys_fetch as the key source.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_secrets_in_logs.py
"""

from __future__ import annotations

import base64
import glob
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "fixtures"))

import harness as h  # noqa: E402
import pair  # noqa: E402
from oauth_issuer import Issuer  # noqa: E402
from test_edge_token import EDGE_CONFIG, cookie_token  # noqa: E402
from test_http_edge import ALICE, basic  # noqa: E402
from test_oauth import ADMIN, REDIRECT, OAuthTopology  # noqa: E402

WRONG = ("alice", "Wr0ng-Secret-Guess")


class SecretsTest(OAuthTopology):
    KEY_SOURCE = "fetch"
    OAUTH_EXTRA = "clock_skew: 0s"

    def start_pair(self) -> None:
        # The access logs on: they are logs of the run too (a request line must not carry a credential).
        real_yaml = self.write_yaml

        def with_access_log(name, text, **fmt):
            side = "edge-e" if name.startswith("edge-e") else "edge-c"
            text = text.replace("log: {level: debug}",
                                f"log: {{level: debug, access: {{file: {self.tmp}/{side}-access.log}}}}")
            return real_yaml(name, text, **fmt)

        self.write_yaml = with_access_log
        try:
            super().start_pair()
        finally:
            self.write_yaml = real_yaml

    def test_no_secret_anywhere(self):
        secrets: dict[str, str] = {}

        # Basic, right and wrong; the edge token that comes back, as cookie and as bearer; a forged one.
        st, hd, body = self.get(EDGE_CONFIG, auth=ALICE)
        self.assertEqual(st, 200, body)
        edge_tok = cookie_token(hd)
        self.assertTrue(edge_tok)
        st, _, _ = self.get(EDGE_CONFIG, auth=WRONG)
        self.assertEqual(st, 401)
        st, _, _ = self.get(self.rec_path("cookie"), headers={"Cookie": f"X-Auth={edge_tok}"})
        self.assertEqual(st, 200)
        st, _, _ = self.get(self.rec_path("edge-bearer"), headers=self.bearer(edge_tok))
        self.assertEqual(st, 200)
        forged = edge_tok[:-6] + ("AAAAAA" if not edge_tok.endswith("AAAAAA") else "BBBBBB")
        st, _, _ = self.get(self.rec_path("forged"), headers={"Cookie": f"X-Auth={forged}"})
        self.assertEqual(st, 401)
        st, _, _ = self.get(self.rec_path("basic"), auth=ALICE)
        self.assertEqual(st, 200)

        # OAuth: authorization code through the edge, token, refresh, revoke, refused tokens.
        q = urllib.parse.urlencode({"response_type": "code", "client_id": "jabber", "redirect_uri": REDIRECT})
        st, hd, body = self.get(self.ssosp(f"/ssosp/oauth/authorize?{q}"), auth=ALICE)
        self.assertEqual(st, 302, body)
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(hd["Location"]).query)["code"][0]
        form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code})
        st, _, body = self.get(self.ssosp("/ssosp/oauth/token"), method="POST", body=form,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, body)
        grant = json.loads(body)
        access, refresh = grant["access_token"], grant["refresh_token"]
        st, _, _ = self.get(EDGE_CONFIG, headers=self.bearer(access))
        self.assertEqual(st, 200)
        st, _, _ = self.get(self.rec_path("oauth"), headers=self.bearer(access))
        self.assertEqual(st, 200)
        st, _, body = self.refresh(refresh)
        self.assertEqual(st, 200, body)
        fresh = json.loads(body)["access_token"]
        self.direct("POST", "/ssosp/token/revoke?user_id=alice")
        st, _, _ = self.refresh(refresh)
        self.assertEqual(st, 400)
        iss = Issuer.load(self.private)
        claims = iss.claims("alice", 300)
        hdr, payload, sig = iss.access_token(claims).split(".")
        tampered = f"{hdr}.{payload[:-4]}AAAA.{sig}"
        rogue = iss.access_token(dict(claims, iss="https://rogue.example.com/ssosp"))
        expired = iss.access_token(dict(claims, exp=int(time.time()) - 60))
        for tok in (tampered, rogue, expired, refresh):
            st, _, _ = self.get(self.rec_path("refused"), headers=self.bearer(tok))
            self.assertEqual(st, 401)
        # The refusals above were counted (the requests did reach edge-c's checks).
        for reason in ("bad_signature", "wrong_issuer", "expired", "not_access_token"):
            self.assertGreaterEqual(self.oauth_refused(reason), 1, reason)

        secrets.update({
            "alice's password": ALICE[1], "the wrong password": WRONG[1], "the OAuth admin password": ADMIN[1],
            "the AXL password": "Axl-Passw0rd", "the link password": pair.DEMO_LINK_PASSWORD,
            "alice's Basic value": basic(*ALICE).split(" ", 1)[1],
            "the wrong Basic value": basic(*WRONG).split(" ", 1)[1],
            "the admin Basic value": base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode(),
            "the edge token (cookie value)": edge_tok, "the forged edge token": forged,
            "the authorization code": code, "the access token": access, "the refresh token": refresh,
            "the refreshed access token": fresh, "a tampered token": tampered, "a wrong-issuer token": rogue,
            "an expired token": expired,
        })
        # Signatures are what a truncated token in a log would still show.
        for name, tok in list(secrets.items()):
            if tok.count(".") == 2:
                secrets[name + " (signature part)"] = tok.rsplit(".", 1)[1]
            elif tok.startswith("ept1.") and len(tok) > 40:
                secrets[name + " (sealed part)"] = tok[5:][-32:]

        # Everything an operator or a log shipper sees.
        time.sleep(1.5)  # the alarms are checked every second; /status after the last request
        pages = {}
        for side, port in (("edge-c", self.ports.admin_c), ("edge-e", self.ports.admin_e)):
            for page in ("/status", "/alarms", "/metrics"):
                st, _, body = h.http_get(f"http://127.0.0.1:{port}{page}", timeout=5)
                self.assertEqual(st, 200, f"{side}{page}")
                pages[f"{side}{page}"] = body
        self.assertIn(b"oauth_keys", pages["edge-c/status"])
        files = sorted(set([p.log_path for p in self._procs]
                           + glob.glob(os.path.join(self.tmp, "**", "*.log"), recursive=True)))
        for f in files:
            with open(f, "rb") as fh:
                pages[f] = fh.read()
        for side in ("edge-c", "edge-e"):
            self.assertIn(os.path.join(self.tmp, f"{side}-access.log"), pages)
        # The logs saw this run's traffic: each refusal reason is in edge-c's log, at debug level.
        with open(self.edge_c.log_path, "rb") as fh:
            clog = fh.read()
        self.assertRegex(clog, rb"OAuth token refused: bad_signature")
        self.assertRegex(clog, rb"edge token refused")
        self.assertRegex(clog, rb"\bDEBUG\b|\bdebug\b")

        leaks = []
        for where, data in pages.items():
            for name, value in secrets.items():
                if value and value.encode() in data:
                    leaks.append(f"{name} in {where}")
        self.assertEqual(leaks, [], "secrets leaked")
        self.assertGreater(sum(len(d) for d in pages.values()), 20000)  # the search saw a run's worth


if __name__ == "__main__":
    h.run_tests()
