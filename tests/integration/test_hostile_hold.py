#!/usr/bin/python3
"""Hostile load (issue #14, "Done when"): 50,000 refused or unfinished requests held against edge-e from many
loopback addresses, while a normal client signs in and fetches an allow-listed file through the pair.

The attackers are three `edge-load --scenario hold` processes, each connection bound to its own source address
in 127.0.0.0/8 (so that per-address caps see every connection as a different client, the way a botnet looks):
- head:    `--hold head`, a request head cut off inside a header value (slowloris);
- body:    `--hold body`, a complete POST head for an allow-listed path *without credentials* (edge-c answers
           401: the request costs a link stream and a credential decision) announcing Content-Length: 1000000,
           of which 16 bytes are sent, then nothing;
- h2-body: `--hold h2-body`, HTTP/2 connections with 100 such streams each (100 is edge-e's default
           http.max_concurrent_streams).
The mix: 8,000 heads + 8,000 bodies on HTTP/1.1 and 340 HTTP/2 connections x 100 streams = 50,000 requests on
16,340 connections from 16,340 addresses. HTTP/2 carries most of the requests because that is what an attacker
after link streams would use (one connection, 100 link streams), and because it keeps edge-e's descriptors under
the 20,000 a process may have on a CI machine without CAP_SYS_RESOURCE. EDGEPAIR_HOLD_CONNECTIONS=40000 (say)
moves the mix towards one connection per request where the descriptor limit can be raised.
The attackers do not re-open what edge-e closes: cutting a holder is the defence under test, and re-opening at
once would turn the test into a TLS handshake flood, which on a 2-core box the attacker's own CPU decides.

The normal client (one fresh TLS connection per request, from 127.0.0.1) alternates get_edge_config with Basic
credentials (a sign-in) and a GET of the allow-listed /files/hello.txt on nginx, paced 20 ms apart: all through
the attackers' set-up (while the held requests pile up), then 200 more requests once every attacker has set up
(its --ready-file). Asserted, for each of the two phases:
- zero failures (every answer 200 with the right body) and p99 latency below 1 s while held (20 s during the
  set-up, where a handshake edge-e dropped after waiting 10 s for CPU is tried once more: normal_request);
- RSS (/proc/<pid>/status VmRSS, sampled on every request and at the end) of edge-e below RSS_BOUND_E_MIB and
  of edge-c below RSS_BOUND_C_MIB (the bounds docs/SECURITY.md "Hostile load" states);
- the attackers really held the count: every connection was set up once (their JSON summaries), or the test
  fails and says how many were set up and why.

Limits: the pair runs with the default limits (limits.*, http.*, the rate limit, the link keep-alive); the only
differences from a default configuration are the loopback ports, 2 workers (this is a 2-core CI machine) and
`log.level: info` (pair.py's `debug` would write several lines per held connection: hundreds of thousands of
lines in the hot path). 50,000 client sockets plus 50,000 server sockets on one box need file descriptors: this test raises
RLIMIT_NOFILE for itself, which edge-e, edge-c and edge-load inherit (edge-e does not raise its own limit;
edge-load does). If it cannot, it fails with the reason (never a silent pass with fewer), unless
EDGEPAIR_HOLD_REQUESTS lowers the count for a developer run.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_hostile_hold.py
Env: EDGEPAIR_HOLD_REQUESTS=N (default 50000; lower only for a developer run: the test says so loudly);
     EDGEPAIR_HOLD_CONNECTIONS=C HTTP/1.1 connections among them at the full count (default 16000, half heads
     and half bodies; scaled down with EDGEPAIR_HOLD_REQUESTS);
     EDGEPAIR_HOLD_SETUP_TIMEOUT=SECS (default 300) bounds the attackers' set-up.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
import test_http_edge as base  # noqa: E402

FULL_COUNT = 50000
COUNT = int(os.environ.get("EDGEPAIR_HOLD_REQUESTS", FULL_COUNT))
H1_CONNECTIONS = int(os.environ.get("EDGEPAIR_HOLD_CONNECTIONS", 16000))
SETUP_TIMEOUT = float(os.environ.get("EDGEPAIR_HOLD_SETUP_TIMEOUT", 300))
STREAMS = 100  # h2-body streams per connection: edge-e's default http.max_concurrent_streams
NORMAL_REQUESTS = 200
PACE_S = 0.02
P99_BOUND_S = 1.0
# While the attackers are still connecting, the box does ~16,000 TLS handshakes in ~40 s on the same 2 cores as
# the attacking tool: a CPU flood, not a hold. Nothing in edge-e limits the handshake rate per source yet (that is
# intrusion protection, issue #17), so a new client then waits for CPU like everyone else. The bound
# (p99 < 1 s) is asserted while the requests are *held*; during the set-up the client must not fail, and a loose
# bound still catches a stall (measured here: 8-12 s with the attack's own CPU on the same 2 cores).
SETUP_P99_BOUND_S = 20.0
# Memory bounds for 50,000 held requests (docs/SECURITY.md "Hostile load"), whatever the mix: 1 GiB for edge-e
# is ~20 KiB per held request, room for an idle TLS connection per HTTP/1.1 request (a few KiB once OpenSSL's
# record buffers are released, plus the session objects and part of a 16 KiB request-head buffer), or a link
# stream and an HTTP/2 stream per h2 request. edge-c holds no client connection at all, only link streams: what
# a refused request leaves there must be small and short-lived, so 256 MiB.
RSS_BOUND_E_MIB = 1024
RSS_BOUND_C_MIB = 256
HOLD_DURATION_S = 900  # the attackers' own cap; the test stops them long before


def split(count: int) -> dict[str, tuple[int, int]]:
    """{mode: (connections, requests)}: H1_CONNECTIONS (scaled to count) split between slowloris heads and
    refused bodies, the rest as HTTP/2 streams, STREAMS a connection (a remainder goes to the bodies)."""
    h1 = min(count, H1_CONNECTIONS * count // FULL_COUNT)
    h2_conns, left = divmod(count - h1, STREAMS)
    head = h1 // 2
    body = h1 - head + left
    plan = {"head": (head, head), "body": (body, body), "h2-body": (h2_conns, h2_conns * STREAMS)}
    return {mode: cr for mode, cr in plan.items() if cr[0] > 0}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise h.HarnessError(f"no VmRSS for pid {pid}")


def quantile(sorted_values: list[float], q: float) -> float:
    # Nearest rank: with 200 samples p99 is the 198th value, so two slow requests already fail it.
    i = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 1)) - 1))
    return sorted_values[i]


class HostileHoldTest(base.HttpEdgeTopology):
    EDGE_C_EXTRA = ""  # defaults: the normal client's requests never reach the silent origin

    def setUp(self) -> None:
        self.plan = split(COUNT)
        conns = sum(c for c, _ in self.plan.values())
        # Every process of the test inherits this. edge-e needs the most: every client socket, plus links,
        # upstreams, log and listener descriptors; each edge-load needs only its own share.
        want = conns + 2000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < want:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            except (ValueError, OSError) as e:
                self.fail(f"cannot raise RLIMIT_NOFILE from {soft}/{hard} to {want} for {COUNT} held requests "
                          f"({e}); run as root with CAP_SYS_RESOURCE (or under a higher ulimit -n), lower "
                          f"EDGEPAIR_HOLD_CONNECTIONS, or set EDGEPAIR_HOLD_REQUESTS lower for a "
                          f"developer run")
        self.load = self.require_binary("edge-load")
        super().setUp()

    def start_pair(self) -> None:
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra="# defaults")
        self.ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher(),
                                     extra=self.edge_c_extra())
        # pair.py shortens the link keep-alive (1 s / 3 s) and the redial back-off for fast tests; a burst of
        # held requests is exactly when a 3 s PING answer may be late, so this test keeps the defaults.
        shortened = ("ping_interval:", "ping_timeout:", "reconnect_min:", "reconnect_max:")
        for path in (self.ecfg, self.ccfg):
            with open(path) as f:
                lines = f.read().splitlines(keepends=True)
            self.assertTrue(any("log: {level: debug}" in ln for ln in lines), path)
            with open(path, "w") as f:
                f.write("".join(ln.replace("log: {level: debug}", "log: {level: info}") for ln in lines
                                if not ln.strip().startswith(shortened)))
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()

    # ---- the normal client -----------------------------------------------------------------------------

    class Phase:
        def __init__(self) -> None:
            self.lat: list[float] = []
            self.failures: list[str] = []
            self.retried: list[str] = []  # set-up phase only, see normal_request
            self.rss: dict[str, float] = {}
            self.sessions = 0  # highest edgepair_client_sessions seen on edge-e

        def figures(self) -> dict:
            v = sorted(self.lat) or [0.0]
            return {"requests": len(self.lat), "failures": len(self.failures), "retried": self.retried[:10],
                    "p50_ms": round(quantile(v, 0.5) * 1000, 1), "p99_ms": round(quantile(v, 0.99) * 1000, 1),
                    "max_ms": round(v[-1] * 1000, 1), "rss_mib": {k: round(x, 1) for k, x in self.rss.items()},
                    "edge_e_sessions_peak": self.sessions}

    def normal_request(self, i: int, ph: "HostileHoldTest.Phase", timeout: float = 10,
                       retry_dropped_handshake: bool = False) -> None:
        """One request of the normal client (even i: sign-in, odd i: the file), timed; then the edges' RSS.
        `timeout` is the phase's latency bound: a slow answer inside it is counted by the p99 check, not as a
        failure. retry_dropped_handshake (the set-up phase only): edge-e aborts a TLS handshake it could not
        finish within http.request_head_timeout (10 s); in the handshake flood of the set-up a handshake can wait
        that long for CPU (seen once in a full ctest run: p99 14 s), and with TLS 1.3 the client has already sent
        its request when the server gives up, so it sees a close without response. A client then connects again,
        as Jabber does; once, recorded in the figures. A second failure, or any failure while held, fails."""
        path = self.config_path if i % 2 == 0 else self.hello_path
        t0 = time.monotonic()
        for attempt in (1, 2):
            try:
                st, _, body = h.http_request(self.url(path), "GET", timeout=timeout, context=self.client_ctx,
                                             headers={"Authorization": base.basic(*base.ALICE)},
                                             connect_to=("127.0.0.1", self.ports.https))
                good_body = body.startswith(b"<?xml") if path == self.config_path else body == self.hello
                if st != 200 or not good_body:
                    ph.failures.append(f"#{i} {path}: {st} {body[:120]!r}")
            except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                if retry_dropped_handshake and attempt == 1:
                    ph.retried.append(f"#{i} {path}: {type(e).__name__} after {time.monotonic() - t0:.1f} s")
                    continue
                ph.failures.append(f"#{i} {path}: {type(e).__name__}: {e}")
            except (OSError, ValueError) as e:  # ssl.SSLError, timeouts and resets are OSErrors
                ph.failures.append(f"#{i} {path}: {type(e).__name__}: {e}")
            break
        ph.lat.append(time.monotonic() - t0)
        for name, p in (("edge-e", self.edge_e), ("edge-c", self.edge_c)):
            if p.alive():
                ph.rss[name] = max(ph.rss.get(name, 0.0), rss_mib(p.pid))
        if i % 10 == 0:
            try:
                ph.sessions = max(ph.sessions, self.metric("e", "edgepair_client_sessions", {}))
            except OSError:
                pass  # the admin port is not what is measured; a slow answer must not stop the client
        time.sleep(PACE_S)

    # ---- the attackers ---------------------------------------------------------------------------------

    def start_attackers(self) -> dict[str, tuple[h.Proc, str]]:
        ranges = {"head": "127.1.0.1-127.1.255.254", "body": "127.2.0.1-127.2.255.254",
                  "h2-body": "127.3.0.1-127.3.255.254"}
        post = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        procs = {}
        for mode, (conns, _) in self.plan.items():
            ready = os.path.join(self.tmp, f"ready-{mode}")
            args = [self.load, "--scenario", "hold", "--hold", mode, "--target", f"127.0.0.1:{self.ports.https}",
                    "--sni", base.EDGE, "--cafile", f"{self.pki_dir}/ca.crt", "--connections", str(conns),
                    "--source-range", ranges[mode], "--path", post, "--duration", str(HOLD_DURATION_S),
                    "--timeout", "30", "--ready-file", ready, "--json"]
            if mode == "h2-body":
                args += ["--streams", str(STREAMS)]
            procs[mode] = (self.start(args, name=f"edge-load-{mode}"), ready)
        return procs

    def wait_attackers_ready(self, procs, ph: "HostileHoldTest.Phase") -> float:
        """Runs the normal client until every attacker has set up; returns how long that took."""
        t0 = time.monotonic()
        deadline = t0 + SETUP_TIMEOUT
        i = 0
        while time.monotonic() < deadline:
            for mode, (p, _) in procs.items():
                if not p.alive():
                    self.fail(f"edge-load {mode} exited during set-up (rc {p.returncode}):\n{p.tail()}")
            if all(os.path.exists(ready) and os.path.getsize(ready) > 0 for _, ready in procs.values()):
                return time.monotonic() - t0
            # The handshake flood's bound (SETUP_P99_BOUND_S): a request waiting 12 s for CPU beside 16,000
            # handshakes is slow, not failed; one that gets no answer within the bound is a stall.
            self.normal_request(i, ph, timeout=SETUP_P99_BOUND_S, retry_dropped_handshake=True)
            i += 1
        self.fail(f"the attackers did not finish setting up within {SETUP_TIMEOUT:.0f} s:\n" +
                  "\n".join(p.tail(3) for p, _ in procs.values()))

    def stop_attackers(self, procs) -> dict[str, dict]:
        out = {}
        for mode, (p, _) in procs.items():
            p.stop(timeout=30)  # SIGTERM: edge-load ends the run as its deadline would and prints its summary
            lines = [ln for ln in p.log_text().splitlines() if ln.startswith("{")]
            self.assertEqual(len(lines), 1, f"edge-load {mode} printed no JSON summary:\n{p.tail()}")
            out[mode] = json.loads(lines[0])
        return out

    # ---- the test --------------------------------------------------------------------------------------

    def test_hold_50k_while_a_client_works(self):
        if COUNT < FULL_COUNT:
            print(f"\n*** DEVELOPER RUN: EDGEPAIR_HOLD_REQUESTS={COUNT} holds fewer than the {FULL_COUNT} requests "
                  f"issue #14 asks for; this run proves nothing about {FULL_COUNT} ***\n", file=sys.stderr, flush=True)
        self.client_ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
        self.config_path = f"/{base.DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin"
        self.hello_path = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        # Baseline: the client works before the attack (and warms edge-c's credential cache, as a signed-in
        # client's would be).
        before = self.Phase()
        for i in range(10):
            self.normal_request(i, before)
        self.assertEqual(before.failures, [], "the pair does not work even before the attack")

        procs = self.start_attackers()
        ramp = self.Phase()
        setup_s = self.wait_attackers_ready(procs, ramp)
        held_at_ready = {mode: int(open(ready).read().strip() or 0) for mode, (_, ready) in procs.items()}

        hold = self.Phase()
        t0 = time.monotonic()
        for i in range(NORMAL_REQUESTS):
            self.normal_request(i, hold)
        client_s = time.monotonic() - t0
        for name, p in (("edge-e", self.edge_e), ("edge-c", self.edge_c)):
            self.assertTrue(p.alive(), f"{name} died under the hold:\n{p.tail()}")
            hold.rss[name] = max(hold.rss.get(name, 0.0), rss_mib(p.pid))
        summaries = self.stop_attackers(procs)

        report = {
            "requests_target": COUNT,
            "plan": {mode: {"connections": c, "requests": r} for mode, (c, r) in self.plan.items()},
            "setup_s": round(setup_s, 1),
            "held_at_ready": held_at_ready,
            "client_before": before.figures(),
            "client_during_setup": ramp.figures(),
            "client_during_hold": {**hold.figures(), "duration_s": round(client_s, 1)},
            "attackers": {mode: {"connections": s["connections"], **{k: s["hold"][k] for k in (
                "established", "requests", "answered", "reset", "goaway", "closed_by_peer", "peak_open_requests",
                "alive_at_end", "open_requests_at_end")}, "close_after_ms_p50": s["hold"]["close_after_ms"]["p50"],
                "close_after_ms_max": s["hold"]["close_after_ms"]["max"], "setup_p99_ms":
                round(s["latency_us"]["p99"] / 1000, 1), "errors": {k: v for k, v in s["errors"].items() if v}}
                for mode, s in summaries.items()},
            "failures_during_setup": ramp.failures[:10],
            "failures_during_hold": hold.failures[:10],
        }
        print("hostile-hold figures: " + json.dumps(report, indent=1), file=sys.stderr, flush=True)
        with open(os.path.join(self.tmp, "figures.json"), "w") as f:
            json.dump(report, f, indent=1)

        # The attack really happened at the size claimed: every connection set up at least once.
        for mode, (conns, reqs) in self.plan.items():
            got = summaries[mode]["hold"]
            self.assertGreaterEqual(
                got["established"], conns,
                f"{mode}: only {got['established']} of {conns} connections were ever set up (errors "
                f"{summaries[mode]['errors']}); the test did not hold {COUNT} requests")
            self.assertGreaterEqual(got["requests"], reqs, f"{mode}: {got}")
        self.assertGreaterEqual(len(ramp.lat), 1, "the set-up was over before the client could send a request")
        for name, ph, p99_bound in (("during the set-up", ramp, SETUP_P99_BOUND_S),
                                    ("during the hold", hold, P99_BOUND_S)):
            fig = ph.figures()
            self.assertEqual(ph.failures, [], f"the normal client failed {name}: {fig}")
            self.assertLess(quantile(sorted(ph.lat), 0.99), p99_bound, f"p99 {name}: {fig}")
            self.assertLess(ph.rss.get("edge-e", 0), RSS_BOUND_E_MIB, f"edge-e RSS {name}: {fig}")
            self.assertLess(ph.rss.get("edge-c", 0), RSS_BOUND_C_MIB, f"edge-c RSS {name}: {fig}")


if __name__ == "__main__":
    h.run_tests()
