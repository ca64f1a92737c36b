#!/usr/bin/env python3
"""Media relay benchmark driver (run by tools/bench-media.sh; see that script for the options).

For each target it sets up N calls, then runs rtp-bench (the C++ load generator next to this file) for a
fixed packet rate and reads the relay processes' CPU time from /proc/<pid>/stat around the measured window:

  direct     rtp-bench's client sockets send SRTP straight to its internal echo sockets: the round-trip floor.
  edgepair   edge-e + edge-c with `media:` sections; calls are real SIP calls: the client (a SIP/TLS UA of the
             integration tests, tests/integration/sipenv.py) INVITEs through edge-e/edge-c/Kamailio to a small
             UDP UAS registered at Kamailio that answers plain RTP. Client side SRTP (edge-c's key back),
             internal side plain RTP: what edge-c does for every MRA call to an unencrypted desk phone.
  rtpengine  Debian rtpengine-daemon, userspace forwarding only (--table=-1: no kernel module), one session per
             call set up over its "ng" control protocol (bencode over UDP): offer = the client's RTP/SAVP SDP
             with transport-protocol RTP/AVP towards the inside, answer = the internal endpoint's RTP/AVP SDP.
             Same shape: SRTP (SDES) on the client side, plain RTP inside.

Relay processes are pinned to CPU 0 and rtp-bench to CPU 1 (taskset), as tools/bench.sh does. Output: one TSV
row per run and target on stdout (and --out), then a summary.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

CLIENT_IP = "127.0.5.1"
INTERNAL_IP = "127.0.3.1"
E_MEDIA_IP = "127.0.4.1"
C_MEDIA_IP = "127.0.0.1"
RTPENGINE_IP = "127.0.6.1"
SUITE = "AES_CM_128_HMAC_SHA1_80"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total


def pin(pid: int, cpu: int):
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True, stdout=subprocess.DEVNULL)


def free_udp_pairs(ip: str, n: int, taken: set) -> list[int]:
    """n even ports p (p and p+1 free for UDP) on ip."""
    out = []
    rnd = random.Random(os.getpid())
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100000:
            raise RuntimeError("no free UDP port pairs")
        p = rnd.randrange(20000, 60000) & ~1
        if p in taken or p + 1 in taken:
            continue
        ok = True
        for q in (p, p + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((ip, q))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            taken.update((p, p + 1))
            out.append(p)
    return out


def key() -> str:
    return base64.b64encode(os.urandom(30)).decode()


def client_sdp(port: int, k: str) -> str:
    return ("v=0\r\no=client 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            "m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:1 {suite} inline:{k}\r\n"
            "a=sendrecv\r\n").format(ip=CLIENT_IP, port=port, suite=SUITE, k=k)


def internal_sdp(port: int) -> str:
    return ("v=0\r\no=desk 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n").format(ip=INTERNAL_IP, port=port)


def sdp_media(sdp: str) -> tuple[str, int, str, str | None]:
    """(connection address, first m= port, proto, first a=crypto value) of an SDP."""
    c = re.search(r"(?m)^c=IN IP4 (\S+)", sdp).group(1)
    m = re.search(r"(?m)^m=audio (\d+) (\S+)", sdp)
    cr = re.search(r"(?m)^a=crypto:(.*?)\r?$", sdp)
    return c, int(m.group(1)), m.group(2), cr.group(1) if cr else None


def crypto_key(value: str) -> tuple[str, str]:
    m = re.match(r"\d+ (\S+) inline:([A-Za-z0-9+/=]+)", value)
    return m.group(1), m.group(2)


# ------------------------------------------------------------------------------------------------------------
# bencode and rtpengine's ng protocol


def benc(x) -> bytes:
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(benc(v) for v in x) + b"e"
    if isinstance(x, dict):
        return b"d" + b"".join(benc(k) + benc(v) for k, v in sorted(x.items())) + b"e"
    raise TypeError(type(x))


def bdec(b: bytes, i: int = 0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l":
        i, out = i + 1, []
        while b[i:i + 1] != b"e":
            v, i = bdec(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i, out = i + 1, {}
        while b[i:i + 1] != b"e":
            k, i = bdec(b, i)
            v, i = bdec(b, i)
            out[k.decode()] = v
        return out, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


class Ng:
    def __init__(self, port: int):
        self.addr = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2)

    def __call__(self, **cmd) -> dict:
        cookie = uuid.uuid4().hex[:12].encode()
        for _ in range(5):
            self.sock.sendto(cookie + b" " + benc(cmd), self.addr)
            try:
                while True:
                    data, _ = self.sock.recvfrom(65536)
                    ck, _, rest = data.partition(b" ")
                    if ck == cookie:
                        r, _ = bdec(rest)
                        if r.get("result") not in (b"ok", b"pong"):
                            raise RuntimeError(f"rtpengine {cmd.get('command')}: {r}")
                        return r
            except socket.timeout:
                continue
        raise RuntimeError("rtpengine does not answer on its ng port")


# ------------------------------------------------------------------------------------------------------------
# targets: each returns (streams file lines, relay pids, stop callable)


def setup_direct(n: int, taken: set) -> tuple[list[str], list[int], callable]:
    cports, iports = free_udp_pairs(CLIENT_IP, n, taken), free_udp_pairs(INTERNAL_IP, n, taken)
    lines = []
    for cp, ip in zip(cports, iports):
        k = key()
        lines.append(f"{cp} {INTERNAL_IP} {ip} {SUITE} {k} {SUITE} {k} {ip} 1")
    return lines, [], lambda: None


def setup_rtpengine(n: int, taken: set, tmp: str) -> tuple[list[str], list[int], callable]:
    import harness as h
    ng_port = h.free_port("127.0.0.1", udp=True)
    lo = free_udp_range(RTPENGINE_IP, 4 * n + 40)
    log = open(os.path.join(tmp, "rtpengine.log"), "ab")
    p = subprocess.Popen(["taskset", "-c", "0", "rtpengine", "--config-file=none", "-f", "-E", "-L", "4",
                          "--table=-1", "-i", RTPENGINE_IP, "-n", f"127.0.0.1:{ng_port}", "-m", str(lo),
                          "-M", str(lo + 4 * n + 39), "--num-threads=1", "--delete-delay=0", "--timeout=600"],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ng = Ng(ng_port)
    deadline = time.monotonic() + 10
    while True:
        try:
            ng(command="ping")
            break
        except RuntimeError:
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rtpengine did not start; see " + log.name)
    cports, iports = free_udp_pairs(CLIENT_IP, n, taken), free_udp_pairs(INTERNAL_IP, n, taken)
    lines = []
    for cp, ip in zip(cports, iports):
        cid, ft, tt, k = uuid.uuid4().hex, uuid.uuid4().hex[:8], uuid.uuid4().hex[:8], key()
        off = ng(command="offer", **{"call-id": cid, "from-tag": ft, "sdp": client_sdp(cp, k),
                                     "transport-protocol": "RTP/AVP", "ICE": "remove"})
        c_in, p_in, proto_in, cr_in = sdp_media(off["sdp"].decode())
        assert proto_in == "RTP/AVP" and cr_in is None, off["sdp"]
        ans = ng(command="answer", **{"call-id": cid, "from-tag": ft, "to-tag": tt, "sdp": internal_sdp(ip),
                                      "ICE": "remove"})
        c_out, p_out, proto_out, cr_out = sdp_media(ans["sdp"].decode())
        assert proto_out == "RTP/SAVP" and cr_out, ans["sdp"]
        suite, rk = crypto_key(cr_out)
        lines.append(f"{cp} {c_out} {p_out} {SUITE} {k} {suite} {rk} {ip} 0")

    def stop():
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
    return lines, [p.pid], stop


def free_udp_range(ip: str, n: int) -> int:
    import harness as h
    return h.free_port_range(n, ip)


class InternalUas:
    """The internal endpoint for edgepair calls: registered at Kamailio over UDP; answers each INVITE with plain
    RTP at the next internal port; answers BYE."""

    def __init__(self, kam: tuple[str, int], ports: list[int]):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((INTERNAL_IP, 0))
        self.sock.settimeout(0.2)
        self.kam = kam
        self.ports = list(ports)
        self.offers: list[str] = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)

    def register(self, user: str):
        local = "%s:%d" % self.sock.getsockname()
        msg = (f"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=r1\r\nTo: <sip:{user}@example.com>\r\n"
               f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{local}>\r\n"
               "Expires: 3600\r\nContent-Length: 0\r\n\r\n")
        self.sock.sendto(msg.encode(), self.kam)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            if data.startswith(b"SIP/2.0 200"):
                self.t.start()
                return
        raise RuntimeError("internal UAS: REGISTER at Kamailio failed")

    @staticmethod
    def _resp(req: str, code: str, body: str = "") -> bytes:
        head, _, _ = req.partition("\r\n\r\n")
        lines = head.split("\r\n")[1:]
        keep = [ln for ln in lines if re.match(r"(?i)(via|record-route|from|call-id|cseq)\s*:", ln)]
        to = next(ln for ln in lines if re.match(r"(?i)to\s*:", ln))
        if "tag=" not in to:
            to += ";tag=" + uuid.uuid4().hex[:8]
        out = [f"SIP/2.0 {code}"] + keep + [to, "Contact: <sip:bench@%s:%d>" % (INTERNAL_IP, 0)]
        if body:
            out.append("Content-Type: application/sdp")
        out.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(out) + "\r\n\r\n" + body).encode()

    def run(self):
        answered: dict[str, bytes] = {}
        while not self.stop:
            try:
                data, src = self.sock.recvfrom(65536)
            except (socket.timeout, OSError):
                continue
            msg = data.decode(errors="replace")
            if msg.startswith("INVITE "):
                cid = re.search(r"(?im)^call-id\s*:\s*(\S+)", msg).group(1)
                if cid not in answered:  # retransmissions get the same answer
                    self.offers.append(msg)
                    port = self.ports.pop(0)
                    answered[cid] = self._resp(msg, "200 OK", internal_sdp(port)).replace(
                        b"bench@%s:0" % INTERNAL_IP.encode(), b"bench@%s:%d" % (INTERNAL_IP.encode(),
                                                                            self.sock.getsockname()[1]))
                self.sock.sendto(answered[cid], src)
            elif msg.startswith("BYE ") or msg.startswith("OPTIONS "):
                self.sock.sendto(self._resp(msg, "200 OK"), src)

    def close(self):
        self.stop = True
        if self.t.is_alive():
            self.t.join(2)
        self.sock.close()


def setup_edgepair(n: int, taken: set, env) -> tuple[list[str], list[int], callable]:
    import harness as h
    import sipenv
    env.start_kamailio(udp=True)
    env.start_dns()
    env.start_fixture()
    e_lo = h.free_port_range(2 * n + 20, E_MEDIA_IP)
    t_lo = h.free_port_range(4, "127.0.0.1")
    c_lo = h.free_port_range(2 * n + 20, C_MEDIA_IP)
    env.start_pair(workers=1, extra_e=f"""
        media:
          listen: {E_MEDIA_IP}
          ports: {e_lo}-{e_lo + 2 * n + 19}
          traversal_listen: 127.0.0.1
          traversal_ports: {t_lo}-{t_lo + 3}
          idle_timeout: 600s
        """, log_level="info", extra_c=f"""
        media:
          address: {C_MEDIA_IP}
          ports: {c_lo}-{c_lo + 2 * n + 19}
          encryption: force
          idle_timeout: 600s
        """)
    pids = [env.edge_e.pid, env.edge_c.pid]
    for pid in pids:
        pin(pid, 0)
    cports, iports = free_udp_pairs(CLIENT_IP, n, taken), free_udp_pairs(INTERNAL_IP, n, taken)
    uas = InternalUas((sipenv.UCM_ADDR, env.kport), iports)
    uas.register("bench")
    ua = sipenv.SipUA(env.ports.sip, "client", env.ca, source=CLIENT_IP)
    lines = []
    for cp, ip in zip(cports, iports):
        k, cid, tag = key(), uuid.uuid4().hex, uuid.uuid4().hex[:8]
        ua.send(f"""
INVITE sip:bench@example.com SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
Max-Forwards: 70
From: <sip:client@example.com>;tag={tag}
To: <sip:bench@example.com>
Call-ID: {cid}
CSeq: 1 INVITE
Contact: {ua.contact}
Content-Type: application/sdp
""", client_sdp(cp, k))
        while True:
            m = ua.recv(15)
            if m is None:
                raise RuntimeError("edge-e closed the client's SIP connection")
            if not m.is_request and m.get("Call-ID") == cid and m.status >= 200:
                break
        if m.status != 200:
            raise RuntimeError(f"call {len(lines)} failed: {m.start}\n{m.raw[:1500]!r}")
        routes = "".join(f"Route: {r}\n" for r in reversed(m.all("Record-Route")))
        remote = re.search(r"<([^>]+)>", m.get("Contact")).group(1)
        ua.send(f"""
ACK {remote} SIP/2.0
Via: SIP/2.0/TLS {ua.local};branch={ua.branch()}
{routes}Max-Forwards: 70
From: <sip:client@example.com>;tag={tag}
To: {m.get('To')}
Call-ID: {cid}
CSeq: 1 ACK
""".replace("\n\n", "\n"))
        _, e_port, proto, cr = sdp_media(m.body.decode())
        assert proto == "RTP/SAVP" and cr, m.body
        suite, rk = crypto_key(cr)
        # edge-e's public_address = listen here (no NAT): send to the SDP's address
        lines.append(f"{cp} {E_MEDIA_IP} {e_port} {SUITE} {k} {suite} {rk} {ip} 0")

    def stop():
        ua.close()
        uas.close()
    return lines, pids, stop


# ------------------------------------------------------------------------------------------------------------


def drops(admin_ports: list[int]) -> dict:
    """edgepair_media_dropped_total by reason, summed over the edges' admin ports."""
    import harness as h
    out: dict = {}
    for port in admin_ports:
        _, _, body = h.http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        for m in re.finditer(r'(?m)^edgepair_media_dropped_total\{[^}]*reason="([^"]+)"[^}]*\}\s+(\S+)', body.decode()):
            out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
    return out


def run_gen(gen: str, lines: list[str], pids: list[int], args, tmp: str, label: str,
            admin_ports: list[int] | None = None) -> dict:
    path = os.path.join(tmp, f"streams-{label}.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    cmd = ["taskset", "-c", "1", gen, "--streams", path, "--client-ip", CLIENT_IP, "--internal-ip", INTERNAL_IP,
           "--pps", str(args.pps), "--duration", str(args.duration), "--warmup", str(args.warmup)]
    d0 = drops(admin_ports) if admin_ports else {}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(args.warmup)
    per0 = [cpu_ticks([pid]) for pid in pids]
    t0 = time.monotonic()
    time.sleep(args.duration)
    per1 = [cpu_ticks([pid]) for pid in pids]
    t1 = time.monotonic()
    c0, c1 = sum(per0), sum(per1)
    out, err = p.communicate(timeout=args.duration + args.warmup + 30)
    if p.returncode != 0:
        raise RuntimeError(f"rtp-bench failed ({p.returncode}): {err}")
    r = json.loads(out.strip().splitlines()[-1])
    r["cpu_s"] = (c1 - c0) / CLK_TCK
    r["wall_s"] = t1 - t0
    r["cpu_util"] = r["cpu_s"] / r["wall_s"] if pids else 0.0
    r["cpu_util_by_process"] = [round((b - a) / CLK_TCK / r["wall_s"], 3) for a, b in zip(per0, per1)]
    r["pkts_per_cpu_s"] = (r["relayed_pps"] * r["wall_s"] / r["cpu_s"]) if r["cpu_s"] > 0 else float("nan")
    r["cmd"] = " ".join(cmd)
    if admin_ports:
        d1 = drops(admin_ports)
        r["relay_drops"] = {k: v - d0.get(k, 0) for k, v in d1.items() if v - d0.get(k, 0)}
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gen", required=True, help="rtp-bench binary")
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--pps", type=float, default=50)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="direct,edgepair,rtpengine")
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    import harness as h
    import sipenv

    targets = args.only.split(",")
    rows = []
    header = ("target\trun\tstreams\toffered_pps\trelayed_pps\tcpu_s\tcpu_util\tpkts_per_cpu_s\tloss\t"
              "rtt_p50_us\trtt_p90_us\trtt_p99_us\trtt_max_us\tbad\tcpu_util_by_process")
    print(header, flush=True)
    for target in targets:
        env = sipenv.SipEnv()
        env.setUp()
        taken: set = set()
        try:
            if target == "direct":
                lines, pids, stop = setup_direct(args.streams, taken)
            elif target == "rtpengine":
                lines, pids, stop = setup_rtpengine(args.streams, taken, env.tmp)
            elif target == "edgepair":
                lines, pids, stop = setup_edgepair(args.streams, taken, env)
            else:
                raise SystemExit(f"unknown target {target}")
            try:
                for run in range(1, args.runs + 1):
                    if target == "rtpengine" and run > 1:
                        # rtpengine mishandles the fresh SSRCs rtp-bench uses on every run (late, lost echoes
                        # in a session that saw other SSRCs before): a new rtpengine and new sessions per run.
                        stop()
                        lines, pids, stop = setup_rtpengine(args.streams, taken, env.tmp)
                    admin = [env.ports.admin_e, env.ports.admin_c] if target == "edgepair" else None
                    r = run_gen(args.gen, lines, pids, args, env.tmp, target, admin)
                    bad = r["bad_internal"] + r["client_auth_fail"] + r["bad_client"] + r["send_errors"]
                    row = (f"{target}\t{run}\t{r['streams']}\t{r['offered_pps']:.0f}\t{r['relayed_pps']:.0f}\t"
                           f"{r['cpu_s']:.2f}\t{r['cpu_util']:.3f}\t{r['pkts_per_cpu_s']:.0f}\t{r['loss']:.5f}\t"
                           f"{r['rtt_us']['p50']:.0f}\t{r['rtt_us']['p90']:.0f}\t{r['rtt_us']['p99']:.0f}\t"
                           f"{r['rtt_us']['max']:.0f}\t{bad}\t{r['cpu_util_by_process']}"
                           + (f"\trelay drops {r['relay_drops']}"
                                                                   if r.get("relay_drops") else ""))
                    print(row, flush=True)
                    rows.append((target, r))
            finally:
                stop()
        finally:
            env.doCleanups()
            if not os.environ.get("EDGEPAIR_KEEP_TMP"):
                import shutil
                shutil.rmtree(env.tmp, ignore_errors=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(header + "\n")
            for target, r in rows:
                f.write(json.dumps({"target": target, **r}) + "\n")
    print("\nsummary (median over runs):")
    direct = [r["rtt_us"]["p50"] for t, r in rows if t == "direct"]
    direct99 = [r["rtt_us"]["p99"] for t, r in rows if t == "direct"]
    for target in targets:
        rs = [r for t, r in rows if t == target]
        if not rs:
            continue
        med = lambda xs: statistics.median(xs)  # noqa: E731
        p50, p99 = med([r["rtt_us"]["p50"] for r in rs]), med([r["rtt_us"]["p99"] for r in rs])
        line = (f"  {target:10s} relayed {med([r['relayed_pps'] for r in rs]):8.0f} pkt/s  "
                f"cpu {100 * med([r['cpu_util'] for r in rs]):5.1f}%  "
                f"{med([r['pkts_per_cpu_s'] for r in rs]):9.0f} pkt/CPU-s  rtt p50 {p50:6.0f} us  p99 {p99:6.0f} us")
        if direct and target != "direct":
            line += f"  (added p50 {p50 - med(direct):+.0f} us, p99 {p99 - med(direct99):+.0f} us)"
        print(line)


if __name__ == "__main__":
    main()
