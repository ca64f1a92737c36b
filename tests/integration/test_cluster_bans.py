#!/usr/bin/python3
"""Intrusion-protection bans shared by the edge-e peers of a cluster through Redis (issue #17, first slice).

Topology: a real redis-server (a free loopback port, no persistence, in the foreground), two edge-e peers on
distinct loopback addresses (127.0.17.1 and 127.0.17.2, each with its own ports and admin port) that name the
same `cluster`, and one edge-c whose link.peers lists both, with the real peers of test_http_edge.py
(the Unified CM fixture, nginx as the origin). Clients bind their own 127.0.0.x source (curl --interface), as
in test_intrusion.py, and edge-e keys bans by that source.

- a source banned on edge-e 1 (bad credentials, http-ce-auth) is refused at accept by edge-e 2 within a
  second, while another source is served by edge-e 2 through the pair to nginx; the ban is counted and
  logged once, by edge-e 1; edge-e 2 counts it as a peer's (edgepair_intrusion_peer_bans_total);
- lifting it on edge-e 2's admin port lifts it on edge-e 1 too (and in Redis);
- Redis killed: both peers keep serving, raise the cluster.redis alarm and show edgepair_cluster_redis_up 0;
  a ban made meanwhile holds on its maker only; Redis restarted (empty: no persistence): the alarm clears,
  the gauge returns to 1, and the ban made during the outage reaches the other peer.
- SentinelTest: the same on a Sentinel-managed Redis (a master, a replica, one sentinel with quorum 1): the
  master killed with SIGKILL, the sentinel promotes the replica, both peers follow it (asking the sentinel
  again on reconnect), the ban made before the fail-over is still in Redis, and a new ban is shared within a
  second.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_cluster_bans.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402
import test_http_edge as base  # noqa: E402
from test_http_edge import ALICE, DOMAIN_B64, EDGE, indent  # noqa: E402

THRESHOLD = 3
BAD = ("alice", "wrong-password")
PEER_ADDRS = ("127.0.17.1", "127.0.17.2")
CLUSTER = "test-cluster"


class Peer:
    """One edge-e of the cluster: its ports, listen address and process."""

    def __init__(self, index: int, addr: str, ports: pair.Ports) -> None:
        self.index, self.addr, self.ports = index, addr, ports
        self.proc: h.Proc | None = None

    def __repr__(self) -> str:
        return f"edge-e {self.index} ({self.addr})"


class ClusterTopology(base.HttpEdgeTopology):
    """Redis, two edge-e peers of one cluster, one edge-c linked to both; no tests."""

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

    def redis_yaml(self) -> str:
        return f'{{address: "127.0.0.1:{self.redis_port}", timeout: 1s}}'

    def peer_certificate(self) -> tuple[str, str]:
        """edge-e's certificate with the peers' addresses added: edge-c checks that each peer's certificate
        names the address it dialled (the shared PKI's edge-e.crt names 127.0.0.1 only)."""
        ossl = self.require_tool("openssl")
        key, csr, crt, ext = (os.path.join(self.tmp, f"edge-e-peers.{x}") for x in ("key", "csr", "crt", "ext"))
        sans = ",".join(["DNS:expe1.example.com", "DNS:collab-edge.example.com", "DNS:example.com",
                         "IP:127.0.0.1"] + [f"IP:{a}" for a in PEER_ADDRS])
        with open(ext, "w") as f:
            f.write("[leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                    f"extendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = {sans}\n")
        for args in (["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key],
                     ["req", "-new", "-key", key, "-subj", "/O=edgepair/CN=expe1.example.com", "-out", csr],
                     ["x509", "-req", "-in", csr, "-CA", f"{self.pki_dir}/ca.crt", "-CAkey",
                      f"{self.pki_dir}/ca.key", "-set_serial", "0x17017", "-days", "400", "-sha256", "-extfile",
                      ext, "-extensions", "leaf", "-out", crt]):
            rc, out = h.run_cmd([ossl, *args], timeout=30)
            self.assertEqual(rc, 0, out)
        return crt, key

    def peer_yaml(self, p: Peer) -> str:
        extra = (f"protection: {{exempt: [127.0.0.1/32], "
                 f"categories: {{http-ce-auth: {{threshold: {THRESHOLD}, window: 60s, ban: 10m}}}}}}\n"
                 "http: {rate_limit: {enabled: false}}\n"
                 f"cluster: {{name: {CLUSTER}, redis: {self.redis_yaml()}}}\n")
        path = pair.edge_e_yaml(self, p.ports, self.pki_dir, extra=indent(extra))
        with open(path) as f:
            text = f.read()
        # The client listeners and the link listener on this peer's own address; admin stays on 127.0.0.1.
        for port in (p.ports.https, p.ports.sip, p.ports.xmpp, p.ports.link):
            text = text.replace(f"127.0.0.1:{port}", f"{p.addr}:{port}")
        text = text.replace("node_name: expe1.example.com", f"node_name: expe{p.index}.example.com")
        text = text.replace(f"{{cert: {self.pki_dir}/edge-e.crt, key: {self.pki_dir}/edge-e.key}}",
                            f"{{cert: {self.peer_crt}, key: {self.peer_key}}}")
        out = os.path.join(self.tmp, f"edge-e{p.index}.yaml")
        with open(out, "w") as f:
            f.write(text)
        return out

    def start_pair(self) -> None:
        self.start_redis()
        self.peer_crt, self.peer_key = self.peer_certificate()
        self.peers = [Peer(1, PEER_ADDRS[0], self.ports), Peer(2, PEER_ADDRS[1], pair.Ports())]
        for p in self.peers:
            cfg = self.peer_yaml(p)
            p.proc = self.start([self.require_binary("edge-e"), "-c", cfg], name=f"edge-e{p.index}")
            p.proc.wait_http(f"http://127.0.0.1:{p.ports.admin_e}/health", timeout=15)
        self.edge_e = self.peers[0].proc
        rules = self.edge_c_extra(tail=self.EDGE_C_EXTRA)
        peers = ", ".join(f"{p.addr}:{p.ports.link}" for p in self.peers)
        self.ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher(), extra=rules,
                                     peer=peers)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()

    def wait_ready(self) -> None:
        # edge-c's discovery first (as HttpEdgeTopology.wait_ready), then each peer: linked, Redis up, routing.
        deadline = time.monotonic() + 40
        names = []
        while names != ["cucm1.example.com", "cucm2.example.com"] and time.monotonic() < deadline:
            try:
                _, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
                names = sorted(n["name"] for n in (json.loads(body).get("discovery") or {}).get("nodes", []))
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        waiting = list(self.peers)
        while waiting and time.monotonic() < deadline:
            p = waiting[0]
            try:
                st, _, _ = h.http_get(f"http://127.0.0.1:{p.ports.admin_e}/ready", timeout=5)
                if st == 200 and self.status(p)["cluster"]["redis"]["up"]:
                    rc, code, _ = self.curl_from(p, "127.0.0.1", f"/{DOMAIN_B64}/get_edge_sso/?username=alice",
                                                 None)
                    if (rc, code) == (0, 200):
                        waiting.pop(0)
                        continue
            except (OSError, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.2)
        if waiting:
            self.fail(f"{waiting[0]} not ready within 40s: {json.dumps(self.status(waiting[0]))[:3000]}\n"
                      f"{waiting[0].proc.tail()}")

    # ---- clients and admin ---------------------------------------------------------------------------

    def curl_from(self, p: Peer, src: str, path: str, user: tuple[str, str] | None = ALICE):
        """(curl exit code, HTTP status or 0, body) for one request from source `src` to peer `p`."""
        out = os.path.join(self.tmp, "curl.out")
        if os.path.exists(out):
            os.unlink(out)
        cmd = [self.require_tool("curl"), "--http1.1", "-sS", "-o", out, "-w", "%{http_code}",
               "--interface", src, "--max-time", "20", "--cacert", f"{self.pki_dir}/ca.crt",
               "--resolve", f"{EDGE}:{p.ports.https}:{p.addr}"]
        if user:
            cmd += ["-u", f"{user[0]}:{user[1]}"]
        cmd.append(f"https://{EDGE}:{p.ports.https}{path}")
        r = subprocess.run(cmd, capture_output=True, timeout=30)
        body = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
        return r.returncode, int(r.stdout.decode() or 0), body

    def config_path(self) -> str:
        return f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds"

    def hello_path(self) -> str:
        return self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")

    def admin(self, p: Peer, method: str, path: str):
        return h.http_request(f"http://127.0.0.1:{p.ports.admin_e}{path}", method, timeout=5)

    def status(self, p: Peer) -> dict:
        _, _, body = h.http_get(f"http://127.0.0.1:{p.ports.admin_e}/status", timeout=5)
        return json.loads(body)

    def ban_of(self, p: Peer, src: str):
        st, _, body = self.admin(p, "GET", "/protection/bans")
        self.assertEqual(st, 200, body)
        return next((b for b in json.loads(body)["bans"] if b["address"] == src), None)

    def peer_metric(self, p: Peer, name: str, labels: dict[str, str] | None = None) -> int:
        saved = self.ports
        self.ports = p.ports
        try:
            return self.metric("e", name, labels or {})
        finally:
            self.ports = saved

    def alarm(self, p: Peer, alarm_id: str):
        return next((a for a in self.status(p)["alarms"] if a["id"] == alarm_id), None)

    def wait_for(self, what: str, cond, timeout: float, step: float = 0.05):
        """Polls cond() until truthy (bounded); returns (value, seconds taken)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            v = cond()
            if v:
                return v, time.monotonic() - t0
            if time.monotonic() >= deadline:
                self.fail(f"{what}: not within {timeout}s")
            time.sleep(step)

    def provoke_ban(self, p: Peer, src: str) -> None:
        for i in range(THRESHOLD):
            rc, st, body = self.curl_from(p, src, self.config_path(), BAD)
            self.assertEqual((rc, st), (0, 401), f"{p}, attempt {i + 1}: {body!r}")
        self.assertIsNotNone(self.ban_of(p, src), f"{p} did not ban {src}")

    def assert_refused(self, p: Peer, src: str) -> None:
        rc, st, _ = self.curl_from(p, src, self.hello_path())
        self.assertNotEqual(rc, 0, f"{p} served banned source {src}")
        self.assertEqual(st, 0)

    def assert_served(self, p: Peer, src: str) -> None:
        hits = self.nginx_hits()
        rc, st, body = self.curl_from(p, src, self.hello_path())
        self.assertEqual((rc, st), (0, 200), f"{p} did not serve {src}: {body!r}")
        self.assertEqual(body, self.hello)
        deadline = time.monotonic() + 5
        while self.nginx_hits() < hits + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.nginx_hits(), hits + 1)

    def nginx_hits(self) -> int:
        with open(self.access_log) as f:
            return sum(1 for line in f if line.startswith("GET /files/hello.txt 200"))



class ClusterBansTest(ClusterTopology):

    def test_a_ban_holds_on_every_peer_and_a_lift_lifts_everywhere(self):
        e1, e2 = self.peers
        src, other = "127.0.0.5", "127.0.0.6"
        for p in self.peers:
            st = self.status(p)
            self.assertEqual(st["protection"]["store"], "redis")
            self.assertEqual(st["cluster"]["name"], CLUSTER)
            self.assertEqual(self.peer_metric(p, "edgepair_cluster_redis_up"), 1)

        self.provoke_ban(e1, src)
        _, took = self.wait_for(f"the ban of {src} on {e2}", lambda: self.ban_of(e2, src), timeout=1.0)
        print(f"ban made on {e1} listed on {e2} after {took * 1000:.0f} ms")
        self.assert_refused(e2, src)
        self.assert_refused(e1, src)
        self.assert_served(e2, other)
        # In Redis, with its end as PX.
        key = f"edgepair:{CLUSTER}:ban:{src}"
        self.assertTrue(self.redis_cmd("GET", key).startswith("1 "))
        self.assertGreater(int(self.redis_cmd("PTTL", key)), 590_000)

        # Counted and logged once, by its maker; the other counts it as a peer's.
        cat = {"category": "http-ce-auth"}
        self.assertEqual(self.peer_metric(e1, "edgepair_intrusion_bans_total", cat), 1)
        self.assertEqual(self.peer_metric(e2, "edgepair_intrusion_bans_total", cat), 0)
        self.assertEqual(self.peer_metric(e2, "edgepair_intrusion_peer_bans_total", cat), 1)
        self.assertEqual(self.peer_metric(e1, "edgepair_intrusion_peer_bans_total", cat), 0)
        logged = [ln for p in self.peers for ln in p.proc.log_text().splitlines() if f"address {src} banned" in ln]
        self.assertEqual(len(logged), 1, logged)

        # Lifted on edge-e 2: lifted on edge-e 1 too, and in Redis.
        st, _, body = self.admin(e2, "DELETE", f"/protection/bans?address={src}")
        self.assertEqual(st, 200, body)
        _, took = self.wait_for(f"the lift of {src} on {e1}", lambda: self.ban_of(e1, src) is None, timeout=1.0)
        print(f"lift made on {e2} applied on {e1} after {took * 1000:.0f} ms")
        self.wait_for("the ban key deleted", lambda: self.redis_cmd("EXISTS", key) == "0", timeout=1.0)
        self.assertEqual(self.redis_cmd("EXISTS", f"edgepair:{CLUSTER}:lift:{src}"), "1")
        time.sleep(0.2)  # the lift is posted to every worker
        for p in self.peers:
            self.assert_served(p, src)
        self.assertEqual(self.peer_metric(e1, "edgepair_cluster_redis_commands_failed_total"), 0)

    def test_redis_outage_keeps_serving_and_converges_when_it_returns(self):
        e1, e2 = self.peers
        src, other = "127.0.0.7", "127.0.0.8"
        self.redis.stop(sig=signal.SIGKILL)
        for p in self.peers:
            self.wait_for(f"the cluster.redis alarm on {p}",
                          lambda p=p: (self.alarm(p, "cluster.redis") or {}).get("state") == "raised", timeout=5)
            self.assertEqual(self.peer_metric(p, "edgepair_cluster_redis_up"), 0)
            self.assertFalse(self.status(p)["cluster"]["redis"]["up"])
            self.assert_served(p, other)  # nothing refused because Redis is down

        # A ban made while Redis is away holds on its maker only.
        self.provoke_ban(e1, src)
        time.sleep(0.3)
        self.assert_refused(e1, src)
        self.assertIsNone(self.ban_of(e2, src))
        self.assert_served(e2, src)

        # Redis back, empty: the alarm clears, and the ban made meanwhile reaches edge-e 2.
        self.start_redis()
        for p in self.peers:
            self.wait_for(f"the cluster.redis alarm cleared on {p}",
                          lambda p=p: (self.alarm(p, "cluster.redis") or {}).get("state") == "cleared", timeout=15)
            self.assertEqual(self.peer_metric(p, "edgepair_cluster_redis_up"), 1)
        self.wait_for(f"the outage's ban of {src} on {e2}", lambda: self.ban_of(e2, src), timeout=3)
        time.sleep(0.2)
        self.assert_refused(e2, src)
        self.assertTrue(self.redis_cmd("GET", f"edgepair:{CLUSTER}:ban:{src}").startswith("1 "))
        self.assertEqual(self.peer_metric(e2, "edgepair_intrusion_peer_bans_total", {"category": "http-ce-auth"}), 1)


class SentinelTest(ClusterTopology):
    """The same cluster on a Sentinel-managed Redis: a master, a replica and one sentinel (quorum 1)."""

    MASTER = "edge-bans"

    def start_redis(self) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            self._missing("redis-server not installed (Debian package redis-server, tools/packages.txt)")
        self.redis_port, self.replica_port, self.sentinel_port = h.free_ports(3)
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.redis = self.start([exe, "--port", str(self.redis_port), "--dir", self.tmp, *common], name="redis-master")
        self.redis.wait_port("127.0.0.1", self.redis_port, timeout=10)
        rdir = os.path.join(self.tmp, "replica")
        os.makedirs(rdir)
        self.replica = self.start([exe, "--port", str(self.replica_port), "--dir", rdir, "--replicaof", "127.0.0.1",
                                   str(self.redis_port), *common], name="redis-replica")
        self.replica.wait_port("127.0.0.1", self.replica_port, timeout=10)
        conf = os.path.join(self.tmp, "sentinel.conf")  # the sentinel rewrites it: its own file
        with open(conf, "w") as f:
            f.write(f"port {self.sentinel_port}\nbind 127.0.0.1\ndaemonize no\ndir {self.tmp}\n"
                    f"sentinel monitor {self.MASTER} 127.0.0.1 {self.redis_port} 1\n"
                    f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
                    f"sentinel failover-timeout {self.MASTER} 5000\n")
        self.sentinel = self.start([exe, conf, "--sentinel"], name="redis-sentinel")
        self.sentinel.wait_port("127.0.0.1", self.sentinel_port, timeout=10)

    def redis_yaml(self) -> str:
        return f'{{sentinels: ["127.0.0.1:{self.sentinel_port}"], master_name: {self.MASTER}, timeout: 1s}}'

    def sentinel_master_port(self) -> int:
        rc, out = h.run_cmd([shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p",
                             str(self.sentinel_port), "--raw", "SENTINEL", "get-master-addr-by-name", self.MASTER],
                            timeout=10)
        lines = out.split()
        return int(lines[1]) if rc == 0 and len(lines) == 2 and lines[1].isdigit() else 0

    def test_bans_follow_a_sentinel_fail_over(self):
        e1, e2 = self.peers
        for p in self.peers:
            self.assertEqual(self.status(p)["cluster"]["redis"]["address"], f"127.0.0.1:{self.redis_port}")
        src, src2 = "127.0.0.11", "127.0.0.12"
        self.provoke_ban(e1, src)
        self.wait_for(f"the ban of {src} on {e2}", lambda: self.ban_of(e2, src), timeout=1.0)

        # The master dies; the sentinel promotes the replica; both peers follow it.
        self.redis.stop(sig=signal.SIGKILL)
        self.wait_for("the sentinel's fail-over", lambda: self.sentinel_master_port() == self.replica_port,
                      timeout=30, step=0.2)
        for p in self.peers:
            self.wait_for(f"{p} on the new master",
                          lambda p=p: self.status(p)["cluster"]["redis"]["up"]
                          and self.status(p)["cluster"]["redis"]["address"] == f"127.0.0.1:{self.replica_port}",
                          timeout=15, step=0.2)
            self.wait_for(f"the cluster.redis alarm cleared on {p}",
                          lambda p=p: (self.alarm(p, "cluster.redis") or {}).get("state") in (None, "cleared"),
                          timeout=5)
        self.redis_port = self.replica_port  # redis_cmd() asks the new master
        self.assertTrue(self.redis_cmd("GET", f"edgepair:{CLUSTER}:ban:{src}").startswith("1 "))

        # Shared as before, now the other way round.
        self.provoke_ban(e2, src2)
        self.wait_for(f"the ban of {src2} on {e1}", lambda: self.ban_of(e1, src2), timeout=1.0)
        self.assert_refused(e1, src2)
        self.assert_refused(e2, src)


if __name__ == "__main__":
    h.run_tests()
