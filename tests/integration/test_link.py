"""Issue 3: the traversal link between real edge-e and edge-c processes with the test PKI.

Comes up mutually authenticated; each kind of bad peer is refused with its own counted reason; a killed
edge-c comes back within 5 s; one link carries 1,000 concurrent streams."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import harness as h
import pair


def metric(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


class Link(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.pki_dir = self.pki()
        self.ports = pair.Ports()

    def metrics_e(self) -> str:
        return h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/metrics")[2].decode()

    def status(self, port: int) -> dict:
        return json.loads(h.http_get(f"http://127.0.0.1:{port}/status")[2])

    def wait_metric(self, name: str, labels: str, at_least: float = 1, timeout: float = 10) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if metric(self.metrics_e(), name, labels) >= at_least:
                return
            time.sleep(0.1)
        self.fail(f"{name}{labels} never reached {at_least}:\n{self.metrics_e()}")

    def test_link_up_status_and_ready(self) -> None:
        pair.start_edge_e(self, pair.edge_e_yaml(self, self.ports, self.pki_dir), self.ports)
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/ready")
        self.assertEqual(st, 503)
        self.assertIn(b"no traversal link", body)
        pair.start_edge_c(self, pair.edge_c_yaml(self, self.ports, self.pki_dir), self.ports)
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=10)
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_c}/ready", timeout=10)
        # One link per edge-e worker (2), each authenticated over TLS 1.3 with the link ALPN.
        deadline = time.time() + 10
        while time.time() < deadline:
            links = self.status(self.ports.admin_e)["link"]["links"]
            if len([l for l in links if l["state"] == "up"]) == 2:
                break
            time.sleep(0.2)
        self.assertEqual(len([l for l in links if l["state"] == "up"]), 2, links)
        for l in links:
            self.assertEqual(l["peer_node"], "expc1.example.com")
            self.assertEqual(l["alpn"], "edgepair-link/1")
            self.assertEqual(l["tls_version"], "TLSv1.3")
        c_links = self.status(self.ports.admin_c)["link"]["links"]
        self.assertTrue(all(l["peer_node"] == "expe1.example.com" for l in c_links), c_links)
        # edge-c's configuration reached edge-e as one snapshot.
        snap = self.status(self.ports.admin_e)["snapshot"]
        self.assertEqual(snap["domains"], ["example.com"])

    def test_wrong_password_is_refused_and_counted(self) -> None:
        pair.start_edge_e(self, pair.edge_e_yaml(self, self.ports, self.pki_dir), self.ports)
        pair.start_edge_c(self, pair.edge_c_yaml(self, self.ports, self.pki_dir, password="not-the-password"),
                          self.ports)
        self.wait_metric("edgepair_link_auth_failures_total", '{reason="bad_credentials"}')
        deadline = time.time() + 10
        err = ""
        while time.time() < deadline:
            links = self.status(self.ports.admin_c)["link"]["links"]
            err = " ".join(l.get("last_error", "") for l in links)
            if "auth" in err:
                break
            time.sleep(0.2)
        self.assertIn("auth", err)
        st, _, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/ready")
        self.assertEqual(st, 503)

    def _dial_link(self, cert: str | None, expect_label: str) -> None:
        args = ["-alpn", "edgepair-link/1"]
        if cert:
            args += ["-cert", f"{self.pki_dir}/{cert}.crt", "-key", f"{self.pki_dir}/{cert}.key"]
        before = metric(self.metrics_e(), "edgepair_link_auth_failures_total", f'{{reason="{expect_label}"}}')
        h.s_client("127.0.0.1", self.ports.link, "expe1.example.com", f"{self.pki_dir}/ca.crt", args, timeout=10,
                   input=b"")
        self.wait_metric("edgepair_link_auth_failures_total", f'{{reason="{expect_label}"}}', before + 1)

    def test_bad_certificates_are_refused_with_distinct_reasons(self) -> None:
        pair.start_edge_e(self, pair.edge_e_yaml(self, self.ports, self.pki_dir), self.ports)
        self._dial_link(None, "no_client_cert")
        self._dial_link("edge-c-wrongsan", "wrong_san")
        self._dial_link("edge-c-noclientauth", "no_client_auth_eku")
        self._dial_link("rogue-edge-c", "tls_handshake")
        # None of them brought a link up, and edge-e still serves.
        st, _, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/ready")
        self.assertEqual(st, 503)
        st, _, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/health")
        self.assertEqual(st, 200)

    def test_edge_c_killed_and_restarted_relinks_within_5s(self) -> None:
        pair.start_edge_e(self, pair.edge_e_yaml(self, self.ports, self.pki_dir), self.ports)
        cfg_c = pair.edge_c_yaml(self, self.ports, self.pki_dir)
        c = pair.start_edge_c(self, cfg_c, self.ports)
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=10)
        c.send_signal(signal.SIGKILL)
        c.wait(timeout=5)
        # edge-e notices the dead link (TCP reset) and stops being ready.
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=10, expect_status=503)
        t0 = time.time()
        pair.start_edge_c(self, cfg_c, self.ports)
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=5)
        self.assertLess(time.time() - t0, 5.0)

    def test_edge_e_restart_redials_with_backoff(self) -> None:
        cfg_e = pair.edge_e_yaml(self, self.ports, self.pki_dir)
        e = pair.start_edge_e(self, cfg_e, self.ports)
        pair.start_edge_c(self, pair.edge_c_yaml(self, self.ports, self.pki_dir), self.ports)
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_c}/ready", timeout=10)
        e.stop()
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_c}/ready", timeout=10, expect_status=503)
        time.sleep(1.0)  # edge-c keeps redialling a peer that is down
        pair.start_edge_e(self, cfg_e, self.ports)
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_c}/ready", timeout=5)

    def test_one_link_carries_1000_concurrent_streams(self) -> None:
        # One worker on each side: every client request below crosses the same link connection.
        # All 1,000 clients come from 127.0.0.1: the per-address rate limit (429) and the per-address cap on
        # link streams (http.max_link_streams_per_client, 256 by default) would be the bottleneck, not the link.
        pair.start_edge_e(self, pair.edge_e_yaml(
            self, self.ports, self.pki_dir, workers=1,
            extra="http: {rate_limit: {enabled: false}, max_link_streams_per_client: 2000}"), self.ports)
        pair.start_edge_c(self, pair.edge_c_yaml(self, self.ports, self.pki_dir, workers=1), self.ports)
        h.wait_http(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=10)
        rc, out = h.run_cmd([self.require_binary("edge-load"), "--scenario", "http", "--target",
                             f"127.0.0.1:{self.ports.https}", "--sni", "expe1.example.com", "--cafile",
                             f"{self.pki_dir}/ca.crt", "--connections", "1000", "--requests", "3000",
                             "--path", "/ZXhhbXBsZS5jb20/get_edge_config/", "--expect-status", "401",
                             "--duration", "60", "--json", "--no-progress"], timeout=120)
        self.assertEqual(rc, 0, out)
        summary = json.loads(out[out.index("{"):])
        self.assertGreaterEqual(summary.get("ok", summary.get("completed", 0)), 3000, summary)
        # /status link figures are refreshed by the worker once a second.
        deadline = time.time() + 5
        while time.time() < deadline:
            links = self.status(self.ports.admin_e)["link"]["links"]
            if len(links) == 1 and links[0]["streams_total"] >= 3000:
                break
            time.sleep(0.3)
        self.assertEqual(len(links), 1, links)
        self.assertGreaterEqual(links[0]["streams_total"], 3000)


if __name__ == "__main__":
    h.run_tests()
