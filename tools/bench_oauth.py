#!/usr/bin/python3
"""bench_oauth.py: the HTTP sign-in rate through the pair with Basic credentials and with an OAuth access token,
side by side, per CPU-second of edge-e + edge-c (docs/BENCHMARKS.md, "OAuth"). A benchmark, not a test: it
asserts only that every request succeeded, and prints one JSON line per scenario.

It starts test_oauth.py's topology (dnsmasq, the Unified CM fixture, nginx, the OAuth issuer fixture, the pair),
then runs edge-load twice against edge-e 8443, one connection after the other being the only load:
  edge-config    get_edge_config with Basic alice:... (edge-c: credential cache hit, a new edge token sealed)
  oauth-sign-in  get_edge_config with Authorization: Bearer <access token minted by the fixture>
                 (edge-c: RS256 verify + A128CBC-HS256 decrypt + claims, no round trip)
CPU is read from /proc/<pid>/stat of both edges before and after each run.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. BENCH_OAUTH_N=3000 /usr/bin/python3 tools/bench_oauth.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "fixtures"))

import harness as h  # noqa: E402
from oauth_issuer import Issuer  # noqa: E402
from test_http_edge import ALICE, EDGE  # noqa: E402

DOMAIN = "example.com"
from test_oauth import OAuthTopology  # noqa: E402

N = int(os.environ.get("BENCH_OAUTH_N", "3000"))
CONNS = int(os.environ.get("BENCH_OAUTH_CONNECTIONS", "8"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


class Bench(OAuthTopology):
    # One client address sends all the load: edge-e's per-address limit would measure itself.
    EDGE_E_EXTRA = "http: {rate_limit: {enabled: false}}"

    def write_yaml(self, name, text, **fmt):
        # The tests run the pair at debug level; a benchmark measures it as deployed (info).
        return super().write_yaml(name, text.replace("log: {level: debug}", "log: {level: info}"), **fmt)

    def run_load(self, scenario: str, *args: str) -> dict:
        pids = (self.edge_e.pid, self.edge_c.pid)
        before = sum(cpu_s(p) for p in pids)
        cmd = [self.require_binary("edge-load"), "--scenario", scenario, "--target", f"127.0.0.1:{self.ports.https}",
               "--sni", EDGE, "--cafile", f"{self.pki_dir}/ca.crt", "--domain", DOMAIN, "--connections",
               str(CONNS), "--requests", str(N), "--duration", "120", "--json", "--expect-status", "200", *args]
        r = subprocess.run(cmd, capture_output=True, timeout=180)
        cpu = sum(cpu_s(p) for p in pids) - before
        self.assertEqual(r.returncode, 0, r.stdout.decode()[-3000:])
        out = json.loads(r.stdout)
        return {"scenario": scenario, "requests": N, "connections": CONNS, "pair_cpu_s": round(cpu, 2),
                "per_pair_cpu_s": round(N / cpu) if cpu else None, "wall_rate": out.get("rate"),
                "p50_us": out["latency_us"]["p50"], "p99_us": out["latency_us"]["p99"]}

    def test_bench(self):
        iss = Issuer.load(self.private)
        tokens = os.path.join(self.tmp, "bearer.txt")
        with open(tokens, "w") as f:
            f.write(iss.access_token(iss.claims(ALICE[0], 3600)) + "\n")
        rows = [self.run_load("edge-config", "--user", ALICE[0], "--password", ALICE[1]),
                self.run_load("oauth-sign-in", "--bearer-file", tokens),
                self.run_load("edge-config", "--user", ALICE[0], "--password", ALICE[1]),
                self.run_load("oauth-sign-in", "--bearer-file", tokens)]
        for row in rows:
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    h.run_tests()
