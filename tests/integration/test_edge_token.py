#!/usr/bin/python3
"""Edge tokens after credentials (issue #15, part 1): a Basic sign-in on get_edge_config returns an edge token
(cookie X-Auth); later requests carry it instead of the password, as a cookie or a bearer header, and then no
password (and no token) reaches the internal host. Tokens survive an edge-c restart, expire at
credentials.refresh_interval, and die when edge-c sees the user's password change.

Topology: tests/integration/test_http_edge.py's (dnsmasq, ucm_fixture cucm1/cucm2, nginx, the pair), plus a
recording HTTP server on cucm1's address (allow-listed) that keeps every request's header fields: what the
internal server received is asserted, not only the status.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_edge_token.py
"""

from __future__ import annotations

import base64
import glob
import json
import os
import sys
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
from test_http_edge import ADDRS, ALICE, DOMAIN_B64, HttpEdgeTopology, basic, port_free_on  # noqa: E402

EDGE_CONFIG = f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin"


class Recorder:
    """An internal HTTP server that answers 200 and keeps the header fields of every request it got."""

    def __init__(self, host: str, port: int):
        self.requests: list[dict[str, list[str]]] = []
        lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                fields: dict[str, list[str]] = {}
                for k, v in self.headers.items():
                    fields.setdefault(k.lower(), []).append(v)
                with lock:
                    outer.requests.append(fields)
                body = b"recorded\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = ThreadingHTTPServer((host, port), H)
        self.srv.daemon_threads = True
        self.t = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.t.start()

    def last(self) -> dict[str, list[str]]:
        return self.requests[-1]

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def cookie_token(hd) -> str | None:
    for v in hd.get_all("Set-Cookie") or []:
        first = v.split(";", 1)[0]
        name, _, value = first.partition("=")
        if name.strip() == "X-Auth":
            return value.strip()
    return None


class EdgeTokenTopology(HttpEdgeTopology):
    REFRESH = "8h"

    def setUp(self) -> None:
        self.rec_port = port_free_on([ADDRS["cucm1.example.com"]])
        self.rec = Recorder(ADDRS["cucm1.example.com"], self.rec_port)
        self.addCleanup(self.rec.close)
        self.EDGE_C_EXTRA = f"http: {{upstream_timeout: 2s}}\ncredentials: {{refresh_interval: {self.REFRESH}}}"
        super().setUp()

    def start_pair(self) -> None:
        rules = self.edge_c_extra(f'{{url: "http://cucm1.example.com:{self.rec_port}/rec/", description: recorder}}',
                                  tail=self.EDGE_C_EXTRA)
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir)
        self.ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher(), extra=rules)
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()

    def rec_path(self, name: str = "x") -> str:
        return self.proxy("http", "cucm1.example.com", self.rec_port, f"/rec/{name}")

    def sign_in(self, auth=ALICE) -> str:
        st, hd, body = self.get(EDGE_CONFIG, auth=auth)
        self.assertEqual(st, 200, body)
        tok = cookie_token(hd)
        self.assertIsNotNone(tok, f"no X-Auth cookie in {hd.get_all('Set-Cookie')}")
        self.assertTrue(tok.startswith("ept1."), tok[:10])
        cookie = next(v for v in hd.get_all("Set-Cookie") if v.startswith("X-Auth="))
        self.assertIn("Secure", cookie)
        self.assertIn("HttpOnly", cookie)
        return tok

    def bearer(self, tok: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + tok}

    def refused(self, reason: str) -> int:
        return self.metric("c", "edgepair_edge_token_refused_total", {"reason": reason})

    def assert_no_secret_in_logs(self, *secrets: str) -> None:
        """Every log of the run: the processes' outputs and the log files they wrote."""
        files = [p.log_path for p in self._procs]
        files += glob.glob(os.path.join(self.tmp, "**", "*.log"), recursive=True)
        self.assertTrue(any("edge-c" in f for f in files))
        checked = 0
        for f in sorted(set(files)):
            with open(f, "rb") as fh:
                data = fh.read()
            checked += len(data)
            for s in secrets:
                self.assertNotIn(s.encode(), data, f"{f} holds a secret")
        self.assertGreater(checked, 1000)  # the logs are not empty: the check saw something


class EdgeTokenTest(EdgeTokenTopology):
    def test_token_instead_of_password(self):
        # The recorder sees what a Basic request forwards: the check below for its absence can fail.
        st, _, body = self.get(self.rec_path("basic"), auth=ALICE)
        self.assertEqual(st, 200, body)
        self.assertEqual(self.rec.last().get("authorization"), [basic(*ALICE)])

        tok = self.sign_in()
        self.assertGreaterEqual(self.metric("c", "edgepair_edge_tokens_issued_total", {}), 1)
        ok_before = self.metric("c", "edgepair_http_auth_total", {"result": "ok"})
        cached_before = self.metric("c", "edgepair_http_auth_total", {"result": "cached"})

        # Bearer: served, and the internal host got neither the password nor the token.
        n = len(self.rec.requests)
        st, _, body = self.get(self.rec_path("bearer"), headers=self.bearer(tok))
        self.assertEqual(st, 200, body)
        self.assertEqual(len(self.rec.requests), n + 1)
        got = self.rec.last()
        self.assertNotIn("authorization", got)
        self.assertFalse(any(tok in v or ALICE[1] in v for vs in got.values() for v in vs), got)

        # Cookie: served; the client's other cookies go on, the edge token does not.
        st, _, body = self.get(self.rec_path("cookie"), headers={"Cookie": f"lang=en; X-Auth={tok}; theme=dark"})
        self.assertEqual(st, 200, body)
        got = self.rec.last()
        self.assertNotIn("authorization", got)
        self.assertEqual(got.get("cookie"), ["lang=en; theme=dark"])

        # get_edge_config itself with the token: the full answer, with the user's UDS server from the token.
        st, _, body = self.get(EDGE_CONFIG, headers=self.bearer(tok))
        self.assertEqual(st, 200, body)
        self.assertIn(ET.fromstring(body).findtext("edgeConfig/userUdsServer/server/address"), ADDRS)

        # None of the token requests asked Unified CM or the credential cache.
        self.assertEqual(self.metric("c", "edgepair_http_auth_total", {"result": "ok"}), ok_before)
        self.assertEqual(self.metric("c", "edgepair_http_auth_total", {"result": "cached"}), cached_before)
        self.assertEqual(self.metric("c", "edgepair_http_auth_total", {"result": "edge_token"}), 3)

        # Tampered (one character of the sealed part changed) and made-up tokens: 401 with the Basic
        # challenge, each counted under its reason; nothing reaches the internal host.
        n = len(self.rec.requests)
        mid = len(tok) // 2
        tampered = tok[:mid] + ("A" if tok[mid] != "A" else "B") + tok[mid + 1:]
        for bad, reason in ((tampered, "bad_seal"), ("ept1.bm90IGEgdG9rZW4", "malformed")):
            with self.subTest(reason=reason):
                before = self.refused(reason)
                st, hd, _ = self.get(self.rec_path("bad"), headers=self.bearer(bad))
                self.assertEqual(st, 401)
                self.assertIn("Basic", hd.get("WWW-Authenticate", ""))
                self.assertEqual(self.refused(reason), before + 1)
        st, _, _ = self.get(self.rec_path("bad"), headers={"Cookie": f"X-Auth={tampered}"})
        self.assertEqual(st, 401)
        self.assertEqual(len(self.rec.requests), n)

        # A restart of edge-c keeps the token valid (the key is in credentials.token_key_file).
        key_file = os.path.join(self.tmp, "edge-c-token.key")
        self.assertTrue(os.path.exists(key_file))
        self.assertEqual(os.stat(key_file).st_mode & 0o777, 0o600)
        self.edge_c.stop()
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()
        st, _, body = self.get(self.rec_path("after-restart"), headers=self.bearer(tok))
        self.assertEqual(st, 200, body)
        self.assertNotIn("authorization", self.rec.last())

        # The password changes on Unified CM; the user signs in with the new one: the old token is refused.
        cluster = os.path.join(self.tmp, "cluster.json")
        with open(cluster, encoding="utf-8") as f:
            doc = json.load(f)
        new_pw = "Alice-N3w-Passw0rd"
        doc["end_users"]["alice"]["password"] = new_pw
        with open(cluster + ".tmp", "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(cluster + ".tmp", cluster)
        time.sleep(1.1)  # the fixture notices a changed file by its mtime
        tok2 = self.sign_in(("alice", new_pw))
        before = self.refused("stale_credentials")
        # Every worker learns the new stamp (a post to each loop): whichever worker serves the request refuses
        # the old token.
        for _ in range(4):
            st, _, _ = self.get(self.rec_path("old"), headers=self.bearer(tok))
            self.assertEqual(st, 401)
        self.assertEqual(self.refused("stale_credentials"), before + 4)
        st, _, body = self.get(self.rec_path("new"), headers=self.bearer(tok2))
        self.assertEqual(st, 200, body)

        self.assert_no_secret_in_logs(ALICE[1], new_pw, tok, tok2, tok[5:40], tok2[5:40])


class EdgeTokenExpiryTest(EdgeTokenTopology):
    REFRESH = "3s"

    def test_token_expires_at_refresh_interval(self):
        tok = self.sign_in()
        cookie = next(v for v in self.get(EDGE_CONFIG, auth=ALICE)[1].get_all("Set-Cookie"))
        self.assertIn("Max-Age=3", cookie)
        st, _, body = self.get(self.rec_path("fresh"), headers=self.bearer(tok))
        self.assertEqual(st, 200, body)
        time.sleep(3.5)
        before = self.refused("expired")
        st, hd, _ = self.get(self.rec_path("stale"), headers=self.bearer(tok))
        self.assertEqual(st, 401)
        self.assertIn("Basic", hd.get("WWW-Authenticate", ""))
        self.assertEqual(self.refused("expired"), before + 1)
        # The password still signs in and gets a new token.
        tok2 = self.sign_in()
        self.assertNotEqual(tok, tok2)
        st, _, _ = self.get(self.rec_path("renewed"), headers=self.bearer(tok2))
        self.assertEqual(st, 200)


if __name__ == "__main__":
    h.run_tests()
