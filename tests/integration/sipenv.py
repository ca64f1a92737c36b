"""The SIP topology shared by the SIP and media integration tests (test_sip.py, test_media.py).

Kamailio as Unified CM's SIP side (registrar + record-routing proxy) on 127.0.1.1:<port> over TCP (and UDP when
asked, for internal endpoints such as sipp); the UCM fixture (tools/fixtures/ucm_fixture.py) as
cucm1.example.com so edge-c discovers the node and generates its CEtcp- zone; dnsmasq resolving
cucm1.example.com for edge-c; edge-e (SIP/TLS) and edge-c. Plus a minimal SIP UA over TLS (the MRA client) and
a TCP->TLS relay for sipp, whose Debian build has no TLS transport.

Kamailio's stored bindings are read with kamcmd ul.dump over its ctl socket in the test's temp dir.
"""

from __future__ import annotations

import json
import os
import re
import select
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


def take_sip_message(buf: bytes) -> tuple[SipMsg | None, bytes]:
    """The first whole message of a stream buffer (keep-alive CRLFs skipped) and what follows it."""
    buf = buf.lstrip(b"\r\n")
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, buf
    m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", buf[:end])
    total = end + 4 + (int(m.group(1)) if m else 0)
    if len(buf) < total:
        return None, buf
    return SipMsg(buf[:total]), buf[total:]


class SipUA:
    """One TLS connection to edge-e; send/recv whole messages with bounded waits."""

    def __init__(self, port: int, user: str, cafile: str, source: str | None = None):
        ctx = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10,
                                       source_address=(source, 0) if source else None)
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
            msg, self.buf = take_sip_message(self.buf)
            if msg:
                return msg
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


class PlainSipUA(SipUA):
    """A SIP UA over plain TCP, for an internal endpoint talking to Kamailio directly (not through the pair)."""

    def __init__(self, host: str, port: int, user: str):  # noqa: super().__init__ would dial TLS
        self.sock = socket.create_connection((host, port), timeout=10)
        self.user = user
        self.buf = b""
        self.local = "%s:%d" % self.sock.getsockname()[:2]
        self.contact = f"<sip:{user}@{self.local};transport=tcp>"
        self.tag = uuid.uuid4().hex[:10]
        self.cseq = 0

    def recv(self, timeout: float = 10) -> SipMsg | None:
        try:
            return super().recv(timeout)
        except OSError:
            return None


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


class SipEnv(h.TestCase):
    """A TestCase with the SIP topology: Kamailio (Unified CM's SIP side), dnsmasq, the UCM fixture, the pair."""

    # A class attribute, not only set in setUp: some subclasses (test_sso_sip) skip SipEnv.setUp.
    ucm_addr = UCM_ADDR

    def setUp(self):
        super().setUp()
        for tool in ("kamailio", "kamcmd", "sipp", "dnsmasq"):
            self.require_tool(tool)
        self.pki = h.pki()
        self.ca = f"{self.pki}/ca.crt"

    # ---- topology ----

    def start_kamailio(self, udp: bool = False):
        """udp: Kamailio also listens on UDP at the TCP port (for internal endpoints, e.g. sipp, over UDP).
        It listens on self.ucm_addr (UCM_ADDR unless a test moves it, e.g. into a network namespace)."""
        addr = self.ucm_addr
        self.kport = h.free_port(addr, udp=udp)
        self.ktlsport = h.free_port(addr)
        self.ctl = os.path.join(self.tmp, "kamailio_ctl")
        tls_cfg = os.path.join(self.tmp, "kamailio-tls.cfg")
        with open(os.path.join(SIP_DIR, "tls.cfg.in")) as f:
            text = f.read().replace("@CERT@", f"{self.pki}/callmanager-cucm1-chain.crt")
        with open(tls_cfg, "w") as f:
            f.write(text.replace("@KEY@", f"{self.pki}/callmanager-cucm1.key"))
        with open(os.path.join(SIP_DIR, "kamailio.cfg.in")) as f:
            cfg = f.read()
        for k, v in {"@ADDR@": addr, "@PORT@": str(self.kport), "@MPATH@": KAM_MODULES, "@CTL@": self.ctl,
                     "@TLSPORT@": str(self.ktlsport), "@TLSCFG@": tls_cfg}.items():
            cfg = cfg.replace(k, v)
        if udp:
            tcp_listen = f"listen=tcp:{addr}:{self.kport}\n"
            cfg = cfg.replace(tcp_listen, tcp_listen + f"listen=udp:{addr}:{self.kport}\n", 1)
        path = os.path.join(self.tmp, "kamailio.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        self.kam = self.start(["kamailio", "-DD", "-E", "-f", path, "-Y", self.tmp, "-w", self.tmp], name="kamailio")
        self.kam.wait_port(addr, self.kport, timeout=15)
        self.kam.wait_port(addr, self.ktlsport, timeout=15)

    def start_dns(self):
        _, self.dport = h.start_dnsmasq(
            self.start, "127.0.2.53",
            lambda port: ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces", "--user=root",
                          "--listen-address=127.0.2.53", f"--port={port}", "--pid-file=",
                          f"--address=/cucm1.example.com/{UCM_ADDR}", "--log-queries"])

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

    def start_pair(self, path_headers: bool = False, edge_c: bool = True, verify: bool = False,
                   extra_e: str = "", extra_c: str = "", workers: int = 1, log_level: str = "debug",
                   sip_tls_e: str = "", sip_c: str = ""):
        """extra_e / extra_c: more top-level YAML for edge-e / edge-c (each line indented by 8 spaces).
        sip_tls_e / sip_c: more keys for edge-e's listeners.sip_tls / edge-c's sip mapping (", key: value")."""
        self.ports = pair.Ports()
        self.ecfg = pair.edge_e_yaml(self, self.ports, self.pki, workers=workers, extra=extra_e)
        if sip_tls_e:
            with open(self.ecfg) as f:
                text = f.read()
            listen = f"sip_tls: {{listen: 127.0.0.1:{self.ports.sip}}}"
            with open(self.ecfg, "w") as f:
                f.write(text.replace(listen, listen[:-1] + sip_tls_e + "}", 1))
        self._set_log_level(self.ecfg, log_level)
        self.edge_e = pair.start_edge_e(self, self.ecfg, self.ports)
        extra = f"""
        dns: {{servers: ["127.0.2.53:{self.dport}"]}}
        sip: {{path_headers: {"on" if path_headers else "off"}{sip_c}}}
        {extra_c}
        """
        ccfg = pair.edge_c_yaml(self, self.ports, self.pki, workers=workers, extra=extra)
        # edge_c_yaml writes its own discovery section: add the publisher to it.
        with open(ccfg) as f:
            text = f.read()
        text = text.replace("discovery:\n", "discovery:\n  unified_cm:\n"
                            f"    - {{address: cucm1.example.com, port: {self.fport}, username: axladmin, "
                            f"password: Axl-Passw0rd, tls_verify: {'true' if verify else 'false'}}}\n", 1)
        with open(ccfg, "w") as f:
            f.write(text)
        self._set_log_level(ccfg, log_level)
        self.ccfg = ccfg
        if edge_c:
            self.start_edge_c()

    @staticmethod
    def _set_log_level(cfg: str, level: str):
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("log: {level: debug}", f"log: {{level: {level}}}", 1))

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

    def sipp(self, scenario: str, relay: "TlsRelay | None", keys: dict, extra: list | None = None,
             name: str = "sipp", target: str | None = None, transport: str = "t1", local_ip: str = "127.0.0.1"):
        """sipp running scenario (-m 1): over TCP to relay (the TLS relay to edge-e), or when relay is None,
        with transport (-t) to target ("ip:port", or None for a UAS that waits for calls)."""
        dest = [f"127.0.0.1:{relay.port}"] if relay is not None else ([target] if target else [])
        args = ["sipp", "-sf", os.path.join(SIP_DIR, scenario), "-t", transport, *dest,
                "-i", local_ip, "-m", "1", "-timeout", "30", "-nostdin", "-trace_err", "-trace_msg",
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

    def metric(self, port: int, name: str, labels: dict | None = None) -> float:
        """Sum of the samples of metric `name` (every label set, or those with all of `labels`)."""
        _, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if not m or not (m.group(1) == name or (labels is None and m.group(1).startswith(name))):
                continue
            if labels:
                got = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
                if any(got.get(k) != v for k, v in labels.items()):
                    continue
            total += float(m.group(3))
        return total
