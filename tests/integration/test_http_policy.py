#!/usr/bin/python3
"""The header policy and the request gate through the whole pair (issue #13, one policy; issue #14 items 1, 2
and 6), judged by what the internal servers received, over HTTP/1.1 and HTTP/2:

- path parameters: the allow list matches a path with `;params` removed from each segment, so edge-c forwards
  exactly that path. Real nginx (not Tomcat: it reads `;x` as part of the name) must never be asked for a
  sibling of an allowed prefix (`/files;x/`) or another file than an exact rule names (`/exact/a.txt;.bak`);
  checked in nginx's access log, with a control that nginx does serve those files when asked directly.
- look-alike framing fields (`Transfer_Encoding`, `Content_Length`, `Connection_`) are refused with 400 at
  edge-e: tools/fixtures/underscore_origin.py, which reads `_` as `-` like CGI/WSGI servers, never sees one
  nor the second request hidden in the body (with a control that it does split such a request when sent to it
  directly).
- routing-override fields (X-Original-URL, X-Forwarded-Host, X-HTTP-Method-Override, ...) and a client's link
  fields (x-edge-*, x-client-addr) never reach the origin; a second Authorization is a 400 and nothing
  reaches edge-c or the origin.

Topology: test_http_edge.py's (dnsmasq, the UCM fixture, nginx, the pair) plus the underscore origin on
cucm1's address, and two more allow-list rules.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_http_policy.py
"""

from __future__ import annotations

import json
import os
import socket
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
CUCM1 = base.ADDRS["cucm1.example.com"]
ORIGIN = os.path.join(h.SRC, "tools", "fixtures", "underscore_origin.py")

SECRET = b"a sibling directory of the allowed prefix\n"
EXACT = b"the one file the exact rule names\n"
BAK = b"a backup nobody may read\n"
SMUGGLED = b"GET /admin/smuggled HTTP/1.1\r\nHost: internal\r\n\r\n"

ROUTING = {
    "X-Original-URL": "/admin",
    "X-Rewrite-URL": "/admin",
    "X-Forwarded-Host": "evil.example.net",
    "X-Forwarded-Server": "evil.example.net",
    "X-Forwarded-Prefix": "/evil",
    "X-Forwarded-Proto": "http",
    "X-HTTP-Method-Override": "DELETE",
    "X-HTTP-Method": "DELETE",
    "X-Method-Override": "DELETE",
    "Forwarded": "host=evil.example.net",
    # link fields edge-c trusts from edge-e only
    "X-Edge-Host": "spoofed.example.net",
    "X-Client-Addr": "203.0.113.9:1",
}


class HttpPolicyTest(base.HttpEdgeTopology):
    # ---- topology ------------------------------------------------------------------------------------

    def start_pair(self) -> None:
        self.origin_port = base.port_free_on([CUCM1])
        self.record = os.path.join(self.tmp, "origin.jsonl")
        p = self.start([base.PY, ORIGIN, "--listen", f"{CUCM1}:{self.origin_port}", "--record", self.record,
                        "--echo"], name="underscore-origin")
        p.wait_log(r"^READY$", timeout=15)
        www = os.path.join(self.tmp, "www")
        os.makedirs(os.path.join(www, "files;x"))
        os.makedirs(os.path.join(www, "exact"))
        for rel, data in (("files;x/secret.txt", SECRET), ("exact/a.txt", EXACT), ("exact/a.txt;.bak", BAK)):
            with open(os.path.join(www, rel), "wb") as f:
                f.write(data)

        rules = self.edge_c_extra(
            f'{{url: "http://cucm1.example.com:{self.web_port}/exact/a.txt", match: exact, description: one file}}',
            f'{{url: "http://cucm1.example.com:{self.origin_port}/app/", methods: [GET, POST], description: cgi}}',
            tail=self.EDGE_C_EXTRA)
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra=base.indent(self.EDGE_E_EXTRA or "# -"))
        self.ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher(), extra=rules)
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()

    # ---- helpers -------------------------------------------------------------------------------------

    def origin_seen(self) -> list[dict]:
        if not os.path.exists(self.record):
            return []
        with open(self.record, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def nginx_seen(self, at_least: int = 0, timeout: float = 5) -> list[str]:
        """nginx's access log; nginx writes a line after the response, so wait for `at_least` lines."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.access_log, encoding="utf-8") as f:
                lines = f.read().splitlines()
            if len(lines) >= at_least or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def app(self, rest: str) -> str:
        """The underscore origin's allowed prefix /app/ + rest."""
        return self.proxy("http", "cucm1.example.com", self.origin_port, "/app" + rest)

    def web(self, rest: str) -> str:
        return self.proxy("http", "cucm1.example.com", self.web_port, rest)

    def curl_any(self, version: str, path: str, *args: str, auth=ALICE, timeout: float = 30):
        """curl over --http1.1 or --http2; returns (http version, status, body)."""
        out = os.path.join(self.tmp, "curl-any.out")
        if os.path.exists(out):
            os.unlink(out)
        cmd = [self.require_tool("curl"), version, "-sS", "--path-as-is", "-o", out, "-w",
               "%{http_version} %{http_code}", "--cacert", f"{self.pki_dir}/ca.crt", "--resolve",
               f"{EDGE}:{self.ports.https}:127.0.0.1", *(["-u", f"{auth[0]}:{auth[1]}"] if auth else []), *args,
               self.url(path)]
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
        ver, _, code = r.stdout.decode().partition(" ")
        data = open(out, "rb").read() if os.path.exists(out) else b""
        return ver, int(code or 0), data

    def raw_h1(self, head: str, body: bytes = b"", timeout: float = 10) -> bytes:
        """One request as written (CRLF added per line), over TLS to edge-e 8443; the whole answer until close."""
        s, _ = h.tls_connect("127.0.0.1", self.ports.https, EDGE, f"{self.pki_dir}/ca.crt", alpn=["http/1.1"],
                             timeout=timeout)
        try:
            s.sendall(head.replace("\n", "\r\n").encode("latin-1") + body)
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and len(data) < 1 << 20:
                try:
                    chunk = s.recv(65536)
                except (socket.timeout, TimeoutError):
                    break
                if not chunk:
                    break
                data += chunk
            return data
        finally:
            s.close()

    @staticmethod
    def status_of(answer: bytes) -> int:
        line = answer.split(b"\r\n", 1)[0].split(b" ")
        return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0

    def edge_c_streams(self) -> int:
        return self.metric("c", "edgepair_http_requests_total", {"side": "edge-c"})

    # ---- #14 item 1: path parameters -----------------------------------------------------------------

    def test_path_params_never_reach_nginx(self):
        # Control: nginx is not Tomcat; asked directly, it serves both files a ;param names.
        st, _, body = h.http_get(f"http://{CUCM1}:{self.web_port}/files;x/secret.txt")
        self.assertEqual((st, body), (200, SECRET))
        st, _, body = h.http_get(f"http://{CUCM1}:{self.web_port}/exact/a.txt;.bak")
        self.assertEqual((st, body), (200, BAK))
        # The two control lines are the last ones in the log once it has caught up; what follows is the pair's.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.nginx_seen()[-1].startswith("GET /exact/a.txt;.bak 200"):
            time.sleep(0.05)
        before = len(self.nginx_seen())
        self.assertIn("GET /files;x/secret.txt 200", "\n".join(self.nginx_seen()))

        for version in ("--http1.1", "--http2"):
            with self.subTest(version=version):
                # A sibling of the allowed prefix /files/: the allow list saw /files/secret.txt, so that is
                # what nginx is asked for (and does not have).
                ver, st, body = self.curl_any(version, self.web("/files;x/secret.txt"))
                self.assertEqual(ver, "2" if version == "--http2" else "1.1")
                self.assertNotIn(SECRET, body)
                self.assertEqual(st, 404, body)
                # Another file than the exact rule names: the forwarded path is the rule's.
                _, st, body = self.curl_any(version, self.web("/exact/a.txt;.bak"))
                self.assertEqual((st, body), (200, EXACT))
                # Params in every segment, and a query, which stays.
                _, st, body = self.curl_any(version, self.web("/exact;v=1/a.txt;jsessionid=0?x=1"))
                self.assertEqual((st, body), (200, EXACT))

        seen = self.nginx_seen(before + 6)[before:]
        time.sleep(0.3)  # and nothing more arrives
        seen = self.nginx_seen()[before:]
        self.assertEqual(len(seen), 6, seen)
        for line in seen:
            self.assertNotIn(";", line)
        self.assertEqual(sum(line.startswith("GET /files/secret.txt 404") for line in seen), 2, seen)
        self.assertEqual(sum(line.startswith("GET /exact/a.txt 200") for line in seen), 4, seen)
        self.assertGreaterEqual(self.metric("c", "edgepair_http_path_params_dropped_total", {"side": "edge-c"}), 6)

    # ---- #14 item 2: look-alike framing fields -------------------------------------------------------

    def test_lookalike_framing_smuggling_refused(self):
        auth = base.basic(*ALICE)
        host = f"{EDGE}:{self.ports.https}"
        chunked_then_smuggled = b"0\r\n\r\n" + SMUGGLED
        cases = [
            # the origin frames by the last spelling: an empty body, then the "body" as a second request
            ("Content_Length", f"Content-Length: {len(SMUGGLED)}\nContent_Length: 0", SMUGGLED),
            ("content_length", f"Content-Length: {len(SMUGGLED)}\ncontent_length: 0", SMUGGLED),
            # chunked wins at the origin: the zero chunk ends the body, the rest is a request
            ("Transfer_Encoding", f"Content-Length: {len(chunked_then_smuggled)}\nTransfer_Encoding: chunked",
             chunked_then_smuggled),
            ("Connection_", f"Content-Length: {len(SMUGGLED)}\nConnection_: keep-alive", SMUGGLED),
        ]
        # Control: the origin does read '_' as '-' (sent to it directly, each case is two requests).
        for name, fields, body in cases:
            if name == "Connection_":
                continue
            s = socket.create_connection((CUCM1, self.origin_port), timeout=10)
            s.sendall(f"POST /app/x HTTP/1.1\r\nHost: internal\r\n{fields.replace(chr(10), chr(13) + chr(10))}"
                      f"\r\n\r\n".encode() + body)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len([e for e in self.origin_seen()
                                                      if e.get("target") == "/admin/smuggled"]) < 1:
                time.sleep(0.05)
            s.close()
            self.assertTrue(any(e.get("target") == "/admin/smuggled" for e in self.origin_seen()), name)
            os.unlink(self.record)

        before_c = self.edge_c_streams()
        before_e = self.metric("e", "edgepair_http_rejected_requests_total",
                               {"side": "edge-e", "reason": "lookalike_header"})
        for name, fields, body in cases:
            with self.subTest(version="HTTP/1.1", field=name):
                answer = self.raw_h1(f"POST {self.app('/upload')} HTTP/1.1\nHost: {host}\nAuthorization: {auth}\n"
                                     f"{fields}\nConnection: close\n\n", body)
                self.assertEqual(self.status_of(answer), 400, answer[:300])
            with self.subTest(version="HTTP/2", field=name):
                extra = []
                for line in fields.splitlines():
                    k, v = line.split(": ", 1)
                    if k.lower() != "content-length":  # curl frames the body itself
                        extra += ["-H", f"{k}: {v}"]
                body_file = os.path.join(self.tmp, "smuggle.bin")
                with open(body_file, "wb") as f:
                    f.write(body)
                ver, st, out = self.curl_any("--http2", self.app("/upload"), *extra, "--data-binary",
                                             f"@{body_file}", "-H", "Content-Type: application/octet-stream")
                self.assertEqual((ver, st), ("2", 400), out)

        # A normal request afterwards: the origin sees exactly that one, so it was reachable all along.
        st, _, body = self.get(self.app("/after"), auth=ALICE)
        self.assertEqual((st, body), (200, b"ok GET /app/after\n"))
        seen = self.origin_seen()
        self.assertEqual([(e.get("method"), e.get("target")) for e in seen], [("GET", "/app/after")], seen)
        for e in seen:
            for k, _ in e["headers"]:
                self.assertNotIn("_", k, e)
        self.assertEqual(self.edge_c_streams() - before_c, 1)
        self.assertEqual(self.metric("e", "edgepair_http_rejected_requests_total",
                                     {"side": "edge-e", "reason": "lookalike_header"}) - before_e, 2 * len(cases))

    # ---- #14 item 6: routing overrides, link fields, a second Authorization ---------------------------

    def test_routing_override_fields_never_reach_the_origin(self):
        headers = dict(ROUTING)
        headers["X-Marker"] = "end-to-end"
        st, _, body = self.get(self.app("/h1"), auth=ALICE, headers=headers)
        self.assertEqual((st, body), (200, b"ok GET /app/h1\n"))
        args = []
        for k, v in headers.items():
            args += ["-H", f"{k}: {v}"]
        ver, st, body = self.curl_any("--http2", self.app("/h2"), *args)
        self.assertEqual((ver, st, body), ("2", 200, b"ok GET /app/h2\n"))

        seen = self.origin_seen()
        self.assertEqual([e.get("target") for e in seen], ["/app/h1", "/app/h2"], seen)
        banned = {k.lower() for k in ROUTING} | {"x-edge-https-port", "x-edge-sip-port", "x-edge-xmpp-port"}
        for e in seen:
            names = {k.lower() for k, _ in e["headers"]}
            self.assertIn("x-marker", names, e)  # the test would notice if no client field got through
            self.assertFalse(names & banned, e)
            self.assertEqual(e["method"], "GET")
        self.assertGreaterEqual(self.metric("e", "edgepair_http_headers_removed_total",
                                            {"side": "edge-e", "kind": "routing_override"}), 2 * 10)

    def test_second_authorization_is_refused_before_the_link(self):
        auth = base.basic(*ALICE)
        other = base.basic("bob", "whatever")
        host = f"{EDGE}:{self.ports.https}"
        before_c = self.edge_c_streams()
        before_e = self.metric("e", "edgepair_http_rejected_requests_total",
                               {"side": "edge-e", "reason": "duplicate_authorization"})
        answer = self.raw_h1(f"GET {self.app('/dup')} HTTP/1.1\nHost: {host}\nAuthorization: {auth}\n"
                             f"Authorization: {other}\nConnection: close\n\n")
        self.assertEqual(self.status_of(answer), 400, answer[:300])
        ver, st, body = self.curl_any("--http2", self.app("/dup2"), "-H", f"Authorization: {auth}",
                                      "-H", f"Authorization: {other}", auth=None)
        self.assertEqual((ver, st), ("2", 400), body)
        # The same credentials once: served, so the refusal was the second field's doing.
        st, _, body = self.get(self.app("/one"), auth=ALICE)
        self.assertEqual((st, body), (200, b"ok GET /app/one\n"))
        self.assertEqual([e.get("target") for e in self.origin_seen()], ["/app/one"])
        self.assertEqual(self.edge_c_streams() - before_c, 1)
        self.assertEqual(self.metric("e", "edgepair_http_rejected_requests_total",
                                     {"side": "edge-e", "reason": "duplicate_authorization"}) - before_e, 2)

    # ---- edge-e's own 405 carries Allow; allow-list refusals are counted by stage ----------------------

    def test_edge_e_405_carries_allow_and_block_stage_is_counted(self):
        sso = f"/{D}/get_edge_sso/"
        host = f"{EDGE}:{self.ports.https}"
        before_c = self.edge_c_streams()
        before_405 = self.metric("e", "edgepair_http_rejected_requests_total",
                                 {"side": "edge-e", "reason": "method_not_allowed"})
        answer = self.raw_h1(f"PUT {sso} HTTP/1.1\nHost: {host}\nContent-Length: 0\nConnection: close\n\n")
        self.assertEqual(self.status_of(answer), 405, answer[:300])
        head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}
        self.assertEqual(fields.get("allow"), "GET, HEAD", head)
        dump = os.path.join(self.tmp, "405-h2.head")
        ver, st, body = self.curl_any("--http2", sso, "-X", "DELETE", "-D", dump, auth=None)
        self.assertEqual((ver, st), ("2", 405), body)
        with open(dump, encoding="latin-1") as f:
            h2_fields = {k.strip().lower(): v.strip() for k, _, v in
                         (line.partition(":") for line in f.read().splitlines()[1:] if ":" in line)}
        self.assertEqual(h2_fields.get("allow"), "GET, HEAD", h2_fields)
        # Both were edge-e's answers: nothing went over the link.
        self.assertEqual(self.edge_c_streams() - before_c, 0)
        self.assertEqual(self.metric("e", "edgepair_http_rejected_requests_total",
                                     {"side": "edge-e", "reason": "method_not_allowed"}) - before_405, 2)

        # Allow-list refusals by stage: a port cucm1 has no rule for, and a method its rule does not allow.
        stages = {"port": self.proxy("http", "cucm1.example.com", 1, "/app/x"),
                  "method": self.app("/x")}
        before = {k: self.metric("e", "edgepair_http_blocked_total", {"side": "edge-e", "reason": k})
                  for k in stages}
        st, _, _ = self.get(stages["port"], auth=ALICE)
        self.assertEqual(st, 403)
        st, _, _ = self.get(stages["method"], auth=ALICE, method="PROPFIND")
        self.assertEqual(st, 403)
        for k in stages:
            self.assertEqual(self.metric("e", "edgepair_http_blocked_total",
                                         {"side": "edge-e", "reason": k}) - before[k], 1, k)
        self.assertEqual(self.edge_c_streams() - before_c, 0)
        self.assertNotIn("/app/x", [e.get("target") for e in self.origin_seen()])


if __name__ == "__main__":
    h.run_tests()
