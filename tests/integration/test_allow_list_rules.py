#!/usr/bin/python3
"""Issue #16, HTTP bullets, end to end through the pair (the test_http_edge.py topology):

- the 401 challenge is Expressway's captured `Basic realm="Cisco-Edge"`;
- UDS user resources take PUT and DELETE for the signed-in user's own id only: alice's credentials write under
  /cucm-uds/user/alice/, and the same credentials aimed at /cucm-uds/user/bob/ never reach the node (asserted
  on the Unified CM fixture's request log, not only on the status);
- the automatic rules carry TFTP on 6970 (http) and 6972 (https);
- the single-segment descriptor form `/<b64url("domain/http/host/port")>/path` reaches the same origin as
  `/<b64 domain>/http/host/port/path`, under the same allow list.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_allow_list_rules.py
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from test_http_edge import ALICE, DOMAIN_B64, HttpEdgeTopology  # noqa: E402


def descriptor(domain: str, scheme: str, host: str, port: int) -> str:
    return base64.urlsafe_b64encode(f"{domain}/{scheme}/{host}/{port}".encode()).decode().rstrip("=")


class AllowListRulesTest(HttpEdgeTopology):
    def fixture_log(self) -> str:
        return "".join(p.log_text() for p in self.fixtures)

    def uds_write(self, method: str, owner: str, auth, rest: str = "settings/ringtone"):
        path = self.proxy("https", "cucm1.example.com", self.ucm_port, f"/cucm-uds/user/{owner}/{rest}")
        return self.get(path, auth=auth, method=method, body=b"<ringtone>x</ringtone>" if method == "PUT" else None,
                        headers={"Content-Type": "application/xml"} if method == "PUT" else None)

    def test_realm_is_cisco_edge(self):
        st, hd, _ = self.get(f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds")
        self.assertEqual(st, 401)
        self.assertEqual(hd.get("WWW-Authenticate"), 'Basic realm="Cisco-Edge"')
        st, hd, _ = self.get(f"/{DOMAIN_B64}/get_edge_config/", auth=("alice", "wrong"))
        self.assertEqual(st, 401)
        self.assertEqual(hd.get("WWW-Authenticate"), 'Basic realm="Cisco-Edge"')

    def test_uds_writes_only_for_the_signed_in_user(self):
        for method in ("PUT", "DELETE"):
            with self.subTest(method=method):
                st, _, body = self.uds_write(method, "alice", ALICE)
                self.assertEqual(st, 204, body)
                st, _, body = self.uds_write(method, "bob", ALICE)
                self.assertEqual(st, 403, body)
                # Case does not make another user: ALICE is alice.
                st, _, body = self.uds_write(method, "ALICE", ALICE)
                self.assertEqual(st, 204, body)
        # No id at all, or a write the own-user rule does not cover (POST), is refused too.
        st, _, _ = self.get(self.proxy("https", "cucm1.example.com", self.ucm_port, "/cucm-uds/user/"), auth=ALICE,
                            method="PUT", body=b"x")
        self.assertEqual(st, 403)
        st, _, _ = self.uds_write("POST", "alice", ALICE)
        self.assertEqual(st, 403)
        log = self.fixture_log()
        self.assertIn('"PUT /cucm-uds/user/alice/settings/ringtone" 204', log)
        self.assertIn('"DELETE /cucm-uds/user/alice/settings/ringtone" 204', log)
        # What matters: user B's resources never saw a write with user A's credentials.
        self.assertNotIn("/cucm-uds/user/bob/", log)
        self.assertNotIn('"POST /cucm-uds/user/alice', log)
        self.assertGreaterEqual(self.metric("c", "edgepair_http_blocked_total", {"reason": "user"}), 2)

    def test_tftp_rules_6970_and_6972(self):
        _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
        rules = {(r["url"], r["methods"]) for r in json.loads(body)["discovery"]["automatic_allow_rules"]}
        for node in ("cucm1.example.com", "cucm2.example.com"):
            self.assertIn((f"http://{node}:6970/", "GET"), rules)
            self.assertIn((f"https://{node}:6972/", "GET"), rules)
            self.assertIn((f"https://{node}:{self.ucm_port}/cucm-uds/user/", "PUT,DELETE"), rules)

    def test_single_segment_descriptor(self):
        d = descriptor("example.com", "http", "cucm1.example.com", self.web_port)
        st, _, body = self.get(f"/{d}/files/hello.txt", auth=ALICE)
        self.assertEqual(st, 200, body)
        self.assertEqual(body, self.hello)
        # Same canonicalisation: upper-case host and domain, dot segments resolved inside the path only.
        d2 = descriptor("EXAMPLE.com", "http", "CUCM1.example.com", self.web_port)
        st, _, body = self.get(f"/{d2}/files/x/../hello.txt", auth=ALICE)
        self.assertEqual(st, 200, body)
        # Same allow list: a path outside the rule, an origin without one, climbing out of the path.
        st, _, _ = self.get(f"/{d}/other/x.txt", auth=ALICE)
        self.assertEqual(st, 403)
        st, _, _ = self.get(f"/{descriptor('example.com', 'http', 'cucm2.example.com', self.web_port)}/files/hello.txt",
                            auth=ALICE)
        self.assertEqual(st, 403)
        st, _, _ = self.get(f"/{d}/files/../../other/x.txt", auth=ALICE)
        self.assertEqual(st, 400)
        # An unknown domain inside the descriptor is the same 404 as in the segmented form.
        st, _, _ = self.get(f"/{descriptor('example.org', 'http', 'cucm1.example.com', self.web_port)}/files/hello.txt",
                            auth=ALICE)
        self.assertEqual(st, 404)
        time.sleep(0.2)
        with open(self.access_log) as f:
            log = f.read()
        self.assertNotIn("/other/", log)
        self.assertGreaterEqual(log.count("GET /files/hello.txt 200"), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
