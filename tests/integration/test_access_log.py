#!/usr/bin/python3
"""The access log on both edges (issue #20): one request followed by its id from edge-e's log to edge-c's, a
client's forged id ignored, and no secret (password, Authorization value, cookie value, query value) in any
log of the run.

Topology: test_http_edge.py's (dnsmasq, the UCM fixture for discovery and UDS sign-in, nginx as the TFTP file
service behind an allow-list rule, the pair), with `log.access` on: edge-e in text, edge-c in JSON, each to its
own file.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_access_log.py
"""

from __future__ import annotations

import base64
import json
import os
import re
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

# Values that must never reach a log line (each is distinctive, so a hit is never a coincidence).
COOKIE_SECRET = "Cookie-Val-9f3e1c"
QUERY_SECRET = "Query-Pw-77ab2d"
TOKEN_SECRET = "Tok-Val-51c0aa"
FORGED_ID = "clientforgedid0001"
FORGED_X_REQUEST_ID = "clientforgedxrid02"

TEXT_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_text_line(line: str) -> dict:
    """`<ts> <side> <kind> key=value ...` (values bare, or quoted with \\ escapes) -> dict."""
    ts, side, kind, rest = line.split(" ", 3)
    out = {"ts": ts, "side": side, "kind": kind}
    for k, v in TEXT_FIELD.findall(rest):
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out[k] = v
    return out


class AccessLogTest(base.HttpEdgeTopology):
    def start_pair(self) -> None:
        self.e_log = os.path.join(self.tmp, "access-e.log")
        self.c_log = os.path.join(self.tmp, "access-c.jsonl")
        rules = self.edge_c_extra(tail=self.EDGE_C_EXTRA)
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra="# -")
        self.ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher(), extra=rules)
        # pair.py writes `log: {level: debug}`: the debug lines are grepped for secrets too.
        self.set_access(self.ecfg, f"{{file: {self.e_log}, format: text}}")
        self.set_access(self.ccfg, f"{{enabled: true, file: {self.c_log}, format: json}}")
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()

    def set_access(self, path: str, access: str) -> None:
        with open(path) as f:
            text = f.read()
        self.assertIn("log: {level: debug}", text)
        text = text.replace("log: {level: debug}", f"log: {{level: debug, access: {access}}}", 1)
        with open(path, "w") as f:
            f.write(text)

    # ---- reading the logs ----------------------------------------------------------------------------

    def e_lines(self) -> list[dict]:
        with open(self.e_log) as f:
            return [parse_text_line(line.rstrip("\n")) for line in f if line.strip()]

    def c_lines(self) -> list[dict]:
        with open(self.c_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def wait_for(self, what, timeout: float = 10):
        """Polls `what()` until it returns something truthy: edge-c writes its line when the stream ends, which
        may come a moment after the client has its answer."""
        deadline = time.monotonic() + timeout
        for _ in range(1000):  # bounded; the deadline ends it first
            got = what()
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.05)
        return what()

    def curl_raw(self, path: str, *args: str, http2: bool = False):
        out = os.path.join(self.tmp, "curl.out")
        cmd = [self.require_tool("curl"), "--http2" if http2 else "--http1.1", "-sS", "-o", out,
               "-w", "%{http_code}", "--cacert", f"{self.pki_dir}/ca.crt",
               "--resolve", f"{EDGE}:{self.ports.https}:127.0.0.1", *args, self.url(path)]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        return int(r.stdout.decode() or 0)

    # ---- the test ------------------------------------------------------------------------------------

    def test_request_id_across_both_edges_and_no_secrets(self):
        files = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        secret_query = f"?password={QUERY_SECRET}&access_token={TOKEN_SECRET}&plain"
        creds = ["-u", f"{ALICE[0]}:{ALICE[1]}", "--cookie", f"JSESSIONID={COOKIE_SECRET}",
                 "-H", f"X-Edge-Request-Id: {FORGED_ID}", "-H", f"X-Request-ID: {FORGED_X_REQUEST_ID}"]

        # 1. Allowed and proxied, over HTTP/1.1 and HTTP/2, with Basic credentials, a cookie, a secret query
        #    and a client's own request id headers.
        self.assertEqual(self.curl_raw(files + secret_query, *creds), 200)
        self.assertEqual(self.curl_raw(files + secret_query, *creds, http2=True), 200)
        # 2. Refused by the allow list at edge-e (nginx's /other/ is not allowed): never crosses the link.
        blocked = self.proxy("http", "cucm1.example.com", self.web_port, "/other/x.txt")
        self.assertEqual(self.curl_raw(blocked + "?password=" + QUERY_SECRET, *creds), 403)
        # 3. An XMPP connection that goes away at once: one stream, opened and closed.
        s = socket.create_connection(("127.0.0.1", self.ports.xmpp), timeout=5)
        s.close()

        def proxied():
            return [l for l in self.e_lines() if l["kind"] == "http" and "/files/hello.txt" in l.get("path", "")]

        e_http = self.wait_for(lambda: (lambda ls: ls if len(ls) >= 2 else None)(proxied()))
        self.assertTrue(e_http and len(e_http) == 2, f"edge-e lines: {self.e_lines()}")
        ids = set()
        for line in e_http:
            self.assertEqual(line["side"], "edge-e")
            self.assertEqual(line["status"], "200", line)
            self.assertEqual(line["method"], "GET", line)
            # The query keeps its parameter names; every value is gone.
            self.assertTrue(line["path"].endswith("/files/hello.txt?password=*&access_token=*&*"), line)
            self.assertEqual(line["out"], str(len(self.hello)), line)
            self.assertEqual(line["upstream"], f"cucm1.example.com:{self.web_port}", line)
            self.assertTrue(line["client"].startswith("127.0.0.1:"), line)
            self.assertRegex(line["id"], r"^[a-z2-7]{14,}$")
            self.assertNotIn(line["id"], (FORGED_ID.lower(), FORGED_X_REQUEST_ID.lower()))
            ids.add(line["id"])
        self.assertEqual(len(ids), 2, "every request has its own id")

        # edge-c logged each under the same id, the one edge-e made, not the client's.
        def c_http():
            got = [l for l in self.c_lines() if l["kind"] == "http" and l["id"] in ids]
            return got if len(got) == 2 else None

        c_lines = self.wait_for(c_http)
        self.assertTrue(c_lines, f"edge-c lines: {self.c_lines()}")
        for line in c_lines:
            self.assertEqual(line["side"], "edge-c")
            self.assertEqual(line["status"], 200, line)  # JSON: numbers are numbers
            self.assertEqual(line["upstream"], f"cucm1.example.com:{self.web_port}", line)
            self.assertTrue(line["path"].endswith("/files/hello.txt?password=*&access_token=*&*"), line)
            self.assertEqual(line["out"], len(self.hello), line)
            self.assertTrue(line["client"].startswith("127.0.0.1:"), line)
        c_ids = [l["id"] for l in self.c_lines()]
        for forged in (FORGED_ID, FORGED_X_REQUEST_ID):
            self.assertFalse(any(forged.lower() in i.lower() for i in c_ids), c_ids)

        # The refusal: logged by edge-e with its reason, and edge-c never saw that id.
        refused = [l for l in self.e_lines() if l["kind"] == "http" and "/other/x.txt" in l.get("path", "")]
        self.assertEqual(len(refused), 1, self.e_lines())
        self.assertEqual(refused[0]["status"], "403")
        self.assertTrue(refused[0]["reason"].startswith("blocked"), refused[0])
        self.assertEqual(refused[0]["upstream"], "-")
        self.assertNotIn(refused[0]["id"], c_ids)

        # The XMPP stream: an open and a close line under one id.
        xmpp = self.wait_for(lambda: [l for l in self.e_lines() if l["kind"] == "xmpp" and l["event"] == "close"])
        self.assertTrue(xmpp, self.e_lines())
        opened = [l for l in self.e_lines() if l["kind"] == "xmpp" and l["event"] == "open"]
        self.assertEqual([l["id"] for l in opened], [xmpp[0]["id"]])
        self.assertEqual(xmpp[0]["reason"], "client_closed")

        # What nginx received: no x-edge-* field of the client's (its log is grepped below as well).
        # No secret anywhere: every file the run wrote that is a log (the edges' own logs at debug level, both
        # access logs, nginx's logs).
        secrets = [ALICE[1], base64.b64encode(f"{ALICE[0]}:{ALICE[1]}".encode()).decode(), COOKIE_SECRET,
                   QUERY_SECRET, TOKEN_SECRET]
        logs = [self.e_log, self.c_log]
        for root, _, names in os.walk(self.tmp):
            logs += [os.path.join(root, n) for n in names
                     if n.endswith(".log") and not n.startswith("fixture-") and os.path.join(root, n) not in logs]
        names = {os.path.basename(p) for p in logs}
        self.assertTrue({"edge-e.log", "edge-c.log", "access.log"} <= names, names)
        for path in logs:
            with open(path, "rb") as f:
                data = f.read()
            self.assertTrue(data, f"{path} is empty: the grep would prove nothing")
            for secret in secrets:
                self.assertNotIn(secret.encode(), data, f"{secret!r} in {path}")

    def test_text_line_quotes_client_bytes(self):
        # A path with a quote, a space (escaped by curl as %20, so sent raw with --path-as-is and a quote) and
        # an '=' must stay one field: the line still parses into the same keys.
        odd = self.proxy("http", "cucm1.example.com", self.web_port, '/files/a"b=c')
        st = self.curl_raw(odd, "-u", f"{ALICE[0]}:{ALICE[1]}", "--path-as-is")
        self.assertIn(st, (400, 404))
        lines = self.wait_for(lambda: [l for l in self.e_lines() if l["kind"] == "http" and 'a"b=c' in l.get("path", "")
                                       or (l["kind"] == "http" and l.get("reason") not in (None, "-")
                                           and l.get("status") == "400")])
        self.assertTrue(lines, self.e_lines())
        for l in lines:
            self.assertEqual(set(l) - {"ts", "side", "kind"},
                             {"id", "client", "method", "path", "status", "in", "out", "ms", "upstream", "reason"}, l)


if __name__ == "__main__":
    h.run_tests()
