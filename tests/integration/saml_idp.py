#!/usr/bin/python3
"""A SAML 2.0 identity provider for the SSO tests (issue #21): pysaml2 (Debian python3-pysaml2) does the SAML
(the signed Response and Assertion, with the xmlsec1 command), this file adds a loopback HTTP front end.

- GET /sso/redirect?SAMLRequest=..&RelayState=..&SigAlg=..&Signature=..  (HTTP-Redirect binding): the request's
  signature is verified over the raw query (saml-bindings 3.4.4.1) with the certificate in the service provider's
  metadata, then the user signs in here with HTTP Basic (the IdP's own password check: a real IdP shows a form),
  then the answer is the HTTP-POST binding's auto-submitting form to the AuthnRequest's consumer URL.
- The test steers what the next Response looks like (`idp.next = "expired"` ...) to get assertions the service
  provider must refuse, each one signed by the real IdP key.

Every key is generated per run (openssl), none is committed.
"""

from __future__ import annotations

import base64
import html
import os
import re
import subprocess
import threading
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from saml2 import BINDING_HTTP_REDIRECT, saml, samlp
from saml2.assertion import Policy
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID
from saml2.server import Server
from saml2.time_util import in_a_while

XMLSEC = "/usr/bin/xmlsec1"
SIGALG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
# Another relying party of the same IdP: an assertion made for it must not sign anyone in at the edge.
OTHER_SP = "https://someone-else.example.net/sp"


class FuturePolicy(Policy):
    """The IdP's default policy, but the Conditions start 10 minutes from now (beyond the SP's clock skew)."""

    def conditions(self, sp_entity_id):
        c = super().conditions(sp_entity_id)
        c.not_before = in_a_while(minutes=10)
        return c


class TwoAudiencePolicy(Policy):
    """The IdP's default policy plus a second AudienceRestriction naming another SP: both must be satisfied
    (SAML core 2.5.1.4), so the assertion is not for the edge."""

    def conditions(self, sp_entity_id):
        c = super().conditions(sp_entity_id)
        c.audience_restriction.append(saml.AudienceRestriction(audience=[saml.Audience(text=OTHER_SP)]))
        return c


def make_key_pair(directory: str, name: str, cn: str) -> tuple[str, str]:
    key, crt = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", f"/CN={cn}"], check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return key, crt


class SamlIdp:
    """pysaml2 Server behind a ThreadingHTTPServer on 127.0.0.1."""

    def __init__(self, directory: str, users: dict[str, tuple[str, str]]):
        """users: IdP login name -> (password, uid to assert)."""
        self.dir = directory
        self.users = users
        self.key, self.crt = make_key_pair(directory, "idp", "idp.example.com")
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.entity_id = f"http://127.0.0.1:{self.port}/idp"
        self.sso_url = f"http://127.0.0.1:{self.port}/sso/redirect"
        self.next = "ok"  # how the next Response is built (see respond())
        self.requests: list[dict] = []  # every AuthnRequest received: id, acs, issuer, sigalg, verified
        self.lock = threading.Lock()
        self.server: Server | None = None
        self.sp_cert: x509.Certificate | None = None
        self.metadata_file = os.path.join(directory, "idp-metadata.xml")
        with open(self.metadata_file, "w", encoding="utf-8") as f:
            f.write(str(entity_descriptor(self._config(None))))
        self.t = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.t.start()

    def _config(self, sp_metadata: str | None) -> IdPConfig:
        conf = {
            "entityid": self.entity_id,
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                # The redirect signature is checked over the raw query below, not by pysaml2 (its check
                # re-encodes the query, which need not give the bytes that were signed).
                "want_authn_requests_signed": False,
                "sign_response": True,
                "sign_assertion": True,
                "policy": {"default": {"lifetime": {"minutes": 10}, "attribute_restrictions": None,
                                       "name_form": saml.NAME_FORMAT_BASIC}},
            }},
            "key_file": self.key,
            "cert_file": self.crt,
            "xmlsec_binary": XMLSEC,
            "metadata": {"local": sp_metadata} if sp_metadata else {},
        }
        c = IdPConfig()
        c.load(conf)
        return c

    def trust_sp(self, sp_metadata_xml: str) -> None:
        """Imports the service provider's metadata (exported by edge-c's admin port)."""
        path = os.path.join(self.dir, "sp-metadata.xml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(sp_metadata_xml)
        other = os.path.join(self.dir, "other-sp-metadata.xml")
        with open(other, "w", encoding="utf-8") as f:
            f.write(re.sub(r'entityID="[^"]*"', f'entityID="{OTHER_SP}"', sp_metadata_xml, count=1))
        self.server = Server(config=self._config([path, other]))
        pem = re.search(r"<ds:X509Certificate>([^<]+)</ds:X509Certificate>", sp_metadata_xml).group(1)
        self.sp_cert = x509.load_der_x509_certificate(base64.b64decode(pem))

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()

    # ---- building Responses ----------------------------------------------------------------------------

    def respond(self, req: dict, uid: str, variant: str) -> str:
        """The base64 SAMLResponse for AuthnRequest `req`, signed (Response and Assertion) by the IdP key.

        variant: ok | wrong_audience | expired | no_uid | tampered (a valid one with its uid changed after
        signing) | wrong_recipient | unsigned (neither the Response nor the Assertion signed) | not_yet_valid
        (Conditions NotBefore 10 minutes ahead) | status (a signed error Response: AuthnFailed, no assertion) |
        unsolicited (InResponseTo names a request the SP never sent) | second_audience (a second
        AudienceRestriction naming another SP) | sender_vouches (SubjectConfirmation Method not bearer)."""
        assert self.server is not None, "trust_sp() first"
        if variant == "status":
            resp = self.server.create_error_response(
                req["id"], req["acs"], (samlp.STATUS_AUTHN_FAILED, "the user cancelled"), sign=True,
                sign_alg=SIGALG_RSA_SHA256, digest_alg="http://www.w3.org/2001/04/xmlenc#sha256")
            return base64.b64encode(str(resp).encode()).decode()
        identity = {"uid": [uid], "mail": [f"{uid}@example.com"]}
        if variant == "no_uid":
            identity = {"mail": [f"{uid}@example.com"]}
        audience = req["issuer"]
        if variant == "wrong_audience":
            audience = OTHER_SP
        policy = None
        if variant == "expired":
            # NotOnOrAfter 10 minutes ago, well beyond the SP's clock skew: an old assertion, signed.
            policy = Policy({"default": {"lifetime": {"minutes": -10}, "attribute_restrictions": None,
                                         "name_form": saml.NAME_FORMAT_BASIC}}, self.server.metadata)
        if variant == "not_yet_valid":
            policy = FuturePolicy({"default": {"lifetime": {"minutes": 10}, "attribute_restrictions": None,
                                               "name_form": saml.NAME_FORMAT_BASIC}}, self.server.metadata)
        if variant == "second_audience":
            policy = TwoAudiencePolicy({"default": {"lifetime": {"minutes": 10}, "attribute_restrictions": None,
                                                    "name_form": saml.NAME_FORMAT_BASIC}}, self.server.metadata)
        extra = {}
        if variant == "sender_vouches":
            extra["farg"] = {"assertion": {"subject": {"subject_confirmation": {"method": saml.SCM_SENDER_VOUCHES}}}}
        in_response_to = req["id"]
        if variant == "unsolicited":
            in_response_to = "_never-sent-" + os.urandom(8).hex()
        destination = req["acs"]
        if variant == "wrong_recipient":
            destination = req["acs"].replace("/fedlet", "/elsewhere")
        resp = self.server.create_authn_response(
            identity, in_response_to=in_response_to, destination=destination, sp_entity_id=audience,
            name_id=NameID(format=NAMEID_FORMAT_TRANSIENT, text=f"t-{os.urandom(6).hex()}"),
            authn={"class_ref": saml.AUTHN_PASSWORD_PROTECTED, "authn_auth": self.entity_id},
            sign_response=variant != "unsigned", sign_assertion=variant != "unsigned", release_policy=policy,
            sign_alg=SIGALG_RSA_SHA256, digest_alg="http://www.w3.org/2001/04/xmlenc#sha256", **extra)
        xml = str(resp)
        if variant == "second_audience":
            assert xml.count("AudienceRestriction>") >= 4, "the second AudienceRestriction is missing"
        if variant == "sender_vouches":
            assert saml.SCM_SENDER_VOUCHES in xml, "the Method was not set"

        if variant == "tampered":
            # Another user's name in the signed assertion: the signature no longer covers what it says.
            before = xml
            xml = xml.replace(f">{uid}<", ">mallory<")
            assert xml != before, "the uid value was not found in the Response"
        return base64.b64encode(xml.encode()).decode()

    # ---- HTTP ------------------------------------------------------------------------------------------

    def _verify_redirect(self, raw_query: str) -> tuple[bool, str]:
        parts = raw_query.split("&")
        signed = "&".join(p for p in parts if p.split("=", 1)[0] in ("SAMLRequest", "RelayState", "SigAlg"))
        q = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        sigalg = q.get("SigAlg", "")
        if "Signature" not in q or self.sp_cert is None:
            return False, sigalg
        if sigalg != SIGALG_RSA_SHA256:
            return False, sigalg
        try:
            self.sp_cert.public_key().verify(base64.b64decode(q["Signature"]), signed.encode(),
                                             padding.PKCS1v15(), hashes.SHA256())
            return True, sigalg
        except Exception:  # noqa: BLE001 - any failure is "not verified"
            return False, sigalg

    def _handler(self):
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status: int, body: str, ctype: str = "text/plain", extra: dict | None = None):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/sso/redirect":
                    return self.send(404, "not here\n")
                verified, sigalg = outer._verify_redirect(url.query)
                q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                try:
                    xml = zlib.decompress(base64.b64decode(q["SAMLRequest"]), -15).decode()
                    info = outer.server.parse_authn_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT)
                    msg = info.message
                    req = {"id": msg.id, "acs": msg.assertion_consumer_service_url, "issuer": msg.issuer.text,
                           "binding": msg.protocol_binding, "sigalg": sigalg, "verified": verified, "xml": xml,
                           "relay_state": q.get("RelayState", "")}
                except Exception as e:  # noqa: BLE001
                    return self.send(400, f"bad AuthnRequest: {e}\n")
                with outer.lock:
                    outer.requests.append(req)
                if not verified:
                    return self.send(403, "AuthnRequest signature not verified\n")
                # The IdP's own sign-in (a form on a real IdP; Basic here).
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                    if name in outer.users and outer.users[name][0] == pw:
                        user = name
                if user is None:
                    return self.send(401, "sign in\n", extra={"WWW-Authenticate": 'Basic realm="idp"'})
                with outer.lock:
                    variant, outer.next = outer.next, "ok"
                saml_response = outer.respond(req, outer.users[user][1], variant)
                form = (f'<html><body onload="document.forms[0].submit()"><form method="post" '
                        f'action="{html.escape(req["acs"])}"><input type="hidden" name="SAMLResponse" '
                        f'value="{saml_response}"/><input type="hidden" name="RelayState" '
                        f'value="{html.escape(req["relay_state"])}"/></form></body></html>')
                self.send(200, form, "text/html")

        return H


def parse_post_form(page: str) -> tuple[str, dict[str, str]]:
    """The HTTP-POST binding page: (action URL, {field: value})."""
    action = html.unescape(re.search(r'action="([^"]*)"', page).group(1))
    fields = {html.unescape(n): html.unescape(v)
              for n, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page)}
    return action, fields
