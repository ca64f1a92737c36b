#!/usr/bin/python3
"""SIP federation through the pair (issue #19).

Topology (loopback, free ports):

  inside:  the IM&P routing node: sipp over TCP on 127.0.0.1 (the address edge-c accepts IM&P's outbound from)
  pair:    edge-c (federation.sip inside listener) -> link -> edge-e (federation.sip TLS listener);
           edge-e's SRV look-ups go to a dnsmasq on a free UDP port
  outside: partner.test's SIP server: sipp over TCP behind a TLS terminator that presents partner.test's
           certificate (`_sips._tcp.partner.test` points at it); inbound, sipp over TCP through a TCP->TLS relay
           to edge-e (the Debian sipp has no TLS transport)

Both directions play the same two scenarios (tests/integration/sip/fed-uac.xml, fed-uas.xml): a MESSAGE, then a
presence SUBSCRIBE whose NOTIFY comes back in the subscription's dialog and is answered. sipp exits 0 only when
every message arrived, so the exchange proves the requests, responses and NOTIFYs crossed both edges. This is
consistency with sipp as a SIP peer at both ends (real SIP parsing and transaction matching), not
interoperability with Cisco IM and Presence or a Cisco Expressway partner.

The refusal test puts a recording TCP server where the IM&P node is, plus recording listeners standing for an
internal SIP node (as Unified CM would be) and an internal HTTP server, and asserts what each received: a denied
domain's MESSAGE and SUBSCRIBE get 403, a REGISTER 403, a Request-URI that is not ours 404, a Route to the
internal node 403, and none of them reaches any internal server; one permitted MESSAGE does reach the IM&P node
(so the path the refusals guard is open). Outbound, a denied target, a domain DNS knows nothing of (503) and a
source that is not an IM&P node are refused.

The reconnect test kills and restarts edge-c under an established subscription: the partner's refresh (inside
the dialog, on a new connection) reaches the IM&P node through the new link.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import pair  # noqa: E402

SIP_DIR = os.path.join(h.SRC, "tests", "integration", "sip")
TIMEOUT = 10.0


class Pipe:
    """A TCP relay that may terminate TLS on the listening side (server_ctx) or originate it (client_ctx)."""

    def __init__(self, target_port: int, server_ctx: ssl.SSLContext | None = None,
                 client_ctx: ssl.SSLContext | None = None, server_hostname: str | None = None):
        self.target = target_port
        self.server_ctx, self.client_ctx, self.sni = server_ctx, client_ctx, server_hostname
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.stop = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.lsock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            threading.Thread(target=self._pump, args=(c,), daemon=True).start()

    def _pump(self, c: socket.socket):
        try:
            if self.server_ctx:
                c.settimeout(10)
                c = self.server_ctx.wrap_socket(c, server_side=True)
            t = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            if self.client_ctx:
                t = self.client_ctx.wrap_socket(t, server_hostname=self.sni)
        except (OSError, ssl.SSLError):
            c.close()
            return
        c.setblocking(False)
        t.setblocking(False)

        def move(src, dst) -> bool:
            try:
                data = src.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                return True
            if not data:
                return False
            dst.setblocking(True)
            dst.sendall(data)
            dst.setblocking(False)
            while isinstance(src, ssl.SSLSocket) and src.pending():
                data = src.recv(65536)
                dst.setblocking(True)
                dst.sendall(data)
                dst.setblocking(False)
            return True

        try:
            while not self.stop:
                r, _, _ = select.select([c, t], [], [], 0.2)
                for s in r:
                    if not move(s, t if s is c else c):
                        return
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()
            t.close()

    def close(self):
        self.stop = True
        self.lsock.close()


class Recorder:
    """A TCP listener that keeps every byte it receives (an internal server that must, or must not, be reached).
    With answer=True it answers each SIP request 200 OK (enough for the permitted MESSAGE)."""

    def __init__(self, answer: bool = False):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.data = b""
        self.connections = 0
        self.answer = answer
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.lsock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c: socket.socket):
        c.settimeout(0.2)
        buf = b""
        while not self.stop:
            try:
                d = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not d:
                break
            self.data += d
            buf += d
            while self.answer and b"\r\n\r\n" in buf:
                head, _, buf = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                buf = buf[int(m.group(1)) if m else 0:]
                if not head.startswith(b"SIP/2.0"):
                    c.sendall(sip_response(head, 200, "OK"))
        c.close()

    def close(self):
        self.stop = True
        self.lsock.close()


def sip_response(request_head: bytes, status: int, reason: str) -> bytes:
    lines = request_head.decode(errors="replace").split("\r\n")
    keep = [ln for ln in lines[1:] if re.match(r"(?i)^(via|from|to|call-id|cseq):", ln)]
    keep = [ln + ";tag=rec" if re.match(r"(?i)^to:", ln) and "tag=" not in ln else ln for ln in keep]
    return (f"SIP/2.0 {status} {reason}\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()


def sip_request(method: str, ruri: str, frm: str, to: str, call_id: str, extra: str = "", body: str = "",
                from_tag: str | None = None, to_tag: str | None = None, cseq: int = 1) -> bytes:
    to_params = f";tag={to_tag}" if to_tag else ""
    return (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK{uuid.uuid4().hex[:12]}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <{frm}>;tag={from_tag or uuid.uuid4().hex[:8]}\r\n"
            f"To: <{to}>{to_params}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:x@192.0.2.10:5061;transport=tls>\r\n"
            f"{extra}"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


def read_response(sock, timeout: float = TIMEOUT) -> int:
    return int(read_response_head(sock, timeout)[8:11])


def read_response_head(sock, timeout: float = TIMEOUT) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.5)
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline:
            raise h.HarnessError(f"no SIP response; got {buf!r}")
        try:
            d = sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        if not d:
            raise h.HarnessError(f"connection closed; got {buf!r}")
        buf += d
    if not re.match(rb"SIP/2.0 (\d{3}) ", buf):
        raise h.HarnessError(f"not a SIP response: {buf!r}")
    return buf.partition(b"\r\n\r\n")[0]


class SipFederationTest(h.TestCase):
    def setUp(self) -> None:
        super().setUp()
        for tool in ("sipp", "dnsmasq"):
            self.require_tool(tool)
        self.pki_dir = h.pki()
        self.ports = pair.Ports()
        self.fed_port, self.inside_port, self.imp_port, self.partner_port = h.free_ports(4)
        self.dns_port = h.free_port(udp=True)
        self.pipes: list = []

    def tearDown(self) -> None:
        for p in self.pipes:
            p.close()
        super().tearDown()

    def start_dns(self, partner_tls_port: int, partner2_tls_port: int | None = None) -> h.Proc:
        args = [self.require_tool("dnsmasq"), "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--no-poll", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1",
                f"--port={self.dns_port}", "--log-facility=-", "--log-queries", "--user=root",
                f"--srv-host=_sips._tcp.partner.test,sip.partner.test,{partner_tls_port},0,0",
                "--host-record=sip.partner.test,127.0.0.1"]
        if partner2_tls_port:
            # partner2.test publishes only `_sip._tcp`: the second look-up of RFC 3263 4.2 (dialled with TLS too).
            args += [f"--srv-host=_sip._tcp.partner2.test,sip.partner.test,{partner2_tls_port},0,0"]
        p = self.start(args, name="dns")
        h.wait_udp_bound("127.0.0.1", self.dns_port, timeout=10, proc=p)
        return p

    def start_pair(self, imp_port: int, verify_client: bool = False, imp_nodes: list | None = None) -> None:
        pki = self.pki_dir
        ecfg = pair.edge_e_yaml(self, self.ports, pki, extra=f"""
federation:
          sip:
            listen: 127.0.0.1:{self.fed_port}
            verify_client: {"true" if verify_client else "false"}
            local_domains: [example.com]
            deny: ["denied.test", "*.denied.test"]
            dns_servers: ["127.0.0.1:{self.dns_port}"]
            connect_timeout: 5s
            trusted_cas: {pki}/ca.crt
""".strip("\n"))
        ccfg = pair.edge_c_yaml(self, self.ports, pki, extra=f"""
federation:
          sip:
            listen: 127.0.0.1:{self.inside_port}
            imp_nodes: {json.dumps(imp_nodes or [f"127.0.0.1:{imp_port}"])}
            dial_timeout: 15s
""".strip("\n"))
        self.ccfg = ccfg
        self.edge_e = pair.start_edge_e(self, ecfg, self.ports)
        self.edge_c = pair.start_edge_c(self, ccfg, self.ports)
        h.wait_port("127.0.0.1", self.fed_port, timeout=10, proc=self.edge_e)
        h.wait_port("127.0.0.1", self.inside_port, timeout=10, proc=self.edge_c)
        self.wait_links()

    def wait_links(self) -> None:
        # Every edge-c worker's link up: IM&P's connection may land on either worker, and a worker asks edge-e
        # for outbound legs over its own link.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
            links = json.loads(body)["link"]["links"] if st == 200 else []
            if len(links) == 2 and all(ln["state"] == "up" for ln in links):
                return
            time.sleep(0.2)
        self.fail("edge-c's links never came up")

    # ---- a subscription outlives a link reconnect ------------------------------------------------------------

    def test_subscription_refresh_across_link_reconnect(self):
        """The link goes while a partner's subscription is established (edge-c killed and restarted): edge-e
        closes the partner's connection, the partner reconnects and its in-dialog refresh (Request-URI: the IM&P
        node's Contact, To tag set) reaches the IM&P node through the new link and is answered."""
        imp = Recorder(answer=True)
        self.pipes.append(imp)
        self.start_pair(imp.port)
        cid, tag = f"sub-{uuid.uuid4().hex}", uuid.uuid4().hex[:8]
        s1 = self.tls_client()
        s1.sendall(sip_request("SUBSCRIBE", "sip:alice@example.com", "sip:bob@partner.test", "sip:alice@example.com",
                               cid, "Event: presence\r\nExpires: 6300\r\n", from_tag=tag))
        self.assertEqual(read_response(s1), 200)
        self.edge_c.send_signal(signal.SIGKILL)
        s1.settimeout(15)
        try:
            self.assertEqual(s1.recv(65536), b"", "edge-e kept a federation flow whose link stream is gone")
        except (ConnectionResetError, ssl.SSLError):
            pass
        s1.close()
        self.edge_c.wait(10)
        self.edge_c = self.start([self.require_binary("edge-c"), "-c", self.ccfg], name="edge-c-again")
        self.edge_c.wait_http(f"http://127.0.0.1:{self.ports.admin_c}/health", timeout=15)
        self.wait_links()
        with self.tls_client() as s2:
            s2.sendall(sip_request("SUBSCRIBE", f"sip:alice@127.0.0.1:{imp.port};transport=tcp",
                                   "sip:bob@partner.test", "sip:alice@example.com", cid,
                                   "Event: presence\r\nExpires: 6300\r\n", from_tag=tag, to_tag="rec", cseq=2))
            self.assertEqual(read_response(s2), 200)
        self.assertEqual(imp.data.count(cid.encode()), 2, "the refresh did not reach the IM&P node")
        self.assertEqual(imp.connections, 2)  # one per flow: the first ended with the link

    def sipp(self, scenario: str, name: str, keys: dict, target: str | None = None,
             port: int | None = None) -> h.Proc:
        args = ["sipp", "-sf", os.path.join(SIP_DIR, scenario), "-t", "t1", "-i", "127.0.0.1", "-m", "1",
                "-timeout", "30", "-nostdin", "-trace_err", "-trace_msg",
                "-message_file", os.path.join(self.tmp, f"{name}-messages.log"),
                "-error_file", os.path.join(self.tmp, f"{name}-errors.log")]
        if port:
            args += ["-p", str(port)]
        if target:
            args.insert(1, target)
        for k, v in keys.items():
            args += ["-key", k, str(v)]
        return self.start(args, name=name)

    def wait_sipp(self, p: h.Proc, timeout: float = 40) -> None:
        rc = p.wait(timeout)
        if rc != 0:
            msgs = ""
            try:
                with open(os.path.join(self.tmp, f"{p.name}-messages.log")) as f:
                    msgs = f.read()[-6000:]
            except OSError:
                pass
            self.fail(f"{p.name} exited {rc}\n{p.tail()}\n{msgs}")

    def metric(self, port: int, name: str, labels: str) -> float:
        _, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        text = body.decode() if isinstance(body, bytes) else body
        m = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def partner_server_ctx(self) -> ssl.SSLContext:
        """TLS as partner.test's SIP server presents it (certificate for partner.test and partner2.test)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{self.pki_dir}/xmpp-partner-chain.crt", f"{self.pki_dir}/xmpp-partner.key")
        return ctx

    def recording_partner(self) -> tuple[Recorder, Pipe]:
        """partner.test's SIP server: a recorder answering 200 behind a TLS terminator (point SRV at term.port)."""
        partner = Recorder(answer=True)
        term = Pipe(partner.port, server_ctx=self.partner_server_ctx())
        self.pipes += [partner, term]
        return partner, term

    def tls_client(self) -> ssl.SSLSocket:
        ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
        raw = socket.create_connection(("127.0.0.1", self.fed_port), timeout=TIMEOUT)
        return ctx.wrap_socket(raw, server_hostname="expe1.example.com")

    # ---- inbound: partner.test -> edge-e -> edge-c -> IM&P ------------------------------------------------

    def test_inbound_message_and_presence(self):
        self.start_pair(self.imp_port)
        imp = self.sipp("fed-uas.xml", "imp-uas", {}, port=self.imp_port)
        h.wait_port("127.0.0.1", self.imp_port, timeout=10, proc=imp)
        ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
        relay = Pipe(self.fed_port, client_ctx=ctx, server_hostname="expe1.example.com")
        self.pipes.append(relay)
        partner = self.sipp("fed-uac.xml", "partner-uac",
                            {"from_user": "bob", "from_domain": "partner.test", "to_user": "alice",
                             "to_domain": "example.com"}, target=f"127.0.0.1:{relay.port}")
        self.wait_sipp(partner)
        self.wait_sipp(imp)
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_sip_federation_sessions_total",
                                            'direction="in",domain="partner.test"'), 1)
        st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/status", timeout=5)
        self.assertEqual(st, 200)
        self.assertIn('"sip":{"listen":"127.0.0.1:' + str(self.fed_port), body.decode())

    # ---- outbound: IM&P -> edge-c -> edge-e -> _sips._tcp.partner.test ------------------------------------

    def test_outbound_message_and_presence_by_srv(self):
        partner_uas = self.sipp("fed-uas.xml", "partner-uas", {}, port=self.partner_port)
        h.wait_port("127.0.0.1", self.partner_port, timeout=10, proc=partner_uas)
        sctx = self.partner_server_ctx()
        term = Pipe(self.partner_port, server_ctx=sctx)
        partner2_port = h.free_port()
        term2 = Pipe(partner2_port, server_ctx=sctx)
        self.pipes += [term, term2]
        dns = self.start_dns(term.port, term2.port)
        self.start_pair(self.imp_port)
        imp = self.sipp("fed-uac.xml", "imp-uac",
                        {"from_user": "alice", "from_domain": "example.com", "to_user": "bob",
                         "to_domain": "partner.test"}, target=f"127.0.0.1:{self.inside_port}")
        self.wait_sipp(imp)
        self.wait_sipp(partner_uas)
        self.assertGreaterEqual(term.accepted, 1)
        self.assertIn("_sips._tcp.partner.test", dns.log_text())
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_sip_federation_sessions_total",
                                            'direction="out",domain="partner.test"'), 1)

        # partner2.test has no `_sips._tcp` record: `_sip._tcp` is asked next and its target dialled with TLS.
        partner2_uas = self.sipp("fed-uas.xml", "partner2-uas", {}, port=partner2_port)
        h.wait_port("127.0.0.1", partner2_port, timeout=10, proc=partner2_uas)
        imp2 = self.sipp("fed-uac.xml", "imp-uac2",
                         {"from_user": "alice", "from_domain": "example.com", "to_user": "carol",
                          "to_domain": "partner2.test"}, target=f"127.0.0.1:{self.inside_port}")
        self.wait_sipp(imp2)
        self.wait_sipp(partner2_uas)
        self.assertGreaterEqual(term2.accepted, 1)
        self.assertIn("_sip._tcp.partner2.test", dns.log_text())
        self.assertGreaterEqual(self.metric(self.ports.admin_e, "edgepair_sip_federation_dns_failures_total",
                                            'stage="sips"'), 1)

    def test_answers_go_back_to_the_imp_node_that_sent_the_request(self):
        """Two IM&P nodes (127.0.0.1 and 127.0.0.2) send requests to the same partner domain, interleaved:
        each node's connection gets the answers to its own requests and none of the other's (seed 001: replies
        stay on the node that sent the request). The partner is a recording TLS server that answers 200."""
        partner, term = self.recording_partner()
        self.start_dns(term.port)
        self.start_pair(self.imp_port, imp_nodes=[f"127.0.0.1:{self.imp_port}", f"127.0.0.2:{self.imp_port}"])
        nodes = {}
        for ip in ("127.0.0.1", "127.0.0.2"):
            s = socket.socket()
            s.bind((ip, 0))
            s.settimeout(TIMEOUT)
            s.connect(("127.0.0.1", self.inside_port))
            nodes[ip] = s
        try:
            for round_ in range(3):
                sent = {}
                for ip, s in nodes.items():
                    cid = f"{ip}-{round_}-{uuid.uuid4().hex}"
                    s.sendall(sip_request("MESSAGE", "sip:bob@partner.test", "sip:alice@example.com",
                                          "sip:bob@partner.test", cid, "Content-Type: text/plain\r\n", body=ip))
                    sent[ip] = cid
                for ip, s in nodes.items():
                    head = read_response_head(s)
                    self.assertTrue(head.startswith(b"SIP/2.0 200 "), head)
                    got = re.search(rb"(?im)^call-id:\s*(\S+)", head).group(1).decode()
                    self.assertEqual(got, sent[ip], f"the node at {ip} got another node's answer")
                    self.assertIn(sent[ip].encode(), partner.data)
        finally:
            for s in nodes.values():
                s.close()
        self.assertGreaterEqual(self.metric(self.ports.admin_c, "edgepair_sip_federation_imp_total",
                                            'direction="out",result="ok"'), 2)

    def test_imp_writes_then_closes(self):
        """IM&P writes a request and closes its connection at once: the request still reaches the partner.
        edge-c is stopped (SIGSTOP) while IM&P writes and closes, so it reads the request and the end of the
        connection in one turn. That is the case where edge-c used to reset the leg's link stream, and the reset
        discarded what was still queued on it (seen in CI: IM&P's 200 to a partner's NOTIFY lost)."""
        partner, term = self.recording_partner()
        self.start_dns(term.port)
        self.start_pair(self.imp_port)
        first, last = f"first-{uuid.uuid4().hex}", f"last-{uuid.uuid4().hex}"
        s = socket.create_connection(("127.0.0.1", self.inside_port), timeout=TIMEOUT)
        try:
            s.sendall(sip_request("MESSAGE", "sip:bob@partner.test", "sip:alice@example.com",
                                  "sip:bob@partner.test", first, "Content-Type: text/plain\r\n", body="one"))
            self.assertEqual(read_response(s), 200)  # the leg to partner.test is up
            self.edge_c.send_signal(signal.SIGSTOP)
            try:
                s.sendall(sip_request("MESSAGE", "sip:bob@partner.test", "sip:alice@example.com",
                                      "sip:bob@partner.test", last, "Content-Type: text/plain\r\n", body="two"))
                s.close()
                time.sleep(0.3)
            finally:
                self.edge_c.send_signal(signal.SIGCONT)
        finally:
            s.close()
        deadline = time.monotonic() + TIMEOUT
        while last.encode() not in partner.data and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn(first.encode(), partner.data)
        self.assertIn(last.encode(), partner.data, "the request IM&P wrote before closing was lost")

    # ---- verify_client: the partner's certificate, not its From, says which domain it speaks for -------------

    def test_verify_client_binds_the_from_domain_to_the_certificate(self):
        """federation.sip.verify_client: a partner presenting a certificate for partner.test (and partner2.test)
        passes with a From in those domains and gets 403 with any other From, although the lists allow it; a
        peer without a certificate is not served. Asserts what reached the IM&P node. Interop of edge-e's check
        with Python's OpenSSL client; the partner is not a real SIP server."""
        imp = Recorder(answer=True)
        self.pipes.append(imp)
        self.start_dns(h.free_port())
        self.start_pair(imp.port, verify_client=True)
        ctx = ssl.create_default_context(cafile=f"{self.pki_dir}/ca.crt")
        ctx.load_cert_chain(f"{self.pki_dir}/xmpp-partner-chain.crt", f"{self.pki_dir}/xmpp-partner.key")
        before = self.metric(self.ports.admin_e, "edgepair_sip_federation_refusals_total", 'reason="not_certified"')
        ok_cid, ok2_cid, spoof_cid, nocert_cid = (f"{k}-{uuid.uuid4().hex}" for k in ("ok", "ok2", "spoof", "nc"))
        raw = socket.create_connection(("127.0.0.1", self.fed_port), timeout=TIMEOUT)
        with ctx.wrap_socket(raw, server_hostname="expe1.example.com") as s:
            s.sendall(sip_request("MESSAGE", "sip:alice@example.com", "sip:bob@partner.test",
                                  "sip:alice@example.com", ok_cid, body="hi"))
            self.assertEqual(read_response(s), 200)
            s.sendall(sip_request("MESSAGE", "sip:alice@example.com", "sip:mallory@elsewhere.test",
                                  "sip:alice@example.com", spoof_cid, body="I am elsewhere.test"))
            self.assertEqual(read_response(s), 403)
            s.sendall(sip_request("MESSAGE", "sip:alice@example.com", "sip:carol@partner2.test",
                                  "sip:alice@example.com", ok2_cid, body="hi"))
            self.assertEqual(read_response(s), 200)
        got = b""
        try:
            with self.tls_client() as s:  # no certificate: TLS 1.3 reports the refusal after the handshake
                s.sendall(sip_request("MESSAGE", "sip:alice@example.com", "sip:bob@partner.test",
                                      "sip:alice@example.com", nocert_cid, body="hi"))
                s.settimeout(5)
                got = s.recv(65536)
        except (ssl.SSLError, OSError):
            pass
        self.assertFalse(got.startswith(b"SIP/2.0"), got)
        deadline = time.monotonic() + TIMEOUT
        while ok2_cid.encode() not in imp.data and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn(ok_cid.encode(), imp.data)
        self.assertIn(ok2_cid.encode(), imp.data)
        self.assertNotIn(spoof_cid.encode(), imp.data, "a From the certificate does not name reached IM&P")
        self.assertNotIn(nocert_cid.encode(), imp.data, "a peer without a certificate reached IM&P")
        self.assertEqual(self.metric(self.ports.admin_e, "edgepair_sip_federation_refusals_total",
                                     'reason="not_certified"'), before + 1)

    # ---- refusals, and no route but to the IM&P node ---------------------------------------------------------

    def test_refusals_and_no_mra_route(self):
        imp = Recorder(answer=True)
        node = Recorder()  # an internal SIP node (where Unified CM would be)
        web = Recorder()   # an internal HTTP server
        self.pipes += [imp, node, web]
        self.start_dns(h.free_port())
        self.start_pair(imp.port)
        refused = {}
        with self.tls_client() as s:
            cases = [
                ("MESSAGE", "sip:alice@example.com", "sip:eve@denied.test", "", 403),
                ("SUBSCRIBE", "sip:alice@example.com", "sip:eve@sub.denied.test", "Event: presence\r\n", 403),
                ("REGISTER", "sip:example.com", "sip:bob@partner.test", "", 403),
                ("MESSAGE", f"sip:x@127.0.0.1:{node.port}", "sip:bob@partner.test", "", 404),
                ("MESSAGE", f"sip:x@127.0.0.1:{web.port}", "sip:bob@partner.test", "", 404),
                ("MESSAGE", "sip:alice@example.com", "sip:bob@partner.test",
                 f"Route: <sip:127.0.0.1:{node.port};transport=tcp;lr>\r\n", 403),
            ]
            for method, ruri, frm, extra, want in cases:
                cid = f"refused-{uuid.uuid4().hex}"
                s.sendall(sip_request(method, ruri, frm, ruri if method != "REGISTER" else frm, cid, extra))
                self.assertEqual(read_response(s), want, f"{method} {ruri} from {frm}")
                refused[cid] = (method, ruri)
            ok_cid = f"permitted-{uuid.uuid4().hex}"
            s.sendall(sip_request("MESSAGE", "sip:alice@example.com", "sip:bob@partner.test",
                                  "sip:alice@example.com", ok_cid, body="hi"))
            self.assertEqual(read_response(s), 200)
        self.assertIn(ok_cid.encode(), imp.data)
        for cid, what in refused.items():
            self.assertNotIn(cid.encode(), imp.data, f"refused {what} reached the IM&P node")
        self.assertEqual(node.connections, 0, "a federated peer reached the internal SIP node")
        self.assertEqual(web.connections, 0, "a federated peer reached the internal HTTP server")
        self.assertEqual(node.data + web.data, b"")
        e, c = self.ports.admin_e, self.ports.admin_c
        self.assertGreaterEqual(self.metric(e, "edgepair_sip_federation_refusals_total", 'reason="denied"'), 2)
        self.assertGreaterEqual(self.metric(e, "edgepair_sip_federation_refusals_total", 'reason="register"'), 1)
        self.assertGreaterEqual(self.metric(e, "edgepair_sip_federation_refusals_total", 'reason="not_local"'), 2)
        self.assertGreaterEqual(self.metric(c, "edgepair_sip_federation_refusals_total", 'reason="route"'), 1)

        # Outbound: a denied target is refused by edge-e before any look-up; edge-c answers IM&P with it.
        with socket.create_connection(("127.0.0.1", self.inside_port), timeout=TIMEOUT) as s:
            s.sendall(sip_request("MESSAGE", "sip:eve@denied.test", "sip:alice@example.com",
                                  "sip:eve@denied.test", f"out-{uuid.uuid4().hex}"))
            self.assertEqual(read_response(s), 403)
        # A domain with no SIP server in DNS: 503 to IM&P, the look-ups counted.
        with socket.create_connection(("127.0.0.1", self.inside_port), timeout=TIMEOUT) as s:
            s.sendall(sip_request("MESSAGE", "sip:x@nowhere.test", "sip:alice@example.com", "sip:x@nowhere.test",
                                  f"out-{uuid.uuid4().hex}"))
            self.assertEqual(read_response(s, timeout=30), 503)
        for stage in ("sips", "sip", "address"):
            self.assertGreaterEqual(self.metric(e, "edgepair_sip_federation_dns_failures_total",
                                                f'stage="{stage}"'), 1, stage)
        # Only an IM&P node may send federation out: another source address is cut off.
        other = socket.socket()
        other.bind(("127.0.0.2", 0))
        other.settimeout(TIMEOUT)
        other.connect(("127.0.0.1", self.inside_port))
        other.sendall(sip_request("MESSAGE", "sip:bob@partner.test", "sip:alice@example.com",
                                  "sip:bob@partner.test", f"out-{uuid.uuid4().hex}"))
        try:
            self.assertEqual(other.recv(65536), b"")
        except ConnectionResetError:
            pass
        other.close()
        self.assertGreaterEqual(self.metric(c, "edgepair_sip_federation_refusals_total", 'reason="not_imp_node"'),
                                1)
        self.assertGreaterEqual(self.metric(e, "edgepair_sip_federation_refusals_total", 'reason="denied"'), 3)
        # edge-e's /status names the same refusals and DNS failures as its /metrics.
        st, _, body = h.http_get(f"http://127.0.0.1:{e}/status", timeout=5)
        self.assertEqual(st, 200)
        fs = json.loads(body)["federation"]["sip"]
        for family, key, label in (("refusals", "edgepair_sip_federation_refusals_total", "reason"),
                                   ("dns_failures", "edgepair_sip_federation_dns_failures_total", "stage")):
            self.assertTrue(fs[family], family)
            for value, n in fs[family].items():
                self.assertEqual(n, self.metric(e, key, f'{label}="{value}"'), f"{family} {value}")
        self.assertGreaterEqual(fs["refusals"]["denied"], 3)
        self.assertGreaterEqual(fs["dns_failures"]["address"], 1)
        # edge-c's /status: its own refusals (a Route past the IM&P node, a source that is no IM&P node).
        st, _, body = h.http_get(f"http://127.0.0.1:{c}/status", timeout=5)
        self.assertEqual(st, 200)
        fc = json.loads(body)["federation"]["sip"]
        self.assertEqual(fc["refusals"]["route"], self.metric(c, "edgepair_sip_federation_refusals_total",
                                                              'reason="route"'))
        self.assertGreaterEqual(fc["refusals"]["route"], 1)
        self.assertGreaterEqual(fc["refusals"]["not_imp_node"], 1)


if __name__ == "__main__":
    h.run_tests()
