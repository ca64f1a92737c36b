#!/usr/bin/python3
"""edge-e's client limits on 8443 (issue #14 items 3-6), on the topology of test_http_edge.py:

- back-pressure: a client that pipelines requests edge-e answers itself and never reads, or floods the
  connection behind a request in flight, is not read any more; edge-e's RSS stays under a stated bound;
- a request head not complete within http.request_head_timeout gets 408 and the connection closes;
- Expect: 100-continue gets 100 Continue when the request goes to the link, the final answer when refused,
  and a bodyless request with Expect is answered;
- HTTP/1.0 without Host is served with the edge's own authority (what nginx received is checked);
- HTTP/2 HEADERS on a lower or closed stream id is a connection error (GOAWAY PROTOCOL_ERROR);
- a refused request releases its link stream at once although the client keeps uploading; link streams per
  client address are capped; a client holding a link stream without progress is cut.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_http_limits.py
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import test_http_edge as base  # noqa: E402
from test_http2_edge import END_STREAM, GOAWAY, HEADERS, RawH2  # noqa: E402
from test_http_edge import ALICE, DOMAIN_B64, EDGE  # noqa: E402

D = DOMAIN_B64
# Stated in docs/SECURITY.md ("Per-connection memory"): one HTTP/1.1 connection costs edge-e well under
# 1 MiB whatever its client sends; the test allows the process 16 MiB of growth for one hostile connection
# (allocator slack included), against +50 MiB in 4 s and +64 MiB in 2 s before the bounds.
RSS_GROWTH_LIMIT = 16 * 1024 * 1024
FLOOD_BYTES = 64 * 1024 * 1024


class HttpLimitsTest(base.HttpEdgeTopology):
    EDGE_E_EXTRA = ("http: {request_head_timeout: 2s, client_stall_timeout: 4s, max_link_streams_per_client: 4, "
                    "rate_limit: {enabled: false}}")
    EDGE_C_EXTRA = "http: {upstream_timeout: 8s}"

    # ---- helpers -------------------------------------------------------------------------------------

    def tls(self, timeout: float = 10):
        s, _ = h.tls_connect("127.0.0.1", self.ports.https, EDGE, f"{self.pki_dir}/ca.crt", alpn=["http/1.1"],
                             timeout=timeout)
        return s

    def rss(self) -> int:
        with open(f"/proc/{self.edge_e.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def flood(self, s, data: bytes, seconds: float = 4.0) -> int:
        """Sends `data` repeatedly for up to `seconds` or FLOOD_BYTES; returns the bytes the socket took."""
        sent = 0
        s.settimeout(0.5)
        deadline = time.monotonic() + seconds
        for _ in range(FLOOD_BYTES // len(data) + 1):
            if time.monotonic() > deadline or sent >= FLOOD_BYTES:
                break
            try:
                s.sendall(data)
                sent += len(data)
            except (socket.timeout, TimeoutError):
                break
        return sent

    def read_until_close(self, s, timeout: float = 10) -> bytes:
        s.settimeout(timeout)
        out = b""
        for _ in range(10000):
            try:
                chunk = s.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return out

    def link_streams_open(self) -> int:
        _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
        return sum(link.get("streams_open", 0) for link in json.loads(body)["link"]["links"])

    def wait_streams(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.link_streams_open() == n:
                return True
            time.sleep(0.2)
        return False

    def hello_path(self) -> str:
        return self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")

    def origin_log(self) -> str:
        with open(self.access_log) as f:
            return f.read()

    def wait_origin_log(self, line: str, timeout: float = 5.0) -> str:
        # nginx writes its access log line when it finalises the request, which can be after the client has
        # read the whole response: poll instead of reading once.
        deadline = time.monotonic() + timeout
        while True:
            log = self.origin_log()
            if line in log or time.monotonic() > deadline:
                return log
            time.sleep(0.05)

    # ---- back-pressure -------------------------------------------------------------------------------

    def test_pipelined_local_answers_are_not_read_while_unread(self):
        s = self.tls()
        self.addCleanup(s.close)
        before = self.rss()
        # Each one is answered by edge-e itself (400: not an MRA path); the client never reads.
        req = f"GET /nope HTTP/1.1\r\nHost: {EDGE}\r\n\r\n".encode() * 512
        sent = self.flood(s, req)
        time.sleep(0.5)
        growth = self.rss() - before
        self.assertLess(sent, FLOOD_BYTES, "edge-e kept reading a client that does not read")
        self.assertLess(growth, RSS_GROWTH_LIMIT, f"RSS grew {growth} bytes ({sent} sent)")
        self.assertGreaterEqual(self.metric("e", "edgepair_http_client_read_pauses_total", {}), 1)
        # Other clients are served meanwhile.
        st, _, _ = self.get(f"/{D}/get_edge_sso/?username=alice")
        self.assertEqual(st, 200)

    def test_no_read_past_the_request_in_flight(self):
        s = self.tls()
        self.addCleanup(s.close)
        before = self.rss()
        silent = self.proxy("http", "silent.example.com", self.silent_port, "/slow")
        head = (f"GET {silent} HTTP/1.1\r\nHost: {EDGE}\r\nAuthorization: {base.basic(*ALICE)}\r\n\r\n").encode()
        s.sendall(head)
        time.sleep(0.3)
        sent = self.flood(s, b"x" * 65536)
        time.sleep(0.5)
        growth = self.rss() - before
        self.assertLess(sent, FLOOD_BYTES, "edge-e buffered everything behind the request in flight")
        self.assertLess(growth, RSS_GROWTH_LIMIT, f"RSS grew {growth} bytes ({sent} sent)")

    # ---- request heads, Expect, HTTP/1.0 ----------------------------------------------------------------

    def test_request_head_deadline(self):
        s = self.tls()
        self.addCleanup(s.close)
        s.sendall(f"GET /{D}/get_edge_sso/?username=alice HTTP/1.1\r\nHost: {EDGE}\r\n".encode())
        t0 = time.monotonic()
        out = self.read_until_close(s, timeout=10)
        self.assertTrue(out.startswith(b"HTTP/1.1 408 "), out[:200])
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        self.assertLess(time.monotonic() - t0, 6)
        # Connected, TLS done, not a byte sent: closed at the same deadline, without an answer.
        s2 = self.tls()
        self.addCleanup(s2.close)
        t0 = time.monotonic()
        self.assertEqual(self.read_until_close(s2, timeout=10), b"")
        self.assertLess(time.monotonic() - t0, 6)
        self.assertGreaterEqual(self.metric("e", "edgepair_http_head_timeouts_total", {}), 2)
        # A complete request is not affected.
        st, _, _ = self.get(f"/{D}/get_edge_sso/?username=alice")
        self.assertEqual(st, 200)

    def test_expect_100_continue(self):
        auth = base.basic(*ALICE)
        # A body announced with Expect: 100 Continue once the request is on the link; the body then reaches
        # the origin (nginx answers a POST to a static file with 405 and logs it).
        s = self.tls()
        self.addCleanup(s.close)
        s.sendall((f"POST {self.hello_path()} HTTP/1.1\r\nHost: {EDGE}\r\nAuthorization: {auth}\r\n"
                   "Content-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").encode())
        s.settimeout(10)
        interim = s.recv(4096)
        self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
        s.sendall(b"hello")
        out = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):] + self.read_until_close(s)
        self.assertTrue(out.startswith(b"HTTP/1.1 405 "), out[:200])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "POST /files/hello.txt 405" not in self.origin_log():
            time.sleep(0.1)
        self.assertIn("POST /files/hello.txt 405", self.wait_origin_log("POST /files/hello.txt 405"))

        # Bodyless with Expect: answered, no interim response.
        s = self.tls()
        self.addCleanup(s.close)
        s.sendall((f"GET {self.hello_path()} HTTP/1.1\r\nHost: {EDGE}\r\nAuthorization: {auth}\r\n"
                   "Expect: 100-continue\r\nConnection: close\r\n\r\n").encode())
        out = self.read_until_close(s)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 "), out[:200])
        self.assertTrue(out.endswith(self.hello), out[-200:])

        # Refused before the link (allow list): the final answer at once, no 100, and the connection closes
        # (the client may never send the body it was told to wait with).
        s = self.tls()
        self.addCleanup(s.close)
        blocked = self.proxy("http", "cucm1.example.com", self.web_port, "/other/x.txt")
        s.sendall((f"POST {blocked} HTTP/1.1\r\nHost: {EDGE}\r\nAuthorization: {auth}\r\n"
                   "Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n").encode())
        out = self.read_until_close(s, timeout=10)
        self.assertTrue(out.startswith(b"HTTP/1.1 403 "), out[:200])
        self.assertNotIn(b" 100 Continue", out)
        self.assertNotIn("/other/x.txt", self.origin_log())

    def test_http10_without_host(self):
        s = self.tls()
        self.addCleanup(s.close)
        s.sendall(f"GET {self.hello_path()} HTTP/1.0\r\nAuthorization: {base.basic(*ALICE)}\r\n\r\n".encode())
        out = self.read_until_close(s)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 "), out[:300])
        self.assertTrue(out.endswith(self.hello), out[-200:])
        self.assertIn("GET /files/hello.txt 200", self.wait_origin_log("GET /files/hello.txt 200"))

    # ---- HTTP/2 stream ids ---------------------------------------------------------------------------

    def test_h2_headers_on_lower_or_closed_stream(self):
        sso = f"/{D}/get_edge_sso/?username=alice"
        for first, again in ((3, 1), (1, 1)):
            c = RawH2(self)
            self.addCleanup(c.close)
            c.sock.sendall(c.request(first, sso))
            end = c.wait_for(lambda f: f[2] == first and f[1] & END_STREAM, timeout=10)
            self.assertIsNotNone(end, "no complete answer on the first stream")
            c.sock.sendall(c.request(again, sso))
            f = c.wait_for(lambda f: f[0] == GOAWAY, timeout=10)
            self.assertIsNotNone(f, f"no GOAWAY for HEADERS on stream {again} after {first}")
            self.assertEqual(int.from_bytes(f[3][4:8], "big"), 1, "not PROTOCOL_ERROR")
        self.assertGreaterEqual(self.metric("e", "edgepair_http_rejected_requests_total", {"reason": "h2_stream_id"}),
                                2)

    # ---- link streams ---------------------------------------------------------------------------------

    def test_refused_request_releases_its_link_stream(self):
        self.assertTrue(self.wait_streams(0, 5))
        # No credentials: edge-c answers 401 while the client is still uploading a 10 MB body it never ends.
        s = self.tls()
        self.addCleanup(s.close)
        s.sendall((f"GET /{D}/get_edge_config/ HTTP/1.1\r\nHost: {EDGE}\r\nContent-Length: 10000000\r\n\r\n"
                   ).encode() + b"x" * 4096)
        s.settimeout(10)
        out = s.recv(65536)
        self.assertTrue(out.startswith(b"HTTP/1.1 401 "), out[:200])
        self.assertIn(b"Connection: close", out)
        # Released long before the stall deadline (4 s) could have done it.
        self.assertTrue(self.wait_streams(0, 2.5), "the refused request still holds its link stream")
        self.assertGreaterEqual(self.metric("e", "edgepair_http_link_stream_early_releases_total", {}), 1)

        # HTTP/2: the same; the rest of the upload is discarded (no RST_STREAM: curl 7.88 fails a request
        # whose answer it has when its upload is reset) and the connection serves the next request.
        c = RawH2(self)
        self.addCleanup(c.close)
        c.sock.sendall(c.request(1, f"/{D}/get_edge_config/", extra=[("content-length", "10000000")],
                                 end_stream=False))
        c.sock.sendall(c.frame(0, 0, 1, b"x" * 4096))
        end = c.wait_for(lambda f: f[2] == 1 and f[1] & END_STREAM, timeout=10)
        self.assertIsNotNone(end, "no complete answer")
        self.assertTrue(self.wait_streams(0, 2.5), "the refused HTTP/2 request still holds its link stream")
        c.sock.sendall(c.frame(0, 0, 1, b"y" * 4096))
        c.sock.sendall(c.request(3, f"/{D}/get_edge_sso/?username=alice"))
        self.assertIsNotNone(c.wait_for(lambda f: f[2] == 3 and f[1] & END_STREAM, timeout=10))

    def test_link_streams_per_client_address(self):
        # One HTTP/2 connection (one worker): 4 requests to an upstream that never answers hold 4 link
        # streams; the 5th is refused by edge-e and never reaches the origin.
        c = RawH2(self)
        self.addCleanup(c.close)
        silent = self.proxy("http", "silent.example.com", self.silent_port, "/held")
        auth = ("authorization", base.basic(*ALICE))
        c.sock.sendall(b"".join(c.request(1 + 2 * i, silent, extra=[auth]) for i in range(4)))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(self.silent.conns) < 4:
            time.sleep(0.1)
        self.assertEqual(len(self.silent.conns), 4)
        c.sock.sendall(c.request(9, silent, extra=[auth]))
        hd = c.wait_for(lambda f: f[0] == HEADERS and f[2] == 9, timeout=5)
        # Answered at once although the origin never answers: edge-e's own 429 (the header block is HPACK).
        self.assertIsNotNone(hd, "the 5th request was not answered by edge-e")
        time.sleep(0.5)
        self.assertEqual(len(self.silent.conns), 4, "the 5th request reached the origin")
        self.assertGreaterEqual(self.metric("e", "edgepair_http_client_stream_limit_total", {}), 1)

    def test_stalled_client_is_cut(self):
        # A request to an origin that never answers, whose body the client starts and then stops sending:
        # waiting on the client, not on edge-c, so it is cut after http.client_stall_timeout (4 s here).
        s = self.tls()
        self.addCleanup(s.close)
        silent = self.proxy("http", "silent.example.com", self.silent_port, "/upload")
        s.sendall((f"GET {silent} HTTP/1.1\r\nHost: {EDGE}\r\nAuthorization: {base.basic(*ALICE)}\r\n"
                   "Content-Length: 1000\r\n\r\n0123456789").encode())
        t0 = time.monotonic()
        time.sleep(1.5)
        self.assertGreaterEqual(self.link_streams_open(), 1)
        out = self.read_until_close(s, timeout=15)
        self.assertEqual(out, b"")
        self.assertGreaterEqual(time.monotonic() - t0, 3.5)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertGreaterEqual(self.metric("e", "edgepair_http_client_stalls_total", {}), 1)
        self.assertTrue(self.wait_streams(0, 3))

if __name__ == "__main__":
    h.run_tests()
