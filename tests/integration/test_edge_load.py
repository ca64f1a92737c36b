"""edge-load smoke test: short runs against a local nginx (plain and TLS), JSON summary, exit status, and the
loopback-only rule. Bounded: every run is capped by --requests/--duration and by run_cmd's timeout."""

from __future__ import annotations

import json
import os

import harness as h


class EdgeLoadTest(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.load = self.require_binary("edge-load")
        nginx = self.require_tool("nginx")
        self.pki = h.pki()
        self.plain, self.tls = h.free_ports(2)
        conf = self.write_yaml("nginx.conf", """
            daemon off;
            master_process off;
            worker_processes 1;
            pid {tmp}/nginx.pid;
            error_log stderr warn;
            events {{ worker_connections 512; }}
            http {{
              access_log off;
              client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
              uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
              server {{ listen 127.0.0.1:{plain}; location / {{ return 200 "ok\\n"; }} }}
              server {{
                listen 127.0.0.1:{tls} ssl;
                ssl_certificate {pki}/edge-e.crt;
                ssl_certificate_key {pki}/edge-e.key;
                location / {{ return 200 "ok\\n"; }}
                location /missing {{ return 404; }}
              }}
            }}
        """, tmp=self.tmp, plain=self.plain, tls=self.tls, pki=self.pki)
        p = self.start([nginx, "-p", self.tmp, "-c", conf], name="nginx")
        p.wait_port("127.0.0.1", self.plain)
        p.wait_port("127.0.0.1", self.tls)

    def run_load(self, *args: str, expect_rc: int | None = 0, timeout: float = 20) -> dict:
        rc, out = h.run_cmd([self.load, "--no-progress", "--json", *args], timeout=timeout)
        if expect_rc is not None:
            self.assertEqual(rc, expect_rc, out)
        # The JSON summary is the one line of stdout that is an object (stderr is merged by run_cmd).
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        self.assertEqual(len(lines), 1, out)
        return json.loads(lines[0])

    def assert_clean(self, j: dict, ok: int) -> None:
        self.assertEqual(j["errors_total"], 0, j)
        self.assertEqual(j["ok"], ok, j)
        self.assertEqual(j["unfinished"], 0, j)
        self.assertEqual(j["latency_us"]["count"], ok, j)
        lat = j["latency_us"]
        self.assertTrue(0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat)

    def test_http_plain_keepalive(self):
        j = self.run_load("--scenario", "http", "--plain", "--target", f"127.0.0.1:{self.plain}",
                          "--connections", "4", "--requests", "200", "--duration", "10")
        self.assert_clean(j, 200)
        self.assertEqual(j["requests"], 200, j)
        self.assertEqual(j["status"]["2xx"], 200, j)
        self.assertEqual(j["connects"], 4, j)  # keep-alive: one connection per slot
        self.assertEqual(j["handshakes"], 0, j)

    def test_http_tls_verified_two_threads(self):
        j = self.run_load("--scenario", "http", "--target", f"127.0.0.1:{self.tls}", "--cafile",
                          f"{self.pki}/ca.crt", "--threads", "2", "--connections", "4", "--requests", "200")
        self.assert_clean(j, 200)
        self.assertEqual(j["handshakes"], 4, j)
        self.assertEqual(j["threads"], 2, j)

    def test_handshake(self):
        j = self.run_load("--scenario", "handshake", "--target", f"127.0.0.1:{self.tls}", "--cafile",
                          f"{self.pki}/ca.crt", "--connections", "5", "--requests", "50")
        self.assert_clean(j, 50)
        self.assertEqual(j["handshakes"], 50, j)
        self.assertEqual(j["requests"], 0, j)
        # With --request: one GET per connection, still one handshake each.
        j = self.run_load("--scenario", "handshake", "--request", "--target", f"127.0.0.1:{self.tls}",
                          "--insecure", "--connections", "5", "--requests", "50")
        self.assert_clean(j, 50)
        self.assertEqual(j["handshakes"], 50, j)
        self.assertEqual(j["status"]["2xx"], 50, j)

    def test_open_loop(self):
        j = self.run_load("--scenario", "http", "--plain", "--target", f"127.0.0.1:{self.plain}", "--rate", "400",
                          "--connections", "4", "--requests", "200")
        self.assert_clean(j, 200)
        self.assertEqual(j["mode"], "open", j)
        # 200 arrivals 2.5 ms apart take about 0.5 s, whatever the server's speed.
        self.assertGreater(j["duration_s"], 0.4, j)

    def test_edge_config_and_http_errors(self):
        j = self.run_load("--scenario", "edge-config", "--target", f"127.0.0.1:{self.tls}", "--insecure",
                          "--user", "alice", "--password", "pw", "--requests", "20")
        self.assert_clean(j, 20)
        j = self.run_load("--scenario", "http", "--path", "/missing", "--target", f"127.0.0.1:{self.tls}",
                          "--insecure", "--requests", "10", expect_rc=1)
        self.assertEqual(j["errors"]["http_4xx"], 10, j)
        self.assertEqual(j["ok"], 0, j)
        j = self.run_load("--scenario", "http", "--path", "/missing", "--expect-status", "404", "--target",
                          f"127.0.0.1:{self.tls}", "--insecure", "--requests", "10")
        self.assert_clean(j, 10)

    def test_idle(self):
        ready = os.path.join(self.tmp, "ready")
        j = self.run_load("--scenario", "idle", "--target", f"127.0.0.1:{self.tls}", "--insecure",
                          "--connections", "20", "--duration", "1.5", "--ready-file", ready)
        self.assertEqual(j["idle"]["established"], 20, j)
        self.assertEqual(j["idle"]["alive_at_end"], 20, j)
        self.assertEqual(j["errors_total"], 0, j)
        self.assertTrue(os.path.exists(ready))

    def test_connect_failure_exits_nonzero(self):
        dead = h.free_port()  # nothing listens there
        j = self.run_load("--scenario", "http", "--plain", "--target", f"127.0.0.1:{dead}", "--requests", "5",
                          "--duration", "5", expect_rc=1)
        self.assertEqual(j["errors"]["connect"], 5, j)
        self.assertEqual(j["ok"], 0, j)

    def test_refuses_non_loopback_and_unimplemented(self):
        for target in ("10.1.2.3:443", "192.0.2.1:8443", "[2001:db8::1]:443", "0.0.0.0:443"):
            rc, out = h.run_cmd([self.load, "--scenario", "http", "--plain", "--target", target, "--requests", "1"],
                                timeout=10)
            self.assertEqual(rc, 2, out)
            self.assertIn("loopback", out)
        rc, out = h.run_cmd([self.load, "--scenario", "sip-register", "--target", f"127.0.0.1:{self.tls}",
                             "--insecure"], timeout=10)
        self.assertEqual(rc, 2, out)
        self.assertIn("not yet implemented", out)


if __name__ == "__main__":
    h.run_tests()
