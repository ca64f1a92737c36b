#!/usr/bin/python3
"""The HTTP edge over HTTP/2 (ALPN h2 on edge-e 8443) and the HTTP edge's limits (issue #5), on the topology of
test_http_edge.py (dnsmasq, the UCM fixture, nginx, a silent and a refusing upstream, the pair):

- curl --http2 through the same allow/block matrix as HTTP/1.1, streaming both ways, h2load for many concurrent
  streams on few connections;
- hostile HTTP/2 from a raw frame writer: connection-specific fields (stream error), too many concurrent streams
  and a RST_STREAM flood (GOAWAY), an oversized header list (431);
- 429: the per-client request rate on edge-e (set by SIGHUP), and the failed-sign-in limit on edge-c;
- timeouts: edge-c's http.upstream_timeout and edge-e's http.response_timeout, short;
- the allow-list CSV admin endpoints on edge-c with the guide's CSV examples: import, export, persistence across
  a restart, both edges enforcing, the tests file.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_http2_edge.py
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
import test_http_edge as base  # noqa: E402

ALICE = base.ALICE
EDGE = base.EDGE
D = base.DOMAIN_B64

# Frame types and errors (RFC 9113).
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
PROTOCOL_ERROR, CANCEL = 0x1, 0x8

# The guide's examples (seeds/002 "Allow List Rules File Reference", "Allow List Tests File Reference").
GUIDE_RULES = """Url,Deployment,HttpMethods,MatchType,Description
https://myServer1:8443/myPath1,myDomain1,GET,, "First Rule"
http://myServer2:8000/myPath2,myDomain200,"GET,PUT",exact,
https://myServer3:8080/myPath3,myDomain1,,prefix,"Third Rule"
https://myServer4/myPath4,myDomain1,,prefix,"Fourth Rule"
http://myServer5/myPath5,myDomain1,,prefix,"Fifth Rule"
"""
GUIDE_TESTS = """Url,ExpectedResult,Deployment,Description,HttpMethod
https://myServer1:8443/myPath1,block,"my deployment","a block test",GET
http://myServer2:8000/myPath2,allow,"my deployment","an allow test",PUT
https://myServer4/myPath4,allow,,,GET
http://myServer4/myPath4,block,,,POST
"""


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name: str, value: str) -> bytes:
    """Literal field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    n, v = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


class RawH2:
    """Just enough HTTP/2 to send what a well-behaved client never would. Responses are read as frames only."""

    def __init__(self, tc: "Http2EdgeTest"):
        self.sock, _ = h.tls_connect("127.0.0.1", tc.ports.https, EDGE, f"{tc.pki_dir}/ca.crt", alpn=["h2"],
                                     timeout=10)
        assert self.sock.selected_alpn_protocol() == "h2", self.sock.selected_alpn_protocol()
        self.buf = b""
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.frame(SETTINGS, 0, 0, b""))
        self.authority = f"{EDGE}:{tc.ports.https}"
        # read_frame acknowledges the server's SETTINGS, so that its limits (max concurrent streams) are in force.
        assert self.wait_for(lambda f: f[0] == SETTINGS and not f[1] & ACK, timeout=5), "no SETTINGS from edge-e"

    @staticmethod
    def frame(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

    def request(self, sid: int, path: str, extra=(), end_stream: bool = True, method: str = "GET") -> bytes:
        block = b"".join(hpack_literal(n, v) for n, v in
                         [(":method", method), (":scheme", "https"), (":authority", self.authority),
                          (":path", path), *extra])
        return self.frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block)

    def read_frame(self, timeout: float):
        self.sock.settimeout(timeout)
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        n = int.from_bytes(self.buf[:3], "big")
        f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF, self.buf[9:9 + n])
        self.buf = self.buf[9 + n:]
        if f[0] == SETTINGS and not f[1] & ACK and f[2] == 0:
            self.sock.sendall(self.frame(SETTINGS, ACK, 0, b""))
        if f[0] == PING and not f[1] & ACK:
            self.sock.sendall(self.frame(PING, ACK, 0, f[3]))
        return f

    def wait_for(self, pred, timeout: float = 10, max_frames: int = 100000):
        """First frame matching pred; None if the connection closed or the time ran out first."""
        deadline = time.monotonic() + timeout
        for _ in range(max_frames):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                f = self.read_frame(left)
            except (socket.timeout, TimeoutError):
                return None
            except (ConnectionError, OSError):
                return None
            if f is None:
                return None
            if pred(f):
                return f
        return None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Http2EdgeTest(base.HttpEdgeTopology):
    EDGE_C_EXTRA = "http: {upstream_timeout: 2s}\ncredentials: {max_failures: 3, failure_period: 60s}"

    # ---- helpers -------------------------------------------------------------------------------------

    def curl2(self, path: str, *args: str, auth=ALICE, timeout: float = 60, out: str | None = None):
        """curl --http2; returns (http version, status, body bytes, headers text)."""
        out = out or os.path.join(self.tmp, "curl2.out")
        hdr = os.path.join(self.tmp, "curl2.hdr")
        cmd = [self.require_tool("curl"), "--http2", "-sS", "-o", out, "-D", hdr, "-w", "%{http_version} %{http_code}",
               "--cacert", f"{self.pki_dir}/ca.crt", "--resolve", f"{EDGE}:{self.ports.https}:127.0.0.1",
               *(["-u", f"{auth[0]}:{auth[1]}"] if auth else []), *args, self.url(path)]
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
        ver, _, code = r.stdout.decode().partition(" ")
        with open(out, "rb") as f:
            data = f.read()
        headers = open(hdr, encoding="latin-1").read() if os.path.exists(hdr) else ""
        return ver, int(code or 0), data, headers

    def reload_edge_e(self, extra: str) -> None:
        before = self.metric("e", "edgepair_config_reloads_total", {"result": "ok"})
        pair.edge_e_yaml(self, self.ports, self.pki_dir, extra=base.indent(extra))
        self.edge_e.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.metric("e", "edgepair_config_reloads_total", {"result": "ok"}) > before:
                time.sleep(0.3)  # the new generation reaches the workers by a posted task
                return
            time.sleep(0.1)
        self.fail("edge-e did not reload:\n" + self.edge_e.tail())

    def admin_c(self, method: str, path: str, body: str | None = None):
        return h.http_request(f"http://127.0.0.1:{self.ports.admin_c}{path}", method, body=body, timeout=10,
                              headers={"Content-Type": "text/csv"})

    # ---- HTTP/2 through the pair --------------------------------------------------------------------

    def test_h2_matrix(self):
        ver, st, body, _ = self.curl2(f"/{D}/get_edge_config/?service_name=_cisco-uds")
        self.assertEqual((ver, st), ("2", 200), body)
        self.assertTrue(body.startswith(b"<?xml"), body[:100])
        ver, st, body, _ = self.curl2(f"/{D}/get_edge_sso/?username=alice", auth=None)
        self.assertEqual((ver, st), ("2", 200))
        self.assertIn(b"<sso>false</sso>", body)
        hello = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        self.assertEqual(self.curl2(hello)[:3], ("2", 200, self.hello))
        ver, st, body, hd = self.curl2(hello, "-I")  # HEAD: curl writes the head, no payload follows
        self.assertEqual((ver, st), ("2", 200))
        self.assertNotIn(self.hello, body)
        self.assertIn("content-length: 33", hd.lower())
        self.assertEqual(self.curl2(hello, auth=None)[1], 401)
        self.assertEqual(self.curl2(hello, auth=("alice", "wrong"))[1], 401)
        other = base64.b64encode(b"example.org").decode().rstrip("=")
        self.assertEqual(self.curl2(f"/{other}/get_edge_config/")[1], 404)

        blocked = [
            ("host", self.proxy("http", "cucm2.example.com", self.web_port, "/files/hello.txt"), "GET"),
            ("port", self.proxy("http", "cucm1.example.com", self.web_port + 1, "/files/hello.txt"), "GET"),
            ("scheme", self.proxy("https", "cucm1.example.com", self.web_port, "/files/hello.txt"), "GET"),
            ("path", self.proxy("http", "cucm1.example.com", self.web_port, "/other/x.txt"), "GET"),
            ("method", self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt"), "DELETE"),
        ]
        before = self.metric("e", "edgepair_http_blocked_total", {"side": "edge-e"})
        for what, path, method in blocked:
            with self.subTest(what=what):
                ver, st, body, _ = self.curl2(path, "-X", method)
                self.assertEqual((ver, st), ("2", 403), body)
        self.assertEqual(self.metric("e", "edgepair_http_blocked_total", {"side": "edge-e"}) - before, len(blocked))
        # Path tricks are refused by the same normalisation as on HTTP/1.1 (curl sends them as written).
        for trick in ("/files/%2e%2e/other/x.txt", "/files/..%2Fother/x.txt", "/files/%252e%252e/other/x.txt",
                      "/files/..;/other/x.txt"):
            with self.subTest(trick=trick):
                st = self.curl2(self.proxy("http", "cucm1.example.com", self.web_port, trick), "--path-as-is")[1]
                self.assertIn(st, (400, 403))
        with open(self.access_log) as f:
            self.assertNotIn("/other/", f.read())
        self.assertGreaterEqual(self.metric("e", "edgepair_http2_connections_total", {}), 10)

    def test_h2_streaming_both_ways(self):
        big = self.proxy("http", "cucm1.example.com", self.web_port, "/files/big.bin")
        want = hashlib.sha256(self.big).hexdigest()
        ver, st, data, _ = self.curl2(big)
        self.assertEqual((ver, st), ("2", 200))
        self.assertEqual(hashlib.sha256(data).hexdigest(), want)
        # A reader slower than the link: flow control holds the rest back and the transfer still completes.
        t0 = time.monotonic()
        ver, st, data, _ = self.curl2(big, "--limit-rate", "2M")
        self.assertEqual(st, 200)
        self.assertEqual(hashlib.sha256(data).hexdigest(), want)
        self.assertGreater(time.monotonic() - t0, 1.5)
        # A request body across the link (nginx answers POST on a static file with 405, passed through).
        body = os.path.join(self.tmp, "body.bin")
        with open(body, "wb") as f:
            f.write(os.urandom(600 * 1024))
        url = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        ver, st, _, _ = self.curl2(url, "--data-binary", f"@{body}", "-H", "Content-Type: application/octet-stream")
        self.assertEqual((ver, st), ("2", 405))
        with open(self.access_log) as f:
            self.assertIn("POST /files/hello.txt 405", f.read())

    def test_h2load_concurrent_streams(self):
        h2load = self.require_tool("h2load")
        auth = base.basic(*ALICE)
        url = f"https://127.0.0.1:{self.ports.https}" + self.proxy("http", "cucm1.example.com", self.web_port,
                                                                 "/files/hello.txt")
        r = subprocess.run([h2load, "-n", "150", "-c", "2", "-m", "20", "-H", f"authorization: {auth}", url],
                           capture_output=True, timeout=120)
        out = r.stdout.decode()
        self.assertIn("150 succeeded", out, out)
        self.assertRegex(out, r"status codes: 150 2xx", out)
        big = f"https://127.0.0.1:{self.ports.https}" + self.proxy("http", "cucm1.example.com", self.web_port,
                                                                 "/files/big.bin")
        r = subprocess.run([h2load, "-n", "12", "-c", "1", "-m", "6", "-H", f"authorization: {auth}", big],
                           capture_output=True, timeout=120)
        out = r.stdout.decode()
        self.assertIn("12 succeeded", out, out)
        self.assertRegex(out, r"status codes: 12 2xx", out)
        self.assertGreaterEqual(self.metric("e", "edgepair_http2_streams_total", {}), 162)

    # ---- hostile HTTP/2 ------------------------------------------------------------------------------

    def test_h2_connection_specific_fields_reset_the_stream(self):
        c = RawH2(self)
        self.addCleanup(c.close)
        sso = f"/{D}/get_edge_sso/?username=alice"
        for sid, field in ((1, ("transfer-encoding", "chunked")), (3, ("connection", "keep-alive")),
                           (5, ("upgrade", "h2c")), (7, ("te", "gzip"))):
            with self.subTest(field=field[0]):
                c.sock.sendall(c.request(sid, sso, extra=[field]))
                f = c.wait_for(lambda f, sid=sid: f[2] == sid and f[0] in (RST_STREAM, HEADERS), timeout=5)
                self.assertIsNotNone(f, "no answer on the stream")
                self.assertEqual(f[0], RST_STREAM)
                self.assertEqual(int.from_bytes(f[3], "big"), PROTOCOL_ERROR)
        # The connection survives a stream error: the next request is answered.
        c.sock.sendall(c.request(9, sso))
        f = c.wait_for(lambda f: f[2] == 9 and f[0] in (HEADERS, RST_STREAM), timeout=10)
        self.assertIsNotNone(f)
        self.assertEqual(f[0], HEADERS)
        self.assertGreaterEqual(sum(self.metric("e", "edgepair_http_rejected_requests_total", {"reason": r})
                                    for r in ("h2_bad_header", "h2_connection_header")), 4)

    def test_h2_too_many_streams_goaway(self):
        c = RawH2(self)
        self.addCleanup(c.close)
        silent = self.proxy("http", "silent.example.com", self.silent_port, "/x")
        auth = ("authorization", base.basic(*ALICE))
        # 101 requests whose bodies never end: all stay open; the 101st is over SETTINGS_MAX_CONCURRENT_STREAMS.
        c.sock.sendall(b"".join(c.request(1 + 2 * i, silent, extra=[auth], end_stream=False) for i in range(101)))
        f = c.wait_for(lambda f: f[0] == GOAWAY, timeout=10)
        self.assertIsNotNone(f, "no GOAWAY")
        self.assertNotEqual(int.from_bytes(f[3][4:8], "big"), 0)  # an error code, not a graceful drain
        self.assertGreaterEqual(self.metric("e", "edgepair_http_rejected_requests_total", {"reason": "h2_goaway"}), 1)
        self.assertIsNone(c.wait_for(lambda f: False, timeout=5), "edge-e kept the connection open")
        st, _, _ = self.get(f"/{D}/get_edge_sso/?username=alice")
        self.assertEqual(st, 200)

    def test_h2_rst_flood_goaway(self):
        c = RawH2(self)
        self.addCleanup(c.close)
        sso = f"/{D}/get_edge_sso/?username=alice"
        rst = struct.pack(">I", CANCEL)
        goaway = None
        t0 = time.monotonic()
        for batch in range(20):  # bounded: at most 2,000 opened-and-reset streams
            c.sock.sendall(b"".join(c.request(1 + 2 * (batch * 100 + i), sso) + c.frame(RST_STREAM, 0,
                                    1 + 2 * (batch * 100 + i), rst) for i in range(100)))
            goaway = c.wait_for(lambda f: f[0] == GOAWAY, timeout=0.3)
            if goaway:
                break
        self.assertIsNotNone(goaway, "no GOAWAY after 2,000 reset streams")
        self.assertLess(time.monotonic() - t0, 30)
        self.assertGreaterEqual(self.metric("e", "edgepair_http_rejected_requests_total", {"reason": "h2_reset_flood"}),
                                1)
        self.assertGreaterEqual(self.metric("e", "edgepair_http2_client_resets_total", {}), 200)
        # Every opened stream went through the gate: past the burst, the flood was answered 429 as well.
        self.assertGreaterEqual(self.metric("e", "edgepair_http_rate_limited_total", {}), 1)
        time.sleep(0.5)  # the address's bucket refills (50/s by default)
        st, _, _ = self.get(f"/{D}/get_edge_sso/?username=alice")
        self.assertEqual(st, 200)

    def test_h2_header_list_too_large(self):
        sso = f"/{D}/get_edge_sso/?username=alice"
        args = []
        for i in range(20):
            args += ["-H", f"x-filler-{i}: " + "a" * 1000]
        ver, st, body, _ = self.curl2(sso, *args, auth=None)
        self.assertEqual((ver, st), ("2", 431), body)
        self.assertGreaterEqual(self.metric("e", "edgepair_http_rejected_requests_total",
                                            {"reason": "header_too_large"}), 1)
        # Client-supplied x-edge-* facts never reach edge-c: the edge config names edge-e, not the forgery.
        ver, st, body, _ = self.curl2(f"/{D}/get_edge_config/", "-H", "x-edge-host: evil.example.net",
                                      "-H", "x-edge-sip-port: 1")
        self.assertEqual(st, 200, body)
        self.assertNotIn(b"evil.example.net", body)
        self.assertIn(f"<tlsPort>{self.ports.sip}</tlsPort>".encode(), body)

    # ---- 429 -----------------------------------------------------------------------------------------

    def test_rate_limit_429(self):
        self.reload_edge_e("http: {rate_limit: {requests_per_second: 1, burst: 5}}")
        sso = f"/{D}/get_edge_sso/?username=alice"
        codes = []
        retry = None
        for _ in range(10):
            st, hd, _ = self.get(sso)
            codes.append(st)
            if st == 429:
                retry = hd.get("Retry-After")
        self.assertEqual(codes[:5], [200] * 5, codes)  # the burst
        self.assertEqual(set(codes[5:]) - {200, 429}, set(), codes)
        self.assertGreaterEqual(codes[5:].count(429), 4, codes)  # at 1/s, the loop outruns the refill
        self.assertTrue(retry and retry.isdigit() and int(retry) >= 1, retry)
        ver, st, _, hd = self.curl2(sso, auth=None)
        self.assertEqual((ver, st), ("2", 429))
        self.assertIn("retry-after:", hd.lower())
        self.assertGreaterEqual(self.metric("e", "edgepair_http_rate_limited_total", {}), 5)
        # Off: everything passes again.
        self.reload_edge_e("http: {rate_limit: {enabled: false}}")
        for _ in range(10):
            self.assertEqual(self.get(sso)[0], 200)

    def test_failed_sign_ins_429(self):
        path = f"/{D}/get_edge_config/"
        for _ in range(3):
            self.assertEqual(self.get(path, auth=("mallory", "guess"))[0], 401)
        st, hd, _ = self.get(path, auth=("mallory", "guess"))
        self.assertEqual(st, 429)
        self.assertTrue(hd.get("Retry-After", "").isdigit())
        self.assertEqual(self.curl2(path, auth=("mallory", "guess"))[1], 429)
        self.assertGreaterEqual(self.metric("c", "edgepair_http_auth_total", {"result": "rate_limited"}), 2)
        # Another user is not affected.
        self.assertEqual(self.get(path, auth=ALICE)[0], 200)

    # ---- timeouts ------------------------------------------------------------------------------------

    def test_short_timeouts(self):
        silent = self.proxy("http", "silent.example.com", self.silent_port, "/x")
        # edge-c's http.upstream_timeout (2 s): edge-c's 504 names the upstream timeout.
        t0 = time.monotonic()
        ver, st, body, _ = self.curl2(silent, timeout=30)
        self.assertEqual((ver, st), ("2", 504), body)
        self.assertIn(b"upstream timed out", body)
        self.assertLess(time.monotonic() - t0, 10)
        # edge-e's own wait for the link answer, shorter than edge-c's: edge-e answers 504 itself.
        self.reload_edge_e("http: {response_timeout: 1s}")
        before = self.metric("e", "edgepair_http_link_timeouts_total", {})
        for proto in ("h1", "h2"):
            with self.subTest(proto=proto):
                t0 = time.monotonic()
                if proto == "h1":
                    st, _, body = self.get(silent, auth=ALICE, timeout=30)
                else:
                    _, st, body, _ = self.curl2(silent, timeout=30)
                took = time.monotonic() - t0
                self.assertEqual(st, 504, body)
                self.assertIn(b"edge-c did not answer in time", body)
                self.assertGreater(took, 0.8)
                self.assertLess(took, 1.9)
        self.assertEqual(self.metric("e", "edgepair_http_link_timeouts_total", {}) - before, 2)
        # HTTP/1.1 keep-alive survives the timeout: the connection serves the next request.
        hello = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        self.assertEqual(self.get(hello, auth=ALICE)[0], 200)

    # ---- allow-list CSV admin endpoints --------------------------------------------------------------

    def test_allow_list_csv(self):
        other = self.proxy("http", "cucm1.example.com", self.web_port, "/other/x.txt")
        self.assertEqual(self.get(other, auth=ALICE)[0], 403)

        # The guide's own example names deployments this system does not have: 400 naming line and column.
        st, _, body = self.admin_c("POST", "/allowlist/rules", GUIDE_RULES)
        self.assertEqual(st, 400, body)
        self.assertRegex(body.decode(), r"line 2, column 2 \(Deployment\)")
        self.assertRegex(body.decode(), r"line 3, column 2 \(Deployment\)")
        st, _, body = self.admin_c("POST", "/allowlist/rules", "Url,Deployment\nhttps://x/\n")
        self.assertEqual(st, 400, body)
        self.assertIn("line 1", body.decode())
        st, _, body = self.admin_c("POST", "/allowlist/rules",
                                   "Url,Deployment,HttpMethods,MatchType,Description\nftp://x/,,,,\n")
        self.assertEqual(st, 400, body)
        self.assertRegex(body.decode(), r"line 2, column 1 \(Url\)")

        # The same format, for this deployment.
        rules = ("Url,Deployment,HttpMethods,MatchType,Description\r\n"
                 f'http://cucm1.example.com:{self.web_port}/other/,,"GET,HEAD",prefix,"Other files"\r\n'
                 f"https://myServer4/myPath4,,,prefix,\"Fourth Rule\"\r\n")
        st, _, body = self.admin_c("POST", "/allowlist/rules", rules)
        self.assertEqual(st, 200, body)
        self.assertIn(b"imported 2 rules", body)
        st, _, body = self.admin_c("POST", "/allowlist/rules", rules)  # again: nothing new
        self.assertIn(b"imported 0 rules (2 already present)", body)
        st, hd, body = self.admin_c("GET", "/allowlist/rules")
        self.assertEqual(st, 200)
        self.assertIn("text/csv", hd.get("Content-Type", ""))
        text = body.decode()
        self.assertTrue(text.startswith("Url,Deployment,HttpMethods,MatchType,Description"), text)
        self.assertIn(f'http://cucm1.example.com:{self.web_port}/other/,default,"GET,HEAD",prefix,"Other files"',
                      text)
        self.assertIn(f"http://cucm1.example.com:{self.web_port}/files/", text)  # the YAML rule too
        st, _, body = self.admin_c("GET", "/allowlist/rules?automatic=1")
        self.assertIn(f"https://cucm1.example.com:{self.ucm_port}/cucm-uds/", body.decode())

        # Both edges enforce the imported rule once the snapshot reaches edge-e.
        self.wait_status(other, 200)
        self.assertEqual(self.curl2(other)[1], 200)

        # The tests file: the guide's example (its deployment does not exist here: 400), then ours.
        st, _, body = self.admin_c("POST", "/allowlist/test", GUIDE_TESTS)
        self.assertEqual(st, 400, body)
        self.assertRegex(body.decode(), r"line 2, column 3 \(Deployment\)")
        tests = ("Url,ExpectedResult,Deployment,Description,HttpMethod\r\n"
                 f"http://cucm1.example.com:{self.web_port}/other/x.txt,allow,,\"imported rule\",GET\r\n"
                 f"http://cucm1.example.com:{self.web_port}/other/x.txt,block,,\"not PUT\",PUT\r\n"
                 "https://myServer4/myPath4,allow,,,GET\r\n"
                 "http://myServer4/myPath4,block,,,POST\r\n"
                 f"http://cucm1.example.com:{self.web_port}/secret/,allow,,\"wrong expectation\",\r\n")
        st, _, body = self.admin_c("POST", "/allowlist/test", tests)
        self.assertEqual(st, 200, body)
        lines = body.decode().splitlines()
        self.assertEqual([ln.split(":")[0] for ln in lines[:5]], [f"line {i}" for i in range(2, 7)], lines)
        self.assertEqual([("PASS" in ln) for ln in lines[:5]], [True, True, True, True, False], lines)
        self.assertEqual(lines[5], "4 passed, 1 failed")

        # Persisted beside the discovery state file, and back after a restart of edge-c.
        saved = os.path.join(self.tmp, "edge-c-allow-list.csv")
        self.assertTrue(os.path.exists(saved))
        self.assertIn("/other/", open(saved).read())
        self.edge_c.stop(timeout=10)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()
        self.assertEqual(self.get(other, auth=ALICE)[0], 200)
        st, _, body = self.admin_c("GET", "/allowlist/rules")
        self.assertIn("/other/", body.decode())

        # DELETE drops the imported rules; the YAML ones stay.
        st, _, body = self.admin_c("DELETE", "/allowlist/rules")
        self.assertEqual(st, 200, body)
        self.assertIn(b"deleted 2", body)
        self.wait_status(other, 403)
        hello = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        self.assertEqual(self.get(hello, auth=ALICE)[0], 200)

    def wait_status(self, path: str, want: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.get(path, auth=ALICE)[0]
            if st == want:
                return
            time.sleep(0.2)
        self.fail(f"{path}: {st}, wanted {want}")


if __name__ == "__main__":
    h.run_tests()
