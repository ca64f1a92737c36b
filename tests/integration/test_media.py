"""Call media through the pair (issue #9), with real peers.

Topology (loopback, on top of sipenv.py's SIP topology):

  MRA client (this test)                edge-e                         edge-c                  internal endpoint
  SIP/TLS from 127.0.5.1  ---------->  5061  ===== link (TLS) =====>  SIP  --> Kamailio ---->  sipp (127.0.3.1, UDP)
  SRTP 127.0.5.1:<even>   <--------->  127.0.4.1:<media.ports>  <-- traversal 127.0.0.1 -->  127.0.0.1:<ports>  <--> RTP

- Kamailio plays Unified CM (registrar + record-routing proxy), listening on TCP for edge-c and on UDP for the
  internal endpoint.
- The internal endpoint is sipp (Debian sip-tester 3.6.1: no TLS, no SRTP): registered at Kamailio by
  sip/media-register.xml; answering calls with sip/media-uas*.xml and -rtp_echo (every RTP packet is echoed to
  its sender), or calling with sip/media-uac.xml, which plays /usr/share/sip-tester/g711a.pcap (PCMA, PT 8).
  sipp does not echo RTCP, so the test binds the RTCP port (sipp's media port + 1) itself and echoes RTCP.
- The MRA client is the test's own SIP UA over TLS (sipenv.SipUA, bound to 127.0.5.1) with SRTP from
  python3-pylibsrtp (libsrtp2).
- edge-e's media.public_address is a documentation address (198.51.100.7) that only appears in SDP: the test
  plays the static NAT in front of edge-e and sends to media.listen (127.0.4.1) at the port the SDP names.

Every wait is bounded; assertions are on packet bytes, SDP lines and counters.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import threading
import time
import uuid

import harness as h
from sipenv import DOMAIN, SIP_DIR, UCM_ADDR, SipEnv, SipMsg, SipUA

try:
    import pylibsrtp
except ImportError:  # skipped (or failed under CI) in setUp
    pylibsrtp = None

CLIENT_IP = "127.0.5.1"      # the MRA client's address (SIP connection and media)
E_MEDIA_IP = "127.0.4.1"     # edge-e media.listen (the DMZ's outside interface)
E_PUBLIC = "198.51.100.7"    # edge-e media.public_address (static NAT: written in SDP only)
C_MEDIA_IP = "127.0.0.1"     # edge-c media.address (= edge-c's link source address, which edge-e checks)
TRAVERSAL_IP = "127.0.0.1"   # edge-e media.traversal_listen
INTERNAL_IP = "127.0.3.1"    # the internal endpoint (sipp)
PCAP = "/usr/share/sip-tester/g711a.pcap"

SUITES = {"AES_CM_128_HMAC_SHA1_80": 1, "AES_CM_128_HMAC_SHA1_32": 2}  # -> pylibsrtp profile
ICE_ATTRS = ("candidate", "ice-ufrag", "ice-pwd", "ice-options", "remote-candidates", "ice-lite")


# ------------------------------------------------------------------------------------------------------------
# SDP, RTP, SRTP helpers


class Sdp:
    def __init__(self, body: bytes | str):
        text = body.decode() if isinstance(body, bytes) else body
        self.lines = [ln for ln in re.split(r"\r?\n", text) if ln]
        self.session: list[str] = []
        self.media: list[list[str]] = []
        for ln in self.lines:
            if ln.startswith("m="):
                self.media.append([ln])
            elif self.media:
                self.media[-1].append(ln)
            else:
                self.session.append(ln)

    def all(self, prefix: str) -> list[str]:
        return [ln for ln in self.lines if ln.startswith(prefix)]

    def origin_address(self) -> str:
        return self.all("o=")[0].split()[-1]

    def m(self, i: int = 0) -> tuple[str, int, str, list[str]]:
        f = self.media[i][0][2:].split()
        return f[0], int(f[1]), f[2], f[3:]

    def attrs(self, i: int, name: str) -> list[str]:
        out = []
        for ln in self.media[i][1:]:
            if ln.startswith("a="):
                n, _, v = ln[2:].partition(":")
                if n == name:
                    out.append(v)
        return out


class Crypto:
    def __init__(self, tag: int, suite: str, key: bytes):
        self.tag, self.suite, self.key = tag, suite, key

    @staticmethod
    def new(tag: int = 1, suite: str = "AES_CM_128_HMAC_SHA1_80") -> "Crypto":
        return Crypto(tag, suite, os.urandom(30))

    @staticmethod
    def parse(value: str) -> "Crypto":
        m = re.fullmatch(r"(\d+) (\S+) inline:([A-Za-z0-9+/=]+)(\|\S+)*( .*)?", value.strip())
        if not m:
            raise AssertionError(f"malformed a=crypto:{value}")
        return Crypto(int(m.group(1)), m.group(2), base64.b64decode(m.group(3)))

    def line(self) -> str:
        return f"a=crypto:{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"

    def session(self, outbound: bool) -> "pylibsrtp.Session":
        P = pylibsrtp.Policy
        return pylibsrtp.Session(P(key=self.key, ssrc_type=P.SSRC_ANY_OUTBOUND if outbound else P.SSRC_ANY_INBOUND,
                                   srtp_profile=SUITES[self.suite]))


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def rtcp_sr(ssrc: int, n: int) -> bytes:
    """An RTCP sender report (no report blocks) whose NTP timestamp carries n, so packets are distinguishable."""
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, 0xE0000000 + n, n, 160 * n, n, 160 * n)


def pcap_rtp_packets(path: str = PCAP) -> list[bytes]:
    """The UDP payloads (RTP packets) of a pcap with Ethernet/IPv4/UDP frames, as sipp plays them."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic == 0xA1B2C3D4 else ">"
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(end + "IIII", data[off:off + 16])[2]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 42 or frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 0x0F) * 4
        if frame[14 + 9] != 17:
            continue
        out.append(frame[14 + ihl + 8:])
    return out


class MediaLeg:
    """The client's media: an RTP/RTCP socket pair on CLIENT_IP, SRTP with its own key out, the edge's key in."""

    def __init__(self, ip: str = CLIENT_IP):
        for _ in range(200):
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            a.bind((ip, 0))
            port = a.getsockname()[1]
            if port % 2 == 0 and port < 65535:
                b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    b.bind((ip, port + 1))
                    self.rtp_sock, self.rtcp_sock, self.port = a, b, port
                    break
                except OSError:
                    b.close()
            a.close()
        else:
            raise h.HarnessError("no free even/odd UDP port pair")
        self.ip = ip
        self.key = Crypto.new()
        self.tx = self.rx = None
        self.auth_errors = 0
        self.lock = threading.Lock()
        self.received: list[bytes] = []  # decrypted RTP from the pump
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def close(self):
        self.stop_pump()
        self.rtp_sock.close()
        self.rtcp_sock.close()

    def set_keys(self, mine: Crypto, theirs: Crypto):
        self.key = mine
        self.tx = mine.session(outbound=True)
        self.rx = theirs.session(outbound=False)

    def send_rtp(self, dest: tuple[str, int], plain: bytes):
        self.rtp_sock.sendto(self.tx.protect(plain), dest)

    def send_rtcp(self, dest: tuple[str, int], plain: bytes):
        self.rtcp_sock.sendto(self.tx.protect_rtcp(plain), dest)

    def _recv(self, sock: socket.socket, rtcp: bool, timeout: float):
        sock.settimeout(max(0.01, timeout))
        try:
            data, src = sock.recvfrom(4096)
        except (socket.timeout, BlockingIOError):
            return None
        try:
            return (self.rx.unprotect_rtcp(data) if rtcp else self.rx.unprotect(data)), src
        except pylibsrtp.Error:
            self.auth_errors += 1
            return b"", src

    def recv_rtp(self, timeout: float = 2.0):
        """(decrypted packet, source) or None on timeout; b"" as packet when it did not decrypt."""
        return self._recv(self.rtp_sock, False, timeout)

    def recv_rtcp(self, timeout: float = 2.0):
        return self._recv(self.rtcp_sock, True, timeout)

    def drain(self, seconds: float) -> list[bytes]:
        """Everything that arrives on the RTP socket within `seconds` (decrypted; b"" = failed)."""
        out, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            r = self.recv_rtp(left)
            if r is not None:
                out.append(r[0])
        return out

    # a background sender/receiver, for calls where the other side sends on its own (pcap play)
    def start_pump(self, dest: tuple[str, int], ssrc: int = 0x11223344, pt: int = 8, interval: float = 0.02,
                   max_seconds: float = 30):
        def run():
            seq, deadline = 1, time.monotonic() + max_seconds
            next_send = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < deadline:
                now = time.monotonic()
                if now >= next_send:
                    try:
                        self.send_rtp(dest, rtp(pt, seq, 160 * seq, ssrc, bytes([0xD5]) * 160))
                    except OSError:
                        pass
                    seq += 1
                    next_send = now + interval
                r = self.recv_rtp(max(0.001, next_send - time.monotonic()))
                if r is not None:
                    with self.lock:
                        self.received.append(r[0])
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop_pump(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


class RtcpEcho:
    """Echoes every datagram on ip:port back to its sender (sipp's -rtp_echo does not cover RTCP)."""

    def __init__(self, ip: str, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.1)
        self.seen: list[tuple[bytes, tuple]] = []
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            try:
                data, src = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            self.seen.append((data, src))
            try:
                self.sock.sendto(data, src)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


def client_offer(leg: MediaLeg, cryptos: list[Crypto] | None, proto: str = "RTP/SAVP", ice: bool = True,
                 mux: bool = False) -> str:
    """A Jabber-like audio offer: SRTP with SDES keys, ICE host candidate, a=rtcp; rtcp-mux offered when mux
    (the pair accepts it, so the client must then take RTCP on its RTP port)."""
    lines = ["v=0", f"o=jabber 1001 1 IN IP4 {leg.ip}", "s=SIP Call", f"c=IN IP4 {leg.ip}", "t=0 0",
             f"m=audio {leg.port} {proto} 0 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
             "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"]
    for c in cryptos or []:
        lines.append(c.line())
    if ice:
        lines += ["a=ice-ufrag:Xk3d", "a=ice-pwd:q8Rw0nH2bPj4LxVt6cYs1Ze9", "a=ice-options:trickle",
                  f"a=candidate:1 1 UDP 2130706431 {leg.ip} {leg.port} typ host",
                  f"a=candidate:1 2 UDP 2130706430 {leg.ip} {leg.port + 1} typ host", f"a=rtcp:{leg.port + 1}"]
    if mux:
        lines.append("a=rtcp-mux")
    lines.append("a=sendrecv")
    return "\r\n".join(lines) + "\r\n"


def route_set(resp: SipMsg) -> list[str]:
    """The Record-Route entries of a response in order, header fields split at commas (sipp's
    [last_Record-Route:] sends them comma-joined in one field)."""
    out = []
    for v in resp.all("Record-Route"):
        out += [e.strip() for e in re.findall(r"<[^>]*>[^,]*", v)]
    return out


def sipp_messages(path: str, first_line: str) -> list[str]:
    """Messages in a sipp -trace_msg file whose start line begins with first_line (received or sent)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    out = []
    for chunk in re.split(r"\n-{10,}[^\n]*\n", "\n" + text):
        body = re.sub(r"^[^\n]*message (?:received|sent)[^\n]*\n+", "", chunk.lstrip("\n"), count=1)
        if body.startswith(first_line):
            out.append(body)
    return out


def sdp_of(msg_text: str) -> Sdp:
    return Sdp(re.split(r"\r?\n\r?\n", msg_text, maxsplit=1)[1])


# ------------------------------------------------------------------------------------------------------------


class MediaEnv(SipEnv):
    """The media topology and the client's SIP/SDP helpers (test_media_av.py builds on them too)."""

    def setUp(self):
        super().setUp()
        if pylibsrtp is None:
            self._missing("python3-pylibsrtp not installed (tools/test.sh installs it)")
        self.pcap = pcap_rtp_packets()
        self.assertGreater(len(self.pcap), 100)

    # ---- topology ----

    def media_env(self, idle: str = "60s", workers: int = 2):
        self.start_kamailio(udp=True)
        self.start_dns()
        self.start_fixture()
        self.e_lo = h.free_port_range(100, E_MEDIA_IP)
        self.e_hi = self.e_lo + 99
        self.t_lo = h.free_port_range(4, TRAVERSAL_IP)
        self.c_lo = h.free_port_range(100, C_MEDIA_IP)
        self.c_hi = self.c_lo + 99
        extra_e = f"""
        media:
          listen: {E_MEDIA_IP}
          public_address: {E_PUBLIC}
          ports: {self.e_lo}-{self.e_hi}
          traversal_listen: {TRAVERSAL_IP}
          traversal_ports: {self.t_lo}-{self.t_lo + 3}
          idle_timeout: {idle}
        """
        extra_c = f"""
        media:
          address: {C_MEDIA_IP}
          ports: {self.c_lo}-{self.c_hi}
          encryption: force
          idle_timeout: {idle}
        """
        self.start_pair(extra_e=extra_e, extra_c=extra_c, workers=workers)
        self.uas_port = h.free_port(INTERNAL_IP, udp=True)
        self.mp = h.free_port_range(4, INTERNAL_IP)  # sipp media port (+1 RTCP echo here, +2 sipp video echo)

    def register_internal(self, user: str = "bob"):
        """The internal endpoint `user` registers at Kamailio with the Contact of the sipp UAS."""
        p = self.sipp("media-register.xml", None, {"user": user, "domain": DOMAIN, "contact_ip": INTERNAL_IP,
                                                   "contact_port": self.uas_port, "expires": 3600},
                      ["-p", str(h.free_port(INTERNAL_IP, udp=True))], name=f"sipp-register-{user}",
                      target=f"{UCM_ADDR}:{self.kport}", transport="u1", local_ip=INTERNAL_IP)
        self.wait_exit(p, 20)
        self.wait_bindings(user, lambda b: len(b) == 1, timeout=10)

    def start_uas(self, scenario: str, name: str, echo: bool = False) -> h.Proc:
        extra = ["-p", str(self.uas_port), "-mi", INTERNAL_IP, "-mp", str(self.mp)]
        if echo:
            extra.append("-rtp_echo")
        p = self.sipp(scenario, None, {}, extra, name=name, transport="u1", local_ip=INTERNAL_IP)
        h.wait_udp_bound(INTERNAL_IP, self.uas_port, timeout=10, proc=p)
        return p

    def client(self, user: str = "carol") -> SipUA:
        ua = SipUA(self.ports.sip, user, self.ca, source=CLIENT_IP)
        self.addCleanup(ua.close)
        r = ua.register()
        self.assertEqual(r.status, 200, r.raw)
        return ua

    def media_status(self, port: int) -> dict:
        st, _, body = h.http_get(f"http://127.0.0.1:{port}/status", timeout=5)
        self.assertEqual(st, 200)
        j = json.loads(body)
        self.assertIn("media", j, f"/status has no media object: {body[:500]!r}")
        for k in ("sessions", "packets", "bytes"):
            self.assertIsInstance(j["media"].get(k), int, j["media"])
        return j["media"]

    def sessions(self) -> tuple[int, int]:
        return self.media_status(self.ports.admin_e)["sessions"], self.media_status(self.ports.admin_c)["sessions"]

    def wait_sessions(self, pred, timeout: float = 5, what: str = "") -> tuple[int, int]:
        deadline = time.monotonic() + timeout
        while True:
            s = self.sessions()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                self.fail(f"media sessions (edge-e, edge-c) = {s} {what} after {timeout}s")
            time.sleep(0.1)

    def dropped(self, port: int, reason: str) -> float:
        return self.metric(port, "edgepair_media_dropped_total", {"reason": reason})

    # ---- SIP of the client ----

    def invite(self, ua: SipUA, callee: str, sdp: str, call_id: str | None = None) -> dict:
        call = {"call_id": call_id or uuid.uuid4().hex, "tag": uuid.uuid4().hex[:8], "branch": ua.branch(),
                "callee": callee}
        ua.send(f"""
INVITE sip:{callee}@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={call['branch']}
Max-Forwards: 70
From: <sip:{ua.user}@{DOMAIN}>;tag={call['tag']}
To: <sip:{callee}@{DOMAIN}>
Call-ID: {call['call_id']}
CSeq: 1 INVITE
Contact: {ua.contact}
Content-Type: application/sdp
""", sdp)
        return call

    def wait_response(self, ua: SipUA, call: dict, timeout: float = 15, stop_at: int = 200) -> SipMsg:
        """Responses to the INVITE up to the first with status >= stop_at (provisionals kept in call['prov'])."""
        deadline = time.monotonic() + timeout
        call.setdefault("prov", [])
        while True:
            m = ua.recv(max(0.1, deadline - time.monotonic()))
            self.assertIsNotNone(m, "client's SIP connection closed during the call")
            if m.is_request or m.get("Call-ID") != call["call_id"] or m.method != "INVITE":
                continue
            if m.status >= stop_at:
                return m
            call["prov"].append(m)

    def ack(self, ua: SipUA, call: dict, resp: SipMsg):
        if resp.status >= 300:  # hop-by-hop ACK of a failed INVITE: same branch, Request-URI of the INVITE
            ua.send(f"""
ACK sip:{call['callee']}@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={call['branch']}
Max-Forwards: 70
From: <sip:{ua.user}@{DOMAIN}>;tag={call['tag']}
To: {resp.get('To')}
Call-ID: {call['call_id']}
CSeq: 1 ACK
""")
            return
        call["routes"] = "".join(f"Route: {r}\n" for r in reversed(route_set(resp)))
        call["remote"] = re.search(r"<([^>]+)>", resp.get("Contact")).group(1)
        call["to"] = resp.get("To")
        ua.send(f"""
ACK {call['remote']} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
{call['routes']}Max-Forwards: 70
From: <sip:{ua.user}@{DOMAIN}>;tag={call['tag']}
To: {call['to']}
Call-ID: {call['call_id']}
CSeq: 1 ACK
""".replace("\n\n", "\n"))

    def bye(self, ua: SipUA, call: dict) -> SipMsg:
        ua.send(f"""
BYE {call['remote']} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
{call['routes']}Max-Forwards: 70
From: <sip:{ua.user}@{DOMAIN}>;tag={call['tag']}
To: {call['to']}
Call-ID: {call['call_id']}
CSeq: 2 BYE
""".replace("\n\n", "\n"))
        return ua.recv_final("BYE")

    def cancel(self, ua: SipUA, call: dict):
        ua.send(f"""
CANCEL sip:{call['callee']}@{DOMAIN} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={call['branch']}
Max-Forwards: 70
From: <sip:{ua.user}@{DOMAIN}>;tag={call['tag']}
To: <sip:{call['callee']}@{DOMAIN}>
Call-ID: {call['call_id']}
CSeq: 1 CANCEL
""")

    # ---- SDP checks ----

    def check_client_side_sdp(self, sdp: Sdp, what: str) -> tuple[int, Crypto]:
        """SDP the client receives: edge-e's public address and port, RTP/SAVP, one fresh a=crypto, no ICE."""
        self.assertEqual(sdp.all("c="), [f"c=IN IP4 {E_PUBLIC}"], f"{what}: c= lines\n{sdp.lines}")
        self.assertEqual(sdp.origin_address(), E_PUBLIC, f"{what}: o= address\n{sdp.lines}")
        self.assertEqual(len(sdp.media), 1, sdp.lines)
        media, port, proto, _ = sdp.m(0)
        self.assertEqual((media, proto), ("audio", "RTP/SAVP"), f"{what}\n{sdp.lines}")
        self.assertTrue(self.e_lo <= port <= self.e_hi and port % 2 == 0,
                        f"{what}: port {port} not an even port of edge-e's media.ports {self.e_lo}-{self.e_hi}")
        cryptos = sdp.attrs(0, "crypto")
        self.assertEqual(len(cryptos), 1, f"{what}: exactly one a=crypto\n{sdp.lines}")
        c = Crypto.parse(cryptos[0])
        self.assertEqual(len(c.key), 30, f"{what}: master key+salt must be 30 bytes")
        for a in ICE_ATTRS + ("rtcp-mux", "rtcp"):
            self.assertEqual(sdp.attrs(0, a), [], f"{what}: a={a} must be removed\n{sdp.lines}")
        self.assertFalse([ln for ln in sdp.lines if ln.startswith("a=") and ln[2:].split(":")[0] in ICE_ATTRS])
        return port, c

    def check_internal_side_sdp(self, sdp: Sdp, what: str) -> tuple[int, list[str]]:
        """SDP the internal endpoint receives: edge-c's media address and port, no ICE / rtcp-mux / rtcp."""
        self.assertEqual(sdp.all("c="), [f"c=IN IP4 {C_MEDIA_IP}"], f"{what}: c= lines\n{sdp.lines}")
        self.assertEqual(sdp.origin_address(), C_MEDIA_IP, f"{what}: o= address\n{sdp.lines}")
        self.assertEqual(len(sdp.media), 1, sdp.lines)
        media, port, proto, _ = sdp.m(0)
        self.assertEqual(media, "audio")
        self.assertTrue(self.c_lo <= port <= self.c_hi and port % 2 == 0,
                        f"{what}: port {port} not an even port of edge-c's media.ports {self.c_lo}-{self.c_hi}")
        for a in ICE_ATTRS + ("rtcp-mux", "rtcp"):
            self.assertEqual(sdp.attrs(0, a), [], f"{what}: a={a} must be removed\n{sdp.lines}")
        return port, sdp.attrs(0, "crypto")


class MediaThroughPair(MediaEnv):
    def test_outgoing_call_srtp_echo_latching_and_bye(self):
        """(a) client -> internal call, SRTP echoed by sipp; (c) wrong sources dropped; (d) nothing after BYE."""
        self.media_env()
        self.register_internal("bob")
        uas = self.start_uas("media-uas.xml", "sipp-uas", echo=True)
        rtcp_echo = RtcpEcho(INTERNAL_IP, self.mp + 1)
        self.addCleanup(rtcp_echo.close)
        carol = self.client("carol")
        leg = MediaLeg()
        self.addCleanup(leg.close)

        offered = [Crypto.new(1, "AES_CM_128_HMAC_SHA1_80"), Crypto.new(2, "AES_CM_128_HMAC_SHA1_32")]
        call = self.invite(carol, "bob", client_offer(leg, offered))
        ok = self.wait_response(carol, call)
        self.assertEqual(ok.status, 200, ok.raw)
        self.ack(carol, call, ok)

        # The answer the client sees: edge-e's public address/port, one crypto line answering one of ours.
        e_port, edge_key = self.check_client_side_sdp(Sdp(ok.body), "200 OK to the client")
        mine = next((c for c in offered if c.tag == edge_key.tag), None)
        self.assertIsNotNone(mine, f"answer's crypto tag {edge_key.tag} is none of the offered tags 1, 2")
        self.assertEqual(edge_key.suite, mine.suite, "answer's suite must be the one of the chosen offer tag")
        self.assertNotIn(edge_key.key, [c.key for c in offered], "edge-c must answer with its own key")
        leg.set_keys(mine, edge_key)
        dest = (E_MEDIA_IP, e_port)  # the static NAT: public_address -> media.listen

        before_e, before_c = self.media_status(self.ports.admin_e), self.media_status(self.ports.admin_c)
        self.assertGreaterEqual(before_e["sessions"], 1, before_e)
        self.assertGreaterEqual(before_c["sessions"], 1, before_c)

        # Before latching: a packet from another IP (not the client's SIP address) must not latch the port.
        drops_e0 = self.metric(self.ports.admin_e, "edgepair_media_dropped_total")
        impostor = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(impostor.close)
        impostor.bind(("127.0.0.1", 0))
        imp_tx = mine.session(outbound=True)
        impostor.sendto(imp_tx.protect(rtp(0, 9000, 0, 0x0BAD0BAD, b"impostor" * 20)), dest)
        time.sleep(0.3)

        # (a) SRTP from the client reaches sipp's echo and comes back, decrypted with edge-c's key.
        sent = {}
        for i in range(50):
            pkt = rtp(0, 100 + i, 160 * i, 0x5EED0001, (b"edgepair-media-%04d-" % i) * 8, marker=(i == 0))
            sent[100 + i] = pkt
            leg.send_rtp(dest, pkt)
            time.sleep(0.005)
        got = leg.drain(1.5)
        self.assertEqual(leg.auth_errors, 0, "packets from edge-e that do not decrypt with edge-c's key")
        self.assertGreaterEqual(len(got), 48, f"only {len(got)} of 50 echoed packets came back")
        for p in got:
            seq = struct.unpack("!H", p[2:4])[0]
            self.assertIn(seq, sent, f"unexpected packet {p[:16].hex()}")
            self.assertEqual(p, sent[seq], f"echoed packet {seq} differs after the round trip")
        impostor.settimeout(0.2)
        with self.assertRaises(socket.timeout, msg="the impostor must get nothing"):
            impostor.recvfrom(4096)
        self.assertGreater(self.metric(self.ports.admin_e, "edgepair_media_dropped_total"), drops_e0,
                           "the packet from a foreign IP before latching was not counted as dropped")

        # RTCP: SRTCP in, plain RTCP at the internal endpoint (it answered RTP/AVP), SRTCP back.
        for n in range(1, 4):
            leg.send_rtcp((E_MEDIA_IP, e_port + 1), rtcp_sr(0x5EED0001, n))
        rtcp_back = []
        deadline = time.monotonic() + 2
        while len(rtcp_back) < 3 and time.monotonic() < deadline:
            r = leg.recv_rtcp(deadline - time.monotonic())
            if r is not None:
                rtcp_back.append(r[0])
        self.assertEqual(sorted(rtcp_back), sorted(rtcp_sr(0x5EED0001, n) for n in range(1, 4)),
                         "SRTCP round trip through the pair")
        self.assertEqual(sorted(d for d, _ in rtcp_echo.seen), sorted(rtcp_sr(0x5EED0001, n) for n in range(1, 4)),
                         "the internal endpoint must receive the plain RTCP the client sent")
        self.assertTrue(all(src[0] == C_MEDIA_IP for _, src in rtcp_echo.seen), rtcp_echo.seen)

        # (c) after latching, a packet from the client's IP but another port is dropped as wrong_source.
        ws0 = self.dropped(self.ports.admin_e, "wrong_source")
        stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(stray.close)
        stray.bind((CLIENT_IP, 0))
        stray_tx = mine.session(outbound=True)
        stray.sendto(stray_tx.protect(rtp(0, 7000, 0, 0x57A7, b"stray!!!" * 20)), dest)
        stray_back = leg.drain(1.0)
        self.assertEqual(stray_back, [], "the stray packet was relayed (its echo came back to the client)")
        stray.settimeout(0.1)
        with self.assertRaises(socket.timeout, msg="the stray source must get nothing"):
            stray.recvfrom(4096)
        self.assertEqual(self.dropped(self.ports.admin_e, "wrong_source") - ws0, 1,
                         "edgepair_media_dropped_total{reason=\"wrong_source\"} on edge-e")
        # Datagrams the kernel dropped for a full receive buffer (SO_RXQ_OVFL) are exported on both edges; at
        # this rate on loopback there are none. The counting itself: tests/unit/media/udp_test.cpp.
        for port in (self.ports.admin_e, self.ports.admin_c):
            _, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            self.assertRegex(body.decode(), r'(?m)^edgepair_media_dropped_total\{reason="kernel_rcvbuf"\} 0$')
        # ... and the latched client still gets its echo.
        leg.send_rtp(dest, rtp(0, 200, 32000, 0x5EED0001, b"after-stray" * 10))
        after = leg.drain(1.0)
        self.assertEqual(after, [rtp(0, 200, 32000, 0x5EED0001, b"after-stray" * 10)])

        mid_e, mid_c = self.media_status(self.ports.admin_e), self.media_status(self.ports.admin_c)
        # edge-e relays each packet twice (client->traversal, traversal->client), edge-c too.
        self.assertGreaterEqual(mid_e["packets"] - before_e["packets"], 2 * 48, mid_e)
        self.assertGreaterEqual(mid_c["packets"] - before_c["packets"], 2 * 48, mid_c)
        self.assertGreater(mid_e["bytes"], before_e["bytes"])
        for reason in ("srtp_auth", "srtp_replay", "srtp_bad"):
            self.assertEqual(self.dropped(self.ports.admin_c, reason), 0, f"edge-c dropped packets: {reason}")

        # (d) BYE: both edges release the call's media; the port relays nothing more.
        r = self.bye(carol, call)
        self.assertEqual(r.status, 200, r.raw)
        self.wait_sessions(lambda s: s == (0, 0), timeout=5, what="after BYE")
        for port, st in ((self.ports.admin_e, mid_e), (self.ports.admin_c, mid_c)):
            # /metrics agrees with /status
            self.assertEqual(self.metric(port, "edgepair_media_sessions", {}), 0)
            self.assertGreaterEqual(self.metric(port, "edgepair_media_packets_total", {}), st["packets"])
        self.wait_exit(uas, 15)
        pkts_e = self.media_status(self.ports.admin_e)["packets"]
        for i in range(5):
            leg.send_rtp(dest, rtp(0, 300 + i, 0, 0x5EED0001, b"after-bye" * 10))
        self.assertEqual(leg.drain(1.0), [], "packets relayed after BYE")
        self.assertEqual(self.media_status(self.ports.admin_e)["packets"], pkts_e, "edge-e relayed after BYE")

        # What the internal endpoint was offered: edge-c's address/port, best effort (RTP/AVP + a fresh key).
        inv = sipp_messages(os.path.join(self.tmp, "sipp-uas-messages.log"), "INVITE ")
        self.assertEqual(len(inv), 1, "sipp's message log has no INVITE")
        sdp = sdp_of(inv[0])
        c_port, cryptos = self.check_internal_side_sdp(sdp, "INVITE offer to the internal endpoint")
        self.assertEqual(sdp.m(0)[2], "RTP/AVP", "best effort offer inward must be RTP/AVP")
        self.assertEqual(len(cryptos), 1, f"best effort offer inward carries one a=crypto\n{sdp.lines}")
        self.assertNotIn(Crypto.parse(cryptos[0]).key, [c.key for c in offered] + [edge_key.key])
        # sipp echoed to the port edge-c offered, and edge-c sent from it.
        self.assertTrue(all(src == (C_MEDIA_IP, c_port + 1) for _, src in rtcp_echo.seen), rtcp_echo.seen)

    def test_incoming_call_pcap_to_client(self):
        """(b) internal (sipp UAC, g711a.pcap) -> client: SRTP offer to the client, PCMA decrypted by the client."""
        self.media_env()
        carol = self.client("carol")
        leg = MediaLeg()
        self.addCleanup(leg.close)
        uac = self.sipp("media-uac.xml", None, {"user": "desk", "domain": DOMAIN, "callee": "carol"},
                        ["-p", str(self.uas_port), "-mi", INTERNAL_IP, "-mp", str(self.mp), "-d", "2500"],
                        name="sipp-uac", target=f"{UCM_ADDR}:{self.kport}", transport="u1", local_ip=INTERNAL_IP)

        inv = None
        deadline = time.monotonic() + 15
        while inv is None:
            m = carol.recv(max(0.1, deadline - time.monotonic()))
            self.assertIsNotNone(m, "client's connection closed")
            if m.is_request and m.method == "INVITE":
                inv = m
        e_port, edge_key = self.check_client_side_sdp(Sdp(inv.body), "INVITE offer to the client")
        self.assertEqual((edge_key.tag, edge_key.suite), (1, "AES_CM_128_HMAC_SHA1_80"), "offer to the client")
        self.assertEqual(Sdp(inv.body).m(0)[3], ["8", "101"], "codecs must pass unchanged")
        mine = Crypto.new(1, "AES_CM_128_HMAC_SHA1_80")
        leg.set_keys(mine, edge_key)

        tag = uuid.uuid4().hex[:8]
        carol.respond(inv, 180, "Ringing", tag, contact=True)
        answer = "\r\n".join(["v=0", f"o=jabber 77 1 IN IP4 {CLIENT_IP}", "s=SIP Call", f"c=IN IP4 {CLIENT_IP}",
                              "t=0 0", f"m=audio {leg.port} RTP/SAVP 8 101", "a=rtpmap:8 PCMA/8000",
                              "a=rtpmap:101 telephone-event/8000", mine.line(), "a=sendrecv"]) + "\r\n"
        carol.respond(inv, 200, "OK", tag, contact=True, body=answer)
        # Latch edge-e's port at once (the client's first packet) and keep talking while receiving.
        leg.start_pump((E_MEDIA_IP, e_port), pt=8)
        sessions_in_call = None
        bye = None
        deadline = time.monotonic() + 20
        while bye is None:
            m = carol.recv(max(0.1, deadline - time.monotonic()))
            self.assertIsNotNone(m, "client's connection closed during the call")
            if m.is_request and m.method == "ACK":
                sessions_in_call = self.sessions()
            if m.is_request and m.method == "BYE":
                bye = m
        carol.respond(bye, 200, "OK")
        leg.stop_pump()
        self.wait_exit(uac, 20)

        self.assertIsNotNone(sessions_in_call, "no ACK reached the client")
        self.assertGreaterEqual(min(sessions_in_call), 1, f"media sessions during the call {sessions_in_call}")
        with leg.lock:
            got = list(leg.received)
        self.assertEqual(leg.auth_errors, 0, "SRTP packets to the client that do not decrypt with edge-c's key")
        # 0.5 s pause + 2.5 s hold at 50 packets/s: expect well over 60 of the pcap's packets.
        self.assertGreaterEqual(len(got), 60, f"only {len(got)} PCMA packets reached the client")
        pcap = set(self.pcap)
        for p in got:
            self.assertEqual(p[1] & 0x7F, 8, f"payload type of {p[:12].hex()}")
            self.assertIn(p, pcap, f"decrypted packet {p[:12].hex()} is not one of g711a.pcap's RTP packets")

        # What sipp got as the answer: edge-c's address and port; plain RTP (the inside offered RTP/AVP).
        oks = [x for x in sipp_messages(os.path.join(self.tmp, "sipp-uac-messages.log"), "SIP/2.0 200")
               if re.search(r"(?im)^CSeq:\s*1 INVITE", x)]
        self.assertTrue(oks, "sipp's message log has no 200 OK to its INVITE")
        sdp = sdp_of(oks[0])
        _, cryptos = self.check_internal_side_sdp(sdp, "200 OK answer to the internal endpoint")
        self.assertEqual((sdp.m(0)[2], cryptos), ("RTP/AVP", []), "answer inward must follow the plain offer")

        self.wait_sessions(lambda s: s == (0, 0), timeout=5, what="after the internal side's BYE")
        self.assertEqual(self.dropped(self.ports.admin_c, "srtp_auth"), 0)

    def test_refusals_cancel_and_busy_release(self):
        """(e) unencrypted offers get 488 and are counted; (f) CANCEL and 486 release the call's media."""
        self.media_env()
        carol = self.client("carol")
        leg = MediaLeg()
        self.addCleanup(leg.close)
        m = "edgepair_media_calls_refused_total"

        # (e) RTP/AVP without a=crypto, then RTP/SAVP without a=crypto: 488 from edge-c, nothing forwarded
        # (nobody is registered as "nobody": a forwarded INVITE would come back 404 from Kamailio).
        for proto in ("RTP/AVP", "RTP/SAVP"):
            with self.subTest(proto=proto):
                before = self.metric(self.ports.admin_c, m, {"reason": "unencrypted"})
                call = self.invite(carol, "nobody", client_offer(leg, None, proto=proto, ice=False))
                r = self.wait_response(carol, call)
                self.ack(carol, call, r)
                self.assertEqual(r.status, 488, r.raw)
                self.assertEqual(self.metric(self.ports.admin_c, m, {"reason": "unencrypted"}) - before, 1,
                                 f'{m}{{reason="unencrypted"}}')
                self.wait_sessions(lambda s: s == (0, 0), timeout=5, what=f"after 488 to {proto}")

        # (f1) 486 Busy Here from the internal side.
        self.register_internal("bob")
        uas = self.start_uas("media-uas-busy.xml", "sipp-busy")
        call = self.invite(carol, "bob", client_offer(leg, [Crypto.new()]))
        r = self.wait_response(carol, call)
        self.ack(carol, call, r)
        self.assertEqual(r.status, 486, r.raw)
        self.wait_exit(uas, 15)
        self.wait_sessions(lambda s: s == (0, 0), timeout=5, what="after 486")
        self.assertTrue(sipp_messages(os.path.join(self.tmp, "sipp-busy-messages.log"), "INVITE "),
                        "the INVITE did not reach the internal endpoint")

        # (f2) CANCEL while ringing: media exists while ringing, and is gone after 487.
        uas = self.start_uas("media-uas-cancel.xml", "sipp-cancel")
        call = self.invite(carol, "bob", client_offer(leg, [Crypto.new()]))
        ringing = self.wait_response(carol, call, stop_at=180)
        self.assertEqual(ringing.status, 180, ringing.raw)
        ringing_sessions = self.sessions()
        self.assertEqual(min(ringing_sessions), 1, f"media sessions (edge-e, edge-c) while ringing: {ringing_sessions}")
        self.cancel(carol, call)
        self.assertEqual(carol.recv_final("CANCEL").status, 200)
        r = self.wait_response(carol, call)
        self.ack(carol, call, r)
        self.assertEqual(r.status, 487, r.raw)
        self.wait_exit(uas, 15)
        self.wait_sessions(lambda s: s == (0, 0), timeout=5, what="after CANCEL")

    def test_release_on_client_disconnect(self):
        """The client's SIP connection closing releases its calls' media on both edges."""
        self.media_env()
        carol = self.client("carol")
        leg = MediaLeg()
        self.addCleanup(leg.close)
        # sipp holds the call for 20 s; the client drops its connection after a second of media.
        uac = self.sipp("media-uac.xml", None, {"user": "desk", "domain": DOMAIN, "callee": "carol"},
                        ["-p", str(self.uas_port), "-mi", INTERNAL_IP, "-mp", str(self.mp), "-d", "20000"],
                        name="sipp-uac", target=f"{UCM_ADDR}:{self.kport}", transport="u1", local_ip=INTERNAL_IP)
        inv = None
        deadline = time.monotonic() + 15
        while inv is None:
            m = carol.recv(max(0.1, deadline - time.monotonic()))
            self.assertIsNotNone(m)
            if m.is_request and m.method == "INVITE":
                inv = m
        e_port, edge_key = self.check_client_side_sdp(Sdp(inv.body), "INVITE offer to the client")
        mine = Crypto.new()
        leg.set_keys(mine, edge_key)
        tag = uuid.uuid4().hex[:8]
        answer = "\r\n".join(["v=0", f"o=jabber 78 1 IN IP4 {CLIENT_IP}", "s=-", f"c=IN IP4 {CLIENT_IP}", "t=0 0",
                              f"m=audio {leg.port} RTP/SAVP 8", mine.line()]) + "\r\n"
        carol.respond(inv, 200, "OK", tag, contact=True, body=answer)
        leg.start_pump((E_MEDIA_IP, e_port), pt=8)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with leg.lock:
                if len(leg.received) >= 20:
                    break
            time.sleep(0.05)
        leg.stop_pump()
        with leg.lock:
            self.assertGreaterEqual(len(leg.received), 20, "no media reached the client before the disconnect")
        self.assertEqual(min(self.sessions()), 1)
        carol.close()
        self.wait_sessions(lambda s: s == (0, 0), timeout=8, what="after the client's connection closed")
        leg.drain(0.1)  # what was already queued in our socket before the release
        self.assertEqual(leg.drain(1.0), [], "media still relayed to the client after its connection closed")
        uac.stop()

    def test_idle_timeout_releases(self):
        """A call with no packets either way for media.idle_timeout is released on both edges."""
        self.media_env(idle="5s")  # the smallest idle_timeout edge-e and edge-c accept
        self.register_internal("bob")
        uas = self.start_uas("media-uas.xml", "sipp-uas", echo=True)
        carol = self.client("carol")
        leg = MediaLeg()
        self.addCleanup(leg.close)
        mine = Crypto.new()
        call = self.invite(carol, "bob", client_offer(leg, [mine]))
        ok = self.wait_response(carol, call)
        self.assertEqual(ok.status, 200, ok.raw)
        self.ack(carol, call, ok)
        e_port, edge_key = self.check_client_side_sdp(Sdp(ok.body), "200 OK to the client")
        leg.set_keys(mine, edge_key)
        # media for 6 s (longer than idle_timeout): an active call is not released
        t_end = time.monotonic() + 6
        seq, echoed = 1, 0
        while time.monotonic() < t_end:
            leg.send_rtp((E_MEDIA_IP, e_port), rtp(0, seq, 160 * seq, 0x1D1E, b"x" * 160))
            seq += 1
            echoed += len(leg.drain(0.05))
        self.assertGreater(echoed, 80, "echo stopped during an active call")
        self.assertEqual(min(self.sessions()), 1, "an active call lost its media session")
        silent_at = time.monotonic()
        self.wait_sessions(lambda s: s == (0, 0), timeout=15, what="after a 5 s idle_timeout")
        self.assertGreaterEqual(time.monotonic() - silent_at, 4.5, "released before idle_timeout")
        leg.send_rtp((E_MEDIA_IP, e_port), rtp(0, seq, 160 * seq, 0x1D1E, b"x" * 160))
        self.assertEqual(leg.drain(1.0), [], "relayed after the idle release")
        # The SIP dialog is not media's business: BYE still works.
        r = self.bye(carol, call)
        self.assertEqual(r.status, 200, r.raw)
        self.wait_exit(uas, 15)


if __name__ == "__main__":
    h.run_tests()
