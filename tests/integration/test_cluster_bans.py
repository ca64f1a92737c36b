#!/usr/bin/python3
"""Intrusion-protection bans shared by the edge-e peers of a cluster through Redis (issue #17, first slice).

Topology, in network namespaces the test creates (tests/integration/netns.py: a bridge in a hub namespace, one
namespace per host joined to it by a veth pair, one address each in 10.217.<pid-derived>.0/24): a real
redis-server (no persistence, in the foreground) in "redis"; two edge-e peers in "e1" and "e2" that name the
same `cluster`; two edge-c in "c1" and "c2" whose link.peers list both edge-e by address; every admin port on
127.0.0.1 of its peer's namespace (the test reads it from inside). The real peers of test_http_edge.py (the
Unified CM fixture as cucm1 and cucm2, at two addresses, nginx as the origin, dnsmasq) share an "inside"
namespace. The clients are in an "outside" namespace with one address per client source (curl --interface),
as in test_intrusion.py, and edge-e keys bans by that source; its first address is exempt from protection.
Without namespaces (not root, or EDGEPAIR_NO_NETNS=1) the same hosts are loopback addresses of the root
namespace (edge-e 127.0.17.1/.2, the rest on 127.0.0.1, fixtures on 127.0.1.1/.2, sources 127.0.0.5...) and
one line says so.

- a source banned on edge-e 1 (bad credentials, http-ce-auth) is refused at accept by edge-e 2 within a
  second, while another source is served by edge-e 2 through the pair to nginx; the ban is counted and
  logged once, by edge-e 1; edge-e 2 counts it as a peer's (edgepair_intrusion_peer_bans_total);
- lifting it on edge-e 2's admin port lifts it on edge-e 1 too (and in Redis);
- failures of one source spread over the peers (edge-e 1, 2, 1) ban it at the threshold in all: the counts
  below a ban travel on the intrusion tally channel; the ban is made, counted and logged once, where the
  last failure landed;
- Redis killed with SIGKILL and restarted under load: 4 threads send GETs (at most 4000, within 90 s; a
  client source that is not exempt) through both edge-e, each through the pair to nginx, from before the kill
  until after the restart: not one is refused or fails, and some were served while Redis was down. Both
  peers raise the cluster.redis alarm and show edgepair_cluster_redis_up 0 while it is down; a ban made
  meanwhile holds on its maker only; Redis restarted (empty: no persistence): the alarm clears, the gauge
  returns to 1, the ban made during the outage reaches the other peer, and a ban made after the restart is
  shared within a second.
- SentinelTest: the same on a Sentinel-managed Redis (a master, a replica, one sentinel with quorum 1, each in
  its own namespace): the master killed with SIGKILL, the sentinel promotes the replica, both peers follow it
  (asking the sentinel again on reconnect), the ban made before the fail-over is still in Redis, and a new ban
  is shared within a second.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_cluster_bans.py
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import netns  # noqa: E402
import pair  # noqa: E402
import test_http_edge as base  # noqa: E402
from test_http_edge import ALICE, DOMAIN_B64, EDGE, basic, indent  # noqa: E402

THRESHOLD = 3
BAD = ("alice", "wrong-password")
CLUSTER = "test-cluster"
# Without namespaces: the loopback layout this test had before them; add_addr() hands out FALLBACK_EXTRA in
# order (cucm2 first, then the client sources).
FALLBACK = {"e1": "127.0.17.1", "e2": "127.0.17.2", "c1": "127.0.0.1", "c2": "127.0.0.1", "redis": "127.0.0.1",
            "replica": "127.0.0.1", "sentinel": "127.0.0.1", "inside": "127.0.1.1", "outside": "127.0.0.1"}
FALLBACK_EXTRA = ["127.0.1.2"] + [f"127.0.0.{i}" for i in range(5, 16)]
SOURCES = 9  # client sources besides the exempt one


class Peer:
    """One edge-e or edge-c of the cluster: its host (namespace), address, ports and process."""

    def __init__(self, index: int, host: str, addr: str, ports: pair.Ports) -> None:
        self.index, self.host, self.addr, self.ports = index, host, addr, ports
        self.proc: h.Proc | None = None

    def __repr__(self) -> str:
        return f"edge-{self.host[0]} {self.index} ({self.addr})"


class ClusterTopology(netns.InNamespaces, base.HttpEdgeTopology):
    """Redis, two edge-e peers of one cluster, two edge-c linked to both; no tests."""

    REDIS_HOSTS = ["redis"]

    # ---- topology ------------------------------------------------------------------------------------

    def setUp(self) -> None:
        h.TestCase.setUp(self)  # not HttpEdgeTopology.setUp: the same fixtures, placed in namespaces
        self.net = netns.Net.create(["e1", "e2", "c1", "c2", *self.REDIS_HOSTS, "inside", "outside"],
                                    fallback=FALLBACK, fallback_extra=FALLBACK_EXTRA)
        self.addCleanup(self.stop_all_then_net)
        # The test's own sockets, threads and commands (curl, redis-cli) are the clients: in "outside".
        self.enterContext(self.net.inside("outside"))
        print(f"hosts: {self.net.describe()}", file=sys.stderr)
        self.addrs = {"cucm1.example.com": self.net.addr("inside"), "cucm2.example.com": self.net.add_addr("inside")}
        self.dns_addr = self.net.addr("inside")
        self.exempt = self.net.addr("outside")
        self.sources = [self.net.add_addr("outside") for _ in range(SOURCES)]
        self.pki_dir = h.pki()
        self.require_binary("edge-e")
        self.require_binary("edge-c")
        self.ports = pair.Ports()
        self.ucm_port = self.port_free_on(list(self.addrs.values()))
        self.web_port = h.free_port(self.addrs["cucm1.example.com"])
        self.fixtures: list[h.Proc] = []
        self.start_dns()
        self.start_ucm()
        self.start_nginx()
        self.start_pair()

    @staticmethod
    def port_free_on(addrs: list[str]) -> int:
        """test_http_edge.port_free_on, probing in the namespace that holds each address."""
        for _ in range(100):
            port = h.free_port(addrs[0])
            if all(h._can_bind(a, port, socket.SOCK_STREAM) for a in addrs[1:]):
                return port
        raise h.HarnessError("no port free on all of " + ", ".join(addrs))

    def start_redis(self) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            self._missing("redis-server not installed (Debian package redis-server, tools/packages.txt)")
        self.redis_addr = self.net.addr("redis")
        if not hasattr(self, "redis_port"):
            self.redis_port = self.net.free_port("redis")
        self.redis = self.start([exe, "--port", str(self.redis_port), "--bind", self.redis_addr, "--save", "",
                                 "--appendonly", "no", "--daemonize", "no", "--dir", self.tmp,
                                 "--protected-mode", "no", "--loglevel", "notice"], host="redis", name="redis")
        self.redis.wait_port(self.redis_addr, self.redis_port, timeout=10)

    def redis_cmd(self, *args: str) -> str:
        rc, out = h.run_cmd([shutil.which("redis-cli") or "redis-cli", "-h", self.redis_addr, "-p",
                             str(self.redis_port), "--raw", *args], timeout=10)
        self.assertEqual(rc, 0, out)
        return out.strip()

    def redis_yaml(self) -> str:
        return f'{{address: "{self.redis_addr}:{self.redis_port}", timeout: 1s}}'

    def peer_certificate(self) -> tuple[str, str]:
        """edge-e's certificate with the peers' addresses added: edge-c checks that each peer's certificate
        names the address it dialled (the shared PKI's edge-e.crt names 127.0.0.1 only)."""
        ossl = self.require_tool("openssl")
        key, csr, crt, ext = (os.path.join(self.tmp, f"edge-e-peers.{x}") for x in ("key", "csr", "crt", "ext"))
        sans = ",".join(["DNS:expe1.example.com", "DNS:collab-edge.example.com", "DNS:example.com",
                         "IP:127.0.0.1"] + [f"IP:{self.net.addr(x)}" for x in ("e1", "e2")])
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
        exempt = ", ".join(f"{a}/32" for a in dict.fromkeys(["127.0.0.1", self.exempt]))
        extra = (f"protection: {{exempt: [{exempt}], "
                 f"categories: {{http-ce-auth: {{threshold: {THRESHOLD}, window: 60s, ban: 10m}}}}}}\n"
                 "http: {rate_limit: {enabled: false}}\n"
                 f"cluster: {{name: {CLUSTER}, redis: {self.redis_yaml()}}}\n")
        path = pair.edge_e_yaml(self, p.ports, self.pki_dir, extra=indent(extra))
        with open(path) as f:
            text = f.read()
        # The client listeners and the link listener on this peer's own address; admin stays on loopback.
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
        # Own ports for each peer: without namespaces, both admin ports are on 127.0.0.1.
        self.peers = [Peer(1, "e1", self.net.addr("e1"), self.ports), Peer(2, "e2", self.net.addr("e2"), pair.Ports())]
        for p in self.peers:
            cfg = self.peer_yaml(p)
            p.proc = self.start([self.require_binary("edge-e"), "-c", cfg], host=p.host, name=f"edge-e{p.index}")
            with self.net.inside(p.host):
                p.proc.wait_http(f"http://127.0.0.1:{p.ports.admin_e}/health", timeout=15)
        self.edge_e = self.peers[0].proc
        rules = self.edge_c_extra(tail=self.EDGE_C_EXTRA)
        peers = ", ".join(f"{p.addr}:{p.ports.link}" for p in self.peers)
        self.cpeers = [Peer(1, "c1", self.net.addr("c1"), self.ports), Peer(2, "c2", self.net.addr("c2"), pair.Ports())]
        for c in self.cpeers:
            path = pair.edge_c_yaml(self, c.ports, self.pki_dir, discovery=self.publisher(), extra=rules, peer=peers,
                                    state_file=f"{self.tmp}/edge-c{c.index}-state.json")
            with open(path) as f:
                text = f.read().replace("node_name: expc1.example.com", f"node_name: expc{c.index}.example.com")
            cfg = self.write_yaml(f"edge-c{c.index}.yaml", text)
            c.proc = self.start([self.require_binary("edge-c"), "-c", cfg], host=c.host, name=f"edge-c{c.index}")
        for c in self.cpeers:
            with self.net.inside(c.host):
                c.proc.wait_http(f"http://127.0.0.1:{c.ports.admin_c}/health", timeout=15)
        self.edge_c = self.cpeers[0].proc
        self.wait_ready()

    def wait_ready(self) -> None:
        # Each edge-c's discovery first (as HttpEdgeTopology.wait_ready), then each edge-e: both edge-c linked,
        # Redis up, routing.
        deadline = time.monotonic() + 40
        waiting_c = list(self.cpeers)
        while waiting_c and time.monotonic() < deadline:
            c = waiting_c[0]
            try:
                _, _, body = self.admin(c, "GET", "/status")
                names = sorted(n["name"] for n in (json.loads(body).get("discovery") or {}).get("nodes", []))
                if names == ["cucm1.example.com", "cucm2.example.com"]:
                    waiting_c.pop(0)
                    continue
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        waiting = list(self.peers)
        while waiting and time.monotonic() < deadline:
            p = waiting[0]
            try:
                st, _, _ = self.admin(p, "GET", "/ready")
                status = self.status(p)
                linked = sorted(x["node"] for x in status["link"]["edge_c_peers"] if x["links_up"] > 0)
                if st == 200 and status["cluster"]["redis"]["up"] and linked == ["expc1.example.com",
                                                                                  "expc2.example.com"]:
                    rc, code, _ = self.curl_from(p, self.exempt, f"/{DOMAIN_B64}/get_edge_sso/?username=alice",
                                                 None)
                    if (rc, code) == (0, 200):
                        waiting.pop(0)
                        continue
            except (OSError, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.2)
        if waiting_c or waiting:
            who = (waiting_c or waiting)[0]
            _, _, body = self.admin(who, "GET", "/status")
            self.fail(f"{who} not ready within 40s: {body[:3000]!r}\n{who.proc.tail()}")

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
        """A request to the admin port of edge-e or edge-c `p`: on 127.0.0.1 of its namespace."""
        port = p.ports.admin_e if p.host.startswith("e") else p.ports.admin_c
        with self.net.inside(p.host):
            return h.http_request(f"http://127.0.0.1:{port}{path}", method, timeout=5)

    def status(self, p: Peer) -> dict:
        _, _, body = self.admin(p, "GET", "/status")
        return json.loads(body)

    def ban_of(self, p: Peer, src: str):
        st, _, body = self.admin(p, "GET", "/protection/bans")
        self.assertEqual(st, 200, body)
        return next((b for b in json.loads(body)["bans"] if b["address"] == src), None)

    def peer_metric(self, p: Peer, name: str, labels: dict[str, str] | None = None) -> int:
        saved = self.ports
        self.ports = p.ports
        try:
            with self.net.inside(p.host):
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

    def nginx_hits(self, name: str = "hello.txt") -> int:
        with open(self.access_log) as f:
            return sum(1 for line in f if line.startswith(f"GET /files/{name} 200"))


class Load:
    """`threads` clients sending GETs of files/load.txt (hello.txt's count stays assert_served's) through both edge-e in turn from source `src` (not exempt),
    each on a keep-alive connection it reopens when the server closes it; at most `total` requests, within
    `limit` seconds, until stop(). Every request that is not a 200 with the file's bytes is a failure."""

    def __init__(self, tc: "ClusterTopology", src: str, threads: int = 4, total: int = 4000, limit: float = 90,
                 pause: float = 0.02):
        self.pause = pause  # between two requests of a thread: the count lasts through the outage
        self.tc, self.src, self.total = tc, src, total
        self.lock = threading.Lock()
        self.done = 0
        self.failures: list[str] = []
        self.stop_at = time.monotonic() + limit
        self.stopped = False
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(f"{tc.pki_dir}/ca.crt")
        self.body = b"load %d\n" % os.getpid()
        with open(os.path.join(tc.tmp, "www", "files", "load.txt"), "wb") as f:
            f.write(self.body)
        self.path = tc.proxy("http", "cucm1.example.com", tc.web_port, "/files/load.txt")
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]
        for t in self.threads:  # started from the test's thread: in the outside namespace too
            t.start()

    def one(self, p: Peer, conn: http.client.HTTPConnection | None):
        hdrs = {"Host": f"{EDGE}:{p.ports.https}", "Authorization": basic(*ALICE)}
        try:
            if conn is None:
                sock = socket.create_connection((p.addr, p.ports.https), timeout=20, source_address=(self.src, 0))
                conn = http.client.HTTPConnection(EDGE, p.ports.https, timeout=20)
                conn.sock = self.ctx.wrap_socket(sock, server_hostname=EDGE)
            conn.request("GET", self.path, headers=hdrs)
            r = conn.getresponse()
            body = r.read()
            what = None if r.status == 200 and body == self.body else f"{p}: {r.status} {body[:100]!r}"
            if r.will_close:
                conn.close()
                conn = None
            return what, conn
        except (OSError, http.client.HTTPException) as ex:
            if conn:
                conn.close()
            return f"{p}: {type(ex).__name__}: {ex}", None

    def run(self, i: int) -> None:
        conns: list[http.client.HTTPConnection | None] = [None, None]
        for k in range(self.total):  # bounded by the shared count, the deadline and stop()
            with self.lock:
                if self.stopped or self.done >= self.total or time.monotonic() > self.stop_at:
                    break
                self.done += 1
            e = (i + k) % 2
            what, conns[e] = self.one(self.tc.peers[e], conns[e])
            if what:
                with self.lock:
                    self.failures.append(what)
            time.sleep(self.pause)
        for c in conns:
            if c:
                c.close()

    def count(self) -> int:
        with self.lock:
            return self.done

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
        for t in self.threads:
            t.join(30)
        if any(t.is_alive() for t in self.threads):
            raise h.HarnessError("a load thread is stuck")


class ClusterBansTest(ClusterTopology):

    def test_a_ban_holds_on_every_peer_and_a_lift_lifts_everywhere(self):
        e1, e2 = self.peers
        src, other = self.sources[0], self.sources[1]
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

        # Failures spread over the peers count together (the intrusion tally): THRESHOLD of them in all, on
        # edge-e 1, edge-e 2, edge-e 1, ban the source; without the tally edge-e 1 would have seen 2 of 3. Each
        # waits for the last one's count to be published (batched every 50 ms).
        spread = self.sources[8]
        for i in range(THRESHOLD):
            self.assertIsNone(self.ban_of(e1, spread), f"banned before failure {i + 1}")
            p = self.peers[i % 2]
            rc, st, body = self.curl_from(p, spread, self.config_path(), BAD)
            self.assertEqual((rc, st), (0, 401), f"{p}, failure {i + 1}: {body!r}")
            time.sleep(0.3)
        made_on = self.peers[(THRESHOLD - 1) % 2]
        self.assertIsNotNone(self.ban_of(made_on, spread), f"{made_on} did not ban {spread}")
        self.wait_for(f"the ban of {spread} on every peer", lambda: all(self.ban_of(p, spread) for p in self.peers),
                      timeout=1.0)
        for p in self.peers:
            self.assert_refused(p, spread)
        self.assertEqual(self.peer_metric(made_on, "edgepair_intrusion_bans_total", cat), 2)
        logged = [ln for p in self.peers for ln in p.proc.log_text().splitlines() if f"address {spread} banned" in ln]
        self.assertEqual(len(logged), 1, logged)

    def test_redis_outage_keeps_serving_and_converges_when_it_returns(self):
        e1, e2 = self.peers
        src, other, loader, after = self.sources[2:6]
        for p in self.peers:
            self.assertIsNone(self.alarm(p, "cluster.redis"))
        load = Load(self, loader)
        self.addCleanup(load.stop)
        self.wait_for("the load under way", lambda: load.count() >= 50, timeout=30)
        self.redis.stop(sig=signal.SIGKILL)
        at_kill = load.count()
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
        at_restart = load.count()
        self.start_redis()
        for p in self.peers:
            self.wait_for(f"the cluster.redis alarm cleared on {p}",
                          lambda p=p: (self.alarm(p, "cluster.redis") or {}).get("state") == "cleared", timeout=15)
            self.assertEqual(self.peer_metric(p, "edgepair_cluster_redis_up"), 1)
        self.wait_for("load after the restart", lambda: load.count() >= at_restart + 50, timeout=30)
        load.stop()
        print(f"load: {load.count()} requests, {at_restart - at_kill} sent while Redis was down, "
              f"{len(load.failures)} failed", file=sys.stderr)
        self.assertEqual(load.failures, [], f"{len(load.failures)} of {load.count()} failed: {load.failures[:5]}")
        self.assertGreaterEqual(at_restart - at_kill, 20, "too few requests while Redis was down")
        self.assertLess(load.count(), load.total, "the load ran out before Redis was back")
        # Each of them reached nginx.
        self.wait_for("every request in nginx's log", lambda: self.nginx_hits("load.txt") == load.count(), timeout=5)
        self.wait_for(f"the outage's ban of {src} on {e2}", lambda: self.ban_of(e2, src), timeout=3)
        time.sleep(0.2)
        self.assert_refused(e2, src)
        self.assertTrue(self.redis_cmd("GET", f"edgepair:{CLUSTER}:ban:{src}").startswith("1 "))
        self.assertEqual(self.peer_metric(e2, "edgepair_intrusion_peer_bans_total", {"category": "http-ce-auth"}), 1)

        # A ban made after the restart is shared again within a second.
        self.provoke_ban(e2, after)
        _, took = self.wait_for(f"the ban of {after} on {e1}", lambda: self.ban_of(e1, after), timeout=1.0)
        print(f"ban made on {e2} after the restart listed on {e1} after {took * 1000:.0f} ms", file=sys.stderr)
        self.assert_refused(e1, after)
        self.assert_served(e1, other)
        self.assertTrue(self.redis_cmd("GET", f"edgepair:{CLUSTER}:ban:{after}").startswith("1 "))


class SentinelTest(ClusterTopology):
    """The same cluster on a Sentinel-managed Redis: a master, a replica and one sentinel (quorum 1)."""

    MASTER = "edge-bans"
    REDIS_HOSTS = ["redis", "replica", "sentinel"]

    def start_redis(self) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            self._missing("redis-server not installed (Debian package redis-server, tools/packages.txt)")
        self.redis_addr, self.replica_addr, self.sentinel_addr = (self.net.addr(x) for x in self.REDIS_HOSTS)
        self.redis_port, self.replica_port, self.sentinel_port = (self.net.free_port(x) for x in self.REDIS_HOSTS)
        common = ["--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no"]
        self.redis = self.start([exe, "--port", str(self.redis_port), "--bind", self.redis_addr, "--dir", self.tmp,
                                 *common], host="redis", name="redis-master")
        self.redis.wait_port(self.redis_addr, self.redis_port, timeout=10)
        rdir = os.path.join(self.tmp, "replica")
        os.makedirs(rdir)
        self.replica = self.start([exe, "--port", str(self.replica_port), "--bind", self.replica_addr, "--dir", rdir,
                                   "--replicaof", self.redis_addr, str(self.redis_port), *common], host="replica",
                                  name="redis-replica")
        self.replica.wait_port(self.replica_addr, self.replica_port, timeout=10)
        conf = os.path.join(self.tmp, "sentinel.conf")  # the sentinel rewrites it: its own file
        with open(conf, "w") as f:
            f.write(f"port {self.sentinel_port}\nbind {self.sentinel_addr}\ndaemonize no\ndir {self.tmp}\n"
                    "protected-mode no\n"
                    f"sentinel monitor {self.MASTER} {self.redis_addr} {self.redis_port} 1\n"
                    f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
                    f"sentinel failover-timeout {self.MASTER} 5000\n")
        self.sentinel = self.start([exe, conf, "--sentinel"], host="sentinel", name="redis-sentinel")
        self.sentinel.wait_port(self.sentinel_addr, self.sentinel_port, timeout=10)

    def redis_yaml(self) -> str:
        return (f'{{sentinels: ["{self.sentinel_addr}:{self.sentinel_port}"], master_name: {self.MASTER}, '
                'timeout: 1s}')

    def sentinel_master(self) -> str:
        """The master's address as the sentinel names it ("addr:port"), or "" when it does not answer."""
        rc, out = h.run_cmd([shutil.which("redis-cli") or "redis-cli", "-h", self.sentinel_addr, "-p",
                             str(self.sentinel_port), "--raw", "SENTINEL", "get-master-addr-by-name", self.MASTER],
                            timeout=10)
        lines = out.split()
        return f"{lines[0]}:{lines[1]}" if rc == 0 and len(lines) == 2 and lines[1].isdigit() else ""

    def test_bans_follow_a_sentinel_fail_over(self):
        e1, e2 = self.peers
        for p in self.peers:
            self.assertEqual(self.status(p)["cluster"]["redis"]["address"], f"{self.redis_addr}:{self.redis_port}")
        src, src2 = self.sources[6], self.sources[7]
        self.provoke_ban(e1, src)
        self.wait_for(f"the ban of {src} on {e2}", lambda: self.ban_of(e2, src), timeout=1.0)

        # The master dies; the sentinel promotes the replica; both peers follow it.
        self.redis.stop(sig=signal.SIGKILL)
        new_master = f"{self.replica_addr}:{self.replica_port}"
        self.wait_for("the sentinel's fail-over", lambda: self.sentinel_master() == new_master, timeout=30, step=0.2)
        for p in self.peers:
            self.wait_for(f"{p} on the new master",
                          lambda p=p: self.status(p)["cluster"]["redis"]["up"]
                          and self.status(p)["cluster"]["redis"]["address"] == new_master,
                          timeout=15, step=0.2)
            self.wait_for(f"the cluster.redis alarm cleared on {p}",
                          lambda p=p: (self.alarm(p, "cluster.redis") or {}).get("state") in (None, "cleared"),
                          timeout=5)
        self.redis_addr, self.redis_port = self.replica_addr, self.replica_port  # redis_cmd() asks the new master
        self.assertTrue(self.redis_cmd("GET", f"edgepair:{CLUSTER}:ban:{src}").startswith("1 "))

        # Shared as before, now the other way round.
        self.provoke_ban(e2, src2)
        self.wait_for(f"the ban of {src2} on {e1}", lambda: self.ban_of(e1, src2), timeout=1.0)
        self.assert_refused(e1, src2)
        self.assert_refused(e2, src)


if __name__ == "__main__":
    h.run_tests()
