#!/usr/bin/env bash
# tools/bench-media.sh: the media relay benchmark (issue #9): edgepair's pair versus rtpengine, on loopback.
#
#   tools/bench-media.sh [--streams N] [--pps R] [--duration S] [--warmup S] [--runs N] [--only LIST]
#                        [--out FILE] [-h]
#
# N calls (default 200) at R packets/s per call and direction (default 50: 20 ms G.711), SRTP (SDES,
# AES_CM_128_HMAC_SHA1_80) on the client side and plain RTP on the internal side, which echoes every packet
# back (as sipp -rtp_echo does). Targets (--only, default direct,edgepair,rtpengine):
#   direct     no relay: the client's SRTP goes straight to the echo; the round-trip floor
#   edgepair   edge-e + edge-c (workers: 1 each, log level info), calls set up by real SIP INVITEs through the
#              pair and Kamailio (tests/integration/sipenv.py topology) to a UDP UAS answering plain RTP
#   rtpengine  Debian rtpengine-daemon, userspace only (--table=-1), --num-threads=1, sessions set up over its
#              ng protocol (offer RTP/SAVP -> transport-protocol RTP/AVP, answer RTP/AVP)
# Relay processes are pinned to CPU 0 (edge-e and edge-c share it), the load generator tools/rtp-bench
# (C++, libsrtp2) to CPU 1. Measured per run: relayed packets/s (arrivals at the echo + arrivals back at the
# client), relay CPU (utime+stime from /proc/PID/stat over the measured window, summed over the relay
# processes), relayed packets per CPU-second, and the round-trip time of every echoed packet (p50/p90/p99/max);
# "added" latency = relay RTT - direct RTT.
#
# Environment: EDGEPAIR_BIN (default <repo>/build/bin: edge-e, edge-c, rtp-bench), EDGEPAIR_BUILD (the build
# dir to build rtp-bench in if it is missing; default the parent of EDGEPAIR_BIN), EDGEPAIR_KEEP_TMP=1 keeps
# logs. Needs: rtpengine (rtpengine-daemon), kamailio, dnsmasq, taskset, python3; run as root (loopback
# aliases 127.0.x.y are used as distinct hosts).
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${EDGEPAIR_BIN:-$ROOT/build/bin}
BUILD=${EDGEPAIR_BUILD:-$(dirname "$BIN")}
ARGS=()

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit "${1:-0}"
}
while (($#)); do
  case $1 in
    --streams | --pps | --duration | --warmup | --runs | --only | --out) ARGS+=("$1" "$2"); shift ;;
    -h | --help) usage 0 ;;
    *) echo "bench-media.sh: unknown option: $1" >&2; usage 2 >&2 ;;
  esac
  shift
done

for t in rtpengine kamailio dnsmasq taskset python3; do
  command -v "$t" >/dev/null || [[ -x /usr/sbin/$t ]] || { echo "bench-media.sh: $t not installed" >&2; exit 1; }
done
for b in edge-e edge-c; do
  [[ -x $BIN/$b ]] || { echo "bench-media.sh: $BIN/$b not built" >&2; exit 1; }
done
if [[ ! -x $BIN/rtp-bench ]]; then
  cmake --build "$BUILD" --target rtp-bench -j2 >&2
fi

echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)"
echo "# rtpengine $(rtpengine --version 2>&1 | awk '{print $2}'), edge-e $("$BIN/edge-e" --version 2>&1 | head -1)"
EDGEPAIR_BIN=$BIN EDGEPAIR_SRC=$ROOT PYTHONDONTWRITEBYTECODE=1 \
  exec /usr/bin/python3 "$ROOT/tools/rtp-bench/bench_media.py" --gen "$BIN/rtp-bench" "${ARGS[@]}"
