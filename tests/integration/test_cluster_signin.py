#!/usr/bin/python3
"""Sign-in state shared by two edge-c peers through Redis (issue #17, edge-c/cluster_signin.h).

Topology: test_saml_sso.py's (dnsmasq, the Unified CM fixture, nginx, the recorder, the pysaml2 IdP), with a real
redis-server (free loopback port, no persistence) and two edge-c peers (expc1, expc2; admin ports of their own)
linked to the one edge-e. Both edge-c name the same `cluster` and Redis, share the SP identity (sso.entity_id and
signing key: the IdP's assertion names one audience) and the edge token key file.

edge-e spreads requests over the links of both edge-c peers (per worker, round-robin), so the test makes the
routing certain where it has to (one edge-c stopped) and otherwise repeats a request, bounded, until the peer it
wants has served it, asserting every answer on the way; which peer served is read from each peer's /metrics.
- discovery runs on edge-c 1 only (cluster.discovery_primary): edge-c 2 serves edge-c 1's nodes, taken from Redis,
  without one AXL request of its own (the fixture's counts); a refresh on edge-c 2 is refused (409, naming the
  primary), one on edge-c 1 reaches edge-c 2;
- an AuthnRequest sent by edge-c 1 (edge-c 2 stopped) is answered through edge-c 2 (edge-c 1 stopped): accepted;
- the same Response replayed with both up: refused every time, and edge-c 1 (which never accepted it) counts a
  replay: without Redis it would have accepted it;
- a password change seen by one peer retires the old token on the other (stale_credentials counted there), and
  the other peer takes the new password on the strength of the first peer's check: Unified CM (the fixture's
  request counts) sees one /devices for it, however often either peer is asked;
- credentials.max_failures counts failures of a user over both peers (the limiter takes are published on the
  tally channel): the wrong passwords Unified CM sees are the budget, not twice it;
- allow-list rules imported on one peer's admin port reach the other (its rules file, its snapshot, so edge-e
  enforces them whichever peer's snapshot came last), and a DELETE on the other peer reaches the first;
- Redis killed: password sign-ins and token use go on, the cluster.redis alarm is raised on both peers and the
  fallbacks are counted; Redis restarted (empty): the alarm clears, edgepair_cluster_redis_up returns to 1, and
  the password stamp noted during the outage is in Redis again.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_cluster_signin.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
from test_http_edge import ALICE, DOMAIN_B64, EDGE  # noqa: E402
from test_saml_sso import BOB_IDP, SAML_IMPORT_ERROR, SamlTopology, cookie_token  # noqa: E402

if not SAML_IMPORT_ERROR:
    from saml_idp import SamlIdp, make_key_pair  # noqa: E402

CLUSTER = "signin-test"
ENTITY_ID = "https://edge-c.example.com/saml/sp"


class ClusterSigninTest(SamlTopology):
    MAX_FAILURES = 4
    # ---- topology ------------------------------------------------------------------------------------

    def start_redis(self) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            self._missing("redis-server not installed (Debian package redis-server, tools/packages.txt)")
        if not hasattr(self, "redis_port"):
            self.redis_port = h.free_port()
        self.redis = self.start([exe, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--daemonize", "no", "--dir", self.tmp,
                                 "--loglevel", "notice"], name="redis")
        self.redis.wait_port("127.0.0.1", self.redis_port, timeout=10)

    def redis_cmd(self, *args: str) -> str:
        rc, out = h.run_cmd([shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p",
                             str(self.redis_port), "--raw", *args], timeout=10)
        self.assertEqual(rc, 0, out)
        return out.strip()

    def start_pair(self) -> None:
        if SAML_IMPORT_ERROR:
            self._missing(SAML_IMPORT_ERROR)
        self.require_tool("xmlsec1")
        self.start_redis()
        self.idp = SamlIdp(self.tmp, {"alice.idp": ("Idp-Passw0rd", "alice"), "bob.idp": ("Idp-Passw0rd", "bob")})
        self.addCleanup(self.idp.close)
        sp_key, sp_crt = make_key_pair(self.tmp, "sp-signing", "edge-c.example.com")
        # One token key file for both (as an operator copies it); the rest of each peer's state (discovery,
        # imported allow-list rules) in a directory of its own, as on two machines.
        tail = (f"credentials: {{refresh_interval: {self.REFRESH}, max_failures: {self.MAX_FAILURES}, "
                f"failure_period: 600s, token_key_file: {self.tmp}/edge-token.key}}\n"
                f"sso:\n"
                f"  entity_id: {ENTITY_ID}\n"
                f"  signing: {{cert: {sp_crt}, key: {sp_key}}}\n"
                f"  edge_e_addresses: [\"{EDGE}:{self.ports.https}\"]\n"
                f"  identity_providers:\n"
                f"    - {{name: idp1, metadata_file: {self.idp.metadata_file}}}\n"
                f"cluster: {{name: {CLUSTER}, discovery_primary: expc1.example.com, "
                f"redis: {{address: \"127.0.0.1:{self.redis_port}\", timeout: 1s}}}}")
        rules = self.edge_c_extra(f'{{url: "http://cucm1.example.com:{self.rec_port}/rec/", description: recorder}}',
                                  tail="http: {upstream_timeout: 2s}\n" + tail)
        sso_e = ("sso:\n"
                 "          domains: [{name: example.com, mode: on}]")
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra=sso_e)
        self.admin_c = [self.ports.admin_c, h.free_port()]
        self.ccfgs = []
        for i in range(2):
            os.makedirs(f"{self.tmp}/c{i + 1}", exist_ok=True)
            path = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher(), extra=rules,
                                    domains="- {name: example.com, sso: on, idp: idp1}",
                                    state_file=f"{self.tmp}/c{i + 1}/edge-c-state.json")
            with open(path) as f:
                text = f.read()
            text = text.replace(f"127.0.0.1:{self.ports.admin_c}", f"127.0.0.1:{self.admin_c[i]}")
            text = text.replace("node_name: expc1.example.com", f"node_name: expc{i + 1}.example.com")
            self.ccfgs.append(self.write_yaml(f"edge-c{i + 1}.yaml", text))
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        # One after the other: the first creates the token key file (same directory: the same file) they share.
        self.cs: list[h.Proc | None] = [None, None]
        self.start_c(0)
        self.edge_c = self.cs[0]
        self.wait_ready()
        # edge-c 2 follows edge-c 1's discovery (cluster.discovery_primary): it asks no publisher itself.
        self.axl_after_primary = self.ucm_requests("axl")
        self.start_c(1)
        st, _, md = h.http_get(f"http://127.0.0.1:{self.admin_c[0]}/sso/metadata", timeout=5)
        self.assertEqual(st, 200, md)
        self.idp.trust_sp(md.decode())

    def start_c(self, i: int) -> None:
        p = self.start([self.require_binary("edge-c"), "-c", self.ccfgs[i]], name=f"edge-c{i + 1}")
        p.wait_http(f"http://127.0.0.1:{self.admin_c[i]}/health", timeout=15)
        self.cs[i] = p
        self.wait_for(f"edge-c {i + 1} ready with Redis",
                      lambda: self.c_ready(i) and self.c_status(i)["cluster"]["redis"]["up"], timeout=30)

    def stop_c(self, i: int) -> None:
        self.cs[i].stop()
        self.cs[i] = None
        # edge-e drops its links (GOAWAY) before serving the next request through the other peer.
        time.sleep(0.5)

    def c_ready(self, i: int) -> bool:
        try:
            st, _, _ = h.http_get(f"http://127.0.0.1:{self.admin_c[i]}/ready", timeout=5)
            return st == 200
        except OSError:
            return False

    def c_status(self, i: int) -> dict:
        _, _, body = h.http_get(f"http://127.0.0.1:{self.admin_c[i]}/status", timeout=5)
        return json.loads(body)

    def c_metric(self, i: int, name: str, labels: dict[str, str] | None = None) -> int:
        saved = self.ports.admin_c
        self.ports.admin_c = self.admin_c[i]
        try:
            return self.metric("c", name, labels or {})
        finally:
            self.ports.admin_c = saved

    def pub_success(self, i: int) -> list:
        return [p.get("last_success") or "" for p in self.c_status(i)["discovery"]["publishers"]]

    def c_alarm(self, i: int, alarm_id: str):
        return next((a for a in self.c_status(i)["alarms"] if a["id"] == alarm_id), None)

    def wait_for(self, what: str, cond, timeout: float, step: float = 0.1):
        deadline = time.monotonic() + timeout
        while True:
            try:
                v = cond()
            except (OSError, ValueError, KeyError, TypeError):
                v = None
            if v:
                return v
            if time.monotonic() >= deadline:
                self.fail(f"not within {timeout}s: {what}")
            time.sleep(step)

    def until_served_by(self, i: int, counter: tuple[str, dict], request, tries: int = 30):
        """Sends request() until edge-c i's counter moved (bounded); returns every answer seen."""
        answers = []
        before = self.c_metric(i, *counter)
        for _ in range(tries):
            answers.append(request())
            if self.c_metric(i, *counter) > before:
                return answers
        self.fail(f"edge-c {i + 1} never served it in {tries} tries: {counter}")

    # ---- the test --------------------------------------------------------------------------------------

    def test_sign_in_state_across_peers(self):
        # 0. Discovery ran on the primary only; the follower took its nodes from Redis, and sends a refresh there.
        self.assertGreater(self.axl_after_primary, 0)
        self.assertEqual(self.ucm_requests("axl"), self.axl_after_primary)
        pubs = self.c_status(1)["discovery"]["publishers"]
        self.assertTrue(pubs and all(p.get("discovered_by_peer", "").startswith("expc1.example.com/") for p in pubs),
                        pubs)
        names = sorted(n["name"] for n in self.c_status(1)["discovery"]["nodes"])
        self.assertEqual(names, sorted(n["name"] for n in self.c_status(0)["discovery"]["nodes"]))
        st, _, body = h.http_request(f"http://127.0.0.1:{self.admin_c[1]}/discovery/refresh", "POST", timeout=5)
        self.assertEqual(st, 409, body)
        self.assertIn(b"expc1.example.com", body)
        before = self.pub_success(1)
        time.sleep(1.1)  # last_success is in seconds: the primary's next run must be visibly newer
        st, _, body = h.http_request(f"http://127.0.0.1:{self.admin_c[0]}/discovery/refresh", "POST", timeout=5)
        self.assertEqual(st, 202, body)
        self.wait_for("the primary's new run on the follower", lambda: self.pub_success(1) > before, timeout=10)
        self.assertGreater(self.ucm_requests("axl"), self.axl_after_primary)

        for i in range(2):
            st = self.c_status(i)["cluster"]
            self.assertEqual(st["name"], CLUSTER)
            self.assertEqual(st["redis"]["address"], f"127.0.0.1:{self.redis_port}")
            self.assertEqual(self.c_metric(i, "edgepair_cluster_redis_up"), 1)

        # 1. The AuthnRequest through edge-c 1 (the only one up), its answer through edge-c 2 (the only one up).
        self.stop_c(1)
        sent = self.c_metric(0, "edgepair_saml_requests_total")
        action, fields = self.response_form("ok", login=BOB_IDP)
        self.assertEqual(self.c_metric(0, "edgepair_saml_requests_total"), sent + 1)
        self.start_c(1)
        self.stop_c(0)
        st, hd, body = self.post_form(action, fields)
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["user"], "bob")
        self.assertIsNotNone(cookie_token(hd))
        self.assertEqual(self.c_metric(1, "edgepair_saml_responses_total", {"result": "ok"}), 1)
        self.assertEqual(self.c_metric(1, "edgepair_saml_responses_total", {"result": "unsolicited"}), 0)

        # 2. The same Response again, both peers up: refused wherever it lands, until edge-c 1 (which never saw
        # it accepted: only Redis knows) has refused it as a replay.
        self.start_c(0)
        answers = self.until_served_by(0, ("edgepair_saml_responses_total", {"result": "replay"}),
                                       lambda: self.post_form(action, fields)[0])
        self.assertEqual(set(answers), {403}, answers)
        self.assertEqual(self.c_metric(0, "edgepair_saml_responses_total", {"result": "ok"}), 0)
        self.assertEqual(self.c_metric(1, "edgepair_saml_responses_total", {"result": "ok"}), 1)
        # In Redis: the assertion (until its NotOnOrAfter); the request was taken by the answer.
        self.assertEqual(len(self.redis_cmd("KEYS", f"edgepair:{CLUSTER}:saml:assertion:*").split()), 1)
        self.assertEqual(self.redis_cmd("KEYS", f"edgepair:{CLUSTER}:saml:request:*"), "")

        # 3. A password change seen by one peer retires the old token on the other.
        tok = self.sign_in()
        cluster = os.path.join(self.tmp, "cluster.json")
        with open(cluster, encoding="utf-8") as f:
            doc = json.load(f)
        new_pw = "Alice-N3w-Passw0rd"
        doc["end_users"]["alice"]["password"] = new_pw
        with open(cluster + ".tmp", "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(cluster + ".tmp", cluster)
        time.sleep(1.1)  # the fixture notices a changed file by its mtime
        oks = [self.c_metric(i, "edgepair_http_auth_total", {"result": "ok"}) for i in range(2)]
        tok2 = self.sign_in(("alice", new_pw))
        saw = [i for i in range(2) if self.c_metric(i, "edgepair_http_auth_total", {"result": "ok"}) > oks[i]]
        self.assertEqual(len(saw), 1, saw)
        other = 1 - saw[0]
        self.wait_for("the stamp in Redis", lambda: self.redis_cmd("EXISTS", f"edgepair:{CLUSTER}:stamp:default:alice")
                      == "1", timeout=3)
        time.sleep(0.3)  # the PUBLISH reaches the other peer's workers by a post
        answers = self.until_served_by(other, ("edgepair_edge_token_refused_total", {"reason": "stale_credentials"}),
                                       lambda: self.get(self.rec_path("old"), headers=self.bearer(tok))[0])
        self.assertEqual(set(answers), {401}, answers)
        st, _, body = self.get(self.rec_path("new"), headers=self.bearer(tok2))
        self.assertEqual(st, 200, body)
        # The other peer takes the new password on the strength of the first one's check (the stamp names the
        # node that answered): Unified CM is not asked again, whichever peer and worker the requests land on.
        devices = self.ucm_requests("uds:devices:alice")
        self.assertGreaterEqual(devices, 1)
        answers = self.until_served_by(other, ("edgepair_http_auth_vouched_total", {}),
                                       lambda: self.get(self.rec_path("vouched"), auth=("alice", new_pw))[0])
        self.assertEqual(set(answers), {200}, answers)
        for _ in range(6):
            st, _, body = self.get(self.rec_path("vouched"), auth=("alice", new_pw))
            self.assertEqual(st, 200, body)
        self.assertEqual(self.ucm_requests("uds:devices:alice"), devices)

        # 3c. credentials.max_failures holds for the cluster, not per peer: wrong passwords spread over both
        # peers (edge-e alternates links), and only the budget reaches Unified CM before every peer answers 429.
        # Each request waits for the last one's take to be published (batched every 50 ms).
        wrong = ("bob", "not-bobs-password")
        refused_before = self.ucm_requests("uds:user:401")
        denied_before = [self.c_metric(i, "edgepair_http_auth_total", {"result": "denied"}) for i in range(2)]
        answers = []
        for _ in range(self.MAX_FAILURES + 4):
            answers.append(self.get(self.rec_path("guess"), auth=wrong)[0])
            time.sleep(0.2)
        self.assertEqual(answers, [401] * self.MAX_FAILURES + [429] * 4, answers)
        self.assertEqual(self.ucm_requests("uds:user:401") - refused_before, self.MAX_FAILURES)
        denied = [self.c_metric(i, "edgepair_http_auth_total", {"result": "denied"}) - denied_before[i]
                  for i in range(2)]
        # Without the tally each peer would have allowed MAX_FAILURES of its own; proving that needs both.
        self.assertTrue(all(d > 0 for d in denied), f"the failures did not spread over both peers: {denied}")
        self.assertEqual(sum(self.c_metric(i, "edgepair_auth_rate_limited_total",
                                           {"reason": "failures", "method": "basic"}) for i in range(2)), 4)

        # 3d. Allow-list rules imported on edge-c 1 reach edge-c 2 (its rules file and its snapshot), so edge-e
        # enforces one list whichever peer's snapshot it applied last; a DELETE on edge-c 2 reaches edge-c 1.
        alice_now = ("alice", new_pw)
        shared = self.proxy("http", "cucm1.example.com", self.rec_port, "/shared/x")
        self.assertEqual(self.get(shared, auth=alice_now)[0], 403)
        rule = f"http://cucm1.example.com:{self.rec_port}/shared/"
        csv = f"Url,Deployment,HttpMethods,MatchType,Description\r\n{rule},,GET,prefix,\"shared rule\"\r\n"
        st, _, body = h.http_request(f"http://127.0.0.1:{self.admin_c[0]}/allowlist/rules", "POST", body=csv,
                                     timeout=10, headers={"Content-Type": "text/csv"})
        self.assertEqual(st, 200, body)
        rules_file = [os.path.join(self.tmp, f"c{i + 1}", "edge-c-allow-list.csv") for i in range(2)]

        def c_rules(i: int) -> str:
            return h.http_get(f"http://127.0.0.1:{self.admin_c[i]}/allowlist/rules", timeout=5)[2].decode()

        self.wait_for("the rule on edge-c 2", lambda: rule in c_rules(1), timeout=3)
        with open(rules_file[1], encoding="utf-8") as f:
            self.assertIn(rule, f.read())
        self.assertIn("1 ", self.redis_cmd("GET", f"edgepair:{CLUSTER}:allowlist:imported")[:2])
        # Through the pair, every request (both peers' snapshots, both workers) lets it through to the recorder.
        for i in range(6):
            st, _, body = self.get(shared, auth=alice_now)
            self.assertEqual(st, 200, f"request {i + 1}: {body!r}")
        st, _, body = h.http_request(f"http://127.0.0.1:{self.admin_c[1]}/allowlist/rules", "DELETE", timeout=10)
        self.assertEqual(st, 200, body)
        self.wait_for("the rule gone from edge-c 1", lambda: rule not in c_rules(0), timeout=3)
        with open(rules_file[0], encoding="utf-8") as f:
            self.assertNotIn(rule, f.read())
        self.wait_for("the rule enforced gone", lambda: all(self.get(shared, auth=alice_now)[0] == 403 for _ in range(4)),
                      timeout=5)

        # 4. Redis killed: sign-ins go on from each peer's memory; the alarm is raised on both.
        self.redis.stop(sig=signal.SIGKILL)
        for i in range(2):
            self.wait_for(f"cluster.redis raised on edge-c {i + 1}",
                          lambda i=i: (self.c_alarm(i, "cluster.redis") or {}).get("state") == "raised", timeout=5)
            self.assertEqual(self.c_metric(i, "edgepair_cluster_redis_up"), 0)
            self.assertFalse(self.c_status(i)["cluster"]["redis"]["up"])
        # Credential cache hits do not note a stamp: a fresh password for the fallback to count.
        newer_pw = "Alice-Th1rd-Passw0rd"
        doc["end_users"]["alice"]["password"] = newer_pw
        with open(cluster + ".tmp", "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(cluster + ".tmp", cluster)
        time.sleep(1.1)
        for _ in range(4):
            tok3 = self.sign_in(("alice", newer_pw))
            st, _, body = self.get(self.rec_path("outage"), headers=self.bearer(tok3))
            self.assertEqual(st, 200, body)
        fallbacks = sum(self.c_metric(i, "edgepair_cluster_redis_fallbacks_total", {"what": "stamp"})
                        for i in range(2))
        self.assertGreaterEqual(fallbacks, 1)

        # Back (empty: no persistence): the alarm clears, and the stamp noted meanwhile is pushed again.
        self.start_redis()
        for i in range(2):
            self.wait_for(f"cluster.redis cleared on edge-c {i + 1}",
                          lambda i=i: (self.c_alarm(i, "cluster.redis") or {}).get("state") == "cleared", timeout=15)
            self.assertEqual(self.c_metric(i, "edgepair_cluster_redis_up"), 1)
        self.wait_for("the outage's stamp back in Redis",
                      lambda: self.redis_cmd("EXISTS", f"edgepair:{CLUSTER}:stamp:default:alice") == "1", timeout=5)


if __name__ == "__main__":
    h.run_tests()
