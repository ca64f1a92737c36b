"""Issue 2: both binaries start from YAML, answer the admin endpoints, serve TLS with SNI-selected
certificates, refuse bad configs with file:line, reload certificates on SIGHUP without dropping an
established connection, and drain on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import time

import harness as h
import pair


def make_cert(tc: h.TestCase, pki: str, name: str, cn: str, sans: str) -> tuple[str, str]:
    """A fresh leaf signed by the test CA (distinct serial/subject from the PKI's), for reload tests."""
    key = os.path.join(tc.tmp, f"{name}.key")
    csr = os.path.join(tc.tmp, f"{name}.csr")
    crt = os.path.join(tc.tmp, f"{name}.crt")
    ext = os.path.join(tc.tmp, f"{name}.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n")
    for args in (["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
                 ["openssl", "req", "-new", "-key", key, "-subj", f"/O=edgepair-reloaded/CN={cn}", "-out", csr],
                 ["openssl", "x509", "-req", "-in", csr, "-CA", f"{pki}/ca.crt", "-CAkey", f"{pki}/ca.key",
                  "-CAcreateserial", "-CAserial", os.path.join(tc.tmp, "ca.srl"), "-days", "2", "-sha256",
                  "-extfile", ext, "-out", crt]):
        rc, out = h.run_cmd(args)
        tc.assertEqual(rc, 0, out)
    return crt, key


def peer_subject(sock) -> str:
    cert = sock.getpeercert()
    return ",".join("=".join(x) for rdn in cert["subject"] for x in rdn)


class Foundation(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.pki_dir = self.pki()
        self.ports = pair.Ports()

    def test_health_status_and_sni(self) -> None:
        cfg_e = pair.edge_e_yaml(self, self.ports, self.pki_dir)
        cfg_c = pair.edge_c_yaml(self, self.ports, self.pki_dir)
        pair.start_edge_e(self, cfg_e, self.ports)
        # Without a traversal link edge-e is alive but not ready.
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/ready")
        self.assertEqual(st, 503, body)
        pair.start_edge_c(self, cfg_c, self.ports)

        for port, role in ((self.ports.admin_e, "edge-e"), (self.ports.admin_c, "edge-c")):
            st, _, body = h.http_get(f"http://127.0.0.1:{port}/health")
            self.assertEqual(st, 200)
            st, _, body = h.http_get(f"http://127.0.0.1:{port}/status")
            self.assertEqual(st, 200)
            doc = json.loads(body)
            self.assertEqual(doc["role"], role)
            st, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics")
            self.assertEqual(st, 200)
            self.assertIn(b"# TYPE", body)
            st, _, _ = h.http_get(f"http://127.0.0.1:{port}/nope")
            self.assertEqual(st, 404)
            st, _, _ = h.http_request(f"http://127.0.0.1:{port}/health", method="POST", body=b"x")
            self.assertEqual(st, 405)

        # SNI: each domain gets its own certificate, verified against the test CA by openssl s_client.
        ca = f"{self.pki_dir}/ca.crt"
        for port in (self.ports.https, self.ports.sip):
            rc, out = h.s_client("127.0.0.1", port, "collab-edge.example.org", ca)
            self.assertEqual(rc, 0, out)
            self.assertIn("CN = collab-edge.example.org", out)
            rc, out = h.s_client("127.0.0.1", port, "expe1.example.com", ca, ["-verify_hostname", "expe1.example.com"])
            self.assertEqual(rc, 0, out)
            self.assertIn("CN = expe1.example.com", out)
            # A wildcard SAN of the second certificate.
            rc, out = h.s_client("127.0.0.1", port, "jabber.example.org", ca, ["-verify_hostname", "jabber.example.org"])
            self.assertEqual(rc, 0, out)
            self.assertIn("CN = collab-edge.example.org", out)
            # An unknown name falls back to the default certificate, which then fails hostname checks.
            rc, out = h.s_client("127.0.0.1", port, "unknown.example.net", ca, ["-verify_hostname", "unknown.example.net"])
            self.assertNotEqual(rc, 0, out)
            self.assertIn("CN = expe1.example.com", out)

        # Once the link is up, a request without credentials crosses it and edge-c asks for them.
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=15)
        st, hdrs, body = h.http_request(f"https://expe1.example.com:{self.ports.https}/ZXhhbXBsZS5jb20/get_edge_config/",
                                        cafile=ca, connect_to=("127.0.0.1", self.ports.https))
        self.assertEqual(st, 401, body)
        self.assertIn("Basic", hdrs.get("WWW-Authenticate", ""))

        # A client that is not speaking TLS is counted as a failed handshake and does not disturb others.
        import socket
        with socket.create_connection(("127.0.0.1", self.ports.https), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                reply = s.recv(100)  # a TLS alert, then close (or a reset: unread bytes were discarded)
                self.assertFalse(reply.startswith(b"HTTP/"), reply)
            except ConnectionResetError:
                pass
        deadline = time.time() + 5
        while time.time() < deadline:
            _, _, m = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/metrics")
            if b"edgepair_tls_handshake_failures_total 1" in m or b"edgepair_tls_handshake_failures_total 2" in m:
                break
            time.sleep(0.1)
        self.assertRegex(m.decode(), r"edgepair_tls_handshake_failures_total [1-9]")

    def test_check_reports_file_line_key(self) -> None:
        bad = self.write_yaml("bad.yaml", """
            node_name: expe1.example.com
            workerz: 2
            tls:
              default_certificate: {cert: /nonexistent.crt, key: /nonexistent.key}
              trusted_cas: /nonexistent-ca.crt
            link:
              tls_verify_subject_name: expc1.example.com
              auth_database: /nonexistent.db
        """)
        rc, out = h.run_cmd([self.require_binary("edge-e"), "-c", bad, "--check"])
        self.assertNotEqual(rc, 0)
        self.assertIn(f"{bad}:2: workerz: unknown key", out)
        self.assertRegex(out, rf"{bad}:4: tls\.default_certificate\.cert: .*nonexistent\.crt")
        good = pair.edge_e_yaml(self, self.ports, self.pki_dir)
        rc, out = h.run_cmd([self.require_binary("edge-e"), "-c", good, "--check"])
        self.assertEqual(rc, 0, out)
        rc, out = h.run_cmd([self.require_binary("edge-c"), "-c", pair.edge_c_yaml(self, self.ports, self.pki_dir), "--check"])
        self.assertEqual(rc, 0, out)
        # edge-c refuses a certificate without clientAuth for the link.
        nocli = pair.edge_c_yaml(self, self.ports, self.pki_dir, cert="edge-c-noclientauth")
        rc, out = h.run_cmd([self.require_binary("edge-c"), "-c", nocli, "--check"])
        self.assertNotEqual(rc, 0)
        self.assertRegex(out, rf"{nocli}:\d+: tls\.certificate.*clientAuth")

    def test_sighup_reloads_certificate_keeping_connections(self) -> None:
        sni_crt = os.path.join(self.tmp, "sni.crt")
        sni_key = os.path.join(self.tmp, "sni.key")
        crt, key = make_cert(self, self.pki_dir, "first", "collab-edge.example.org",
                             "DNS:collab-edge.example.org,DNS:example.org")
        os.replace(crt, sni_crt)
        os.replace(key, sni_key)
        cfg_e = pair.edge_e_yaml(self, self.ports, self.pki_dir, sni_cert=sni_crt, sni_key=sni_key)
        e = pair.start_edge_e(self, cfg_e, self.ports)
        ca = f"{self.pki_dir}/ca.crt"

        old, _ = h.tls_connect("127.0.0.1", self.ports.https, "example.org", ca)
        first_serial = old.getpeercert()["serialNumber"]

        crt, key = make_cert(self, self.pki_dir, "second", "collab-edge.example.org",
                             "DNS:collab-edge.example.org,DNS:example.org")
        os.replace(key, sni_key)
        os.replace(crt, sni_crt)
        mark = len(e.log_text())
        e.send_signal(signal.SIGHUP)
        e.wait_log(r"reload applied on every worker", timeout=10, start=mark)

        new, _ = h.tls_connect("127.0.0.1", self.ports.https, "example.org", ca)
        self.assertNotEqual(new.getpeercert()["serialNumber"], first_serial)
        new.close()

        # The connection opened before the reload still works.
        old.sendall(b"GET /ZXhhbXBsZS5vcmc/get_edge_config/ HTTP/1.1\r\nHost: example.org\r\n\r\n")
        data = old.recv(4096)
        self.assertTrue(data.startswith(b"HTTP/1.1 503"), data)
        old.close()

        # A broken config on reload is refused and the old one keeps serving.
        with open(cfg_e, "a") as f:
            f.write("bogus_key: 1\n")
        mark = len(e.log_text())
        e.send_signal(signal.SIGHUP)
        e.wait_log(r"reload refused", timeout=10, start=mark)
        st, _, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/health")
        self.assertEqual(st, 200)

    def test_sigterm_drains_and_exits(self) -> None:
        cfg_e = pair.edge_e_yaml(self, self.ports, self.pki_dir)
        e = pair.start_edge_e(self, cfg_e, self.ports)
        t0 = time.time()
        rc = e.stop(timeout=15)
        self.assertEqual(rc, 0)
        self.assertLess(time.time() - t0, 12)
        self.assertIn("drain done", e.log_text())


if __name__ == "__main__":
    h.run_tests()
