"""SIP over MRA through the pair (issue #6), with real peers.

Topology (loopback): Kamailio as Unified CM's SIP side (registrar + record-routing proxy) on 127.0.1.1:<port>
over TCP; the UCM fixture (tools/fixtures/ucm_fixture.py) as cucm1.example.com so edge-c discovers the node
and generates its CEtcp- zone; dnsmasq resolving cucm1.example.com for edge-c; edge-e (SIP/TLS) and edge-c.

Clients: sipp (Debian sip-tester) for the scripted client. That build has no TLS transport, so sipp speaks TCP
to a small TLS relay in this test that opens one TLS connection to edge-e 5061 per sipp connection (the pair
only ever sees TLS). The called side and the malformed batch use a minimal SIP UA over Python ssl.

Kamailio's stored bindings are read with kamcmd ul.dump over its ctl socket in the test's temp dir.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid

import harness as h
import pair

KAM_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
FIXTURE = os.path.join(h.SRC, "tools", "fixtures", "ucm_fixture.py")
SIP_DIR = os.path.join(h.SRC, "tests", "integration", "sip")
UCM_ADDR = "127.0.1.1"
DOMAIN = "example.com"


# ------------------------------------------------------------------------------------------------------------
# a minimal SIP UA over TLS


class SipMsg:
    def __init__(self, raw: bytes):
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.start = lines[0]
        self.headers: list[tuple[str, str]] = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers.append((k.strip(), v.strip()))
        self.body = body
        self.raw = raw

    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start.split()[1]) if not self.is_request else 0

    @property
    def method(self) -> str:
        return self.start.split()[0] if self.is_request else self.get("CSeq").split()[1]

    def get(self, name: str, default: str = "") -> str:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class SipUA:
    """One TLS connection to edge-e; send/recv whole messages with bounded waits."""

    def __init__(self, port: int, user: str, cafile: str):
        ctx = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="expe1.example.com")
        self.user = user
        self.buf = b""
        self.local = "%s:%d" % self.sock.getsockname()[:2]
        self.contact = f"<sip:{user}@{self.local};transport=tls>"
        self.tag = uuid.uuid4().hex[:10]
        self.cseq = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, text: str, body: str = ""):
        text = text.strip("\n").replace("\n", "\r\n")
        msg = text + f"\r\nContent-Length: {len(body.encode())}\r\n\r\n" + body
        self.sock.sendall(msg.encode())

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def recv(self, timeout: float = 10) -> SipMsg | None:
        """The next message (keep-alive CRLFs skipped); None when the peer closed."""
        deadline = time.monotonic() + timeout
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", self.buf[:end])
                n = int(m.group(1)) if m else 0
                total = end + 4 + n
                if len(self.buf) >= total:
                    raw, self.buf = self.buf[:total], self.buf[total:]
                    return SipMsg(raw)
            left = deadline - time.monotonic()
            if left <= 0:
                raise h.HarnessError(f"{self.user}: no SIP message within {timeout}s (buffer {self.buf[:200]!r})")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, ConnectionError):
                return None
            if not data:
                return None
            self.buf += data

    def recv_final(self, method: str, timeout: float = 10) -> SipMsg:
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.1, deadline - time.monotonic()))
            if m is None:
                raise h.HarnessError(f"{self.user}: connection closed waiting for the {method} response")
            if not m.is_request and m.method == method and m.status >= 200:
                return m

    def branch(self) -> str:
        return "z9hG4bK" + uuid.uuid4().hex

    def register(self, expires: int = 3600, call_id: str | None = None) -> SipMsg:
        self.cseq += 1
        self.reg_call_id = call_id or getattr(self, "reg_call_id", None) or uuid.uuid4().hex
        self.send(f"""
REGISTER sip:{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {self.local};branch={self.branch()}
Max-Forwards: 70
From: <sip:{self.user}@{DOMAIN}>;tag={self.tag}
To: <sip:{self.user}@{DOMAIN}>
Call-ID: {self.reg_call_id}
CSeq: {self.cseq} REGISTER
Contact: {self.contact}
Expires: {expires}
""")
        return self.recv_final("REGISTER")

    def respond(self, req: SipMsg, status: int, reason: str, to_tag: str | None = None, contact: bool = False,
                body: str = ""):
        lines = [f"SIP/2.0 {status} {reason}"]
        for v in req.all("Via"):
            lines.append(f"Via: {v}")
        for v in req.all("Record-Route"):
            lines.append(f"Record-Route: {v}")
        lines.append(f"From: {req.get('From')}")
        to = req.get("To")
        if to_tag and "tag=" not in to:
            to += f";tag={to_tag}"
        lines.append(f"To: {to}")
        lines.append(f"Call-ID: {req.get('Call-ID')}")
        lines.append(f"CSeq: {req.get('CSeq')}")
        if contact:
            lines.append(f"Contact: {self.contact}")
        if body:
            lines.append("Content-Type: application/sdp")
        self.send("\n".join(lines), body)


SDP = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n"


def answer_call(ua: SipUA, errors: list, hangup: bool = False):
    """Callee: INVITE -> 180, 200 -> ACK; then wait for BYE (or send it when hangup)."""
    try:
        inv = ua.recv(15)
        if inv is None or not inv.is_request or inv.method != "INVITE":
            raise AssertionError(f"callee {ua.user}: expected INVITE, got {inv and inv.start}")
        ua.invite = inv
        tag = uuid.uuid4().hex[:8]
        ua.respond(inv, 180, "Ringing", tag, contact=True)
        ua.respond(inv, 200, "OK", tag, contact=True, body=SDP)
        ack = ua.recv(10)
        if ack is None or ack.method != "ACK":
            raise AssertionError(f"callee {ua.user}: expected ACK, got {ack and ack.start}")
        if hangup:
            # In-dialog BYE from the callee: the route set is the Record-Route list as received.
            routes = "".join(f"Route: {r}\n" for r in inv.all("Record-Route"))
            caller_contact = re.search(r"<([^>]+)>", inv.get("Contact")).group(1)
            ua.send(f"""
BYE {caller_contact} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
{routes}Max-Forwards: 70
From: {inv.get('To')};tag={tag}
To: {inv.get('From')}
Call-ID: {inv.get('Call-ID')}
CSeq: 1 BYE
""".replace("\n\n", "\n"))
            r = ua.recv_final("BYE")
            if r.status != 200:
                raise AssertionError(f"callee BYE answered {r.start}")
        else:
            bye = ua.recv(10)
            if bye is None or bye.method != "BYE":
                raise AssertionError(f"callee {ua.user}: expected BYE, got {bye and bye.start}")
            ua.respond(bye, 200, "OK")
    except Exception as e:  # noqa: BLE001 - reported by the test thread
        errors.append(e)


# ------------------------------------------------------------------------------------------------------------
# TLS relay for sipp (TCP in, TLS out to edge-e)


class TlsRelay:
    def __init__(self, target_port: int, cafile: str):
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.lsock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._pump, args=(c,), daemon=True).start()

    def _pump(self, c: socket.socket):
        try:
            raw = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            t = self.ctx.wrap_socket(raw, server_hostname="expe1.example.com")
        except OSError:
            c.close()
            return
        c.setblocking(False)
        t.setblocking(False)
        try:
            while not self.stop:
                r, _, _ = select.select([c, t], [], [], 0.2)
                for s in r:
                    try:
                        data = s.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        continue
                    if not data:
                        return
                    (t if s is c else c).setblocking(True)
                    (t if s is c else c).sendall(data)
                    (t if s is c else c).setblocking(False)
                while t.pending():
                    data = t.recv(65536)
                    c.setblocking(True)
                    c.sendall(data)
                    c.setblocking(False)
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()
            t.close()

    def close(self):
        self.stop = True
        self.lsock.close()


# ------------------------------------------------------------------------------------------------------------


class SipOverMra(h.TestCase):
    def setUp(self):
        super().setUp()
        for tool in ("kamailio", "kamcmd", "sipp", "dnsmasq"):
            self.require_tool(tool)
        self.pki = h.pki()
        self.ca = f"{self.pki}/ca.crt"

    # ---- topology ----

    def start_kamailio(self):
        self.kport = h.free_port(UCM_ADDR)
        self.ktlsport = h.free_port(UCM_ADDR)
        self.ctl = os.path.join(self.tmp, "kamailio_ctl")
        tls_cfg = os.path.join(self.tmp, "kamailio-tls.cfg")
        with open(os.path.join(SIP_DIR, "tls.cfg.in")) as f:
            text = f.read().replace("@CERT@", f"{self.pki}/callmanager-cucm1-chain.crt")
        with open(tls_cfg, "w") as f:
            f.write(text.replace("@KEY@", f"{self.pki}/callmanager-cucm1.key"))
        with open(os.path.join(SIP_DIR, "kamailio.cfg.in")) as f:
            cfg = f.read()
        for k, v in {"@ADDR@": UCM_ADDR, "@PORT@": str(self.kport), "@MPATH@": KAM_MODULES, "@CTL@": self.ctl,
                     "@TLSPORT@": str(self.ktlsport), "@TLSCFG@": tls_cfg}.items():
            cfg = cfg.replace(k, v)
        path = os.path.join(self.tmp, "kamailio.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        self.kam = self.start(["kamailio", "-DD", "-E", "-f", path, "-Y", self.tmp, "-w", self.tmp], name="kamailio")
        self.kam.wait_port(UCM_ADDR, self.kport, timeout=15)
        self.kam.wait_port(UCM_ADDR, self.ktlsport, timeout=15)

    def start_dns(self):
        self.dport = h.free_port("127.0.2.53", udp=True)
        self.start(["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces", "--user=root",
                    "--listen-address=127.0.2.53", f"--port={self.dport}", "--pid-file=",
                    f"--address=/cucm1.example.com/{UCM_ADDR}", "--log-queries"], name="dnsmasq")
        time.sleep(0.3)

    def start_fixture(self, mixed: bool = False):
        self.fport = h.free_port(UCM_ADDR)
        cluster = {
            "name": "cucm-cluster-1", "version": "14.0.1.10000-20", "security_mode": 1 if mixed else 0,
            "nodes": [{"name": "cucm1.example.com", "address": UCM_ADDR, "type": "ucm", "publisher": True,
                       "sip_port": self.kport, "sip_tls_port": self.ktlsport}],
            "axl_users": {"axladmin": {"password": "Axl-Passw0rd", "roles": ["axl"]}},
            "end_users": {},
        }
        path = os.path.join(self.tmp, "cluster.json")
        with open(path, "w") as f:
            json.dump(cluster, f)
        self.fixture = self.start(["/usr/bin/python3", FIXTURE, "--cluster", path, "--node", "cucm1.example.com",
                                   "--listen", f"{UCM_ADDR}:{self.fport}", "--cert",
                                   f"{self.pki}/tomcat-cucm1-chain.crt", "--key", f"{self.pki}/tomcat-cucm1.key"],
                                  name="ucm-fixture")
        self.fixture.wait_port(UCM_ADDR, self.fport, timeout=15)

    def start_pair(self, path_headers: bool = False, edge_c: bool = True, verify: bool = False):
        self.ports = pair.Ports()
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki, workers=1)
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        extra = f"""
        dns: {{servers: ["127.0.2.53:{self.dport}"]}}
        sip: {{path_headers: {"on" if path_headers else "off"}}}
        """
        ccfg = pair.edge_c_yaml(self, self.ports, self.pki, workers=1, extra=extra)
        # edge_c_yaml writes its own discovery section: add the publisher to it.
        with open(ccfg) as f:
            text = f.read()
        text = text.replace("discovery:\n", "discovery:\n  unified_cm:\n"
                            f"    - {{address: cucm1.example.com, port: {self.fport}, username: axladmin, "
                            f"password: Axl-Passw0rd, tls_verify: {'true' if verify else 'false'}}}\n", 1)
        with open(ccfg, "w") as f:
            f.write(text)
        self.ccfg = ccfg
        if edge_c:
            self.start_edge_c()

    def start_edge_c(self, zone: str = "CEtcp-cucm1.example.com"):
        self.edge_c = pair.start_edge_c(self, self.ccfg, self.ports)
        deadline = time.monotonic() + 30
        while True:
            st, _, body = h.http_get(f"http://127.0.0.1:{self.ports.admin_c}/status", timeout=5)
            if st == 200 and zone.encode() in body and self.edge_e_link_up():
                return
            if time.monotonic() > deadline:
                raise h.HarnessError(f"edge-c never discovered cucm1 / link never up: {body[:2000]!r}")
            time.sleep(0.3)

    def edge_e_link_up(self) -> bool:
        st, _, _ = h.http_get(f"http://127.0.0.1:{self.ports.admin_e}/ready", timeout=5)
        return st == 200

    def full(self, path_headers: bool = False, mixed: bool = False):
        self.start_kamailio()
        self.start_dns()
        self.start_fixture(mixed)
        self.start_pair(path_headers, edge_c=not mixed, verify=mixed)
        if mixed:
            self.start_edge_c("CEtls-cucm1.example.com")

    # ---- helpers ----

    def ul_dump(self) -> str:
        r = subprocess.run(["kamcmd", "-s", f"unix:{self.ctl}", "ul.dump"], capture_output=True, text=True,
                           timeout=10)
        return r.stdout

    def bindings(self, user: str) -> list[dict]:
        """Contacts of AOR `user` as Kamailio stores them (Address, Path)."""
        out, cur, in_aor = [], None, False
        for line in self.ul_dump().splitlines():
            s = line.strip()
            if s.lower().startswith("aor:"):
                in_aor = s.split(":", 1)[1].strip() == user
            elif in_aor and s.startswith("Address:"):
                cur = {"Address": s.split(":", 1)[1].strip()}
                out.append(cur)
            elif in_aor and cur is not None and ":" in s:
                k, v = s.split(":", 1)
                cur.setdefault(k.strip(), v.strip())
        return out

    def wait_bindings(self, user: str, pred, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            b = self.bindings(user)
            if pred(b):
                return b
            if time.monotonic() > deadline:
                raise h.HarnessError(f"bindings of {user} never matched: {b}\n{self.ul_dump()}")
            time.sleep(0.2)

    def sipp(self, scenario: str, relay: TlsRelay, keys: dict, extra: list | None = None, name: str = "sipp"):
        args = ["sipp", "-sf", os.path.join(SIP_DIR, scenario), "-t", "t1", f"127.0.0.1:{relay.port}",
                "-i", "127.0.0.1", "-m", "1", "-timeout", "30", "-nostdin", "-trace_err", "-trace_msg",
                "-message_file", os.path.join(self.tmp, f"{name}-messages.log"),
                "-error_file", os.path.join(self.tmp, f"{name}-errors.log")]
        for k, v in keys.items():
            args += ["-key", k, str(v)]
        return self.start(args + (extra or []), name=name)

    def wait_exit(self, p: h.Proc, timeout: float = 40) -> int:
        rc = p.wait(timeout)
        if rc != 0:
            msgs = ""
            try:
                with open(os.path.join(self.tmp, f"{p.name}-messages.log")) as f:
                    msgs = f.read()[-6000:]
            except OSError:
                pass
            raise h.HarnessError(f"{p.name} exited {rc}\n{p.tail()}\n{msgs}")
        return rc

    def metric(self, port: int, name: str) -> float:
        _, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name):
                total += float(line.rsplit(" ", 1)[1])
        return total

    # ---- tests ----

    def _register_cycle(self, path_headers: bool, mixed: bool = False):
        self.full(path_headers, mixed)
        transport = "tls" if mixed else "tcp"
        relay = TlsRelay(self.ports.sip, self.ca)
        try:
            p = self.sipp("register.xml", relay, {"user": "alice", "domain": DOMAIN}, ["-d", "3000"])
            b = self.wait_bindings("alice", lambda b: len(b) == 1, timeout=15)
            addr = b[0]["Address"]
            if path_headers:
                self.assertIn("sip:alice@127.0.0.1:", addr, b)  # the client's own Contact, kept
                self.assertIn("lr", b[0].get("Path", ""), b)
                self.assertRegex(b[0].get("Path", ""), r"<sip:[a-z2-7]{20,}@127\.0\.0\.1:\d+;transport=" + transport + ";lr>")
            else:
                self.assertRegex(addr, r"^sip:[a-z2-7]{20,}@127\.0\.0\.1:\d+;transport=" + transport + ";epc=0$", b)
                self.assertNotIn("alice@", addr)
                self.assertIn(b[0].get("Path", "").strip(), ("", "<null>", "[not set]"), b)
            self.wait_exit(p)
            # Expires 0 removed the binding.
            self.wait_bindings("alice", lambda b: len(b) == 0, timeout=10)
        finally:
            relay.close()

    def test_register_contact_rewrite(self):
        self._register_cycle(False)

    def test_register_path_headers(self):
        self._register_cycle(True)

    def test_register_tls_zone_mixed_mode(self):
        # Mixed-mode cluster: edge-c uses the CEtls- zone (TLS to sip_tls_port, certificate verified because
        # discovery ran with tls_verify on) and the stored binding says transport=tls.
        self._register_cycle(False, mixed=True)
        self.assertIn("over TLS", self.edge_c.log_text())

    def test_call_both_directions_and_flow_removal(self):
        self.full()
        bob = SipUA(self.ports.sip, "bob", self.ca)
        carol = SipUA(self.ports.sip, "carol", self.ca)
        try:
            self.assertEqual(bob.register().status, 200)
            r = carol.register()
            self.assertEqual(r.status, 200)
            # The client sees its own Contact in the 200, not the rewritten one Kamailio stores.
            self.assertIn(f"sip:carol@{carol.local}", r.get("Contact"))

            # 1. sipp (alice, client -> Unified CM INVITE) calls bob (Unified CM -> client INVITE); alice hangs up.
            relay = TlsRelay(self.ports.sip, self.ca)
            errors: list = []
            t = threading.Thread(target=answer_call, args=(bob, errors), daemon=True)
            t.start()
            p = self.sipp("call.xml", relay, {"user": "alice", "domain": DOMAIN, "callee": "bob"}, name="sipp-call")
            self.wait_exit(p)
            t.join(15)
            self.assertFalse(t.is_alive(), "callee thread stuck")
            self.assertEqual(errors, [])
            # bob got the Request-URI he registered, and edge-c record-routed.
            self.assertIn(f"sip:bob@{bob.local}", bob.invite.start)
            self.assertTrue(any("@127.0.0.1:" in rr for rr in bob.invite.all("Record-Route")))
            relay.close()

            # 2. carol calls bob's line from the Python UA; bob hangs up (BYE from Unified CM to carol).
            errors = []
            t = threading.Thread(target=answer_call, args=(bob, errors, True), daemon=True)
            t.start()
            call_id = uuid.uuid4().hex
            carol.send(f"""
INVITE sip:bob@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {carol.local};branch={carol.branch()}
Max-Forwards: 70
From: <sip:carol@{DOMAIN}>;tag=c1
To: <sip:bob@{DOMAIN}>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: {carol.contact}
Content-Type: application/sdp
""", SDP)
            final = None
            while final is None:
                m = carol.recv(10)
                self.assertIsNotNone(m, "carol's connection closed during the call")
                if not m.is_request and m.method == "INVITE" and m.status >= 200:
                    final = m
            self.assertEqual(final.status, 200, final.raw)
            routes = "".join(f"Route: {r}\n" for r in reversed(final.all("Record-Route")))
            callee = re.search(r"<([^>]+)>", final.get("Contact")).group(1)
            carol.send(f"""
ACK {callee} SIP/2.0
Via: SIP/2.0/TLS {carol.local};branch={carol.branch()}
{routes}Max-Forwards: 70
From: <sip:carol@{DOMAIN}>;tag=c1
To: {final.get('To')}
Call-ID: {call_id}
CSeq: 1 ACK
""".replace("\n\n", "\n"))
            bye = carol.recv(10)
            self.assertIsNotNone(bye)
            self.assertEqual(bye.start.split()[0], "BYE", bye.raw)
            carol.respond(bye, 200, "OK")
            t.join(15)
            self.assertFalse(t.is_alive(), "callee thread stuck")
            self.assertEqual(errors, [])

            # 3. UPDATE is refused (501) by the pair, in-dialog or not.
            carol.send(f"""
UPDATE sip:bob@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {carol.local};branch={carol.branch()}
Max-Forwards: 70
From: <sip:carol@{DOMAIN}>;tag=c1
To: <sip:bob@{DOMAIN}>
Call-ID: {call_id}
CSeq: 3 UPDATE
""")
            self.assertEqual(carol.recv_final("UPDATE").status, 501)

            # 4. bob disconnects: his flow is gone, a call to him fails fast instead of hanging.
            bob.close()
            time.sleep(0.5)
            carol.send(f"""
INVITE sip:bob@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {carol.local};branch={carol.branch()}
Max-Forwards: 70
From: <sip:carol@{DOMAIN}>;tag=c2
To: <sip:bob@{DOMAIN}>
Call-ID: {uuid.uuid4().hex}
CSeq: 1 INVITE
Contact: {carol.contact}
""")
            r = carol.recv_final("INVITE", timeout=10)
            self.assertGreaterEqual(r.status, 400, r.raw)
            self.assertIn(r.status, (430, 480, 404, 408, 503), r.raw)
        finally:
            bob.close()
            carol.close()

    def test_malformed_batch_and_no_link(self):
        self.start_kamailio()
        self.start_dns()
        self.start_fixture()
        self.start_pair(edge_c=False)
        # No link yet: a request gets 503 from edge-e, not a hang.
        ua = SipUA(self.ports.sip, "dave", self.ca)
        self.assertEqual(ua.register().status, 503)
        ua.close()
        self.start_edge_c()

        def req(start="REGISTER sip:example.com SIP/2.0", extra="", via=None, cl=None, body=""):
            via = via if via is not None else "Via: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bK" + uuid.uuid4().hex
            lines = [start, via, "Max-Forwards: 70", "From: <sip:eve@example.com>;tag=1",
                     "To: <sip:eve@example.com>", "Call-ID: " + uuid.uuid4().hex, "CSeq: 1 " + start.split()[0]]
            if extra:
                lines.append(extra)
            lines.append(f"Content-Length: {len(body) if cl is None else cl}")
            return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

        # (name, bytes, outcome): "400"-class status expected, or "close".
        batch = [
            ("ncl negative Content-Length", req(cl="-999"), "close_or_400"),
            ("no Content-Length", b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKx\r\n"
                                  b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n\r\n",
             "close_or_400"),
            ("binary garbage", bytes(range(256)) * 4, "close"),
            ("HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "close"),
            ("badvers SIP/7.0", req(start="OPTIONS sip:a@example.com SIP/7.0"), 505),
            ("unknown scheme", req(start="OPTIONS nobody:a@example.com SIP/2.0"), 416),
            ("two Call-IDs", req(extra="Call-ID: second"), 400),
            ("CSeq method mismatch", req(start="INVITE sip:b@example.com SIP/2.0").replace(b"CSeq: 1 INVITE",
                                                                                             b"CSeq: 1 OPTIONS"), 400),
            ("Max-Forwards 300", req().replace(b"Max-Forwards: 70", b"Max-Forwards: 300"), 400),
            ("two Max-Forwards", req(extra="Max-Forwards: 69"), 400),
            ("escaped headers in Request-URI", req(start="OPTIONS sip:a@example.com?Route=%3Csip:x%3E SIP/2.0"), 400),
            ("no branch", req(via="Via: SIP/2.0/TLS 192.0.2.1:5061"), 400),
            ("multicast Via", req(via="Via: SIP/2.0/TLS 224.0.0.1:5061;branch=z9hG4bKmc"), 400),
            ("huge message", req(body="x" * (200 * 1024)), "close_or_413"),
            ("no From tag", req().replace(b";tag=1", b""), 400),
        ]
        before = self.metric(self.ports.admin_e, "edgepair_sip_errors_total")
        for name, data, outcome in batch:
            with self.subTest(name):
                u = SipUA(self.ports.sip, "eve", self.ca)
                try:
                    try:
                        u.send_raw(data)
                    except (OSError, ssl.SSLError):
                        pass  # edge-e may close before a large message is fully sent
                    m = u.recv(5)
                finally:
                    u.close()
                if outcome == "close":
                    self.assertIsNone(m, f"{name}: expected close, got {m and m.start}")
                elif isinstance(outcome, int):
                    self.assertIsNotNone(m, f"{name}: closed without a response")
                    self.assertEqual(m.status, outcome, m.raw)
                else:
                    self.assertTrue(m is None or 400 <= m.status < 600, f"{name}: {m and m.start}")
        self.assertTrue(self.edge_e.alive, "edge-e died on the malformed batch")
        self.assertTrue(self.edge_c.alive, "edge-c died on the malformed batch")
        after = self.metric(self.ports.admin_e, "edgepair_sip_errors_total")
        self.assertGreaterEqual(after - before, len(batch) - 1)
        # Keep-alive ping answered by edge-e, and edge-e still serves a good REGISTER.
        ua = SipUA(self.ports.sip, "frank", self.ca)
        ua.send_raw(b"\r\n\r\n")
        ua.sock.settimeout(5)
        self.assertEqual(ua.sock.recv(16), b"\r\n")
        self.assertEqual(ua.register().status, 200)
        ua.close()


if __name__ == "__main__":
    h.run_tests()
