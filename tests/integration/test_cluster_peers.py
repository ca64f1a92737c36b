#!/usr/bin/python3
"""Two edge-e and two edge-c peers (issue #17): peering, failover under kill -9, config consistency.

Topology, in network namespaces the test creates (tests/integration/netns.py: a bridge in a hub namespace, one
namespace per host joined to it by a veth pair, one address each in 10.217.<pid-derived>.0/24): edge-e 1 (e1)
and edge-e 2 (e2), every listener of a peer on its address with the same ports; edge-c 1 (c1) and edge-c 2
(c2); each peer's admin port on 127.0.0.1 of its own namespace (the test reads it from inside). Each edge-c has
link.peers [expe1.example.com, collab-edge.example.com] (two names of the test certificate) resolved through
dnsmasq's hosts file, which the test rewrites. Behind them, together in one "inside" namespace: Kamailio as
Unified CM's SIP side, the UCM fixture (discovery, alice's credentials), nginx as the internal web server (its
access log records what it received) and dnsmasq. The clients (the test's own sockets, its load threads) are in
an "outside" namespace. Each edge runs 2 workers, so each edge-e holds 4 links (2 per edge-c). Both edge-c
share credentials.token_key_file. Without namespaces (not root, or EDGEPAIR_NO_NETNS=1) the same hosts are
loopback addresses of the root namespace (127.0.17.11/.12, .21/.22; fixtures on 127.0.1.1) and one line says so.

What is asserted (test_kill_edge_c_under_load):
- An edge token issued through edge-e 1 (Basic sign-in on get_edge_config, X-Auth cookie) is accepted through
  edge-e 2: 8 requests carrying it as a bearer token, each on a new connection, are served, nginx's access log
  has each of them without an Authorization field, and both edge-c opened some of them (edge-e 2's workers
  take their links in turn). A tampered copy is refused with 401 and never reaches nginx.
- Both edge-c start at once, so their first links race for edge-e's workers and one worker often gets both
  links of one edge-c at first: every worker of each edge-e ends up with one link of each edge-c (edge-e
  moves the extra one; without that, a worker holding only edge-c 1's links answered 503 once it died).
- HTTP requests through both edge-e peers succeed, and each edge-e lists both edge-c nodes with their links.
- SIP: 8 clients register (4 through each edge-e); each flow is one link stream, so the flows spread over
  both edge-c. Then edge-c 1 is killed with SIGKILL while 4 threads send a bounded number of GETs (600,
  within 120 s) through both edge-e:
  * no GET fails: edge-e sends a request whose link died before any answer again, once, on another link
    (edge_e::link_loss_retryable: a safe method and a lost/closed link, or a refused stream), and new
    requests only take links that are up. That is test_link_failover.py's rule ("none refused"), with a
    whole edge-c gone instead of one link. Requests with a body that is not safe to repeat would be allowed to
    fail if they were on the dead link; this test sends none.
  * clients whose flow was on edge-c 2 keep their TLS connection and a re-REGISTER on it gets 200;
  * clients whose flow was on edge-c 1 see their connection closed within 5 s and register again, through
    the same edge-e, with 200; both groups are non-empty.
test_config_mismatch_and_re_resolution:
- edge-c 2 announces another cluster name and one more domain: edge-e's /status lists it by node with the
  differences, the alarm link.peer_config:<node> is raised, the gauge counts 1, the status page shows it; the
  link stays up and serves.
- collab-edge.example.com first resolves to an address where nothing listens; once the hosts file says
  edge-e 2's address (dnsmasq reloaded with SIGHUP), both edge-c reach edge-e 2 without a restart: the name is looked
  up again on every reconnect.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_cluster_peers.py
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import netns  # noqa: E402
import pair  # noqa: E402
from sipenv import FIXTURE, SipEnv, SipUA  # noqa: E402
from test_http_edge import ALICE, DOMAIN_B64, basic  # noqa: E402

E_HOSTS = ["e1", "e2"]
C_HOSTS = ["c1", "c2"]
# Without namespaces: the loopback layout this test had before them.
FALLBACK = {"e1": "127.0.17.11", "e2": "127.0.17.12", "c1": "127.0.17.21", "c2": "127.0.17.22",
            "inside": "127.0.1.1", "outside": "127.0.0.1"}
E_NAMES = ["expe1.example.com", "collab-edge.example.com"]  # both are SANs of the test's edge-e certificate
HELLO = b"hello from the TFTP file service\n"
EDGE_CONFIG = f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds"


class PeerUA(SipUA):
    """SipUA towards one edge-e peer's address."""

    def __init__(self, host: str, port: int, user: str, cafile: str):  # noqa: super().__init__ dials 127.0.0.1
        ctx = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection((host, port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="expe1.example.com")
        self.user = user
        self.buf = b""
        self.local = "%s:%d" % self.sock.getsockname()[:2]
        self.contact = f"<sip:{user}@{self.local};transport=tls>"
        self.tag = os.urandom(5).hex()
        self.cseq = 0

    def closed_by_peer(self, wait: float) -> bool:
        """True when edge-e closed the connection (EOF or reset) within `wait` seconds; buffered bytes are kept."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ssl.SSLError, ConnectionError, OSError):
                return True
            if not data:
                return True
            self.buf += data
        return False


class ClusterPeersTest(netns.InNamespaces, SipEnv):
    EDGE_WORKERS = 2

    # ---- topology ----------------------------------------------------------------------------------------

    def setUp(self):
        super().setUp()
        self.net = netns.Net.create(E_HOSTS + C_HOSTS + ["inside", "outside"], fallback=FALLBACK,
                                    fallback_extra=["127.0.17.99"])
        self.addCleanup(self.stop_all_then_net)
        # The test's own sockets, threads and helper commands are the clients: in the outside namespace.
        self.enterContext(self.net.inside("outside"))
        print(f"hosts: {self.net.describe()}", file=sys.stderr)
        self.ucm_addr = self.net.addr("inside")  # Kamailio (sipenv), the fixture, nginx, dnsmasq
        self.nowhere = self.net.add_addr("inside")  # an address where nothing listens on the link port
        self.e_addrs = [self.net.addr(x) for x in E_HOSTS]

    def admin_get(self, host: str, port: int, path: str, timeout: float = 5):
        """GET on a peer's admin port, which listens on the loopback of the peer's own namespace."""
        with self.net.inside(host):
            return h.http_get(f"http://{self.net.local(host)}:{port}{path}", timeout=timeout)

    def wait_admin(self, p: h.Proc, host: str, port: int, timeout: float = 15) -> None:
        with self.net.inside(host):
            p.wait_http(f"http://{self.net.local(host)}:{port}/health", timeout=timeout)

    def start_dns(self):
        self.hosts = os.path.join(self.tmp, "peers.hosts")
        self.write_hosts({E_NAMES[0]: self.e_addrs[0], E_NAMES[1]: self.e_addrs[1]})
        addr = self.ucm_addr
        self.dns, self.dport = h.start_dnsmasq(
            self.start, addr,
            lambda port: ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces", "--user=root",
                          f"--listen-address={addr}", f"--port={port}", "--pid-file=", f"--addn-hosts={self.hosts}",
                          f"--address=/cucm1.example.com/{addr}", "--log-queries"])

    def write_hosts(self, names: dict[str, str]) -> None:
        with open(self.hosts, "w") as f:
            for name, addr in names.items():
                f.write(f"{addr} {name}\n")

    def start_fixture(self, mixed: bool = False):
        # sipenv's cluster plus alice, whose credentials the HTTP requests carry.
        self.fport = h.free_port(self.ucm_addr)
        cluster = {
            "name": "cucm-cluster-1", "version": "14.0.1.10000-20", "security_mode": 0,
            "nodes": [{"name": "cucm1.example.com", "address": self.ucm_addr, "type": "ucm", "publisher": True,
                       "sip_port": self.kport, "sip_tls_port": self.ktlsport}],
            "axl_users": {"axladmin": {"password": "Axl-Passw0rd", "roles": ["axl"]}},
            "end_users": {ALICE[0]: {"password": ALICE[1], "home_cluster": "cucm-cluster-1",
                                     "email": "alice@example.com"}},
        }
        path = os.path.join(self.tmp, "cluster.json")
        with open(path, "w") as f:
            json.dump(cluster, f)
        self.fixture = self.start(["/usr/bin/python3", FIXTURE, "--cluster", path, "--node", "cucm1.example.com",
                                   "--listen", f"{self.ucm_addr}:{self.fport}", "--cert",
                                   f"{self.pki}/tomcat-cucm1-chain.crt", "--key", f"{self.pki}/tomcat-cucm1.key"],
                                  name="ucm-fixture")
        self.fixture.wait_port(self.ucm_addr, self.fport, timeout=15)

    def start_nginx(self) -> None:
        self.web_port = h.free_port(self.ucm_addr)
        root = os.path.join(self.tmp, "www")
        os.makedirs(os.path.join(root, "files"))
        with open(os.path.join(root, "files", "hello.txt"), "wb") as f:
            f.write(HELLO)
        ngx = os.path.join(self.tmp, "nginx")
        os.makedirs(ngx)
        self.access_log = os.path.join(ngx, "access.log")
        conf = os.path.join(ngx, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
daemon off;
master_process off;
worker_processes 1;
pid {ngx}/nginx.pid;
error_log {ngx}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format edge '$request_method $request_uri $status auth=[$http_authorization] cookie=[$http_cookie]';
    access_log {self.access_log} edge;
    client_body_temp_path {ngx}/body;
    proxy_temp_path {ngx}/proxy;
    fastcgi_temp_path {ngx}/fastcgi;
    uwsgi_temp_path {ngx}/uwsgi;
    scgi_temp_path {ngx}/scgi;
    types {{ text/plain txt; }}
    server {{
        listen {self.ucm_addr}:{self.web_port};
        root {root};
    }}
}}
""")
        p = self.start([self.require_tool("nginx"), "-c", conf, "-p", ngx], name="nginx")
        p.wait_port(self.ucm_addr, self.web_port, timeout=10)

    def start_peers(self, c_clusters=("emea", "emea"), c_domains=("- {name: example.com}",) * 2,
                    wait_all: bool = True, stagger: bool = False) -> None:
        """stagger: edge-c 2 starts once edge-c 1's link to edge-e 1 is up (edge-c 1 is then the reference
        peer edge-e compares the others with); else both start at once."""
        self.ports = pair.Ports()
        self.auth_db = pair.write_auth_db(self)
        # Both edge-c seal and open edge tokens with this key (made here: both would create it at once).
        self.token_key = os.path.join(self.tmp, "cluster-token.key")
        with open(os.open(self.token_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        self.edge_e: list[h.Proc] = []
        for i, addr in enumerate(self.e_addrs):
            path = pair.edge_e_yaml(self, self.ports, self.pki, workers=self.EDGE_WORKERS, auth_db=self.auth_db,
                                    extra="http: {rate_limit: {enabled: false}, link_wait: 10s}\n"
                                          "        cluster: {name: emea}")
            with open(path) as f:
                text = f.read()
            text = text.replace("127.0.0.1:", f"{addr}:").replace("node_name: expe1.example.com",
                                                                  f"node_name: expe{i + 1}.example.com")
            # The admin port stays on loopback (another address needs admin credentials).
            text = text.replace(f"{addr}:{self.ports.admin_e}", f"{self.net.local(E_HOSTS[i])}:{self.ports.admin_e}")
            # The clients' address is exempt from intrusion protection, as 127.0.0.1 is in pair.py.
            exempt = ", ".join(f"{a}/32" for a in dict.fromkeys(["127.0.0.1", self.net.addr("outside")]))
            text = text.replace("exempt: [127.0.0.1/32]", f"exempt: [{exempt}]")
            cfg = self.write_yaml(f"edge-e{i + 1}.yaml", text)
            p = self.start([self.require_binary("edge-e"), "-c", cfg], host=E_HOSTS[i], name=f"edge-e{i + 1}")
            self.wait_admin(p, E_HOSTS[i], self.ports.admin_e)
            self.edge_e.append(p)
        self.edge_c: list[h.Proc] = []
        peers = ", ".join(f"{n}:{self.ports.link}" for n in E_NAMES)
        for i, host in enumerate(C_HOSTS):
            extra = (f'dns: {{servers: ["{self.ucm_addr}:{self.dport}"]}}\n'
                     f"        cluster: {{name: {c_clusters[i]}}}\n"
                     f"        credentials: {{token_key_file: {self.token_key}}}\n"
                     "        allow_list:\n          rules:\n"
                     f'            - {{url: "http://cucm1.example.com:{self.web_port}/files/", methods: [GET]}}\n'
                     "        http: {upstream_timeout: 5s}")
            path = pair.edge_c_yaml(self, self.ports, self.pki, workers=self.EDGE_WORKERS, peer=peers, extra=extra,
                                    state_file=f"{self.tmp}/edge-c{i + 1}-state.json", domains=c_domains[i])
            with open(path) as f:
                text = f.read()
            text = text.replace(f"127.0.0.1:{self.ports.admin_c}", f"{self.net.local(host)}:{self.ports.admin_c}")
            text = text.replace("node_name: expc1.example.com", f"node_name: expc{i + 1}.example.com")
            text = text.replace("discovery:\n", "discovery:\n  unified_cm:\n"
                                f"    - {{address: cucm1.example.com, port: {self.fport}, username: axladmin, "
                                "password: Axl-Passw0rd, tls_verify: false}\n", 1)
            cfg = self.write_yaml(f"edge-c{i + 1}.yaml", text)
            # Both at once, as after a power cut: their first links race for edge-e's workers.
            self.edge_c.append(self.start([self.require_binary("edge-c"), "-c", cfg], host=host,
                                          name=f"edge-c{i + 1}"))
            if stagger and i == 0:
                deadline = time.monotonic() + 20
                while "expc1.example.com" not in self.peers(0) and time.monotonic() < deadline:
                    time.sleep(0.1)
        for p, host in zip(self.edge_c, C_HOSTS):
            self.wait_admin(p, host, self.ports.admin_c)
        if wait_all:
            for e in range(2):
                self.wait_peers(e, {"expc1.example.com": 2, "expc2.example.com": 2})
                # Every worker holds a link of every edge-c (sessions never change worker). Both edge-c start
                # together, so edge-e's listener may first give one worker both links of one edge-c; edge-e
                # then moves one (EdgeE::peer_link_up) and the count above passes through 1.
                self.wait_workers_balanced(e)
            for c in range(2):
                self.wait_discovered(c)

    # ---- observations ------------------------------------------------------------------------------------

    def status(self, e: int) -> dict:
        st, _, body = self.admin_get(E_HOSTS[e], self.ports.admin_e, "/status")
        self.assertEqual(st, 200)
        return json.loads(body)

    def peers(self, e: int) -> dict[str, dict]:
        return {p["node"]: p for p in self.status(e)["link"]["edge_c_peers"]}

    def wait_peers(self, e: int, want: dict[str, int], timeout: float = 20) -> dict[str, dict]:
        """Until edge-e `e` lists exactly the edge-c nodes of `want`, each with that many links up."""
        deadline = time.monotonic() + timeout
        got: dict[str, dict] = {}
        while time.monotonic() < deadline:
            got = self.peers(e)
            if {n: p["links_up"] for n, p in got.items()} == want:
                return got
            time.sleep(0.2)
        self.fail(f"edge-e{e + 1}: peers {json.dumps(got)}; want links {want}")

    def wait_workers_balanced(self, e: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        got: dict[str, dict] = {}
        while time.monotonic() < deadline:
            got = self.peers(e)
            if got and all(p["links_by_worker"] == [1] * self.EDGE_WORKERS for p in got.values()):
                return
            time.sleep(0.2)
        self.fail(f"edge-e{e + 1}: links by worker {[(n, p['links_by_worker']) for n, p in got.items()]}")

    def wait_discovered(self, c: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        body = b""
        while time.monotonic() < deadline:
            st, _, body = self.admin_get(C_HOSTS[c], self.ports.admin_c, "/status")
            if st == 200 and b"CEtcp-cucm1.example.com" in body:
                return
            time.sleep(0.3)
        self.fail(f"edge-c{c + 1} never discovered cucm1: {body[:1000]!r}")

    def metric_e(self, e: int, name: str, labels: dict[str, str] | None = None) -> float:
        return self._metric(E_HOSTS[e], self.ports.admin_e, name, labels)

    def metric_c(self, c: int, name: str, labels: dict[str, str] | None = None) -> float:
        return self._metric(C_HOSTS[c], self.ports.admin_c, name, labels)

    def _metric(self, host: str, port: int, name: str, labels: dict[str, str] | None) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        _, _, body = self.admin_get(host, port, "/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.split(" ")[0] == name or line.startswith(name + "{"):
                got = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
                if all(got.get(k) == v for k, v in (labels or {}).items()):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def http_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(f"{self.pki}/ca.crt")
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def get_hello(self, e: int, ctx: ssl.SSLContext, conn: http.client.HTTPConnection | None = None,
                  auth: str | None = None, query: str = ""):
        """One GET of hello.txt through edge-e `e` (Basic alice unless `auth` is another Authorization value);
        returns (ok, what, connection to reuse or None)."""
        path = f"/{DOMAIN_B64}/http/cucm1.example.com/{self.web_port}/files/hello.txt{query}"
        hdrs = {"Host": f"expe1.example.com:{self.ports.https}", "Authorization": auth or basic(*ALICE)}
        try:
            if conn is None:
                sock = socket.create_connection((self.e_addrs[e], self.ports.https), timeout=30)
                conn = http.client.HTTPConnection("expe1.example.com", self.ports.https, timeout=30)
                conn.sock = ctx.wrap_socket(sock, server_hostname="expe1.example.com")
            conn.request("GET", path, headers=hdrs)
            r = conn.getresponse()
            body = r.read()
            ok = r.status == 200 and body == HELLO
            if r.will_close:
                conn.close()
                conn = None
            return ok, f"edge-e{e + 1}: {r.status} {body[:120]!r}", conn
        except (OSError, http.client.HTTPException) as ex:
            if conn:
                conn.close()
            return False, f"edge-e{e + 1}: {type(ex).__name__}: {ex}", None

    def nginx_lines(self, needle: str) -> list[str]:
        with open(self.access_log) as f:
            return [ln.rstrip("\n") for ln in f if needle in ln]

    def check_token_across_peers(self, ctx: ssl.SSLContext) -> None:
        """An edge token issued through edge-e 1 is accepted through edge-e 2, by either edge-c."""
        sock = socket.create_connection((self.e_addrs[0], self.ports.https), timeout=10)
        conn = http.client.HTTPConnection("expe1.example.com", self.ports.https, timeout=10)
        conn.sock = ctx.wrap_socket(sock, server_hostname="expe1.example.com")
        try:
            conn.request("GET", EDGE_CONFIG, headers={"Host": f"expe1.example.com:{self.ports.https}",
                                                      "Authorization": basic(*ALICE)})
            r = conn.getresponse()
            body = r.read()
            cookies = r.headers.get_all("Set-Cookie") or []
        finally:
            conn.close()
        self.assertEqual(r.status, 200, body[:500])
        tok = next((c.split(";", 1)[0].split("=", 1)[1] for c in cookies if c.startswith("X-Auth=")), None)
        self.assertIsNotNone(tok, f"no X-Auth cookie from edge-e 1: {cookies}")
        issued = [self.metric_c(c, "edgepair_edge_tokens_issued_total") for c in range(2)]
        self.assertEqual(sum(issued), 1, f"tokens issued by edge-c 1, 2: {issued}")
        used = [self.metric_c(c, "edgepair_http_auth_total", {"result": "edge_token"}) for c in range(2)]

        n = 8
        for k in range(n):  # a new connection each: edge-e 2's workers take turns over both edge-c
            ok, what, c = self.get_hello(1, ctx, auth="Bearer " + tok, query=f"?token={k}")
            self.assertTrue(ok, f"request {k} with edge-e 1's token through {what}")
            if c:
                c.close()
        deadline = time.monotonic() + 5
        while len(self.nginx_lines("?token=")) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = self.nginx_lines("?token=")
        self.assertEqual([ln.split(" ")[1].rsplit("=", 1)[1] for ln in lines], [str(k) for k in range(n)], lines)
        for ln in lines:  # served as alice, with neither her password nor the token going in
            self.assertIn(" 200 auth=[-] ", ln)
            self.assertNotIn(tok, ln)
        by_c = [self.metric_c(c, "edgepair_http_auth_total", {"result": "edge_token"}) - used[c] for c in range(2)]
        self.assertEqual(sum(by_c), n, by_c)
        self.assertTrue(all(x > 0 for x in by_c), f"token requests opened by edge-c 1, 2: {by_c}")

        # The check can fail: a tampered token is refused and reaches nobody.
        mid = len(tok) // 2
        bad = tok[:mid] + ("A" if tok[mid] != "A" else "B") + tok[mid + 1:]
        ok, what, c = self.get_hello(1, ctx, auth="Bearer " + bad, query="?tampered=1")
        if c:
            c.close()
        self.assertFalse(ok)
        self.assertIn("edge-e2: 401", what)
        time.sleep(0.2)
        self.assertEqual(self.nginx_lines("?tampered="), [])
        print(f"token issued via edge-e 1 by edge-c {issued.index(1) + 1}; {n} uses via edge-e 2 opened by edge-c "
              f"1, 2: {by_c}", file=sys.stderr)

    # ---- tests -------------------------------------------------------------------------------------------

    def test_kill_edge_c_under_load(self):
        self.start_kamailio()
        self.start_dns()
        self.start_fixture()
        self.start_nginx()
        self.start_peers()
        ctx = self.http_context()
        for e in range(2):
            ok, what, conn = self.get_hello(e, ctx)
            self.assertTrue(ok, what)
            if conn:
                conn.close()
            for node, p in self.peers(e).items():
                self.assertTrue(p["consistent"], f"edge-e{e + 1}: {node}: {p}")
        self.check_token_across_peers(ctx)

        uas: list[PeerUA] = []
        self.addCleanup(lambda: [u.close() for u in uas])
        for i in range(8):
            ua = PeerUA(self.e_addrs[i % 2], self.ports.sip, f"user{i}", self.ca)
            uas.append(ua)
            self.assertEqual(ua.register().status, 200, f"{ua.user} via edge-e{i % 2 + 1}")

        total, threads_n = 600, 4
        lock = threading.Lock()
        done: list[int] = []
        failures: list[str] = []
        budget = [total]
        stop_at = time.monotonic() + 120

        def client(e0: int) -> None:
            conns: list[http.client.HTTPConnection | None] = [None, None]
            for k in range(total):  # bounded by the shared budget and the deadline
                with lock:
                    if budget[0] <= 0 or time.monotonic() > stop_at:
                        break
                    budget[0] -= 1
                e = (e0 + k) % 2
                ok, what, conns[e] = self.get_hello(e, ctx, conns[e])
                with lock:
                    done.append(1)
                    if not ok:
                        failures.append(what)
            for c in conns:
                if c:
                    c.close()

        threads = [threading.Thread(target=client, args=(i % 2,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(done) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.edge_c[0].send_signal(signal.SIGKILL)
        killed_at = len(done)
        for t in threads:
            t.join(150)
        self.assertFalse(any(t.is_alive() for t in threads), "a load thread is stuck")
        self.assertLess(killed_at, total - 100, "edge-c 1 was killed too late to matter")
        self.assertEqual(failures, [], f"{len(failures)} of {len(done)} requests failed; first: {failures[:5]}")
        self.assertEqual(len(done), total)

        # SIP: the flows on the dead edge-c were closed by edge-e; the others are untouched.
        moved, kept = [], []
        for ua in uas:
            (moved if ua.closed_by_peer(5 if not moved and not kept else 0.3) else kept).append(ua)
        self.assertTrue(moved, "no SIP flow was on edge-c 1 (the flows did not spread over both edge-c)")
        self.assertTrue(kept, "no SIP flow was on edge-c 2 (the flows did not spread over both edge-c)")
        for ua in kept:
            r = ua.register()
            self.assertEqual(r.status, 200, f"{ua.user}: re-REGISTER on its kept connection")
        for ua in moved:
            ua.close()
            i = uas.index(ua)
            again = PeerUA(self.e_addrs[i % 2], self.ports.sip, ua.user, self.ca)
            uas[i] = again
            self.assertEqual(again.register().status, 200, f"{ua.user}: registers again after its flow closed")
        print(f"edge-c 1 killed after {killed_at} of {total} requests; SIP flows closed {len(moved)}, kept "
              f"{len(kept)}; retried {self.metric_e(0, 'edgepair_http_link_retries_total')} + "
              f"{self.metric_e(1, 'edgepair_http_link_retries_total')}", file=sys.stderr)
        # Only edge-c 2 is left, on every worker of both edge-e.
        for e in range(2):
            self.wait_peers(e, {"expc2.example.com": 2})
            self.wait_workers_balanced(e)
            self.assertEqual(self.metric_e(e, "edgepair_http_link_errors_total"), 0)

    def test_config_mismatch_and_re_resolution(self):
        self.start_kamailio()
        self.start_dns()
        self.write_hosts({E_NAMES[0]: self.e_addrs[0], E_NAMES[1]: self.nowhere})
        self.dns.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        self.start_fixture()
        self.start_nginx()
        self.start_peers(c_clusters=("emea", "apac"),
                         c_domains=("- {name: example.com}",
                                    "- {name: example.com}\n          - {name: example.org}"), wait_all=False,
                         stagger=True)
        peers = self.wait_peers(0, {"expc1.example.com": 2, "expc2.example.com": 2})
        # edge-e 2 is not reachable under the name yet.
        time.sleep(1.5)
        self.assertEqual(self.peers(1), {})

        c1, c2 = peers["expc1.example.com"], peers["expc2.example.com"]
        self.assertTrue(c1["consistent"], c1)
        self.assertEqual((c1["cluster"], c1["domains"], c1["deployments"]), ("emea", ["example.com"], ["default"]))
        self.assertFalse(c2["consistent"], c2)
        self.assertEqual(c2["cluster"], "apac")
        self.assertEqual(c2["domains"], ["example.com", "example.org"])
        self.assertEqual(c2["mismatch"], [
            'cluster name "apac", this edge-e\'s cluster.name is "emea"',
            "domains [example.com, example.org], peer expc1.example.com has [example.com]"])
        st = self.status(0)
        alarms = {a["id"]: a for a in st["alarms"] if a.get("state") == "raised"}
        self.assertIn("link.peer_config:expc2.example.com", alarms)
        self.assertNotIn("link.peer_config:expc1.example.com", alarms)
        self.assertEqual(self.metric_e(0, "edgepair_link_peers_mismatched"), 1)
        _, _, page = self.admin_get(E_HOSTS[0], self.ports.admin_e, "/")
        self.assertIn(b'class="peer mismatch"', page)
        self.assertIn(b"this edge-e&#39;s cluster.name", page.replace(b"&#x27;", b"&#39;"))
        # The mismatch is logged once per peer, not per link.
        time.sleep(1)
        self.assertEqual(self.edge_e[0].log_text().count("edge-c expc2.example.com disagrees"), 1)
        # The link stays up and serves.
        self.wait_discovered(0)
        self.wait_discovered(1)
        ok, what, conn = self.get_hello(0, self.http_context())
        self.assertTrue(ok, what)
        if conn:
            conn.close()

        # The name now points at edge-e 2: both edge-c find it on their next attempt, without a restart.
        self.write_hosts({E_NAMES[0]: self.e_addrs[0], E_NAMES[1]: self.e_addrs[1]})
        self.dns.send_signal(signal.SIGHUP)
        peers2 = self.wait_peers(1, {"expc1.example.com": 2, "expc2.example.com": 2}, timeout=20)
        self.assertFalse(peers2["expc2.example.com"]["consistent"])
        # edge-c 2 leaves: its alarm clears.
        self.edge_c[1].send_signal(signal.SIGKILL)
        self.wait_peers(0, {"expc1.example.com": 2})
        st = self.status(0)
        self.assertNotIn("link.peer_config:expc2.example.com",
                         {a["id"] for a in st["alarms"] if a.get("state") == "raised"})
        self.assertEqual(self.metric_e(0, "edgepair_link_peers_mismatched"), 0)


if __name__ == "__main__":
    h.run_tests()
