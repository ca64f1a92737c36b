#!/usr/bin/python3
"""The HTTP edge end to end through the pair (issue #5): get_edge_config, get_edge_sso, sign-in by HTTP Basic
checked against Unified CM over UDS, and the allow-list proxy /<b64 domain>/http(s)/<host>/<port>/<path>.

Topology (loopback only):
- dnsmasq on 127.0.0.1:<free port> answers cucm1/cucm2 (127.0.1.1/.2), silent (127.0.1.6), down (127.0.1.7);
  edge-c resolves through it (`dns.servers`).
- tools/fixtures/ucm_fixture.py as cucm1 and cucm2 on one free port (tomcat certificates of the test PKI):
  edge-c discovers them with AXL and checks end users with UDS (/cucm-uds/user/<id>).
- nginx (Debian nginx-light) on 127.0.1.1:<free port>, plain HTTP like Unified CM's TFTP file service on 6970,
  serving /files/hello.txt and a 5 MiB /files/big.bin; its access log records the upstream connection and
  request number on it (keep-alive pooling).
- "silent": a socket that accepts and never answers (504); "down": a port nobody listens on (502).
- edge-e and edge-c (tests/integration/pair.py), editable allow-list rules for the nginx, silent and down
  origins.

Run: EDGEPAIR_BIN=build/bin EDGEPAIR_SRC=. /usr/bin/python3 tests/integration/test_http_edge.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402

FIXTURE = os.path.join(h.SRC, "tools", "fixtures", "ucm_fixture.py")
DEMO_JSON = os.path.join(h.SRC, "tools", "fixtures", "cluster-demo.json")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
EDGE = "expe1.example.com"
DOMAIN_B64 = base64.b64encode(b"example.com").decode().rstrip("=")  # ZXhhbXBsZS5jb20
ADDRS = {
    "cucm1.example.com": "127.0.1.1",
    "cucm2.example.com": "127.0.1.2",
    "silent.example.com": "127.0.1.6",
    "down.example.com": "127.0.1.7",
}
ALICE = ("alice", "Alice-Passw0rd")
BIG = 5 * 1024 * 1024


def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def port_free_on(hosts) -> int:
    for _ in range(100):
        p = h.free_port()
        ok = True
        for host in hosts:
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p
    raise h.HarnessError("no port free on all of " + ", ".join(hosts))


def indent(text: str, n: int = 8) -> str:
    """pair.edge_c_yaml's `extra` lands at 8 columns inside a dedented template: later lines need them too."""
    lines = text.strip("\n").splitlines()
    return "\n".join([lines[0]] + [" " * n + line for line in lines[1:]])


class SilentServer:
    """Accepts TCP connections and never writes a byte (the upstream that hangs)."""

    def __init__(self, host: str, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.conns: list[socket.socket] = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self) -> None:
        self.sock.settimeout(0.2)
        for _ in range(100000):  # bounded: ~5.5 hours at the accept timeout
            if self.stop:
                break
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except socket.timeout:
                continue
            except OSError:
                break

    def close(self) -> None:
        self.stop = True
        self.t.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


class HttpEdgeTopology(h.TestCase):
    """The pair with its real peers, and the clients; no tests (test_http2_edge.py builds on it too)."""

    # YAML appended to each edge's config (top-level keys), e.g. an `http:` section.
    EDGE_E_EXTRA = ""
    # edge-c answers a silent node with 504 after http.upstream_timeout: short, so the test does not wait 30 s.
    EDGE_C_EXTRA = "http: {upstream_timeout: 2s}"
    # Where the fixtures listen (name -> address) and dnsmasq's address: a subclass may move them (e.g. into a
    # network namespace, test_cluster_bans.py) and then starts its processes there (its own start()).
    addrs: dict[str, str] = ADDRS
    dns_addr = "127.0.0.1"

    # ---- topology ------------------------------------------------------------------------------------

    def setUp(self) -> None:
        super().setUp()
        self.pki_dir = h.pki()
        self.require_binary("edge-e")
        self.require_binary("edge-c")
        self.ports = pair.Ports()
        self.ucm_port = port_free_on([ADDRS["cucm1.example.com"], ADDRS["cucm2.example.com"]])
        self.web_port = port_free_on([ADDRS["cucm1.example.com"]])
        self.silent_port = port_free_on([ADDRS["silent.example.com"]])
        self.down_port = port_free_on([ADDRS["down.example.com"]])
        self.fixtures: list[h.Proc] = []
        self.start_dns()
        self.start_ucm()
        self.start_nginx()
        self.silent = SilentServer(ADDRS["silent.example.com"], self.silent_port)
        self.addCleanup(self.silent.close)
        self.start_pair()

    def start_dns(self) -> None:
        dnsmasq = self.require_tool("dnsmasq")
        def argv(port: int) -> list:
            args = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--no-poll", "--pid-file=", "--bind-interfaces", f"--listen-address={self.dns_addr}",
                    f"--port={port}", "--log-facility=-"]
            if os.geteuid() == 0:
                args.append("--user=root")
            args += [f"--address=/{name}/{ip}" for name, ip in self.addrs.items()]
            return args

        _, self.dns_port = h.start_dnsmasq(self.start, self.dns_addr, argv)

    def start_ucm(self) -> None:
        with open(DEMO_JSON, encoding="utf-8") as f:
            doc = json.load(f)
        doc["nodes"] = [n for n in doc["nodes"] if n["type"] == "ucm"]
        for n in doc["nodes"]:
            n["address"] = self.addrs.get(n["name"], n["address"])
        cluster = os.path.join(self.tmp, "cluster.json")
        with open(cluster, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        for name, cert in (("cucm1.example.com", "tomcat-cucm1"), ("cucm2.example.com", "tomcat-cucm2")):
            crt = f"{self.pki_dir}/{cert}-chain.crt"
            if not os.path.exists(crt):
                crt = f"{self.pki_dir}/{cert}.crt"
            p = self.start([PY, FIXTURE, "--cluster", cluster, "--node", name, "--listen",
                            f"{self.addrs[name]}:{self.ucm_port}", "--cert", crt, "--key", f"{self.pki_dir}/{cert}.key"],
                           name=f"fixture-{name.split('.')[0]}")
            p.wait_log(r"^READY$", timeout=15)
            self.fixtures.append(p)

    def start_nginx(self) -> None:
        nginx = self.require_tool("nginx")
        root = os.path.join(self.tmp, "www")
        os.makedirs(os.path.join(root, "files"))
        os.makedirs(os.path.join(root, "other"))
        self.hello = b"hello from the TFTP file service\n"
        with open(os.path.join(root, "files", "hello.txt"), "wb") as f:
            f.write(self.hello)
        with open(os.path.join(root, "other", "x.txt"), "wb") as f:
            f.write(b"not allowed\n")
        self.big = os.urandom(BIG)
        with open(os.path.join(root, "files", "big.bin"), "wb") as f:
            f.write(self.big)
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
events {{ worker_connections 256; }}
http {{
    log_format edge '$request_method $uri $status conn=$connection req=$connection_requests';
    access_log {self.access_log} edge;
    client_body_temp_path {ngx}/body;
    proxy_temp_path {ngx}/proxy;
    fastcgi_temp_path {ngx}/fastcgi;
    uwsgi_temp_path {ngx}/uwsgi;
    scgi_temp_path {ngx}/scgi;
    keepalive_timeout 60s;
    keepalive_requests 1000;
    types {{ text/plain txt; application/octet-stream bin; }}
    server {{
        listen {self.addrs["cucm1.example.com"]}:{self.web_port};
        root {self.tmp}/www;
    }}
}}
""")
        p = self.start([nginx, "-c", conf, "-p", ngx], name="nginx")
        p.wait_port(self.addrs["cucm1.example.com"], self.web_port, timeout=10)

    def publisher(self) -> str:
        """edge-c's discovery section: the fixture's cucm1 as the AXL publisher."""
        return (f'unified_cm:\n  - {{address: cucm1.example.com, port: {self.ucm_port}, username: axladmin, '
                f'password: "Axl-Passw0rd", tls_verify: true}}')

    def edge_c_extra(self, *rules: str, tail: str = "") -> str:
        """edge-c's dns and allow_list sections (indented for edge_c_yaml): the TFTP rule on nginx, then `rules`
        (one flow-style rule each), then `tail`."""
        lines = [f'dns: {{servers: ["{self.dns_addr}:{self.dns_port}"]}}', "allow_list:", "  rules:",
                 f'    - {{url: "http://cucm1.example.com:{self.web_port}/files/", methods: [GET, HEAD, POST], '
                 f'description: tftp}}']
        lines += [f"    - {r}" for r in rules]
        return indent("\n" + "\n".join(lines) + "\n" + tail + "\n")

    def start_pair(self) -> None:
        rules = self.edge_c_extra(f'{{url: "http://silent.example.com:{self.silent_port}/", description: hangs}}',
                                  f'{{url: "http://down.example.com:{self.down_port}/", description: refuses}}',
                                  tail=self.EDGE_C_EXTRA)
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki_dir, extra=indent(self.EDGE_E_EXTRA or "# -"))
        self.ccfg = pair.edge_c_yaml(self, self.ports, self.pki_dir, discovery=self.publisher(), extra=rules)
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        self.wait_ready()

    def wait_ready(self) -> None:
        # Ready: the link is up, discovery found both Unified CM nodes, and edge-e has the snapshot with them.
        deadline = time.monotonic() + 30
        last = None
        while time.monotonic() < deadline:
            try:
                st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
                last = json.loads(body)
                names = sorted(n["name"] for n in (last.get("discovery") or {}).get("nodes", []))
                st_e, _, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=5)
                if st == 200 and st_e == 200 and names == ["cucm1.example.com", "cucm2.example.com"]:
                    # The snapshot reaches edge-e over the control stream: probe until it routes a request.
                    s2, _, _ = self.get(f"/{DOMAIN_B64}/get_edge_sso/?username=alice")
                    if s2 == 200:
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        self.fail(f"pair not ready within 30s; edge-c status: {json.dumps(last)[:2000]}")

    # ---- clients -------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"https://{EDGE}:{self.ports.https}{path}"

    def get(self, path: str, auth=None, method: str = "GET", body=None, headers=None, timeout: float = 20):
        hdrs = dict(headers or {})
        if auth:
            hdrs["Authorization"] = basic(*auth)
        return h.http_request(self.url(path), method, body=body, headers=hdrs, timeout=timeout,
                              cafile=f"{self.pki_dir}/ca.crt", connect_to=("127.0.0.1", self.ports.https))

    def curl(self, path: str, *args: str, timeout: float = 60):
        out = os.path.join(self.tmp, "curl.out")
        cmd = [self.require_tool("curl"), "--http1.1", "-sS", "-o", out, "-w", "%{http_code}",
               "--cacert", f"{self.pki_dir}/ca.crt", "--resolve", f"{EDGE}:{self.ports.https}:127.0.0.1",
               "-u", f"{ALICE[0]}:{ALICE[1]}", *args, self.url(path)]
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
        with open(out, "rb") as f:
            data = f.read()
        return int(r.stdout.decode() or 0), data

    def proxy(self, scheme: str, host: str, port: int, path: str) -> str:
        return f"/{DOMAIN_B64}/{scheme}/{host}/{port}{path}"

    def metric(self, side: str, name: str, labels: dict[str, str]) -> int:
        port = self.ports.admin_c if side == "c" else self.ports.admin_e
        _, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        total = 0
        for line in body.decode().splitlines():
            if not line.startswith(name + "{") and line.split(" ")[0] != name:
                continue
            m = re.match(r"^[^{ ]+(?:\{(.*)\})? (\S+)$", line)
            if not m:
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                total += int(float(m.group(2)))
        return total



class HttpEdgeTest(HttpEdgeTopology):
    # ---- tests ---------------------------------------------------------------------------------------

    def test_edge_config_and_sign_in(self):
        path = f"/{DOMAIN_B64}/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin"
        st, hd, body = self.get(path, auth=ALICE)
        self.assertEqual(st, 200, body)
        self.assertIn("xml", hd.get("Content-Type", ""))
        root = ET.fromstring(body)
        self.assertEqual(root.tag, "getEdgeConfigResponse")
        services = {s.findtext("name"): s for s in root.iter("service")}
        self.assertEqual(list(services)[:2], ["_cisco-uds", "_cuplogin"])  # in the order asked for
        uds = sorted((s.findtext("address"), s.findtext("port")) for s in services["_cisco-uds"].iter("server"))
        self.assertEqual(uds, [("cucm1.example.com", str(self.ucm_port)), ("cucm2.example.com", str(self.ucm_port))])
        self.assertEqual(services["_cuplogin"].findtext("error"), "NameError")  # no IM&P in this deployment
        edge = root.find("edgeConfig")
        self.assertEqual(edge.findtext("sipEdgeServer/server/address"), EDGE)
        self.assertEqual(edge.findtext("sipEdgeServer/server/tlsPort"), str(self.ports.sip))
        self.assertEqual(edge.findtext("sipRequest/route"), f"<sip:{EDGE}:{self.ports.sip};transport=tls;lr>")
        self.assertEqual(edge.findtext("xmppEdgeServer/server/tlsPort"), str(self.ports.xmpp))
        self.assertEqual(edge.findtext("httpEdgeServer/server/address"), EDGE)
        self.assertEqual(edge.findtext("httpEdgeServer/server/tlsPort"), str(self.ports.https))
        self.assertIn(edge.findtext("userUdsServer/server/address"), ADDRS)

        # The success is cached: the next requests with the same credentials cost no UDS round trip.
        for _ in range(3):
            st, _, _ = self.get(path, auth=ALICE)
            self.assertEqual(st, 200)
        # The cache is per edge-c worker (2 here) and edge-e spreads requests over its links to them: at most
        # one UDS check per worker.
        ok = self.metric("c", "edgepair_http_auth_total", {"result": "ok"})
        cached = self.metric("c", "edgepair_http_auth_total", {"result": "cached"})
        self.assertLessEqual(ok, 2)
        self.assertEqual(ok + cached, 4)

        # Wrong password, unknown user, no credentials, another scheme: 401 with a Basic challenge.
        for auth, hdrs in ((("alice", "wrong"), None), (("mallory", "x"), None), (None, None),
                           (None, {"Authorization": "Bearer abc"})):
            with self.subTest(auth=auth, hdrs=hdrs):
                st, hd, _ = self.get(path, auth=auth, headers=hdrs)
                self.assertEqual(st, 401)
                self.assertIn("Basic", hd.get("WWW-Authenticate", ""))
        # A cached success does not let a wrong password in.
        st, _, _ = self.get(path, auth=("alice", "Alice-Passw0rd-not"))
        self.assertEqual(st, 401)

        # get_edge_sso: no credentials needed; edgepair has no SSO, so the answer is false.
        st, hd, body = self.get(f"/{DOMAIN_B64}/get_edge_sso/?username=alice")
        self.assertEqual(st, 200, body)
        self.assertEqual(ET.fromstring(body).findtext("sso"), "false")

        # Unknown domain: 404 (edge-e answers it from the snapshot).
        other = base64.b64encode(b"example.org").decode().rstrip("=")
        st, _, _ = self.get(f"/{other}/get_edge_config/", auth=ALICE)
        self.assertEqual(st, 404)

        # curl as a second HTTP/1.1 client.
        st, data = self.curl(path)
        self.assertEqual(st, 200)
        self.assertTrue(data.startswith(b"<?xml"), data[:100])

    def test_proxy_get_stream_and_keepalive(self):
        hello = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        st, hd, body = self.get(hello, auth=ALICE)
        self.assertEqual(st, 200, body)
        self.assertEqual(body, self.hello)
        self.assertEqual(hd.get("Content-Length"), str(len(self.hello)))
        st, data = self.curl(hello)
        self.assertEqual((st, data), (200, self.hello))
        # Without credentials the proxy refuses too.
        st, hd, _ = self.get(hello)
        self.assertEqual(st, 401)
        # HEAD passes through without a body.
        st, hd, body = self.get(hello, auth=ALICE, method="HEAD")
        self.assertEqual((st, body), (200, b""))

        # https to a discovered node (TLS verified against the test CA, as discovery did), through its automatic
        # allow-list rule; the client's Authorization reaches the node.
        uds = self.proxy("https", "cucm1.example.com", self.ucm_port, "/cucm-uds/user/alice")
        st, _, body = self.get(uds, auth=ALICE)
        self.assertEqual(st, 200, body)
        self.assertIn(b"alice", body)

        big = self.proxy("http", "cucm1.example.com", self.web_port, "/files/big.bin")
        want = hashlib.sha256(self.big).hexdigest()
        st, _, body = self.get(big, auth=ALICE, timeout=60)
        self.assertEqual(st, 200)
        self.assertEqual(len(body), BIG)
        self.assertEqual(hashlib.sha256(body).hexdigest(), want)
        st, data = self.curl(big)
        self.assertEqual(st, 200)
        self.assertEqual(hashlib.sha256(data).hexdigest(), want)

        # A slow reader: the 5 MiB must not be buffered whole anywhere; the transfer still completes.
        s = socket.create_connection(("127.0.0.1", self.ports.https), timeout=30)
        import ssl
        ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
        s = ctx.wrap_socket(s, server_hostname=EDGE)
        s.sendall(f"GET {big} HTTP/1.1\r\nHost: {EDGE}\r\nAuthorization: {basic(*ALICE)}\r\n"
                  f"Connection: close\r\n\r\n".encode())
        time.sleep(1.5)  # let the pipeline fill up and push back
        got = b""
        t0 = time.monotonic()
        for i in range(100000):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
            if i % 8 == 0:
                time.sleep(0.005)  # keep reading slower than loopback delivers
        self.assertLess(time.monotonic() - t0, 20, "the paused transfer did not resume promptly")
        s.close()
        head, _, payload = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:200])
        self.assertEqual(hashlib.sha256(payload).hexdigest(), want)

        # Keep-alive towards the node: several proxied requests share upstream connections.
        for _ in range(5):
            st, _, _ = self.get(hello, auth=ALICE)
            self.assertEqual(st, 200)
        with open(self.access_log) as f:
            reqs = [int(m) for m in re.findall(r"req=(\d+)", f.read())]
        self.assertGreater(max(reqs), 1, "edge-c never reused a pooled connection to nginx")

    def half_closed(self, request: bytes, close_notify: bool) -> bytes:
        """Sends `request` over TLS, shuts our sending side (with a TLS close_notify first, or only the TCP
        FIN), then reads until the server ends the connection. ssl.MemoryBIO: Python's SSLSocket cannot
        half-close (its shutdown() drops the TLS state)."""
        import ssl
        ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(inc, out, server_hostname=EDGE)
        s = socket.create_connection(("127.0.0.1", self.ports.https), timeout=20)

        def flush() -> None:
            data = out.read()
            if data:
                s.sendall(data)

        def fill() -> bool:
            d = s.recv(65536)
            if not d:
                inc.write_eof()
            else:
                inc.write(d)
            return bool(d)

        try:
            for _ in range(100):
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    flush()
                    fill()
            flush()
            tls.write(request)
            flush()
            if close_notify:
                try:
                    tls.unwrap()
                except ssl.SSLWantReadError:
                    pass
                flush()
            s.shutdown(socket.SHUT_WR)
            got = b""
            for _ in range(100000):
                try:
                    chunk = tls.read(65536)
                except ssl.SSLWantReadError:
                    if not fill():
                        break
                    continue
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    break
                if not chunk:
                    break
                got += chunk
            return got
        finally:
            s.close()

    def hello_request(self) -> bytes:
        hello = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        return f"GET {hello} HTTP/1.1\r\nHost: {EDGE}\r\nAuthorization: {basic(*ALICE)}\r\n\r\n".encode()

    def nginx_hello_count(self) -> int:
        with open(self.access_log) as f:
            return f.read().count("GET /files/hello.txt 200")

    def test_client_half_close_aborts_by_default(self):
        """http.client_half_close: abort (the default, nginx's way): a client's EOF right after its request
        ends the connection without an answer, with a TLS close_notify or a bare TCP FIN alike; the edge goes on
        serving others."""
        req = self.hello_request()
        for close_notify in (True, False):
            with self.subTest(close_notify=close_notify):
                self.assertEqual(self.half_closed(req, close_notify), b"")
        st, _, body = self.get(self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt"),
                               auth=ALICE)
        self.assertEqual((st, body), (200, self.hello))

    def test_proxy_post_body(self):
        url = self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt")
        for size in (10, 600 * 1024):
            with self.subTest(size=size):
                st, _, _ = self.get(url, auth=ALICE, method="POST", body=os.urandom(size), timeout=30,
                                    headers={"Content-Type": "application/octet-stream"})
                self.assertEqual(st, 405)  # nginx's answer to POST on a static file, passed through
        with open(self.access_log) as f:
            self.assertIn("POST /files/hello.txt 405", f.read())

    def test_blocked(self):
        cases = [
            ("host", self.proxy("http", "cucm2.example.com", self.web_port, "/files/hello.txt"), "GET"),
            ("port", self.proxy("http", "cucm1.example.com", self.web_port + 1, "/files/hello.txt"), "GET"),
            ("scheme", self.proxy("https", "cucm1.example.com", self.web_port, "/files/hello.txt"), "GET"),
            ("path", self.proxy("http", "cucm1.example.com", self.web_port, "/other/x.txt"), "GET"),
            ("method", self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt"), "DELETE"),
        ]
        for what, path, method in cases:
            with self.subTest(what=what):
                st, _, body = self.get(path, auth=ALICE, method=method)
                self.assertEqual(st, 403, body)
        with open(self.access_log) as f:
            self.assertNotIn("/other/", f.read())

    def test_upstream_errors(self):
        st, _, body = self.get(self.proxy("http", "down.example.com", self.down_port, "/x"), auth=ALICE)
        self.assertEqual(st, 502, body)
        self.assertGreaterEqual(self.metric("c", "edgepair_http_upstream_errors_total", {"kind": "connect"}), 1)
        # The client gives up while edge-c waits for the node: the exchange is cancelled, nothing leaks.
        silent = self.proxy("http", "silent.example.com", self.silent_port, "/x")
        try:
            self.get(silent, auth=ALICE, timeout=1.5)
            self.fail("the silent upstream answered")
        except (socket.timeout, TimeoutError):
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.metric("c", "edgepair_http_client_gone_total", {}):
            time.sleep(0.2)
        self.assertGreaterEqual(self.metric("c", "edgepair_http_client_gone_total", {}), 1)

        # Accepts and stays silent: edge-c's http.upstream_timeout (2 s here) answers 504.
        t0 = time.monotonic()
        st, _, body = self.get(self.proxy("http", "silent.example.com", self.silent_port, "/x"), auth=ALICE,
                               timeout=30)
        self.assertEqual(st, 504, body)
        self.assertIn(b"upstream timed out", body)
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)
        self.assertLess(time.monotonic() - t0, 10)

        # edge-c gone: edge-e answers at once, 502/503, never a hang.
        self.edge_c.stop(timeout=10)
        st, _, body = self.get(self.proxy("http", "cucm1.example.com", self.web_port, "/files/hello.txt"),
                               auth=ALICE, timeout=15)
        self.assertIn(st, (502, 503), body)

    def test_ucm_down_is_not_401(self):
        for p in self.fixtures:
            p.stop(timeout=5)
        # Credentials never checked before, so no cache can answer: the check fails, and it must not look like
        # a wrong password.
        st, _, body = self.get(f"/{DOMAIN_B64}/get_edge_config/", auth=("bob", "Bob-Passw0rd"))
        self.assertIn(st, (502, 503), body)



class HttpHalfCloseServeTest(HttpEdgeTopology):
    """http.client_half_close: serve (HAProxy's way)."""

    EDGE_E_EXTRA = "http: {client_half_close: serve}"

    half_closed = HttpEdgeTest.half_closed
    hello_request = HttpEdgeTest.hello_request
    nginx_hello_count = HttpEdgeTest.nginx_hello_count

    def test_client_half_close_served(self):
        """A client that sends its request and shuts its sending side at once (RFC 9112 9.6; ncat and socat do
        so) still gets the answer, with a TLS close_notify or a bare TCP FIN; pipelined requests before the EOF
        are all answered in order; a request the EOF cuts off is not sent on. Checked at nginx's access log."""
        req = self.hello_request()
        for close_notify in (True, False):
            with self.subTest(close_notify=close_notify):
                before = self.nginx_hello_count()
                got = self.half_closed(req, close_notify)
                self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:300])
                self.assertTrue(got.endswith(self.hello), got[-300:])
                self.assertEqual(self.nginx_hello_count(), before + 1)
                got = self.half_closed(req + req, close_notify)
                self.assertEqual(got.count(b"HTTP/1.1 200"), 2, got[:600])
                self.assertEqual(self.nginx_hello_count(), before + 3)
                # A request head cut off by the EOF: no answer, nothing reaches nginx.
                self.assertEqual(self.half_closed(req[:40], close_notify), b"")
                time.sleep(0.3)
                self.assertEqual(self.nginx_hello_count(), before + 3)


if __name__ == "__main__":
    h.run_tests()
