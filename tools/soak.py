#!/usr/bin/env python3
"""Soak test of the pair (issue #18): mixed MRA load at a fixed fraction of this machine's capacity for
--duration seconds, with clients coming and going, while the RSS and the open descriptors of edge-e and
edge-c are sampled.

The topology is test_edge_load.py's EdgeLoadPairTest (Kamailio as Unified CM's registrar, Prosody as IM&P,
the UCM fixture as cucm1/imp1, nginx as the TFTP/web origin, dnsmasq, edge-e + edge-c with one worker each),
so everything is local: loopback only. Four load streams run at once, each as a series of bounded edge-load
runs ("rounds"; every round's clients disconnect at its end and the next round's connect afresh):

  sign-in   edge-load --scenario sign-in, open loop, from a rotating range of 254 source addresses, every
            20th sign-in with a wrong password (refused 401: counted apart by edge-load, not an error)
  http      proxied keep-alive GET of jabber-config.xml through edge-c to nginx, open loop
  xmpp      sessions of alice through the pair to Prosody, messages to each other, open loop
  sip       held SIP/TLS registrations (new AORs every round), re-REGISTER and CRLF keep-alives
  call      registered callers (new AORs every round) calling "bob", a sipp UAS behind Kamailio that answers
            with plain RTP and echoes it (-rtp_echo): INVITE with an SRTP offer, ACK, a few seconds of SRTP
            audio through both edges (edge-c decrypts it for sipp and encrypts the echo), then BYE; a call
            whose media does not come back authenticated is an error (edge-load --media-seconds). A round's
            calls still in progress at its end are cut off with their connection, so edge-c's clean-up of a
            vanished client's calls and media is in the mix too

Output in --out: soak.csv (one row per sample), rounds.jsonl (every edge-load summary) and summary.json; the
summary is printed too. Exit status 0 when the verdict is PASS.

  EDGEPAIR_BIN=build/bin tools/soak.py --scale 2 --duration 3600 --settle 30 --out /tmp/soak

Standard library only (Python 3.11), like tests/integration.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import resource
import sys
import textwrap
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("EDGEPAIR_SRC", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

import harness as h  # noqa: E402
import test_edge_load as tel  # noqa: E402

LOAD_PASSWORD = "Load-Passw0rd"
SIGNIN_USERS = 100

# Per-second rates at --scale 1.0. The measured capacities (docs/BENCHMARKS.md) are far above these for
# HTTP, SIP and XMPP: on this 2-core machine, shared with builds, what limits a long run is the CPU that
# edge-load, Prosody, Kamailio and the Python UCM fixture take beside the pair, so the rates are set to keep
# the whole set-up at about half of the machine; summary.json reports the CPU actually used.
BASE = {
    "sign_in_rate": 20.0,     # sign-ins/s (capacity: 104-159/s wall, bound by the UCM fixture)
    "http_rate": 400.0,       # proxied requests/s (capacity: thousands per CPU-second)
    "xmpp_rate": 100.0,       # messages/s (each crosses the pair twice)
    "xmpp_sessions": 10,
    "sip_clients": 200,       # held registrations per round
    "sip_interval": 10.0,     # s between one client's REGISTERs
    "call_clients": 4,        # callers per round, each in a closed loop of calls
    "call_media_s": 4.0,      # s of media per call (50 packets/s each way)
    "call_interval": 1.0,     # s between one caller's calls
}


def read_proc(pid: int) -> dict:
    """RSS (kB), open descriptors and CPU seconds of one process."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
                break
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
        rest = f.read().rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return {"rss": rss, "fds": fds, "cpu": cpu}


def group_cpu(pgids: set[int]) -> float:
    """CPU seconds of every live process in these process groups: the peers the harness started, with
    Kamailio's and nginx's children."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[2]) in pgids:
            total += (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return total


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t seconds, y) in y per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 60.0 * sum((t - mt) * (y - my) for t, y in points) / den if den else 0.0


class Topology(tel.PairPeers):
    """test_edge_load's peers and pair (PairPeers: no tests of its own). Usable as a test case base
    (tests/integration/test_soak.py) or alone (setUp() ... doCleanups())."""

    # Appended to the configurations pair.py writes. edge-e: all HTTP load comes from 127.0.0.1, so the
    # per-address limit (50/s) is raised rather than switched off, to keep its table in the measured path.
    # edge-c: pooled upstream connections close after 5 s idle instead of 60 s, so that descriptors are back
    # to their start value after a short settle time.
    EXTRA = {
        "edge-e.yaml": "http: {rate_limit: {requests_per_second: 100000, burst: 100000}}\n",
        "edge-c.yaml": "http: {upstream_idle_timeout: 5s}\n",
    }

    def write_yaml(self, name: str, text: str, **fmt) -> str:
        if name in self.EXTRA:
            # Debug logging (pair.py's default for tests) would write gigabytes in an hour and its cost would
            # be part of what is measured.
            text = textwrap.dedent(text).replace("log: {level: debug}", "log: {level: warn}")
            text = text.rstrip() + "\n" + self.EXTRA[name]
        return super().write_yaml(name, text, **fmt)

    def bring_up(self) -> None:
        self.start_kamailio(udp=True)
        self.start_prosody()
        self.start_dns()
        self.start_fixtures()
        self.add_signin_users()
        self.start_nginx()
        self.start_pair(media=True)
        # The call stream's callee, echoing RTP; Expires 7200 (Kamailio's max_expires) covers soaks of up to two
        # hours.
        self.start_callee("-rtp_echo", "-trace_err", "-error_file", os.path.join(self.tmp, "sipp-uas-errors.log"),
                          expires=7200)
        self.edge_e = next(p for p in self._procs if p.name == "edge-e")
        self.edge_c = next(p for p in self._procs if p.name == "edge-c")

    def add_signin_users(self) -> None:
        """The sign-in stream's users, added to the fixtures' cluster file (they re-read it when it changes)."""
        path = os.path.join(self.tmp, "cluster.json")
        with open(path) as f:
            cluster = json.load(f)
        cluster["end_users"].update({f"load{i}": {"password": LOAD_PASSWORD} for i in range(SIGNIN_USERS)})
        with open(path + ".tmp", "w") as f:
            json.dump(cluster, f)
        os.replace(path + ".tmp", path)


class Stream:
    """One load stream: edge-load runs of at most round_s seconds each, until the load period ends."""

    def __init__(self, name: str, argv) -> None:
        self.name = name
        self.argv = argv  # (round index, seconds) -> edge-load arguments
        self.ops = self.errors = self.rounds = 0
        self.error_kinds: dict[str, int] = {}
        self.extra: dict[str, int] = {}


class Soak:
    def __init__(self, topo: Topology, *, duration: float, scale: float, out: str, sample_s: float = 10,
                 round_s: float = 30, settle_s: float = 20, warmup_frac: float = 0.5, kb_per_op: float = 0.5,
                 fd_slack: int = 0, log=print) -> None:
        self.t = topo
        self.duration, self.scale, self.out = duration, scale, out
        self.sample_s, self.round_s, self.settle_s = sample_s, round_s, settle_s
        self.warmup_frac, self.kb_per_op, self.fd_slack = warmup_frac, kb_per_op, fd_slack
        self.log = log
        self.lock = threading.Lock()
        self.samples: list[dict] = []
        self.round_log: list[tuple[float, float, int]] = []  # (start, end) in seconds since t0, operations
        self.streams = self.make_streams()
        os.makedirs(out, exist_ok=True)
        self.rounds_file = open(os.path.join(out, "rounds.jsonl"), "w")

    def rate(self, key: str) -> float:
        return max(BASE[key] * self.scale, 1.0)

    def make_streams(self) -> list[Stream]:
        t, P = self.t, self.t.ports
        b64 = base64.b64encode(b"example.com").decode().rstrip("=")
        si_rate, http_rate, xmpp_rate = self.rate("sign_in_rate"), self.rate("http_rate"), self.rate("xmpp_rate")
        sessions = max(2, round(BASE["xmpp_sessions"] * min(self.scale, 1.0)))
        sip_clients = max(2, round(BASE["sip_clients"] * self.scale))

        def sign_in(r: int, secs: float) -> list[str]:
            # A fresh /24 every round, eight in turn: the wrong passwords of one round land on the same
            # addresses, and five failures from one address within a minute would ban it.
            net = 50 + r % 8
            return ["--scenario", "sign-in", "--target", f"127.0.0.1:{P.https}", "--sni", tel.EDGE,
                    "--domain", "example.com", "--user", "load%d", "--users", str(SIGNIN_USERS),
                    "--password", LOAD_PASSWORD, "--wrong-password-every", "20",
                    "--source-range", f"127.0.{net}.1-127.0.{net}.254", "--rate", f"{si_rate:g}",
                    "--connections", "16", "--requests", str(int(si_rate * secs)), "--timeout", "10"]

        def http(r: int, secs: float) -> list[str]:
            return ["--scenario", "http", "--target", f"127.0.0.1:{P.https}", "--sni", tel.EDGE,
                    "--path", f"/{b64}/http/cucm1.example.com/{t.web_port}/files/jabber-config.xml",
                    "--user", tel.ALICE[0], "--password", tel.ALICE[1], "--rate", f"{http_rate:g}",
                    "--connections", "8", "--requests", str(int(http_rate * secs))]

        def xmpp(r: int, secs: float) -> list[str]:
            return ["--scenario", "xmpp", "--target", f"127.0.0.1:{P.xmpp}", "--domain", "example.com",
                    "--user", tel.ALICE[0], "--password", tel.ALICE[1], "--resource", f"soak{r}-",
                    "--connections", str(sessions), "--rate", f"{xmpp_rate:g}", "--keepalive", "5",
                    "--requests", str(int(xmpp_rate * secs))]

        def sip(r: int, secs: float) -> list[str]:
            # New AORs every round; the registrar forgets the old bindings after Expires (60 s), so its
            # responses stay small.
            return ["--scenario", "sip-register", "--target", f"127.0.0.1:{P.sip}", "--sni", tel.EDGE,
                    "--user", f"soak{r}u%d", "--password", "x", "--connections", str(sip_clients),
                    "--expires", "60", "--interval", f"{BASE['sip_interval']:g}", "--keepalive", "5"]

        call_clients = max(2, round(BASE["call_clients"] * self.scale))

        def call(r: int, secs: float) -> list[str]:
            return ["--scenario", "sip-call", "--target", f"127.0.0.1:{P.sip}", "--sni", tel.EDGE,
                    "--domain", "example.com", "--user", f"soak{r}c%d", "--password", "x", "--callee", "bob",
                    "--connections", str(call_clients), "--media-seconds", f"{BASE['call_media_s']:g}",
                    "--interval", f"{BASE['call_interval']:g}", "--expires", "300", "--timeout", "10"]

        return [Stream("sign-in", sign_in), Stream("http", http), Stream("xmpp", xmpp), Stream("sip", sip),
                Stream("call", call)]

    # ---- sampling ----

    def sample(self, t0: float, phase: str) -> dict:
        e, c = read_proc(self.t.edge_e.pid), read_proc(self.t.edge_c.pid)
        with self.lock:
            ops = sum(s.ops for s in self.streams)
            errors = sum(s.errors for s in self.streams)
        row = {"t": round(time.monotonic() - t0, 1), "phase": phase, "rss_e_kb": e["rss"], "rss_c_kb": c["rss"],
               "fds_e": e["fds"], "fds_c": c["fds"], "ops": ops, "errors": errors,
               "cpu_e_s": round(e["cpu"], 2), "cpu_c_s": round(c["cpu"], 2)}
        self.samples.append(row)
        self.csv.writerow(row)
        self.csv_file.flush()
        return row

    # ---- the start state ----

    def prime(self) -> None:
        """One SIP registration through the pair before the start sample. edge-c opens its connection to the
        registrar with the first SIP client and keeps it for every later flow (as it would from the first
        client of the day), so that descriptor belongs to the start state, not to the load."""
        P = self.t.ports
        rc, out = h.run_cmd([self.t.load, "--no-progress", "--scenario", "sip-register", "--cafile", self.t.ca,
                             "--target", f"127.0.0.1:{P.sip}", "--sni", tel.EDGE, "--user", "prime%d",
                             "--password", "x", "--connections", "1", "--expires", "60", "--duration", "1"],
                            timeout=30)
        if rc != 0:
            raise h.HarnessError(f"priming registration failed: {out}")

    def quiesce(self, quiet_s: float = 7, timeout: float = 40) -> None:
        """Wait until neither edge's descriptor count has changed for quiet_s: discovery's and the priming's
        pooled connections close 5 s after their last use (Topology.EXTRA)."""
        last, since = None, time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            now = (read_proc(self.t.edge_e.pid)["fds"], read_proc(self.t.edge_c.pid)["fds"])
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.5)
        raise h.HarnessError(f"descriptors of edge-e/edge-c still changing after {timeout} s: {last}")

    # ---- load ----

    def run_stream(self, s: Stream, index: int, load_end: float, stop: threading.Event) -> None:
        # Staggered starts, so that the streams' rounds do not all end at the same moment.
        if stop.wait(self.round_s * index / (2 * len(self.streams))):
            return
        r = 0
        while not stop.is_set():
            secs = min(self.round_s, load_end - time.monotonic())
            if secs < 3:
                break
            args = [self.t.load, "--no-progress", "--json", "--cafile", self.t.ca, *s.argv(r, secs),
                    "--duration", f"{secs:.1f}"]
            started = time.monotonic()
            try:
                rc, out = h.run_cmd(args, timeout=secs + 60)
            except h.HarnessError as e:
                rc, out = -1, str(e)
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            try:
                j = json.loads(lines[-1])
            except (IndexError, ValueError):
                j = None
            with self.lock:
                s.rounds += 1
                if j is None:
                    s.errors += 1
                    s.error_kinds["no_summary"] = s.error_kinds.get("no_summary", 0) + 1
                    self.log(f"soak: {s.name} round {r}: no summary (rc {rc}): {out[-2000:]}")
                else:
                    s.ops += int(j.get("ok", 0))
                    self.round_log.append((started - self.t0, time.monotonic() - self.t0, int(j.get("ok", 0))))
                    s.errors += int(j.get("errors_total", 0))
                    for k, v in (j.get("errors") or {}).items():
                        if v:
                            s.error_kinds[k] = s.error_kinds.get(k, 0) + int(v)
                    if j.get("errors_total"):
                        self.log(f"soak: {s.name} round {r}: {j['errors_total']} errors {j.get('errors')}")
                    for k, v in (j.get("media") or {}).items():
                        if k != "seconds_per_call":
                            s.extra[f"media_{k}"] = s.extra.get(f"media_{k}", 0) + int(v)
                    wp = (j.get("sign_in") or {}).get("wrong_password")
                    if wp:
                        s.extra["wrong_password_sent"] = s.extra.get("wrong_password_sent", 0) + wp["sent"]
                        s.extra["wrong_password_refused"] = s.extra.get("wrong_password_refused", 0) + wp["refused"]
                self.rounds_file.write(json.dumps({"stream": s.name, "round": r, "rc": rc,
                                                   "seconds": round(time.monotonic() - started, 2),
                                                   "summary": j}) + "\n")
                self.rounds_file.flush()
            r += 1

    def run(self) -> dict:
        self.prime()
        self.quiesce()
        self.csv_file = open(os.path.join(self.out, "soak.csv"), "w", newline="")
        self.csv = csv.DictWriter(self.csv_file, fieldnames=["t", "phase", "rss_e_kb", "rss_c_kb", "fds_e", "fds_c",
                                                             "ops", "errors", "cpu_e_s", "cpu_c_s"])
        self.csv.writeheader()
        t0 = self.t0 = time.monotonic()
        start = self.sample(t0, "start")
        peers = {p.pid for p in self.t._procs if p not in (self.t.edge_e, self.t.edge_c)}
        peer_cpu0 = group_cpu(peers)
        load_cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_end = t0 + self.duration
        stop = threading.Event()
        threads = [threading.Thread(target=self.run_stream, args=(s, i, load_end, stop), daemon=True)
                   for i, s in enumerate(self.streams)]
        for th in threads:
            th.start()
        try:
            next_at = time.monotonic()
            while any(th.is_alive() for th in threads):
                next_at += self.sample_s
                for th in threads:
                    th.join(max(0.0, next_at - time.monotonic()))
                for p in (self.t.edge_e, self.t.edge_c):
                    if not p.alive():
                        raise h.HarnessError(f"{p.name} exited with {p.returncode}\n{p.tail()}")
                self.sample(t0, "load")
        finally:
            stop.set()
            for th in threads:
                th.join(120)
        load_done = time.monotonic()
        peer_cpu = group_cpu(peers) - peer_cpu0
        load_cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        last_load = self.samples[-1]
        # The clients are gone: pooled upstream connections close after 5 s idle and the registrar's and
        # Prosody's sessions end; then descriptors must be back to their start value.
        while time.monotonic() < load_done + self.settle_s:
            time.sleep(min(self.sample_s, max(0.1, load_done + self.settle_s - time.monotonic())))
            self.sample(t0, "settle")
        end = self.samples[-1]
        self.csv_file.close()
        self.rounds_file.close()
        return self.summarize(start, last_load, end, load_done - t0,
                              peer_cpu,
                              (load_cpu1.ru_utime + load_cpu1.ru_stime - load_cpu0.ru_utime - load_cpu0.ru_stime))

    # ---- verdict ----

    def summarize(self, start: dict, last_load: dict, end: dict, load_s: float, peer_cpu_s: float,
                  load_cpu_s: float) -> dict:
        warm_t = self.warmup_frac * load_s
        window = [r for r in self.samples if r["phase"] == "load" and r["t"] >= warm_t]
        at_warm = window[0] if window else last_load
        # Operations done inside the fitted window, each round's spread evenly over its run (edge-load only
        # reports at the end of a round).
        w0, w1 = at_warm["t"], last_load["t"]
        ops_window = round(sum(n * max(0.0, min(e, w1) - max(b, w0)) / max(e - b, 1e-9)
                               for b, e, n in self.round_log))
        span_min = (window[-1]["t"] - window[0]["t"]) / 60 if len(window) > 1 else 0.0
        bound_kb = self.kb_per_op * ops_window
        edges = {}
        failures = []
        for k in ("e", "c"):
            slope = slope_per_min([(r["t"], r[f"rss_{k}_kb"]) for r in window])
            growth = slope * span_min
            cpu = last_load[f"cpu_{k}_s"] - start[f"cpu_{k}_s"]
            edges[f"edge-{k}"] = {
                "rss_kb": {"start": start[f"rss_{k}_kb"], "after_warmup": at_warm[f"rss_{k}_kb"],
                           "end_of_load": last_load[f"rss_{k}_kb"], "end": end[f"rss_{k}_kb"],
                           "max": max(r[f"rss_{k}_kb"] for r in self.samples)},
                "rss_slope_kb_per_min": round(slope, 1),
                "rss_growth_after_warmup_kb": round(growth, 1),
                "rss_growth_bytes_per_op": round(1024 * growth / ops_window, 2) if ops_window else None,
                "fds": {"start": start[f"fds_{k}"], "max": max(r[f"fds_{k}"] for r in self.samples),
                        "end": end[f"fds_{k}"]},
                "cpu_s": round(cpu, 2), "cpu_pct_of_one_core": round(100 * cpu / load_s, 1),
            }
            if growth > bound_kb:
                failures.append(f"edge-{k}: RSS grew {growth:.0f} kB after warm-up (fitted), more than "
                                f"{self.kb_per_op} kB x {ops_window} operations = {bound_kb:.0f} kB")
            if end[f"fds_{k}"] > start[f"fds_{k}"] + self.fd_slack:
                failures.append(f"edge-{k}: {end[f'fds_{k}']} descriptors after the settle time, "
                                f"{start[f'fds_{k}']} at the start (slack {self.fd_slack})")
        errors = sum(s.errors for s in self.streams)
        if errors:
            failures.append(f"{errors} edge-load errors")
        summary = {
            "duration_s": round(load_s, 1), "scale": self.scale, "rates": self.describe_rates(),
            "warmup_s": round(warm_t, 1), "ops_after_warmup": ops_window,
            "rss_bound_kb": round(bound_kb, 1), "kb_per_op_bound": self.kb_per_op, "fd_slack": self.fd_slack,
            "edges": edges,
            "streams": {s.name: {"rounds": s.rounds, "ops": s.ops, "errors": s.errors,
                                 "error_kinds": s.error_kinds, **s.extra} for s in self.streams},
            "ops": sum(s.ops for s in self.streams), "errors": errors,
            "cpu": self.cpu_summary(edges, peer_cpu_s, load_cpu_s, load_s),
            "failures": failures, "verdict": "PASS" if not failures else "FAIL",
        }
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        return summary

    @staticmethod
    def cpu_summary(edges: dict, peer_cpu_s: float, load_cpu_s: float, load_s: float) -> dict:
        pair_s = sum(e["cpu_s"] for e in edges.values())
        total = pair_s + peer_cpu_s + load_cpu_s
        return {"pair_s": round(pair_s, 2), "peers_s": round(peer_cpu_s, 2), "edge_load_s": round(load_cpu_s, 2),
                "all_pct_of_machine": round(100 * total / (load_s * (os.cpu_count() or 1)), 1)}

    def describe_rates(self) -> dict:
        return {"sign_in_per_s": self.rate("sign_in_rate"), "http_per_s": self.rate("http_rate"),
                "xmpp_messages_per_s": self.rate("xmpp_rate"),
                "xmpp_sessions": max(2, round(BASE["xmpp_sessions"] * min(self.scale, 1.0))),
                "sip_clients": max(2, round(BASE["sip_clients"] * self.scale)),
                "sip_register_interval_s": BASE["sip_interval"],
                "call_clients": max(2, round(BASE["call_clients"] * self.scale)),
                "call_media_s": BASE["call_media_s"], "call_interval_s": BASE["call_interval"],
                "round_s": self.round_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600, help="seconds of load (default 600; the full soak: 3600)")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the default rates (default 1.0)")
    ap.add_argument("--out", default="soak-out", help="directory for soak.csv, rounds.jsonl, summary.json")
    ap.add_argument("--sample", type=float, default=10, help="seconds between samples (default 10)")
    ap.add_argument("--round", type=float, default=30, help="seconds per edge-load run (default 30)")
    ap.add_argument("--settle", type=float, default=20, help="seconds after the load before the last sample")
    ap.add_argument("--kb-per-op", type=float, default=0.5,
                    help="RSS growth after warm-up allowed per operation (kB, default 0.5)")
    args = ap.parse_args()
    if not 10 <= args.duration <= 4 * 3600:
        ap.error("--duration: 10..14400 s")
    if not 0 < args.scale <= 4:
        ap.error("--scale: 0..4")
    topo = Topology()
    try:
        topo.setUp()
        topo.bring_up()
        print(f"soak: pair up (edge-e pid {topo.edge_e.pid}, edge-c pid {topo.edge_c.pid}, logs in {topo.tmp}); "
              f"{args.duration:g} s of load at scale {args.scale:g}", flush=True)
        soak = Soak(topo, duration=args.duration, scale=args.scale, out=args.out, sample_s=args.sample,
                    round_s=args.round, settle_s=args.settle, kb_per_op=args.kb_per_op,
                    log=lambda m: print(m, flush=True))
        summary = soak.run()
    finally:
        topo.doCleanups()
    print(json.dumps(summary, indent=2))
    return 0 if summary["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
