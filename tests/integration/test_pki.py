"""The test PKI made by certs/mkpki.sh: names, usages, chains, negatives, and real TLS handshakes with it."""

import os
import re
import socket
import ssl
import stat
import threading
import time

import harness as h

SC = {"serverAuth", "clientAuth"}
SA = {"serverAuth"}
EDGE_E_SAN = {"DNS:expe1.example.com", "DNS:collab-edge.example.com", "DNS:example.com", "IP:127.0.0.1"}

# name -> (issuer, CN, SANs, EKUs)
LEAVES = {
    "edge-e": ("ca", "expe1.example.com", EDGE_E_SAN, SC),
    "edge-e-alt": ("ca", "collab-edge.example.org",
                   {"DNS:collab-edge.example.org", "DNS:example.org", "DNS:*.example.org"}, SA),
    "edge-c": ("ca", "expc1.example.com", {"DNS:expc1.example.com"}, SC),
    "edge-c-noclientauth": ("ca", "expc1.example.com", {"DNS:expc1.example.com"}, SA),
    "edge-c-wrongsan": ("ca", "other.example.com", {"DNS:other.example.com"}, SC),
    "edge-c-cnonly": ("ca", "expc1.example.com", set(), SC),
    "rogue-edge-c": ("rogue-ca", "expc1.example.com", {"DNS:expc1.example.com"}, SC),
    "edge-e-expired": ("ca", "expe1.example.com", EDGE_E_SAN, SC),
    "tomcat-cucm1": ("ca", "cucm1.example.com", {"DNS:cucm1.example.com", "IP:127.0.1.1"}, SC),
    "tomcat-cucm2": ("ca", "cucm2.example.com", {"DNS:cucm2.example.com", "IP:127.0.1.2"}, SC),
    "tomcat-imp1": ("ca", "imp1.example.com", {"DNS:imp1.example.com", "IP:127.0.1.3"}, SC),
    "tomcat-cuc1": ("ca", "cuc1.example.com", {"DNS:cuc1.example.com", "IP:127.0.1.4"}, SC),
    "callmanager-cucm1": ("ca", "cucm1.example.com", {"DNS:cucm1.example.com", "IP:127.0.1.1"}, SC),
    "callmanager-cucm2": ("ca", "cucm2.example.com", {"DNS:cucm2.example.com", "IP:127.0.1.2"}, SC),
}
CAS = {"ca": "edgepair Test CA", "rogue-ca": "edgepair Rogue CA"}
EKU_NAMES = {"TLS Web Server Authentication": "serverAuth", "TLS Web Client Authentication": "clientAuth"}
MKPKI = os.path.join(h.SRC, "certs", "mkpki.sh")


def openssl(*args, input=None):
    return h.run_cmd(["openssl", *args], timeout=30, input=input)


class CertInfo:
    """Fields of `openssl x509 -text` that the PKI promises."""

    def __init__(self, path):
        rc, out = openssl("x509", "-in", path, "-noout", "-text", "-nameopt", "RFC2253")
        if rc != 0:
            raise AssertionError(f"openssl x509 {path}: {out}")
        self.text = out
        self.subject = re.search(r"^\s*Subject: (.*)$", out, re.M).group(1)
        self.issuer = re.search(r"^\s*Issuer: (.*)$", out, re.M).group(1)
        m = re.search(r"CN=([^,]+)", self.subject)
        self.cn = m.group(1) if m else None
        self.sans = set()
        ext = self._ext("X509v3 Subject Alternative Name")
        if ext:
            for item in ext.split(", "):
                self.sans.add(item.replace("IP Address:", "IP:").strip())
        ext = self._ext("X509v3 Extended Key Usage")
        self.ekus = {EKU_NAMES.get(x.strip(), x.strip()) for x in ext.split(",")} if ext else set()
        self.basic = self._ext("X509v3 Basic Constraints") or ""
        self.key_usage = self._ext("X509v3 Key Usage") or ""
        self.pubkey_alg = re.search(r"Public Key Algorithm: (\S+)", out).group(1)
        m = re.search(r"NIST CURVE: (\S+)", out)
        self.curve = m.group(1) if m else None
        m = re.search(r"Public-Key: \((\d+) bit\)", out)
        self.bits = int(m.group(1)) if m else None

    def _ext(self, name):
        m = re.search(r"^\s*" + re.escape(name) + r":.*\n\s*(.*)$", self.text, re.M)
        return m.group(1).strip() if m else None


class PkiContents(h.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = h.pki()

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_files_exist_with_modes(self):
        names = ["ca", "rogue-ca", *LEAVES]
        for n in names:
            for ext in (".crt", ".key"):
                p = self.path(n + ext)
                self.assertTrue(os.path.isfile(p), p)
            self.assertEqual(stat.S_IMODE(os.stat(self.path(n + ".key")).st_mode), 0o600, n + ".key")
        for n in LEAVES:
            self.assertEqual(stat.S_IMODE(os.stat(self.path(n + ".pem")).st_mode), 0o600, n + ".pem")
            self.assertTrue(os.path.isfile(self.path(n + "-chain.crt")))
        self.assertTrue(os.path.isfile(self.path("both-cas.crt")))
        self.assertTrue(os.path.isfile(self.path(".done")))

    def test_cas(self):
        for n, cn in CAS.items():
            c = CertInfo(self.path(n + ".crt"))
            self.assertEqual(c.cn, cn)
            self.assertEqual(c.subject, c.issuer, "self-signed")
            self.assertIn("CA:TRUE", c.basic)
            self.assertIn("Certificate Sign", c.key_usage)
            self.assertIn("CRL Sign", c.key_usage)

    def test_leaf_names_and_usages(self):
        for n, (issuer, cn, sans, ekus) in LEAVES.items():
            with self.subTest(cert=n):
                c = CertInfo(self.path(n + ".crt"))
                self.assertEqual(c.cn, cn)
                self.assertEqual(c.sans, sans)
                self.assertEqual(c.ekus, ekus)
                self.assertIn("CA:FALSE", c.basic)
                self.assertIn(f"CN={CAS[issuer]}", c.issuer)
                self.assertEqual(c.pubkey_alg, "id-ecPublicKey")
                self.assertEqual(c.curve, "P-256")

    def test_keys_match_certs(self):
        for n in ["ca", "rogue-ca", *LEAVES]:
            with self.subTest(cert=n):
                rc1, from_key = openssl("pkey", "-in", self.path(n + ".key"), "-pubout")
                rc2, from_crt = openssl("x509", "-in", self.path(n + ".crt"), "-noout", "-pubkey")
                self.assertEqual((rc1, rc2), (0, 0), from_key + from_crt)
                self.assertEqual(from_key, from_crt)

    def test_chain_files(self):
        for n, (issuer, *_rest) in LEAVES.items():
            with self.subTest(cert=n):
                with open(self.path(n + "-chain.crt")) as f:
                    chain = f.read()
                with open(self.path(n + ".crt")) as f:
                    leaf = f.read()
                with open(self.path(issuer + ".crt")) as f:
                    ca = f.read()
                self.assertEqual(chain, leaf + ca)
                with open(self.path(n + ".pem")) as f:
                    pem = f.read()
                self.assertIn("PRIVATE KEY", pem)
                self.assertTrue(pem.endswith(leaf + ca))

    def verify(self, name, cafile="ca.crt", *extra):
        return openssl("verify", "-CAfile", self.path(cafile), *extra, self.path(name + ".crt"))

    def test_chains_verify(self):
        for n, (issuer, *_rest) in LEAVES.items():
            if issuer != "ca" or n == "edge-e-expired":
                continue
            with self.subTest(cert=n):
                rc, out = self.verify(n)
                self.assertEqual(rc, 0, out)
        rc, out = self.verify("ca")
        self.assertEqual(rc, 0, out)

    def test_rogue_does_not_verify(self):
        rc, out = self.verify("rogue-edge-c")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("unable to get local issuer certificate", out)
        rc, out = self.verify("rogue-edge-c", "rogue-ca.crt")
        self.assertEqual(rc, 0, "rogue cert is well formed under its own CA: " + out)
        rc, out = self.verify("edge-c", "rogue-ca.crt")
        self.assertNotEqual(rc, 0, out)

    def test_expired_is_expired(self):
        rc, out = self.verify("edge-e-expired")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("certificate has expired", out)
        rc, out = openssl("x509", "-in", self.path("edge-e-expired.crt"), "-noout", "-checkend", "0")
        self.assertNotEqual(rc, 0, out)
        rc, out = openssl("x509", "-in", self.path("edge-e.crt"), "-noout", "-checkend", str(86400 * 30))
        self.assertEqual(rc, 0, "edge-e valid for 30 more days: " + out)
        # Only the dates are wrong with it: without the time check it verifies (the CA is newer than its
        # validity window, so -attime cannot be used).
        rc, out = self.verify("edge-e-expired", "ca.crt", "-no_check_time")
        self.assertEqual(rc, 0, out)

    def test_purposes(self):
        for n in ("edge-c", "edge-c-wrongsan", "edge-c-cnonly", "edge-e"):
            rc, out = self.verify(n, "ca.crt", "-purpose", "sslclient")
            self.assertEqual(rc, 0, f"{n}: {out}")
        rc, out = self.verify("edge-c-noclientauth", "ca.crt", "-purpose", "sslclient")
        self.assertNotEqual(rc, 0, out)
        rc, out = self.verify("edge-e-alt", "ca.crt", "-purpose", "sslclient")
        self.assertNotEqual(rc, 0, out)
        for n in ("edge-e", "edge-e-alt", "tomcat-cucm1", "callmanager-cucm2"):
            rc, out = self.verify(n, "ca.crt", "-purpose", "sslserver")
            self.assertEqual(rc, 0, f"{n}: {out}")

    def test_hostnames_with_ssl_module(self):
        # ssl's own name matching (the same rules a Python client applies), via the test decoder.
        for n, (_i, _cn, sans, _e) in LEAVES.items():
            with self.subTest(cert=n):
                info = ssl._ssl._test_decode_cert(self.path(n + ".crt"))
                got = {f"{k.replace('IP Address', 'IP')}:{v}" for k, v in info.get("subjectAltName", ())}
                self.assertEqual(got, sans)


class MkpkiScript(h.TestCase):
    def test_idempotent_and_rsa(self):
        out = os.path.join(self.tmp, "pki")
        t0 = time.monotonic()
        rc, text = h.run_cmd(["bash", MKPKI, "--rsa", out], timeout=120)
        self.assertEqual(rc, 0, text)
        self.assertEqual(text, "", "quiet without -v")
        first = time.monotonic() - t0
        c = CertInfo(os.path.join(out, "edge-e-rsa.crt"))
        self.assertEqual((c.pubkey_alg, c.bits), ("rsaEncryption", 2048))
        self.assertEqual(c.sans, EDGE_E_SAN)
        self.assertEqual(c.ekus, SC)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(out, "edge-e-rsa.key")).st_mode), 0o600)
        rc, text = openssl("verify", "-CAfile", os.path.join(out, "ca.crt"), os.path.join(out, "edge-e-rsa.crt"))
        self.assertEqual(rc, 0, text)

        ca = os.path.join(out, "ca.crt")
        mtime = os.stat(ca).st_mtime_ns
        # Again (also without --rsa: an --rsa PKI serves both): nothing is redone.
        for args in (["--rsa", out], [out]):
            t0 = time.monotonic()
            rc, text = h.run_cmd(["bash", MKPKI, *args], timeout=60)
            self.assertEqual((rc, text), (0, ""))
            self.assertEqual(os.stat(ca).st_mtime_ns, mtime, "second run must not rebuild")
            self.assertLess(time.monotonic() - t0, max(1.0, first))
        rc, text = h.run_cmd(["bash", MKPKI, "-v", out], timeout=60)
        self.assertEqual(rc, 0, text)
        self.assertIn("up to date", text)

        # A missing file makes it rebuild; so does --force.
        os.unlink(os.path.join(out, "edge-c.key"))
        rc, text = h.run_cmd(["bash", MKPKI, out], timeout=120)
        self.assertEqual(rc, 0, text)
        self.assertTrue(os.path.isfile(os.path.join(out, "edge-c.key")))
        self.assertNotEqual(os.stat(ca).st_mtime_ns, mtime)
        self.assertFalse([n for n in os.listdir(out) if n.startswith(".staging")], "staging dir removed")

    def test_errors(self):
        rc, text = h.run_cmd(["bash", MKPKI], timeout=30)
        self.assertNotEqual(rc, 0)
        self.assertIn("usage", text)
        blocker = os.path.join(self.tmp, "file")
        with open(blocker, "w") as f:
            f.write("x")
        rc, text = h.run_cmd(["bash", MKPKI, os.path.join(blocker, "pki")], timeout=30)
        self.assertNotEqual(rc, 0)
        self.assertIn("error", text)
        rc, text = h.run_cmd(["bash", MKPKI, "--bogus", self.tmp], timeout=30)
        self.assertNotEqual(rc, 0)


class TlsWithPki(h.TestCase):
    """Real handshakes: openssl s_server with the edge-e certs (SNI selection), and a Python mTLS server."""

    def s_server(self, cert, key, extra=()):
        p = self.pki()
        port = h.free_port()
        srv = self.start(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", f"{p}/{cert}.crt",
                          "-key", f"{p}/{key}.key", "-www", *extra], name=f"s_server-{cert}")
        srv.wait_port("127.0.0.1", port, timeout=10)
        return port

    def test_sni_selects_second_cert(self):
        p = self.pki()
        port = self.s_server("edge-e", "edge-e", ["-cert2", f"{p}/edge-e-alt.crt", "-key2", f"{p}/edge-e-alt.key",
                                                  "-servername", "collab-edge.example.org"])
        ca = f"{p}/ca.crt"
        s, sans = h.tls_connect("127.0.0.1", port, "expe1.example.com", ca)
        s.close()
        self.assertIn(("DNS", "collab-edge.example.com"), sans)
        s, sans = h.tls_connect("127.0.0.1", port, "collab-edge.example.org", ca)
        s.close()
        self.assertIn(("DNS", "*.example.org"), sans)
        # The IP SAN: verified by address.
        s, sans = h.tls_connect("127.0.0.1", port, "127.0.0.1", ca)
        s.close()
        # Name not in the default cert: verification fails.
        with self.assertRaises(ssl.SSLCertVerificationError):
            h.tls_connect("127.0.0.1", port, "cucm1.example.com", ca)
        # Untrusted CA: fails.
        with self.assertRaises(ssl.SSLCertVerificationError):
            h.tls_connect("127.0.0.1", port, "expe1.example.com", f"{p}/rogue-ca.crt")
        # Same through openssl s_client.
        rc, out = h.s_client("127.0.0.1", port, "collab-edge.example.org", ca,
                             ["-verify_hostname", "collab-edge.example.org"])
        self.assertEqual(rc, 0, out)
        self.assertIn("Verification: OK", out)
        rc, out = h.s_client("127.0.0.1", port, "expe1.example.com", f"{p}/rogue-ca.crt")
        self.assertNotEqual(rc, 0, out)
        # And an HTTPS GET (s_server -www answers with a status page), dialled by address, SNI by name.
        st, hdrs, body = h.http_get(f"https://expe1.example.com:{port}/", cafile=ca,
                                    connect_to=("127.0.0.1", port))
        self.assertEqual(st, 200, body[:300])
        st, hdrs, body = h.wait_http(f"https://127.0.0.1:{port}/", cafile=ca, timeout=5)
        self.assertEqual(st, 200)

    def test_expired_cert_rejected(self):
        p = self.pki()
        port = self.s_server("edge-e-expired", "edge-e-expired")
        rc, out = h.s_client("127.0.0.1", port, "expe1.example.com", f"{p}/ca.crt")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("expired", out)

    def _mtls_server(self, ca):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{self.pki()}/edge-e-chain.crt", f"{self.pki()}/edge-e.key")
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        lsock = socket.create_server(("127.0.0.1", 0))
        lsock.settimeout(10)
        port = lsock.getsockname()[1]
        results = []

        def serve():
            try:
                conn, _ = lsock.accept()
            except OSError as e:
                results.append(e)
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as s:
                    results.append(s.getpeercert())
                    s.sendall(b"ok")
            except (ssl.SSLError, OSError) as e:
                results.append(e)
            finally:
                lsock.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        return port, t, results

    def test_mutual_tls_client_certs(self):
        p = self.pki()
        cases = {  # client cert -> accepted by a server trusting ca.crt (OpenSSL checks clientAuth EKU)
            "edge-c": True, "edge-c-wrongsan": True, "edge-c-cnonly": True,
            "edge-c-noclientauth": False, "rogue-edge-c": False,
        }
        for cert, ok in cases.items():
            with self.subTest(client=cert):
                port, t, results = self._mtls_server(f"{p}/ca.crt")
                try:
                    s, sans = h.tls_connect("127.0.0.1", port, "expe1.example.com", f"{p}/ca.crt",
                                            certfile=f"{p}/{cert}-chain.crt", keyfile=f"{p}/{cert}.key")
                    try:
                        s.recv(2)  # TLS 1.3: a rejected client cert shows up as an alert here
                    except (ssl.SSLError, OSError):
                        pass
                    s.close()
                    self.assertIn(("IP Address", "127.0.0.1"), sans)
                except (ssl.SSLError, OSError):
                    pass
                t.join(10)
                self.assertEqual(len(results), 1)
                if ok:
                    self.assertIsInstance(results[0], dict, results[0])
                else:
                    self.assertIsInstance(results[0], ssl.SSLError, results[0])


if __name__ == "__main__":
    h.run_tests()
