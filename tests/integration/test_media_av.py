"""Calls with audio, video, content and floor control through the pair (issue #16), with real peers.

Topology as in test_media.py (Kamailio as Unified CM's SIP side, the pair, the test's MRA client over TLS with
SRTP from python3-pylibsrtp), except the internal endpoint: the test's own UA over TCP to Kamailio
(sipdialog.InternalUA) with its own UDP sockets per m-line on 127.0.3.1, so that every packet is checked at the
socket of the m-line it belongs to, and so that it can answer with SRTP on one m-line and plain RTP on another,
accept rtcp-mux on one and not the other, and answer re-INVITEs.

What the tests prove is consistency with our reading of RFC 3264 (offer/answer), RFC 4568 (SDES), RFC 5761
(rtcp-mux) and RFC 8856 (UDP/BFCP) on both ends: both ends are this test. Every wait is bounded.
"""

from __future__ import annotations

import socket
import time
import uuid

import harness as h
import test_media as tm
from sipdialog import Dialog, InternalUA, wait_final, wait_request
from sipenv import DOMAIN, UCM_ADDR
from test_media import (C_MEDIA_IP, CLIENT_IP, E_MEDIA_IP, E_PUBLIC, INTERNAL_IP, Crypto, MediaLeg, Sdp, rtcp_sr,
                        rtp)


def recv_all(sock: socket.socket, seconds: float) -> list[tuple[bytes, tuple]]:
    """Every datagram arriving on sock within `seconds`."""
    out, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(max(0.01, left))
        try:
            out.append(sock.recvfrom(4096))
        except (socket.timeout, BlockingIOError):
            pass
    return out


def is_rtcp(p: bytes) -> bool:
    return len(p) >= 2 and 192 <= p[1] <= 223


class Stream:
    """One m-line's socket(s) at one end: a MediaLeg (even RTP port, RTCP on +1), SRTP sessions when keyed."""

    def __init__(self, ip: str):
        self.leg = MediaLeg(ip)
        self.port = self.leg.port
        self.rtp_sock, self.rtcp_sock = self.leg.rtp_sock, self.leg.rtcp_sock
        self.tx = self.rx = None

    def keys(self, mine: Crypto | None, theirs: Crypto | None):
        self.tx = mine.session(outbound=True) if mine else None
        self.rx = theirs.session(outbound=False) if theirs else None

    def out(self, plain: bytes) -> bytes:
        if self.tx is None:
            return plain
        return self.tx.protect_rtcp(plain) if is_rtcp(plain) else self.tx.protect(plain)

    def open(self, data: bytes) -> bytes:
        if self.rx is None:
            return data
        return self.rx.unprotect_rtcp(data) if is_rtcp(data) else self.rx.unprotect(data)

    def close(self):
        self.leg.close()


def sdp_body(origin: str, ip: str, version: int, mlines: list[list[str]]) -> str:
    lines = ["v=0", f"o={origin} 4242 {version} IN IP4 {ip}", "s=SIP Call", f"c=IN IP4 {ip}", "t=0 0"]
    for m in mlines:
        lines += m
    return "\r\n".join(lines) + "\r\n"


class AvThroughPair(tm.MediaEnv):
    # ---- helpers ----

    def stream(self, ip: str) -> Stream:
        s = Stream(ip)
        self.addCleanup(s.close)
        return s

    def internal_ua(self, user: str = "bob") -> InternalUA:
        ua = InternalUA(UCM_ADDR, self.kport, user)
        self.addCleanup(ua.close)
        r = ua.register()
        self.assertEqual(r.status, 200, r.raw)
        return ua

    def invite_from_client(self, ua, callee: str, body: str) -> dict:
        call = self.invite(ua, callee, body)
        call["from"] = f"<sip:{ua.user}@{DOMAIN}>;tag={call['tag']}"
        return call

    def answer_internal(self, bob: InternalUA, inv, body: str) -> Dialog:
        d = Dialog.as_uas(bob, inv, uuid.uuid4().hex[:8])
        d.respond(inv, 200, "OK", body=body)
        return d

    def exchange(self, a: Stream, a_dest: tuple, b: Stream, packets: list[bytes], via_rtcp_port: bool = False,
                 b_sock: socket.socket | None = None, expect_src: tuple | None = None) -> list[bytes]:
        """a sends packets (RTCP ones to the RTCP port when via_rtcp_port); returns what b opened on b_sock."""
        for p in packets:
            sock = a.rtcp_sock if via_rtcp_port and is_rtcp(p) else a.rtp_sock
            dest = (a_dest[0], a_dest[1] + 1) if via_rtcp_port and is_rtcp(p) else a_dest
            sock.sendto(a.out(p), dest)
        got = recv_all(b_sock or b.rtp_sock, 1.0)
        if expect_src is not None:
            for _, src in got:
                self.assertEqual(src, expect_src, "packet from an unexpected source")
        return [b.open(d) for d, _ in got]

    def check_no_stray(self, *socks: socket.socket):
        for s in socks:
            self.assertEqual(recv_all(s, 0.2), [], f"unexpected packets on {s.getsockname()}")

    # ---- tests ----

    def test_audio_video_content_bfcp_rtcp_mux_hold_resume(self):
        """Outgoing call with audio (RTP+RTCP ports), video (rtcp-mux), content video, UDP/BFCP and TCP/BFCP
        (unsupported: port 0 on both legs); every stream both ways on its own socket; hold and resume."""
        self.media_env()
        bob = self.internal_ua("bob")
        carol = self.client("carol")
        ca, cv, cc, cb = (self.stream(CLIENT_IP) for _ in range(4))
        keys = {n: Crypto.new(1) for n in ("a", "v", "c")}

        def offer(version: int, direction: str) -> str:
            return sdp_body("jabber", CLIENT_IP, version, [
                [f"m=audio {ca.port} RTP/SAVP 0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
                 keys["a"].line(), f"a=rtcp:{ca.port + 1}", f"a={direction}"],
                [f"m=video {cv.port} RTP/SAVP 97", "a=rtpmap:97 H264/90000", "a=rtcp-fb:* nack pli", keys["v"].line(),
                 "a=rtcp-mux", "a=content:main", "a=label:11", f"a={direction}"],
                [f"m=video {cc.port} RTP/SAVP 97", "a=rtpmap:97 H264/90000", keys["c"].line(), "a=content:slides",
                 "a=label:12", f"a={direction}"],
                [f"m=application {cb.port} UDP/BFCP *", "a=floorctrl:c-s", "a=confid:1", "a=userid:2",
                 "a=floorid:2 mstrm:12"],
                ["m=application 9 TCP/BFCP *", "a=setup:actpass", "a=connection:new", "a=floorctrl:c-s"],
            ])

        call = self.invite_from_client(carol, "bob", offer(1, "sendrecv"))
        inv = wait_request(bob, "INVITE", call_id=call["call_id"])
        s_in = Sdp(inv.body)
        self.assertEqual(s_in.all("c="), [f"c=IN IP4 {C_MEDIA_IP}"], s_in.lines)
        self.assertEqual(len(s_in.media), 5, f"no m-line may be dropped\n{s_in.lines}")
        kinds = [(s_in.m(i)[0], s_in.m(i)[2]) for i in range(5)]
        self.assertEqual(kinds, [("audio", "RTP/AVP"), ("video", "RTP/AVP"), ("video", "RTP/AVP"),
                                 ("application", "UDP/BFCP"), ("application", "TCP/BFCP")], s_in.lines)
        c_ports = [s_in.m(i)[1] for i in range(5)]
        for i in range(4):
            self.assertTrue(self.c_lo <= c_ports[i] <= self.c_hi and c_ports[i] % 2 == 0,
                            f"m-line {i}: port {c_ports[i]} not an even port of edge-c's media.ports\n{s_in.lines}")
        self.assertEqual(len(set(c_ports[:4])), 4, f"every m-line needs its own relay port\n{s_in.lines}")
        self.assertEqual(c_ports[4], 0, f"TCP/BFCP cannot be relayed: it must go on with port 0\n{s_in.lines}")
        self.assertEqual([len(s_in.attrs(i, "crypto")) for i in range(5)], [1, 1, 1, 0, 0], s_in.lines)
        self.assertEqual([s_in.attrs(i, "rtcp-mux") for i in range(5)], [[], [""], [], [], []],
                         "rtcp-mux is offered onward where the client offered it\n" + "\n".join(s_in.lines))
        self.assertEqual(s_in.attrs(3, "floorid"), ["2 mstrm:12"], "BFCP attributes must pass unchanged")
        self.assertEqual(s_in.attrs(1, "label"), ["11"])
        c_keys = [Crypto.parse(s_in.attrs(i, "crypto")[0]) for i in range(3)]

        # bob: audio plain RTP on a port pair, video SRTP with rtcp-mux, content plain RTP, BFCP, TCP/BFCP refused.
        ia, iv, ic, ib = (self.stream(INTERNAL_IP) for _ in range(4))
        bob_video_key = Crypto.new(c_keys[1].tag)
        iv.keys(bob_video_key, c_keys[1])

        def answer(version: int, direction: str) -> str:
            return sdp_body("deskphone", INTERNAL_IP, version, [
                [f"m=audio {ia.port} RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
                 f"a={direction}"],
                [f"m=video {iv.port} RTP/AVP 97", "a=rtpmap:97 H264/90000", bob_video_key.line(), "a=rtcp-mux",
                 "a=content:main", "a=label:11", f"a={direction}"],
                [f"m=video {ic.port} RTP/AVP 97", "a=rtpmap:97 H264/90000", "a=content:slides", "a=label:12",
                 f"a={direction}"],
                [f"m=application {ib.port} UDP/BFCP *", "a=floorctrl:s-only", "a=confid:1", "a=userid:1",
                 "a=floorid:2 mstrm:12"],
                ["m=application 0 TCP/BFCP *"],
            ])

        bob_dialog = self.answer_internal(bob, inv, answer(1, "sendrecv"))
        ok = self.wait_response(carol, call)
        self.assertEqual(ok.status, 200, ok.raw)
        self.ack(carol, call, ok)
        wait_request(bob, "ACK", call_id=call["call_id"])

        s_out = Sdp(ok.body)
        self.assertEqual(s_out.all("c="), [f"c=IN IP4 {E_PUBLIC}"], s_out.lines)
        self.assertEqual(len(s_out.media), 5, s_out.lines)
        e_ports = [s_out.m(i)[1] for i in range(5)]
        for i in range(4):
            self.assertTrue(self.e_lo <= e_ports[i] <= self.e_hi and e_ports[i] % 2 == 0,
                            f"m-line {i}: port {e_ports[i]} not an even port of edge-e's media.ports\n{s_out.lines}")
        self.assertEqual(len(set(e_ports[:4])), 4, s_out.lines)
        self.assertEqual(e_ports[4], 0, f"the TCP/BFCP line must be answered with port 0\n{s_out.lines}")
        self.assertEqual([s_out.m(i)[2] for i in range(4)], ["RTP/SAVP", "RTP/SAVP", "RTP/SAVP", "UDP/BFCP"])
        self.assertEqual([s_out.attrs(i, "rtcp-mux") for i in range(5)], [[], [""], [], [], []],
                         "rtcp-mux is answered where the client offered it\n" + "\n".join(s_out.lines))
        e_keys = [Crypto.parse(s_out.attrs(i, "crypto")[0]) for i in range(3)]
        self.assertEqual(s_out.attrs(3, "crypto"), [])
        for (s, mine), theirs in zip(((ca, keys["a"]), (cv, keys["v"]), (cc, keys["c"])), e_keys):
            self.assertEqual(theirs.tag, mine.tag)
            s.keys(mine, theirs)
        self.assertEqual(len({k.key for k in e_keys + c_keys + list(keys.values()) + [bob_video_key]}), 10,
                         "every leg of every stream needs its own key")
        self.assertEqual(self.sessions(), (1, 1))

        def e(i: int) -> tuple:
            return (E_MEDIA_IP, e_ports[i])

        def c(i: int) -> tuple:
            return (C_MEDIA_IP, c_ports[i])

        # client -> bob, each stream to its own socket: audio RTP to the RTP port and RTCP to RTCP port+1;
        # video RTP and RTCP both on the muxed port; content RTP; BFCP datagrams as they are.
        a_rtp = [rtp(0, n, 160 * n, 0xA0D10, b"audio-%d" % n * 20) for n in range(1, 4)]
        v_pkts = [rtp(97, n, 3000 * n, 0x51DE0, b"video-%d" % n * 50) for n in range(1, 4)] + [rtcp_sr(0x51DE0, 1)]
        c_rtp = [rtp(97, n, 3000 * n, 0xC0C0, b"slides-%d" % n * 50) for n in range(1, 3)]
        bfcp = bytes.fromhex("20010010000000010001000200000000") + b"floor-request"
        self.assertEqual(self.exchange(ca, e(0), ia, a_rtp, expect_src=c(0)), a_rtp, "audio RTP at bob")
        self.assertEqual(self.exchange(ca, e(0), ia, [rtcp_sr(0xA0D10, 1)], via_rtcp_port=True, b_sock=ia.rtcp_sock,
                                       expect_src=(C_MEDIA_IP, c_ports[0] + 1)),
                         [rtcp_sr(0xA0D10, 1)], "audio RTCP at bob's RTCP port")
        self.assertEqual(self.exchange(cv, e(1), iv, v_pkts, expect_src=c(1)), v_pkts,
                         "video RTP and RTCP (SRTP inside, muxed on both legs) at bob's video port")
        self.assertEqual(self.exchange(cc, e(2), ic, c_rtp, expect_src=c(2)), c_rtp, "content RTP at bob")
        cb.rtp_sock.sendto(bfcp, e(3))
        self.assertEqual([d for d, _ in recv_all(ib.rtp_sock, 1.0)], [bfcp], "BFCP at bob")
        self.check_no_stray(ia.rtp_sock, ia.rtcp_sock, iv.rtp_sock, iv.rtcp_sock, ic.rtp_sock, ic.rtcp_sock,
                            ib.rtcp_sock)

        # bob -> client: audio RTCP from bob's RTCP port to edge-c's RTCP port; video muxed.
        a_back = [rtp(0, 50 + n, 160 * n, 0xB0B0, b"bob-audio-%d" % n * 10) for n in range(3)]
        v_back = [rtp(97, 70 + n, 3000 * n, 0xB1DE, b"bob-video-%d" % n * 40) for n in range(3)] + [
            rtcp_sr(0xB1DE, 2)]
        c_back = [rtp(97, 90 + n, 3000 * n, 0xB5D5, b"bob-slides-%d" % n * 40) for n in range(2)]
        self.assertEqual(self.exchange(ia, c(0), ca, a_back, expect_src=e(0)), a_back, "audio RTP at the client")
        self.assertEqual(self.exchange(ia, c(0), ca, [rtcp_sr(0xB0B0, 1)], via_rtcp_port=True, b_sock=ca.rtcp_sock,
                                       expect_src=(E_MEDIA_IP, e_ports[0] + 1)),
                         [rtcp_sr(0xB0B0, 1)], "audio SRTCP at the client's RTCP port")
        self.assertEqual(self.exchange(iv, c(1), cv, v_back, expect_src=e(1)), v_back,
                         "video SRTP and SRTCP at the client's one muxed video port")
        self.assertEqual(self.exchange(ic, c(2), cc, c_back, expect_src=e(2)), c_back, "content at the client")
        ib.rtp_sock.sendto(b"floor-granted", c(3))
        self.assertEqual([d for d, _ in recv_all(cb.rtp_sock, 1.0)], [b"floor-granted"], "BFCP at the client")
        self.check_no_stray(ca.rtp_sock, ca.rtcp_sock, cv.rtp_sock, cv.rtcp_sock, cc.rtp_sock, cc.rtcp_sock,
                            cb.rtcp_sock)
        for reason in ("srtp_auth", "srtp_replay", "srtp_bad", "unknown_channel", "not_ready"):
            self.assertEqual(self.dropped(self.ports.admin_c, reason), 0, f"edge-c dropped packets: {reason}")

        # Hold, then resume: re-INVITEs from the client through the route set; the relay keeps its ports and keys.
        cd = Dialog.as_uac(carol, call["call_id"], call["from"], ok, 1)
        for version, direction, answer_dir in ((2, "sendonly", "recvonly"), (3, "sendrecv", "sendrecv")):
            n = cd.request("INVITE", body=offer(version, direction), content_type="application/sdp")
            got = wait_request(bob, "INVITE", call_id=call["call_id"])
            g = Sdp(got.body)
            self.assertEqual([g.m(i)[1] for i in range(5)], c_ports, f"{direction}: edge-c's ports changed\n{g.lines}")
            self.assertEqual(g.attrs(0, direction), [""], f"{direction} must reach bob\n{g.lines}")
            self.assertEqual([Crypto.parse(g.attrs(i, "crypto")[0]).key for i in range(3)], [k.key for k in c_keys],
                             "the relay's keys towards bob must not change in a re-offer")
            bob_dialog.respond(got, 200, "OK", body=answer(version, answer_dir))
            r = wait_final(carol, "INVITE", call["call_id"], n)
            self.assertEqual(r.status, 200, r.raw)
            rs = Sdp(r.body)
            self.assertEqual([rs.m(i)[1] for i in range(5)], e_ports, f"{direction}: edge-e's ports changed")
            self.assertEqual(rs.attrs(0, answer_dir), [""], rs.lines)
            self.assertEqual([Crypto.parse(rs.attrs(i, "crypto")[0]).key for i in range(3)], [k.key for k in e_keys])
            cd.request("ACK")
            wait_request(bob, "ACK", call_id=call["call_id"])

        # media after resume, both ways on audio and video
        a2 = [rtp(0, 10 + n, 160 * n, 0xA0D10, b"resumed-%d" % n * 20) for n in range(2)]
        self.assertEqual(self.exchange(ca, e(0), ia, a2), a2, "audio after resume")
        v2 = [rtp(97, 80 + n, 3000 * n, 0xB1DE, b"bob-resumed-%d" % n * 20) for n in range(2)] + [rtcp_sr(0xB1DE, 3)]
        self.assertEqual(self.exchange(iv, c(1), cv, v2), v2, "video after resume")

        # BYE from the client along the route set: both edges release every stream.
        n = cd.request("BYE")
        b = wait_request(bob, "BYE", call_id=call["call_id"])
        bob_dialog.respond(b, 200, "OK")
        self.assertEqual(wait_final(carol, "BYE", call["call_id"], n).status, 200)
        self.wait_sessions(lambda s: s == (0, 0), timeout=5, what="after BYE")

    def test_video_added_mid_call(self):
        """An audio call gets video by a re-INVITE: the new m-line gets its own relay on both edges."""
        self.media_env()
        bob = self.internal_ua("bob")
        carol = self.client("carol")
        ca, cv = self.stream(CLIENT_IP), self.stream(CLIENT_IP)
        ka, kv = Crypto.new(1), Crypto.new(1)
        audio = [f"m=audio {ca.port} RTP/SAVP 0", "a=rtpmap:0 PCMU/8000", ka.line(), "a=sendrecv"]
        video = [f"m=video {cv.port} RTP/SAVP 97", "a=rtpmap:97 H264/90000", kv.line(), "a=rtcp-mux", "a=sendrecv"]
        call = self.invite_from_client(carol, "bob", sdp_body("jabber", CLIENT_IP, 1, [audio]))
        inv = wait_request(bob, "INVITE", call_id=call["call_id"])
        ia, iv = self.stream(INTERNAL_IP), self.stream(INTERNAL_IP)
        bob_audio = [f"m=audio {ia.port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv"]
        d = self.answer_internal(bob, inv, sdp_body("desk", INTERNAL_IP, 1, [bob_audio]))
        ok = self.wait_response(carol, call)
        self.assertEqual(ok.status, 200, ok.raw)
        self.ack(carol, call, ok)
        wait_request(bob, "ACK", call_id=call["call_id"])
        s1 = Sdp(ok.body)
        self.assertEqual(len(s1.media), 1)
        e_audio = s1.m(0)[1]
        ca.keys(ka, Crypto.parse(s1.attrs(0, "crypto")[0]))
        self.assertEqual(self.sessions(), (1, 1))

        # re-INVITE adding video (rtcp-mux); bob accepts it plain, without rtcp-mux (RTCP on port+1)
        dlg = Dialog.as_uac(carol, call["call_id"], call["from"], ok, 1)
        n = dlg.request("INVITE", body=sdp_body("jabber", CLIENT_IP, 2, [audio, video]),
                        content_type="application/sdp")
        got = wait_request(bob, "INVITE", call_id=call["call_id"])
        g = Sdp(got.body)
        self.assertEqual(len(g.media), 2, g.lines)
        self.assertEqual(g.m(0)[1], Sdp(inv.body).m(0)[1], "the audio relay must stay")
        c_video = g.m(1)[1]
        self.assertTrue(self.c_lo <= c_video <= self.c_hi and c_video != g.m(0)[1], g.lines)
        self.assertEqual(g.attrs(1, "rtcp-mux"), [""], g.lines)
        bob_video = [f"m=video {iv.port} RTP/AVP 97", "a=rtpmap:97 H264/90000", "a=sendrecv"]
        d.respond(got, 200, "OK", body=sdp_body("desk", INTERNAL_IP, 2, [bob_audio, bob_video]))
        r = wait_final(carol, "INVITE", call["call_id"], n)
        self.assertEqual(r.status, 200, r.raw)
        dlg.request("ACK")
        wait_request(bob, "ACK", call_id=call["call_id"])
        s2 = Sdp(r.body)
        self.assertEqual(len(s2.media), 2, s2.lines)
        self.assertEqual(s2.m(0)[1], e_audio, "the audio port must stay")
        e_video = s2.m(1)[1]
        self.assertTrue(self.e_lo <= e_video <= self.e_hi and e_video != e_audio, s2.lines)
        self.assertEqual(s2.attrs(1, "rtcp-mux"), [""], "the client offered rtcp-mux: the relay accepts it")
        cv.keys(kv, Crypto.parse(s2.attrs(1, "crypto")[0]))

        # video both ways: the client muxes RTCP onto its video port, bob gets RTCP on his RTCP port (+1).
        vid = [rtp(97, n, 3000 * n, 0x7777, b"v%d" % n * 100) for n in range(1, 4)]
        self.assertEqual(self.exchange(cv, (E_MEDIA_IP, e_video), iv, vid, expect_src=(C_MEDIA_IP, c_video)), vid)
        self.assertEqual(self.exchange(cv, (E_MEDIA_IP, e_video), iv, [rtcp_sr(0x7777, 1)], b_sock=iv.rtcp_sock,
                                       expect_src=(C_MEDIA_IP, c_video + 1)),
                         [rtcp_sr(0x7777, 1)], "the client's muxed RTCP must reach bob's RTCP port")
        back = [rtp(97, 40 + n, 3000 * n, 0x8888, b"b%d" % n * 100) for n in range(3)]
        self.assertEqual(self.exchange(iv, (C_MEDIA_IP, c_video), cv, back, expect_src=(E_MEDIA_IP, e_video)), back)
        self.assertEqual(self.exchange(iv, (C_MEDIA_IP, c_video), cv, [rtcp_sr(0x8888, 1)], via_rtcp_port=True,
                                       expect_src=(E_MEDIA_IP, e_video)),
                         [rtcp_sr(0x8888, 1)], "bob's RTCP must reach the client on its muxed video port")
        # audio still flows on its own relay
        aud = [rtp(0, 5, 800, 0x1111, b"still-audio" * 10)]
        self.assertEqual(self.exchange(ca, (E_MEDIA_IP, e_audio), ia, aud), aud)
        self.check_no_stray(ia.rtp_sock, iv.rtp_sock, cv.rtcp_sock)
        self.assertEqual(self.sessions(), (2, 1), "edge-e: one media session per media_open; edge-c: one call")

        n = dlg.request("BYE")
        b = wait_request(bob, "BYE", call_id=call["call_id"])
        d.respond(b, 200, "OK")
        self.assertEqual(wait_final(carol, "BYE", call["call_id"], n).status, 200)
        self.wait_sessions(lambda s: s == (0, 0), timeout=5, what="after BYE")

    def test_unencrypted_video_rejected_on_both_legs(self):
        """media.encryption force: a video m-line without a=crypto is rejected (port 0) towards bob and in the
        answer to the client, while the audio of the same call is relayed."""
        self.media_env()
        bob = self.internal_ua("bob")
        carol = self.client("carol")
        ca, cv = self.stream(CLIENT_IP), self.stream(CLIENT_IP)
        ka = Crypto.new(1)
        call = self.invite_from_client(carol, "bob", sdp_body("jabber", CLIENT_IP, 1, [
            [f"m=audio {ca.port} RTP/SAVP 0", "a=rtpmap:0 PCMU/8000", ka.line()],
            [f"m=video {cv.port} RTP/AVP 97", "a=rtpmap:97 H264/90000"]]))
        inv = wait_request(bob, "INVITE", call_id=call["call_id"])
        g = Sdp(inv.body)
        self.assertEqual([g.m(i)[1] != 0 for i in range(2)], [True, False], g.lines)
        ia = self.stream(INTERNAL_IP)
        d = self.answer_internal(bob, inv, sdp_body("desk", INTERNAL_IP, 1, [
            [f"m=audio {ia.port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000"], ["m=video 0 RTP/AVP 97"]]))
        ok = self.wait_response(carol, call)
        self.assertEqual(ok.status, 200, ok.raw)
        self.ack(carol, call, ok)
        s = Sdp(ok.body)
        self.assertEqual(len(s.media), 2, s.lines)
        self.assertNotEqual(s.m(0)[1], 0)
        self.assertEqual(s.m(1)[1], 0, f"the unencrypted video must be answered with port 0\n{s.lines}")
        ca.keys(ka, Crypto.parse(s.attrs(0, "crypto")[0]))
        aud = [rtp(0, 1, 160, 0x2222, b"a" * 160)]
        self.assertEqual(self.exchange(ca, (E_MEDIA_IP, s.m(0)[1]), ia, aud), aud)
        bye = Dialog.as_uac(carol, call["call_id"], call["from"], ok, 1)
        n = bye.request("BYE")
        b = wait_request(bob, "BYE", call_id=call["call_id"])
        d.respond(b, 200, "OK")
        self.assertEqual(wait_final(carol, "BYE", call["call_id"], n).status, 200)
        self.wait_sessions(lambda s: s == (0, 0), timeout=5, what="after BYE")

    def test_incoming_call_rtcp_mux_converted(self):
        """Unified CM's side calls the client with audio (plain RTP, rtcp-mux offered) and video (SRTP inside, no
        rtcp-mux); the client declines rtcp-mux. Bob's leg is muxed, the client's is not: edge-c converts, and
        every packet reaches the right socket both ways."""
        self.media_env()
        bob = self.internal_ua("bob")
        carol = self.client("carol")
        ia, iv = self.stream(INTERNAL_IP), self.stream(INTERNAL_IP)
        bob_key = Crypto.new(1)
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
        from_hdr = f"<sip:bob@{DOMAIN}>;tag={tag}"
        bob.send(f"""
INVITE sip:carol@{DOMAIN} SIP/2.0
Via: SIP/2.0/TCP {bob.local};branch={bob.branch()};rport
Max-Forwards: 70
From: {from_hdr}
To: <sip:carol@{DOMAIN}>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: {bob.contact}
Content-Type: application/sdp
""", sdp_body("desk", INTERNAL_IP, 1, [
            [f"m=audio {ia.port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=rtcp-mux", "a=sendrecv"],
            [f"m=video {iv.port} RTP/AVP 97", "a=rtpmap:97 H264/90000", bob_key.line(), "a=sendrecv"]]))
        inv = wait_request(carol, "INVITE", call_id=call_id)
        g = Sdp(inv.body)
        self.assertEqual(len(g.media), 2, g.lines)
        self.assertEqual([g.m(i)[2] for i in range(2)], ["RTP/SAVP", "RTP/SAVP"], "SRTP towards the client")
        self.assertEqual([g.attrs(i, "rtcp-mux") for i in range(2)], [[""], []], g.lines)
        e_ports = [g.m(i)[1] for i in range(2)]
        e_keys = [Crypto.parse(g.attrs(i, "crypto")[0]) for i in range(2)]
        ca, cv = self.stream(CLIENT_IP), self.stream(CLIENT_IP)
        mine = [Crypto.new(k.tag) for k in e_keys]
        ca.keys(mine[0], e_keys[0])
        cv.keys(mine[1], e_keys[1])
        cd = Dialog.as_uas(carol, inv, uuid.uuid4().hex[:8])
        cd.respond(inv, 200, "OK", body=sdp_body("jabber", CLIENT_IP, 1, [
            [f"m=audio {ca.port} RTP/SAVP 0", "a=rtpmap:0 PCMU/8000", mine[0].line(), "a=sendrecv"],
            [f"m=video {cv.port} RTP/SAVP 97", "a=rtpmap:97 H264/90000", mine[1].line(), "a=sendrecv"]]))
        ok = wait_final(bob, "INVITE", call_id, 1)
        self.assertEqual(ok.status, 200, ok.raw)
        bd = Dialog.as_uac(bob, call_id, from_hdr, ok, 1)
        bd.request("ACK")
        wait_request(carol, "ACK", call_id=call_id)
        s = Sdp(ok.body)
        self.assertEqual(s.all("c="), [f"c=IN IP4 {C_MEDIA_IP}"], s.lines)
        c_ports = [s.m(i)[1] for i in range(2)]
        self.assertEqual([s.m(i)[2] for i in range(2)], ["RTP/AVP", "RTP/SAVP"],
                         "bob is answered plain audio and SRTP video, as he offered")
        self.assertEqual([s.attrs(i, "rtcp-mux") for i in range(2)], [[""], []], "bob's rtcp-mux is accepted")
        self.assertEqual(s.attrs(0, "crypto"), [])
        inside = Crypto.parse(s.attrs(1, "crypto")[0])
        self.assertEqual(inside.tag, bob_key.tag)
        iv.keys(bob_key, inside)

        # the client sends first (latching), RTCP on its RTCP port: bob gets it on his one (muxed) audio port.
        aud = [rtp(0, n, 160 * n, 0xC1, b"carol-%d" % n * 20) for n in range(1, 3)] + [rtcp_sr(0xC1, 1)]
        self.assertEqual(self.exchange(ca, (E_MEDIA_IP, e_ports[0]), ia, aud, via_rtcp_port=True,
                                       expect_src=(C_MEDIA_IP, c_ports[0])), aud)
        vid = [rtp(97, n, 3000 * n, 0xC2, b"carol-video" * 20) for n in range(1, 3)] + [rtcp_sr(0xC2, 1)]
        self.assertEqual(self.exchange(cv, (E_MEDIA_IP, e_ports[1]), iv, vid, via_rtcp_port=True,
                                       b_sock=iv.rtp_sock), vid[:2], "video RTP at bob's RTP port")
        rtcp_in = recv_all(iv.rtcp_sock, 0.5)
        self.assertEqual([iv.open(d) for d, _ in rtcp_in], [rtcp_sr(0xC2, 1)], "video RTCP at bob's RTCP port")
        self.assertEqual([src for _, src in rtcp_in], [(C_MEDIA_IP, c_ports[1] + 1)])
        # bob muxes: RTP and RTCP on his audio port reach the client's RTP and RTCP ports.
        back = [rtp(0, 30 + n, 160 * n, 0xB0, b"bob-%d" % n * 20) for n in range(2)]
        self.assertEqual(self.exchange(ia, (C_MEDIA_IP, c_ports[0]), ca, back, expect_src=(E_MEDIA_IP, e_ports[0])),
                         back)
        self.assertEqual(self.exchange(ia, (C_MEDIA_IP, c_ports[0]), ca, [rtcp_sr(0xB0, 1)], b_sock=ca.rtcp_sock,
                                       expect_src=(E_MEDIA_IP, e_ports[0] + 1)),
                         [rtcp_sr(0xB0, 1)], "bob's muxed RTCP must reach the client's RTCP port")
        vback = [rtp(97, 50 + n, 3000 * n, 0xB1, b"bob-video" * 20) for n in range(2)]
        self.assertEqual(self.exchange(iv, (C_MEDIA_IP, c_ports[1]), cv, vback), vback)
        self.check_no_stray(ia.rtcp_sock, ca.rtp_sock, cv.rtcp_sock)

        n = bd.request("BYE")
        b = wait_request(carol, "BYE", call_id=call_id)
        cd.respond(b, 200, "OK")
        self.assertEqual(wait_final(bob, "BYE", call_id, n).status, 200)
        self.wait_sessions(lambda s: s == (0, 0), timeout=5, what="after BYE")

    def test_two_clients_of_the_pair_video_call(self):
        """Issue #16's case: two outside clients call each other through the pair (both call halves share the
        Call-ID). Video is offered and answered on edge-e ports on both halves, rtcp-mux offered by the caller
        reaches the callee and is answered, the TCP/BFCP line is port 0 in the offer to the callee and in the
        answer to the caller, and video flows both ways.
        Two workers per edge: edge-e hands consecutive client flows to its links in turn, so carol and dave
        land on different edge-c workers, whose inside Record-Route entries name different node connections;
        the caller's ACK carries the other worker's entry in its route set and must still be routed."""
        self.media_env(workers=2)
        carol = self.client("carol")
        dave = self.client("dave")
        ca, cv = self.stream(CLIENT_IP), self.stream(CLIENT_IP)
        da, dv = self.stream(CLIENT_IP), self.stream(CLIENT_IP)
        ka, kv = Crypto.new(1), Crypto.new(1)
        call = self.invite_from_client(carol, "dave", sdp_body("jabber", CLIENT_IP, 1, [
            [f"m=audio {ca.port} RTP/SAVP 0", "a=rtpmap:0 PCMU/8000", ka.line(), "a=sendrecv"],
            [f"m=video {cv.port} RTP/SAVP 97", "a=rtpmap:97 H264/90000", kv.line(), "a=rtcp-mux", "a=sendrecv"],
            ["m=application 9 TCP/BFCP *", "a=setup:actpass", "a=connection:new", "a=floorctrl:c-s"]]))
        inv = wait_request(dave, "INVITE", call_id=call["call_id"])
        g = Sdp(inv.body)
        self.assertEqual(g.all("c="), [f"c=IN IP4 {E_PUBLIC}"], g.lines)
        self.assertEqual(len(g.media), 3, g.lines)
        d_ports = [g.m(i)[1] for i in range(3)]
        self.assertTrue(all(self.e_lo <= p <= self.e_hi for p in d_ports[:2]), g.lines)
        self.assertEqual(d_ports[2], 0, f"TCP/BFCP must reach the callee with port 0\n{g.lines}")
        self.assertEqual([g.attrs(i, "rtcp-mux") for i in range(3)], [[], [""], []], g.lines)
        self.assertEqual([g.m(i)[2] for i in range(2)], ["RTP/SAVP", "RTP/SAVP"])
        d_edge = [Crypto.parse(g.attrs(i, "crypto")[0]) for i in range(2)]
        dka, dkv = Crypto.new(d_edge[0].tag), Crypto.new(d_edge[1].tag)
        da.keys(dka, d_edge[0])
        dv.keys(dkv, d_edge[1])
        dd = self.answer_internal(dave, inv, sdp_body("jabber", CLIENT_IP, 1, [
            [f"m=audio {da.port} RTP/SAVP 0", "a=rtpmap:0 PCMU/8000", dka.line(), "a=sendrecv"],
            [f"m=video {dv.port} RTP/SAVP 97", "a=rtpmap:97 H264/90000", dkv.line(), "a=rtcp-mux", "a=sendrecv"],
            ["m=application 0 TCP/BFCP *"]]))
        ok = self.wait_response(carol, call)
        self.assertEqual(ok.status, 200, ok.raw)
        self.ack(carol, call, ok)
        wait_request(dave, "ACK", call_id=call["call_id"])
        s = Sdp(ok.body)
        self.assertEqual(len(s.media), 3, s.lines)
        c_ports = [s.m(i)[1] for i in range(3)]
        self.assertTrue(all(self.e_lo <= p <= self.e_hi for p in c_ports[:2]),
                        f"video must not be answered with port 0 while the callee has it\n{s.lines}")
        self.assertEqual(c_ports[2], 0, s.lines)
        self.assertEqual(len(set(c_ports[:2] + d_ports[:2])), 4, "each call half needs its own edge-e ports")
        self.assertEqual(s.attrs(1, "rtcp-mux"), [""], s.lines)
        ca.keys(ka, Crypto.parse(s.attrs(0, "crypto")[0]))
        cv.keys(kv, Crypto.parse(s.attrs(1, "crypto")[0]))
        self.assertEqual(self.sessions(), (2, 2), "one media session per call half on each edge")

        # dave speaks first (latches his ports), then both ways on video (RTP and muxed RTCP) and audio.
        dv.rtp_sock.sendto(dv.out(rtp(97, 1, 0, 0xDA7E, b"latch" * 10)), (E_MEDIA_IP, d_ports[1]))
        da.rtp_sock.sendto(da.out(rtp(0, 1, 0, 0xDA7A, b"latch" * 10)), (E_MEDIA_IP, d_ports[0]))
        recv_all(cv.rtp_sock, 0.5)  # carol is not latched yet: edge-e drops these
        vid = [rtp(97, n, 3000 * n, 0xCA01, b"carol-video-%d" % n * 30) for n in range(1, 4)] + [rtcp_sr(0xCA01, 1)]
        self.assertEqual(self.exchange(cv, (E_MEDIA_IP, c_ports[1]), dv, vid, expect_src=(E_MEDIA_IP, d_ports[1])),
                         vid, "carol's video and RTCP at dave's one video port")
        back = [rtp(97, 10 + n, 3000 * n, 0xDA7E, b"dave-video-%d" % n * 30) for n in range(3)] + [
            rtcp_sr(0xDA7E, 1)]
        self.assertEqual(self.exchange(dv, (E_MEDIA_IP, d_ports[1]), cv, back, expect_src=(E_MEDIA_IP, c_ports[1])),
                         back, "dave's video and RTCP at carol's one video port")
        aud = [rtp(0, n, 160 * n, 0xCA0A, b"carol-audio" * 10) for n in range(1, 3)]
        self.assertEqual(self.exchange(ca, (E_MEDIA_IP, c_ports[0]), da, aud), aud)
        self.check_no_stray(ca.rtp_sock, da.rtp_sock, dv.rtcp_sock, cv.rtcp_sock)

        dlg = Dialog.as_uac(carol, call["call_id"], call["from"], ok, 1)
        n = dlg.request("BYE")
        b = wait_request(dave, "BYE", call_id=call["call_id"])
        dd.respond(b, 200, "OK")
        self.assertEqual(wait_final(carol, "BYE", call["call_id"], n).status, 200)
        self.wait_sessions(lambda s: s == (0, 0), timeout=5, what="after BYE")


if __name__ == "__main__":
    h.run_tests()
