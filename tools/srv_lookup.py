#!/usr/bin/env python3
"""Ask one DNS server for SRV records and print them as "priority weight port target" lines.

Standard library only: a newcomer's machine may have no dig (dnsutils) and no dnspython. Used by tools/demo.sh
to show what a Jabber client looks up (_collab-edge._tls.<domain>).

    tools/srv_lookup.py 127.0.2.53 _collab-edge._tls.example.com [port]
Exit status: 0 with at least one record, 1 with none (NXDOMAIN / empty answer), 2 on errors.
"""
import random
import socket
import struct
import sys


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def read_name(msg: bytes, off: int, depth: int = 0) -> tuple[str, int]:
    """Returns the name at off (following compression pointers) and the offset after it in place."""
    labels = []
    end = None
    while True:
        if off >= len(msg) or depth > 32:
            raise ValueError("truncated or looping name")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            ptr = struct.unpack_from("!H", msg, off)[0] & 0x3FFF
            if end is None:
                end = off + 2
            off, depth = ptr, depth + 1
            continue
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels), (end if end is not None else off)


def query_srv(server: str, port: int, name: str, timeout: float = 2.0) -> list[tuple[int, int, int, str]]:
    qid = random.randrange(0x10000)
    packet = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", 33, 1)
    with socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (server, port))
        while True:
            msg, _ = s.recvfrom(4096)
            if len(msg) >= 12 and struct.unpack_from("!H", msg)[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", msg)
    if flags & 0x000F not in (0, 3):
        raise RuntimeError(f"server answered rcode {flags & 0xF}")
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    out = []
    for _ in range(an):
        _, off = read_name(msg, off)
        rtype, _, _, rdlen = struct.unpack_from("!HHIH", msg, off)
        off += 10
        if rtype == 33:
            prio, weight, p = struct.unpack_from("!HHH", msg, off)
            target, _ = read_name(msg, off + 6)
            out.append((prio, weight, p, target))
        off += rdlen
    return sorted(out)


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip().splitlines()[4], file=sys.stderr)
        return 2
    try:
        recs = query_srv(sys.argv[1], int(sys.argv[3]) if len(sys.argv) == 4 else 53, sys.argv[2])
    except (OSError, ValueError, RuntimeError) as e:
        print(f"srv_lookup: {sys.argv[2]} at {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    for prio, weight, port, target in recs:
        print(prio, weight, port, target)
    return 0 if recs else 1


if __name__ == "__main__":
    sys.exit(main())
