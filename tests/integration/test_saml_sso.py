#!/usr/bin/python3
"""Single sign-on over the edge with SAML 2.0 (issue #21), against a real identity provider: pysaml2 (Debian
python3-pysaml2, tests/integration/saml_idp.py) on loopback, trusting the service provider metadata edge-c
exports on its admin port, while edge-c imports the IdP's metadata.

The browser's path, as the test drives it:
  GET  edge-e /<b64 domain>/authorize   -> 302 to the IdP with a signed AuthnRequest (HTTP-Redirect, RSA-SHA256)
  GET  IdP /sso/redirect (+ the IdP's own password) -> the HTTP-POST form with the signed Response
  POST edge-e /<b64 domain>/fedlet      -> edge-c checks it, answers an edge token (X-Auth cookie and JSON)
then the token signs in get_edge_config and reaches UDS and an internal host through the pair. Refused Responses
(tampered, wrong audience, expired, replayed, no uid, wrong recipient) each get the guide's wording and their own
`reason`, and the internal side sees nothing of them (the Unified CM fixture's request counts). Exclusive mode
refuses credentials; get_edge_sso answers per user (home cluster found or not) and per mode, from edge-e alone
when the internal check is off.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_saml_sso.py
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402

try:
    from saml_idp import SamlIdp, make_key_pair, parse_post_form  # noqa: E402
    SAML_IMPORT_ERROR = ""
except ImportError as e:  # python3-pysaml2 (or python3-cryptography) missing: skipped, failed under CI
    SAML_IMPORT_ERROR = f"{e} (tools/test.sh installs python3-pysaml2)"
from test_edge_token import EDGE_CONFIG, EdgeTokenTopology, cookie_token  # noqa: E402
from test_http_edge import ADDRS, ALICE, DEMO_JSON, DOMAIN_B64, EDGE, FIXTURE, PY, basic  # noqa: E402

PLAIN = "plain.example.com"  # a second domain, SSO off
PLAIN_B64 = base64.b64encode(PLAIN.encode()).decode().rstrip("=")
IDP_USERS = {"alice.idp": ("Idp-Passw0rd", "alice"), "bob.idp": ("Idp-Passw0rd", "bob"),
             "ghost.idp": ("Idp-Passw0rd", "ghost")}
BOB_IDP = ("bob.idp", IDP_USERS["bob.idp"][0])


class SamlTopology(EdgeTokenTopology):
    MODE = "on"  # the SSO mode of example.com, the same on both edges
    CHECK_INTERNAL = True
    PLAIN_ON_EDGE_E = "off"  # plain.example.com's mode in edge-e's config (edge-c has it off)
    CHECK_INTERNAL_C = None  # edge-c's check_internal_availability when it differs from edge-e's CHECK_INTERNAL
    EDGE_E_ONLY = ""  # more entries of edge-e's sso.domains, for domains edge-c does not have
    SECOND_IDP = False  # edge-c also imports idp2 (self.idp2), the IdP of no domain here

    def start_ucm(self) -> None:
        """The fixture as test_http_edge starts it, plus --state-file: what Unified CM received is asserted."""
        with open(DEMO_JSON, encoding="utf-8") as f:
            doc = json.load(f)
        doc["nodes"] = [n for n in doc["nodes"] if n["type"] == "ucm"]
        cluster = os.path.join(self.tmp, "cluster.json")
        with open(cluster, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        self.ucm_state = {}
        for name, cert in (("cucm1.example.com", "tomcat-cucm1"), ("cucm2.example.com", "tomcat-cucm2")):
            crt = f"{self.pki_dir}/{cert}-chain.crt"
            if not os.path.exists(crt):
                crt = f"{self.pki_dir}/{cert}.crt"
            state = os.path.join(self.tmp, f"ucm-{name.split('.')[0]}.json")
            self.ucm_state[name] = state
            p = self.start([PY, FIXTURE, "--cluster", cluster, "--node", name, "--listen",
                            f"{ADDRS[name]}:{self.ucm_port}", "--cert", crt, "--key", f"{self.pki_dir}/{cert}.key",
                            "--state-file", state], name=f"fixture-{name.split('.')[0]}")
            p.wait_log(r"^READY$", timeout=15)
            self.fixtures.append(p)

    def ucm_requests(self, prefix: str) -> int:
        """Requests of `prefix` (a fixture count key, e.g. uds:clusterUser) both Unified CM nodes received."""
        total = 0
        for path in self.ucm_state.values():
            try:
                with open(path, encoding="utf-8") as f:
                    counts = json.load(f).get("requests", {})
            except (OSError, ValueError):
                continue
            total += sum(v for k, v in counts.items() if k == prefix or k.startswith(prefix + ":"))
        return total

    def start_pair(self) -> None:
        if SAML_IMPORT_ERROR:
            self._missing(SAML_IMPORT_ERROR)
        self.require_tool("xmlsec1")
        # The IdP first: edge-c imports its metadata at start.
        self.idp = SamlIdp(self.tmp, IDP_USERS)
        self.addCleanup(self.idp.close)
        idp2 = ""
        if self.SECOND_IDP:
            os.makedirs(os.path.join(self.tmp, "idp2"), exist_ok=True)
            self.idp2 = SamlIdp(os.path.join(self.tmp, "idp2"), IDP_USERS)
            self.addCleanup(self.idp2.close)
            idp2 = f"\n    - {{name: idp2, metadata_file: {self.idp2.metadata_file}}}"
        sp_key, sp_crt = make_key_pair(self.tmp, "sp-signing", "expc1.example.com")
        self.sp_key = sp_key
        check_c = self.CHECK_INTERNAL if self.CHECK_INTERNAL_C is None else self.CHECK_INTERNAL_C
        tail = (f"credentials: {{refresh_interval: {self.REFRESH}}}\n"
                f"sso:\n"
                f"  check_internal_availability: {str(check_c).lower()}\n"
                f"  signing: {{cert: {sp_crt}, key: {sp_key}}}\n"
                f"  edge_e_addresses: [\"{EDGE}:{self.ports.https}\"]\n"
                f"  identity_providers:\n"
                f"    - {{name: idp1, metadata_file: {self.idp.metadata_file}}}{idp2}")
        rules = self.edge_c_extra(f'{{url: "http://cucm1.example.com:{self.rec_port}/rec/", description: recorder}}',
                                  tail="http: {upstream_timeout: 2s}\n" + tail)
        domains = (f"- {{name: example.com, sso: {self.MODE}, idp: idp1}}\n"
                   f"          - {{name: {PLAIN}}}")
        sso_e = (f"sso:\n"
                 f"          check_internal_availability: {str(self.CHECK_INTERNAL).lower()}\n"
                 f"          domains: [{{name: example.com, mode: {self.MODE}}}, {{name: {PLAIN}, mode: {self.PLAIN_ON_EDGE_E}}}{self.EDGE_E_ONLY}]")
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra=sso_e)
        self.ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher(), extra=rules,
                                     domains=domains)
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()
        st, hd, md = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/sso/metadata", timeout=5)
        self.assertEqual(st, 200, md)
        self.assertEqual(hd.get("Content-Type"), "application/samlmetadata+xml")
        self.sp_metadata = md.decode()
        self.idp.trust_sp(self.sp_metadata)
        if self.SECOND_IDP:
            self.idp2.trust_sp(self.sp_metadata)

    # ---- the browser ---------------------------------------------------------------------------------

    def authorize(self, domain_b64: str = DOMAIN_B64) -> tuple[int, str]:
        q = urllib.parse.urlencode({"response_type": "token", "realm": "local", "client_id": "jabber-test",
                                    "device_id": "dev-1", "email": "alice@example.com"})
        st, hd, body = self.get(f"/{domain_b64}/authorize?{q}")
        return st, hd.get("Location", "") if st == 302 else body.decode(errors="replace")

    def at_idp(self, location: str, login=("alice.idp", IDP_USERS["alice.idp"][0])):
        self.assertTrue(location.startswith(self.idp.sso_url + "?"), location)
        hdrs = {"Authorization": basic(*login)} if login else {}
        return h.http_request(location, "GET", headers=hdrs, timeout=30)

    def response_form(self, variant: str = "ok", login=("alice.idp", IDP_USERS["alice.idp"][0])) -> tuple[str, dict]:
        """authorize -> IdP: the consumer URL and the form fields the IdP's page would post."""
        st, loc = self.authorize()
        self.assertEqual(st, 302, loc)
        self.idp.next = variant
        st, _, page = self.at_idp(loc, login)
        self.assertEqual(st, 200, page)
        return parse_post_form(page.decode())

    def post_form(self, action: str, fields: dict):
        u = urllib.parse.urlsplit(action)
        self.assertEqual(u.hostname, EDGE)
        self.assertEqual(u.port, self.ports.https)
        return self.get(u.path, method="POST", body=urllib.parse.urlencode(fields),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})

    def post_form_h2(self, action: str, fields: dict) -> tuple[int, str, str, bytes]:
        """The same POST over HTTP/2 (curl): (status, HTTP version, the X-Auth cookie or "", body)."""
        data = os.path.join(self.tmp, "form.txt")
        with open(data, "w", encoding="ascii") as f:
            f.write(urllib.parse.urlencode(fields))
        out, hdrs = os.path.join(self.tmp, "h2.out"), os.path.join(self.tmp, "h2.headers")
        r = subprocess.run([self.require_tool("curl"), "--http2", "-sS", "-o", out, "-D", hdrs, "-w",
                            "%{http_code} %{http_version}", "--cacert", f"{self.pki_dir}/ca.crt", "--resolve",
                            f"{EDGE}:{self.ports.https}:127.0.0.1", "-H",
                            "Content-Type: application/x-www-form-urlencoded", "--data-binary", f"@{data}", action],
                           capture_output=True, timeout=60)
        code, _, version = r.stdout.decode().partition(" ")
        cookie = ""
        with open(hdrs, encoding="latin-1") as f:
            for line in f:
                if line.lower().startswith("set-cookie: x-auth="):
                    cookie = line.split("=", 1)[1].split(";", 1)[0].strip()
        with open(out, "rb") as f:
            return int(code or 0), version, cookie, f.read()

    def refused_count(self, reason: str) -> int:
        return self.metric("c", "edgepair_saml_responses_total", {"result": reason})

    def edge_sso(self, user: str, domain_b64: str = DOMAIN_B64) -> str:
        st, _, body = self.get(f"/{domain_b64}/get_edge_sso?email={urllib.parse.quote(user)}")
        self.assertEqual(st, 200, body)
        return ET.fromstring(body).findtext("sso")


class SamlSsoTest(SamlTopology):
    SECOND_IDP = True  # for wrong_idp in test_refused_assertions

    def test_sign_in_through_the_idp(self):
        # The exported metadata names this SP and the edge-e consumer of the SSO domain only.
        md = ET.fromstring(self.sp_metadata)
        ns = {"md": "urn:oasis:names:tc:SAML:2.0:metadata"}
        self.assertEqual(md.get("entityID"), "https://expc1.example.com/saml/sp")
        acs = [e.get("Location") for e in md.iter(f"{{{ns['md']}}}AssertionConsumerService")]
        want_acs = f"https://{EDGE}:{self.ports.https}/{DOMAIN_B64}/fedlet"
        self.assertEqual(acs, [want_acs])
        self.assertEqual(md.find("md:SPSSODescriptor", ns).get("AuthnRequestsSigned"), "true")

        # The AuthnRequest: signed RSA-SHA256 on the redirect, verified by the IdP with the exported certificate.
        st, loc = self.authorize()
        self.assertEqual(st, 302, loc)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        self.assertEqual(q.get("SigAlg"), "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
        self.assertIn("Signature", q)
        # Without the IdP's own password there is no assertion.
        st, _, _ = self.at_idp(loc, login=None)
        self.assertEqual(st, 401)
        req = self.idp.requests[-1]
        self.assertTrue(req["verified"], "the IdP could not verify the AuthnRequest signature")
        self.assertEqual(req["acs"], want_acs)
        self.assertEqual(req["issuer"], "https://expc1.example.com/saml/sp")
        self.assertEqual(req["binding"], "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
        # A redirect whose signature was changed is refused by the IdP: the check above can fail.
        bad = loc.replace("Signature=", "Signature=AAAA", 1)
        st, _, _ = self.at_idp(bad)
        self.assertEqual(st, 403)
        self.assertFalse(self.idp.requests[-1]["verified"])

        ok_before = self.refused_count("ok")
        action, fields = self.response_form("ok")
        self.assertEqual(action, want_acs)
        st, hd, body = self.post_form(action, fields)
        self.assertEqual(st, 200, body)
        doc = json.loads(body)
        tok = cookie_token(hd)
        self.assertIsNotNone(tok)
        self.assertEqual(doc["access_token"], tok)
        self.assertEqual(doc["token_type"], "Bearer")
        self.assertEqual(doc["user"], "alice")
        self.assertEqual(self.refused_count("ok"), ok_before + 1)

        # The token signs in: get_edge_config with the user's UDS server, without a password.
        devices_before = self.ucm_requests("uds:devices")
        st, _, body = self.get(EDGE_CONFIG, headers=self.bearer(tok))
        self.assertEqual(st, 200, body)
        # The token names the home node clusterUser gave for alice (the fixture homes her on cucm1).
        self.assertEqual(ET.fromstring(body).findtext("edgeConfig/userUdsServer/server/address"),
                         "cucm1.example.com")
        # UDS through the pair with the token (the cookie form), and an internal host that records what it got.
        st, _, body = self.get(self.proxy("https", "cucm1.example.com", self.ucm_port, "/cucm-uds/servers"),
                               headers={"Cookie": f"X-Auth={tok}"})
        self.assertEqual(st, 200, body)
        self.assertIn(b"<servers", body)
        n = len(self.rec.requests)
        st, _, body = self.get(self.rec_path("after-sso"), headers=self.bearer(tok))
        self.assertEqual(st, 200, body)
        self.assertEqual(len(self.rec.requests), n + 1)
        got = self.rec.last()
        self.assertNotIn("authorization", got)
        self.assertFalse(any(tok in v for vs in got.values() for v in vs), got)
        self.assertEqual(self.ucm_requests("uds:devices"), devices_before)  # no password check anywhere

        # A user the IdP knows but Unified CM does not: refused after the assertion, no token.
        action, fields = self.response_form("ok", login=("ghost.idp", IDP_USERS["ghost.idp"][0]))
        st, hd, body = self.post_form(action, fields)
        self.assertEqual(st, 403, body)
        self.assertIsNone(cookie_token(hd))

    def test_refused_assertions(self):
        cases = [
            ("tampered", "signature", b"Invalid SAML Response"),
            ("unsigned", "signature", b"Invalid SAML Response"),
            ("wrong_audience", "audience", b"Invalid SAML Response"),
            ("expired", "expired", b"Invalid SAML Response"),
            ("no_uid", "no_uid", b"No uid Attribute in Assertion from IdP"),
            ("wrong_recipient", "recipient", b"Invalid SAML Response"),
            ("not_yet_valid", "not_yet_valid", b"Invalid SAML Response"),
            ("status", "status", b"Invalid SAML Response"),
            ("unsolicited", "unsolicited", b"Invalid SAML Response"),
            ("second_audience", "audience", b"Invalid SAML Response"),
            ("sender_vouches", "invalid", b"Invalid SAML Response"),
        ]
        # Bob's home cluster is looked up by nobody before: a look-up for a refused assertion would show.
        for variant, reason, wording in cases:
            with self.subTest(variant=variant):
                action, fields = self.response_form(variant, login=BOB_IDP)
                before = self.refused_count(reason)
                cluster_before = self.ucm_requests("uds:clusterUser")
                n = len(self.rec.requests)
                st, hd, body = self.post_form(action, fields)
                self.assertEqual(st, 403, body)
                self.assertEqual(body.strip(), wording)
                self.assertIsNone(cookie_token(hd))
                self.assertEqual(self.refused_count(reason), before + 1)
                # The internal side heard nothing of it: no home-cluster look-up, nothing proxied.
                self.assertEqual(self.ucm_requests("uds:clusterUser"), cluster_before)
                self.assertEqual(len(self.rec.requests), n)
                self.edge_c.wait_log(f"{wording.decode()}: {reason}", timeout=5)

        # Another IdP whose metadata edge-c imported (signature valid with its certificate), answering a request
        # made for example.com, whose IdP is idp1.
        # (pysaml2 refuses a request destined for another IdP: idp1 takes it, and idp2 answers it; idp1's own
        # Response is never posted, so the request stays open.)
        action, fields = self.response_form("ok", login=BOB_IDP)
        fields["SAMLResponse"] = self.idp2.respond(self.idp.requests[-1], "bob", "ok")
        before = self.refused_count("wrong_idp")
        cluster_before = self.ucm_requests("uds:clusterUser")
        st, hd, body = self.post_form(action, fields)
        self.assertEqual(st, 403, body)
        self.assertEqual(body.strip(), b"Invalid SAML Response")
        self.assertIsNone(cookie_token(hd))
        self.assertEqual(self.refused_count("wrong_idp"), before + 1)
        self.assertEqual(self.ucm_requests("uds:clusterUser"), cluster_before)
        self.edge_c.wait_log("Invalid SAML Response: wrong_idp", timeout=5)

        # Replay: the same valid Response twice; the second is refused as a replay. The first signs bob in, and
        # that costs a clusterUser look-up: the "nothing reached Unified CM" checks above could fail.
        cluster_before = self.ucm_requests("uds:clusterUser")
        action, fields = self.response_form("ok", login=BOB_IDP)
        st, hd, body = self.post_form(action, fields)
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["user"], "bob")
        self.assertGreater(self.ucm_requests("uds:clusterUser"), cluster_before)
        before = self.refused_count("replay")
        cluster_before = self.ucm_requests("uds:clusterUser")
        st, hd, body = self.post_form(action, fields)
        self.assertEqual(st, 403, body)
        self.assertEqual(body.strip(), b"Invalid SAML Response")
        self.assertIsNone(cookie_token(hd))
        self.assertEqual(self.refused_count("replay"), before + 1)
        self.assertEqual(self.ucm_requests("uds:clusterUser"), cluster_before)
        # A reload (new generation, IdP metadata re-read) keeps the memory of accepted assertions.
        reloads = self.metric("c", "edgepair_config_reloads_total", {"result": "ok"})
        self.edge_c.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.metric("c", "edgepair_config_reloads_total", {"result": "ok"}) == reloads:
            self.assertLess(time.monotonic(), deadline, "edge-c did not reload")
            time.sleep(0.1)
        time.sleep(0.3)  # the workers take the new generation on their next loop turn
        st, _, body = self.post_form(action, fields)
        self.assertEqual(st, 403, body)
        self.assertEqual(self.refused_count("replay"), before + 2)

        # Not a SAMLResponse form at all, and a Response nobody asked for (its request ID unknown to the edge).
        before = self.refused_count("bad_form")
        st, _, body = self.post_form(action, {"RelayState": "x"})
        self.assertEqual(st, 403, body)
        self.assertEqual(self.refused_count("bad_form"), before + 1)
        st, _, body = self.get(urllib.parse.urlsplit(action).path, method="POST", body=b"", timeout=10)
        self.assertEqual(st, 403, body)  # an empty body is answered at once, not left to time out
        self.assertEqual(self.refused_count("bad_form"), before + 2)
        # Garbage posted as a SAMLResponse: refused by lasso's parse, not by a crash.
        before = self.refused_count("invalid")
        st, _, body = self.post_form(action, {"SAMLResponse": base64.b64encode(b"<not-saml/>").decode()})
        self.assertEqual(st, 403, body)
        self.assertEqual(body.strip(), b"Invalid SAML Response")
        self.assertEqual(self.refused_count("invalid"), before + 1)

        # The assertion consumer takes POST only; get_edge_config still takes a password in mode On.
        st, hd, _ = self.get(urllib.parse.urlsplit(action).path)
        self.assertEqual(st, 405)
        st, _, body = self.get(EDGE_CONFIG, auth=ALICE)
        self.assertEqual(st, 200, body)

    def test_edge_sso_per_user_and_mode(self):
        before = self.metric("c", "edgepair_edge_sso_answers_total", {})
        # The internal check: edge-c finds the user's home cluster (clusterUser) and answers from it.
        cluster_before = self.ucm_requests("uds:clusterUser")
        self.assertEqual(self.edge_sso("alice@example.com"), "true")
        self.assertGreater(self.ucm_requests("uds:clusterUser"), cluster_before)
        self.assertEqual(self.edge_sso("nobody@example.com"), "false")
        self.assertEqual(self.metric("c", "edgepair_edge_sso_answers_total",
                                     {"answer": "false", "reason": "unknown_user"}), 1)
        self.assertEqual(self.metric("c", "edgepair_edge_sso_answers_total", {}), before + 2)
        # A domain without SSO: false, without asking Unified CM; its SSO paths do not exist, and edge-e refuses
        # them without using the link.
        cluster_before = self.ucm_requests("uds:clusterUser")
        self.assertEqual(self.edge_sso("alice@example.com", PLAIN_B64), "false")
        self.assertEqual(self.metric("c", "edgepair_edge_sso_answers_total",
                                     {"answer": "false", "reason": "sso_off"}), 1)
        self.assertEqual(self.ucm_requests("uds:clusterUser"), cluster_before)
        rejected = self.metric("e", "edgepair_http_rejected_requests_total", {"reason": "sso_off"})
        st, _ = self.authorize(PLAIN_B64)
        self.assertEqual(st, 404)
        self.assertEqual(self.metric("e", "edgepair_http_rejected_requests_total", {"reason": "sso_off"}),
                         rejected + 1)


    def test_check_names_a_wrong_metadata_file(self):
        edge_c = self.require_binary("edge-c")
        rc, out = h.run_cmd([edge_c, "--check", "-c", self.ccfg], timeout=30)
        self.assertEqual(rc, 0, out)
        # The operator imports the pair's own metadata as the IdP's by mistake.
        sp_md = os.path.join(self.tmp, "exported-sp.xml")
        with open(sp_md, "w", encoding="utf-8") as f:
            f.write(self.sp_metadata)
        with open(self.ccfg, encoding="utf-8") as f:
            text = f.read()
        self.assertIn(self.idp.metadata_file, text)
        bad = self.write_yaml("edge-c-bad-idp.yaml", text.replace(self.idp.metadata_file, sp_md))
        rc, out = h.run_cmd([edge_c, "--check", "-c", bad], timeout=30)
        self.assertNotEqual(rc, 0)
        self.assertRegex(out, r"edge-c-bad-idp\.yaml:\d+: sso\.identity_providers\[0\]\.metadata_file: .*"
                              r"not an identity provider")


class SamlExclusiveTest(SamlTopology):
    MODE = "exclusive"
    CHECK_INTERNAL = False
    PLAIN_ON_EDGE_E = "on"  # a mistake: the two edges disagree on plain.example.com
    CHECK_INTERNAL_C = True  # another: edge-c would ask the home cluster, edge-e answers alone
    EDGE_E_ONLY = ", {name: elsewhere.example.com, mode: on}"  # and a domain edge-c does not have

    def test_modes_that_differ_raise_an_alarm(self):
        self.edge_e.wait_log(r"domain plain\.example\.com: single sign-on is off on edge-c and on here", timeout=10)
        self.edge_e.wait_log(r"domain elsewhere\.example\.com: single sign-on is on here but edge-c has no such "
                             r"domain", timeout=10)
        self.edge_e.wait_log(r"sso\.check_internal_availability is true on edge-c and false here", timeout=10)
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
        self.assertIn("sso.mode:plain.example.com", body.decode())
        self.assertIn("sso.mode:elsewhere.example.com", body.decode())
        self.assertIn("sso.internal_check", body.decode())
        self.assertNotIn("sso.mode:example.com", body.decode())

    def test_exclusive_refuses_credentials(self):
        # A password is refused without asking Unified CM.
        devices_before = self.ucm_requests("uds:devices")
        before = self.metric("c", "edgepair_http_auth_total", {"result": "sso_exclusive"})
        st, hd, body = self.get(EDGE_CONFIG, auth=ALICE)
        self.assertEqual(st, 403, body)
        self.assertIsNone(cookie_token(hd))
        st, _, body = self.get(self.rec_path("basic"), auth=ALICE)
        self.assertEqual(st, 403, body)
        self.assertEqual(self.metric("c", "edgepair_http_auth_total", {"result": "sso_exclusive"}), before + 2)
        self.assertEqual(self.ucm_requests("uds:devices"), devices_before)
        self.assertEqual(len(self.rec.requests), 0)

        # get_edge_sso with the internal check off: true from edge-e itself, edge-c not asked.
        c_before = self.metric("c", "edgepair_edge_sso_answers_total", {})
        e_before = self.metric("e", "edgepair_edge_sso_answers_total", {"answer": "true", "reason": "no_internal_check"})
        self.assertEqual(self.edge_sso("nobody@example.com"), "true")
        self.assertEqual(self.metric("e", "edgepair_edge_sso_answers_total",
                                     {"answer": "true", "reason": "no_internal_check"}), e_before + 1)
        self.assertEqual(self.metric("c", "edgepair_edge_sso_answers_total", {}), c_before)

        # The IdP is the way in; the Response posted over HTTP/2 this time.
        action, fields = self.response_form("ok")
        st, version, tok, body = self.post_form_h2(action, fields)
        self.assertEqual((st, version), (200, "2"), body)
        self.assertEqual(json.loads(body)["access_token"], tok)
        st, _, body = self.get(EDGE_CONFIG, headers=self.bearer(tok))
        self.assertEqual(st, 200, body)
        st, _, body = self.get(self.rec_path("sso"), headers=self.bearer(tok))
        self.assertEqual(st, 200, body)
        self.assertNotIn("authorization", self.rec.last())

    def test_exclusive_holds_for_every_domain_of_the_deployment(self):
        # plain.example.com has SSO off, but shares the deployment (the same Unified CM, whose users are not
        # bound to a domain) with the Exclusive example.com: alice's password is refused there too, without
        # asking Unified CM, or it would buy a password token that works through plain.example.com.
        devices_before = self.ucm_requests("uds:devices")
        before = self.metric("c", "edgepair_http_auth_total", {"result": "sso_exclusive"})
        st, hd, body = self.get(f"/{PLAIN_B64}/get_edge_config/?service_name=_cisco-uds", auth=ALICE)
        self.assertEqual(st, 403, body)
        self.assertIsNone(cookie_token(hd))
        plain_rec = self.rec_path("basic").replace(DOMAIN_B64, PLAIN_B64, 1)
        st, _, body = self.get(plain_rec, auth=ALICE)
        self.assertEqual(st, 403, body)
        self.assertEqual(self.metric("c", "edgepair_http_auth_total", {"result": "sso_exclusive"}), before + 2)
        self.assertEqual(self.ucm_requests("uds:devices"), devices_before)
        self.assertEqual(len(self.rec.requests), 0)
        # The configuration check names the domain that inherits the rule, and why.
        rc, out = h.run_cmd([self.require_binary("edge-c"), "--check", "-c", self.ccfg], timeout=30)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"domains\[1\]\.sso: warning: domain plain\.example\.com refuses passwords too "
                              r"\(HTTP, SIP, XMPP\): example\.com of the same deployment \"default\"")
        # The IdP's token, which is not bound to a domain either, is the way in through plain.example.com.
        action, fields = self.response_form("ok")
        st, hd, body = self.post_form(action, fields)
        self.assertEqual(st, 200, body)
        tok = cookie_token(hd)
        st, _, body = self.get(plain_rec.replace("/basic", "/sso"), headers=self.bearer(tok))
        self.assertEqual(st, 200, body)
        self.assertNotIn("authorization", self.rec.last())


if __name__ == "__main__":
    h.run_tests()
