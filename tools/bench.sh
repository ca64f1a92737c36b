#!/usr/bin/env bash
# tools/bench.sh: edgepair's performance anchor run (ANCHORS.md B0), on loopback, bounded in time and count.
#
#   tools/bench.sh [--runs N] [--quick] [--only LIST] [--idle-conns N] [--out FILE] [--keep] [-h]
#
# Starts, in a temp dir:
#   - a test PKI (certs/mkpki.sh --rsa: ECDSA P-256 and RSA-2048 leaf certificates, openssl CLI);
#   - a backend nginx on loopback answering `return 200 "ok\n"` (not pinned, like B0);
#   - HAProxy (nbthread 1) and nginx (1 worker) as single TLS-terminating hops to that backend, plus a
#     direct-response frontend each (the shape edge-e has today);
#   - edge-e (workers: 1) alone, without edge-c: it answers every HTTPS request 503 "traversal link down".
#     Its rows are labelled "edge-e direct 503 answer (no link)": they measure its TLS and HTTP front end;
#   - the pair ("pair"): edge-e and edge-c (workers: 1 each, both pinned to CPU0; see BENCH_PAIR_WORKERS) with their real peers on
#     loopback: the UCM fixture (AXL discovery, UDS sign-in) as cucm1 and imp1, Kamailio as Unified CM's
#     registrar, Prosody as IM&P (BENCH_IMP_ADDR, default 127.0.1.3, port 5222, which must be free), nginx as the TFTP/web origin on
#     cucm1, dnsmasq publishing _collab-edge._tls.example.com. Measured: proxied HTTP/1.1 keep-alive through
#     the link, edge-load sip-register (REGISTER/s, and N registrations held), sip-call (calls/s: INVITE with
#     an SRTP offer, ACK, BYE, to sipp answering as "bob" on UDP behind Kamailio; both edges relay the call's
#     media, `media:` on), xmpp (messages/s, and N sessions held) and mra-login (sign-ins/s); per CPU-second
#     of edge-e + edge-c, with each one's share.
# and measures, each `--runs` times (default 3):
#   handshake-ec / handshake-rsa   full TLS handshakes, one request per connection (h2load --h1 -n N -c N,
#                                  and edge-load --scenario handshake --request)
#   ka-h1-proxy / ka-h1-direct     HTTP/1.1 keep-alive, 50 connections (h2load --h1, edge-load http)
#   h2-proxy                       HTTP/2, 1 connection x 100 streams (h2load)
#   idle-tls                       RSS delta / N with N idle TLS connections (edge-load idle), fresh process
# The metric is operations per CPU-second of the proxy process (utime+stime from /proc/PID/stat around the
# run; for nginx its single worker), with the proxy pinned to CPU0 and the client to CPU1; the wall rate
# is printed too. Raw rows go to FILE (default <tmp>/results.tsv); a summary table (min-max over runs)
# is printed at the end.
#
# Options:
#   --runs N          repetitions of each measurement (default 3)
#   --quick           smaller counts (a smoke run of the script, not figures)
#   --only LIST       comma list of servers: haproxy,nginx,edge-e,pair (default all), signin, resume (run only
#                     when named)
#   --idle-conns N    idle connections (default 10000; needs ulimit -n above N+100)
#   --out FILE        write the raw rows there
#   --keep            keep the temp dir (configs, logs)
# Environment: EDGEPAIR_BIN (default <repo>/build/bin: edge-e, edge-load). Counts (defaults as in B0):
#   BENCH_HS_N (1000 connections per h2load batch), BENCH_HS_REPEAT (3 batches per run), BENCH_KA_N (300000),
#   BENCH_H2_N (300000), BENCH_IDLE_RUNS (= --runs), BENCH_IDLE_RAMP (120 s to open the idle connections).
#   Pair: BENCH_PAIR_KA_N (100000 proxied requests), BENCH_SIP_N (20000 REGISTERs), BENCH_SIP_HOLD (1000
#   registrations held for BENCH_HOLD_S = 30 s), BENCH_XMPP_N (20000 messages), BENCH_XMPP_HOLD (1000
#   sessions), BENCH_MRA_N (300 sign-ins), BENCH_INVITE_N (5000 calls). BENCH_PAIR_ROWS: comma list of the
#   pair's measurements to run (ka, h2, sip, invite, xmpp, mra, direct, hold; default all; hold-sip or
#   hold-xmpp for one of the two held-session rows), e.g. "ka,sip" for a side-by-side of two builds. "direct"
#   is the upstreams alone: Kamailio (sip-register and sip-call over its TLS listener) and Prosody.
#   BENCH_PERF_DIR: perf-record both edges during each pair row (to compare builds by symbol). When the
#   edges run under `valgrind --tool=callgrind` (EDGEPAIR_BIN pointing at wrapper scripts), set
#   BENCH_PERF_MODE=callgrind instead: the counters are zeroed before each row and dumped after it, so the
#   instruction counts per request hold on a busy machine where CPU time does not.
#   BENCH_PAIR_WORKERS (1): workers of edge-e and edge-c; BENCH_PAIR_CPUS (0): the CPUs both are pinned to
#   (taskset list, e.g. 0-1 for the multi-worker row; the load generator stays on CPU1); BENCH_KAM_CPUS (unset):
#   the CPUs Kamailio is pinned to for its direct rows (0 for the pair's default conditions).
#   BENCH_HOLD_SOURCES (unset): a --source-range for the held-session rows' clients (e.g.
#   127.2.0.1-127.2.0.254; one address has about 28,000 ports to one target); BENCH_RSS_EVERY: seconds between
#   the RSS samples of a held row (default HOLD_S / 20 from a minute's hold; the note gives the slope over the
#   second half, the samples stay in the temp dir with --keep). A hold longer than BENCH_CLIENT_TIMEOUT (300 s)
#   raises it to the hold + 120 s.
#   BENCH_DNS_TTL (60): the TTL of the pair's dnsmasq answers (dnsmasq's own default is 0, which real DNS
#   never is; edge-c keeps addresses for their TTL, dns.max_cache_ttl). 0 makes every new connection ask DNS.
#   BENCH_EDGE_C_EXTRA: YAML appended to the pair's edge-c config, e.g. 'http: {upstream_idle_per_origin: 8}'.
# Sign-in storm (`--only signin`, not in the default list; issue #17): for P = 1, 2, 4 (BENCH_SIGNIN_PEERS),
#   without and with Redis (cluster.redis on every edge-e and edge-c: shared bans and counts, password-check
#   results, per-user limits, discovery), P edge-e (127.0.60.11..) and P edge-c (127.0.60.31..), P up to 6,
#   each edge-c linked to every edge-e, workers 1 each, not pinned; the UCM fixture with BENCH_SIGNIN_USERS
#   (1000) users load0..; dnsmasq. edge-load --scenario sign-in with one --target per edge-e, sources
#   127.0.50.1-254, BENCH_SIGNIN_N (3000) sign-ins, BENCH_SIGNIN_CONNS (16) at once, a wrong password every
#   BENCH_SIGNIN_WRONG (10)th. Rows: sign-ins per CPU-second of every edge, the wall rate, and with Redis the
#   commands Redis ran (INFO commandstats) per sign-in and its CPU. Then, with Redis and P = 2, a ban storm:
#   wrong passwords only, from BENCH_SIGNIN_BAN_SOURCES (16) addresses, so that bans are made and shared.
#   BENCH_PERF_DIR: perf-record the edge-c peers during each sign-in row.
# TLS session resumption (`--only resume`, not in the default list; issue 18): edge-e alone (as above) and an
#   nginx server (TLS 1.3 only, session tickets on, direct `return 200`), with the same certificate, all running,
#   measured in turn each run; for each of BENCH_RESUME_CERTS (ec,rsa: the ECDSA P-256 and the RSA-2048 leaf).
#   Client: `openssl s_time -tls1_3 -www PATH`, one connection at a time for BENCH_RESUME_S (10) seconds, `-new`
#   (a full handshake every time: rows resume-full-CERT) and `-reuse` (every connection presents the ticket of
#   the first one: rows resume-resumed-CERT). -www matters: a TLS 1.3 ticket arrives after the handshake, and
#   without reading a response s_time never gets one and resumes nothing. s_time prints one character per
#   connection (r = resumed); the rows count them, and a resume-resumed row with fewer than 95% resumed (or a
#   resume-full row with any) is reported as FAILED and makes the script exit 1 after the summary. Then rows
#   resume-chain-CERT: BENCH_RESUME_CHAIN (20) s_client connections, each offering the newest ticket the
#   previous one received (as a client that uses each TLS 1.3 ticket once does, RFC 8446 C.4), counting how
#   many resumed: s_time's -reuse cannot tell whether a resumed handshake brings a fresh ticket. Not a gate (a
#   warning only). BENCH_RESUME_CLIENTS (1): s_time processes at once (all on CPU1), for a server that sees
#   concurrent handshakes rather than one at a time.
# Needs: nginx (nginx-light), haproxy, h2load (nghttp2-client), openssl, taskset, python3; for the pair also
# edge-c, kamailio, prosody, dnsmasq, and sipp (sip-tester) for the invite and direct rows.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${EDGEPAIR_BIN:-$ROOT/build/bin}
RUNS=3
QUICK=0
ONLY=haproxy,nginx,edge-e,pair
IDLE_N=10000
OUT=
KEEP=0

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit "${1:-0}"
}
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --quick) QUICK=1 ;;
    --only) ONLY=$2; shift ;;
    --idle-conns) IDLE_N=$2; shift ;;
    --out) OUT=$2; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) usage 0 ;;
    *) echo "bench.sh: unknown option: $1" >&2; usage 2 >&2 ;;
  esac
  shift
done
[[ $RUNS =~ ^[1-9][0-9]?$ ]] || { echo "bench.sh: --runs: 1..99" >&2; exit 2; }
[[ $IDLE_N =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: --idle-conns: a number" >&2; exit 2; }

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf 'bench.sh: error: %s\n' "$*" >&2; exit 1; }

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
for t in "$NGINX" "$HAPROXY" h2load openssl taskset python3; do
  command -v "$t" >/dev/null 2>&1 || [[ -x $t ]] || die "$t not found (apt-get install nginx-light haproxy nghttp2-client)"
done
[[ -x $BIN/edge-load ]] || die "$BIN/edge-load not built (cmake --build build --target edge-load)"
want() { [[ ",$ONLY," == *",$1,"* ]]; }
if want edge-e || want pair || want resume; then [[ -x $BIN/edge-e ]] || die "$BIN/edge-e not built"; fi
if want signin; then
  [[ -x $BIN/edge-e && -x $BIN/edge-c ]] || die "$BIN/edge-e and edge-c not built"
  for t in dnsmasq redis-server redis-cli; do
    command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] || die "$t not found (apt-get install dnsmasq redis-server)"
  done
fi
if want pair; then
  [[ -x $BIN/edge-c ]] || die "$BIN/edge-c not built"
  for t in kamailio prosody prosodyctl dnsmasq; do
    command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] || die "$t not found (apt-get install kamailio kamailio-tls-modules prosody dnsmasq)"
  done
  if [[ ,${BENCH_PAIR_ROWS:-invite}, == *,invite,* || ,${BENCH_PAIR_ROWS:-direct}, == *,direct,* ]]; then
    command -v sipp >/dev/null 2>&1 || die "sipp not found (apt-get install sip-tester): the invite rows' callee"
  fi
fi

# Counts. Every client run is bounded by a count and by timeout(1).
# The defaults are B0's; BENCH_* variables scale them down for a busy machine.
if ((QUICK)); then
  HS_N=200 KA_N=20000 H2_N=20000 IDLE_N=$((IDLE_N < 500 ? IDLE_N : 500))
  PAIR_KA_N=5000 SIP_N=1000 SIP_HOLD=100 XMPP_N=1000 XMPP_HOLD=100 MRA_N=30 HOLD_S=8 INVITE_N=300
else
  HS_N=${BENCH_HS_N:-1000} KA_N=${BENCH_KA_N:-300000} H2_N=${BENCH_H2_N:-300000}
  PAIR_KA_N=${BENCH_PAIR_KA_N:-100000} SIP_N=${BENCH_SIP_N:-20000} SIP_HOLD=${BENCH_SIP_HOLD:-1000}
  XMPP_N=${BENCH_XMPP_N:-20000} XMPP_HOLD=${BENCH_XMPP_HOLD:-1000} MRA_N=${BENCH_MRA_N:-300}
  HOLD_S=${BENCH_HOLD_S:-30} INVITE_N=${BENCH_INVITE_N:-5000}
fi
HS_REPEAT=${BENCH_HS_REPEAT:-3}     # h2load -n HS_N -c HS_N, HS_REPEAT times per run (B0 style)
IDLE_RAMP_MAX=${BENCH_IDLE_RAMP:-120} # seconds allowed for opening the idle connections
IDLE_RUNS=${BENCH_IDLE_RUNS:-$RUNS}
CLIENT_TIMEOUT=${BENCH_CLIENT_TIMEOUT:-300}
HOLD_SOURCES=${BENCH_HOLD_SOURCES:-}

# Idle connections need a descriptor each on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < IDLE_N + 200)); then
  say "ulimit -n is $(ulimit -n): lowering --idle-conns to $(($(ulimit -n) - 200))"
  IDLE_N=$(($(ulimit -n) - 200))
fi

TMP=$(mktemp -d /tmp/edgepair-bench.XXXXXX)
OUT=${OUT:-$TMP/results.tsv}
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if ((KEEP)); then say "kept $TMP"; else rm -rf -- "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_ports() { # N distinct free loopback TCP ports [on HOST, default 127.0.0.1]
  python3 - "$1" "${2:-127.0.0.1}" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind((sys.argv[2], 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r P_BE P_HA_EC P_HA_RSA P_HA_DIRECT P_HA_H2 P_NG_EC P_NG_RSA P_NG_DIRECT P_NG_H2 \
  P_EE P_EE_RSA P_EE_ADMIN P_EE_ADMIN_RSA P_EE_LINK P_EE_LINK_RSA P_NG_RESUME P_NG_RESUME_RSA < <(free_ports 17)

free_udp_range() { # N consecutive ports free for UDP and TCP on HOST (media port ranges): the first one
  python3 - "$1" "$2" <<'EOF'
import random, socket, sys
n, host = int(sys.argv[1]), sys.argv[2]
for _ in range(500):
    base = random.randrange(20000, 32000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind); socks.append(s); s.bind((host, p))
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(base); break
else:
    sys.exit(1)
EOF
}

wait_port() { # port [seconds] [host]
  local i
  for ((i = 0; i < ${2:-10} * 20; i++)); do
    (echo >"/dev/tcp/${3:-127.0.0.1}/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  die "port ${3:-127.0.0.1}:$1 did not open"
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; } # utime+stime, clock ticks
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
CLK_TCK=$(getconf CLK_TCK)

# ------------------------------------------------------------------------------------------------- PKI
say "PKI (ECDSA P-256 and RSA-2048) in $TMP/pki"
bash "$ROOT/certs/mkpki.sh" --rsa "$TMP/pki" || die "certs/mkpki.sh failed"
PKI=$TMP/pki
# HAProxy wants key and chain in one file.
cat "$PKI/edge-e-chain.crt" "$PKI/edge-e.key" >"$TMP/ec.pem"
cat "$PKI/edge-e-rsa.crt" "$PKI/ca.crt" "$PKI/edge-e-rsa.key" >"$TMP/rsa.pem"
chmod 600 "$TMP"/*.pem

# --------------------------------------------------------------------------------------------- servers
mkdir -p "$TMP/ngx-be" "$TMP/ngx" "$TMP/ee" "$TMP/ee-rsa"
ngx_common='error_log stderr error; pid PIDFILE; daemon off; master_process on;
worker_rlimit_nofile 20000;
events { worker_connections 19000; multi_accept on; }'
cat >"$TMP/ngx-be/nginx.conf" <<EOF
${ngx_common//PIDFILE/$TMP/ngx-be/nginx.pid}
worker_processes 1;
http {
  access_log off;
  client_body_temp_path $TMP/ngx-be; proxy_temp_path $TMP/ngx-be; fastcgi_temp_path $TMP/ngx-be;
  uwsgi_temp_path $TMP/ngx-be; scgi_temp_path $TMP/ngx-be;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:$P_BE; location / { return 200 "ok\n"; } }
}
EOF
cat >"$TMP/ngx/nginx.conf" <<EOF
${ngx_common//PIDFILE/$TMP/ngx/nginx.pid}
worker_processes 1;
http {
  access_log off;
  client_body_temp_path $TMP/ngx; proxy_temp_path $TMP/ngx; fastcgi_temp_path $TMP/ngx;
  uwsgi_temp_path $TMP/ngx; scgi_temp_path $TMP/ngx;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream be { server 127.0.0.1:$P_BE; keepalive 64; }
  ssl_protocols TLSv1.2 TLSv1.3;
  server { listen 127.0.0.1:$P_NG_EC ssl; ssl_certificate $PKI/edge-e-chain.crt; ssl_certificate_key $PKI/edge-e.key;
           location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:$P_NG_RSA ssl; ssl_certificate $TMP/rsa.pem; ssl_certificate_key $PKI/edge-e-rsa.key;
           location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:$P_NG_DIRECT ssl; ssl_certificate $PKI/edge-e-chain.crt; ssl_certificate_key $PKI/edge-e.key;
           location / { return 200 "ok\n"; } }
  server { listen 127.0.0.1:$P_NG_H2 ssl http2; ssl_certificate $PKI/edge-e-chain.crt; ssl_certificate_key $PKI/edge-e.key;
           location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  # The resumption rows' anchor: answers itself like edge-e alone does; tickets are nginx's default, said here so
  # that a change of default cannot silently turn the resumed row into full handshakes (the row counts them too).
  server { listen 127.0.0.1:$P_NG_RESUME ssl; ssl_protocols TLSv1.3; ssl_session_tickets on;
           ssl_certificate $PKI/edge-e-chain.crt; ssl_certificate_key $PKI/edge-e.key;
           location / { return 200 "ok\n"; } }
  server { listen 127.0.0.1:$P_NG_RESUME_RSA ssl; ssl_protocols TLSv1.3; ssl_session_tickets on;
           ssl_certificate $TMP/rsa.pem; ssl_certificate_key $PKI/edge-e-rsa.key;
           location / { return 200 "ok\n"; } }
}
EOF
cat >"$TMP/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 10400
  # this box caps descriptors at 20000 (hard): 10,400 one-fd idle connections fit, the 2-per-conn estimate does not
  no strict-limits
  tune.ssl.default-dh-param 2048
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  option http-keep-alive
frontend proxy_ec
  bind 127.0.0.1:$P_HA_EC ssl crt $TMP/ec.pem alpn http/1.1
  default_backend be
frontend proxy_rsa
  bind 127.0.0.1:$P_HA_RSA ssl crt $TMP/rsa.pem alpn http/1.1
  default_backend be
frontend direct_ec
  bind 127.0.0.1:$P_HA_DIRECT ssl crt $TMP/ec.pem alpn http/1.1
  http-request return status 200 content-type text/plain string "ok"
frontend proxy_h2
  bind 127.0.0.1:$P_HA_H2 ssl crt $TMP/ec.pem alpn h2,http/1.1
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$P_BE
EOF

ee_yaml() { # dir https-port admin-port link-port cert key
  cat >"$1/edge-e.yaml" <<EOF
node_name: expe1.example.com
workers: 1
log: {level: warn}
admin: {listen: 127.0.0.1:$3}
tls:
  default_certificate: {cert: $5, key: $6}
  trusted_cas: $PKI/ca.crt
listeners:
  https: {listen: 127.0.0.1:$2}
link:
  listen: 127.0.0.1:$4
  tls_verify_subject_name: expc1.example.com
  auth_database: $TMP/link-users.txt
limits:
  client_idle_timeout: 10m
  max_connections: 100000
# All load comes from one address: measure the proxy, not the per-client request limit.
http: {rate_limit: {enabled: false}}
EOF
}
if want edge-e || want resume; then
  printf '%s\n' bench-secret | "$BIN/edge-e" --hash-password bench >"$TMP/link-users.txt" 2>/dev/null \
    || die "edge-e --hash-password failed"
  ee_yaml "$TMP/ee" "$P_EE" "$P_EE_ADMIN" "$P_EE_LINK" "$PKI/edge-e-chain.crt" "$PKI/edge-e.key"
  ee_yaml "$TMP/ee-rsa" "$P_EE_RSA" "$P_EE_ADMIN_RSA" "$P_EE_LINK_RSA" "$PKI/edge-e-rsa.crt" "$PKI/edge-e-rsa.key"
fi

# start_server NAME -> sets SPID (the process to measure) ; logs in $TMP/NAME.log
start_server() {
  local name=$1 master
  case $name in
    backend)
      "$NGINX" -p "$TMP/ngx-be" -c "$TMP/ngx-be/nginx.conf" >"$TMP/backend.log" 2>&1 &
      PIDS+=($!); wait_port "$P_BE"; SPID=$! ;;
    haproxy)
      "$HAPROXY" -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
      SPID=$!; PIDS+=("$SPID"); wait_port "$P_HA_EC"; wait_port "$P_HA_H2" ;;
    nginx)
      "$NGINX" -p "$TMP/ngx" -c "$TMP/ngx/nginx.conf" >"$TMP/nginx.log" 2>&1 &
      master=$!; PIDS+=("$master"); wait_port "$P_NG_EC"; wait_port "$P_NG_H2"
      SPID=$(pgrep -P "$master" | head -1)
      [[ -n $SPID ]] || die "nginx worker not found" ;;
    edge-e | edge-e-rsa)
      local dir=$TMP/ee port=$P_EE
      [[ $name == edge-e-rsa ]] && dir=$TMP/ee-rsa port=$P_EE_RSA
      "$BIN/edge-e" -c "$dir/edge-e.yaml" >"$TMP/$name.log" 2>&1 &
      SPID=$!; PIDS+=("$SPID"); wait_port "$port" ;;
  esac
  # Pin every thread of the measured process to CPU0 (the client runs on CPU1).
  taskset -a -p -c 0 "$SPID" >/dev/null
}
stop_server() { # pid-to-kill
  kill "$1" 2>/dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

# ------------------------------------------------------------------------------------------- measuring
printf 'metric\tserver\ttool\trun\tops\tcpu_s\tops_per_cpu_s\twall_rate\tnote\n' >"$OUT"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT"; }

# h2load output -> "done wall_rate"
h2_parse() {
  awk '/^requests:/{for(i=1;i<=NF;i++) if($(i+1) ~ /^done/) d=$i}
       /^finished in/{r=$4} END{print (d==""?0:d), (r==""?0:r)}' "$1"
}
# edge-load --json -> "ok rate errors"
el_parse() {
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["ok"], j["rate"], j["errors_total"])' "$1" \
    2>/dev/null || echo "0 0 -1"
}

# measure METRIC SERVER TOOL RUN PID OPS_KIND -- CMD... ; CMD's stdout to a file, parsed by TOOL
measure() {
  local metric=$1 server=$2 tool=$3 run=$4 pid=$5
  shift 6
  local out=$TMP/out.$metric.$server.$tool.$run
  local b a t0 t1 ops rate err note=""
  b=$(cpu_ticks "$pid")
  t0=$(date +%s.%N)
  if [[ $tool == h2load ]]; then
    : >"$out"
    local i
    for ((i = 0; i < ${REPEAT:-1}; i++)); do
      timeout "$CLIENT_TIMEOUT" taskset -c 1 "$@" >>"$out" 2>&1 || note="h2load rc=$?"
    done
  else
    timeout "$CLIENT_TIMEOUT" taskset -c 1 "$@" >"$out" 2>"$out.err" || note="edge-load rc=$?"
  fi
  t1=$(date +%s.%N)
  a=$(cpu_ticks "$pid")
  if [[ $tool == h2load ]]; then
    ops=$(awk '/^requests:/{for(i=1;i<=NF;i++) if($(i+1) ~ /^done/) s+=$i} END{print s+0}' "$out")
    rate=$(awk -v o="$ops" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", o/(b-a)}')
    local codes
    codes=$(awk '/^status codes:/{print}' "$out" | tail -1)
    [[ -n $codes ]] && note="${note:+$note; }${codes#status codes: }"
  else
    read -r ops rate err < <(el_parse "$out")
    rate=${rate%.*}
    [[ $err != 0 ]] && note="${note:+$note; }edge-load errors=$err"
  fi
  local cpu
  cpu=$(awk -v a="$a" -v b="$b" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a-b)/t}')
  local per
  per=$(awk -v o="$ops" -v c="$cpu" 'BEGIN{ if (c > 0) printf "%.0f", o/c; else print "nan" }')
  row "$metric" "$server" "$tool" "$run" "$ops" "$cpu" "$per" "$rate" "$note"
  say "$metric $server $tool run $run: $ops ops, ${cpu} CPU-s -> $per /CPU-s, wall $rate/s ${note:+($note)}"
}

EL=("$BIN/edge-load" --insecure --no-progress --json --threads 1)
EE_PATH=/$(printf example.com | base64 | tr -d '=')/get_edge_config/

# run_suite SERVER PID  (the server is running; ports by name)
run_suite() {
  local server=$1 pid=$2 r ec direct h2 path=/
  # edge-e refuses a path that is not an MRA path (400) before it looks at the link: ask for the edge
  # configuration, which without a link is the 503 these rows measure.
  [[ $server == edge-e ]] && path=$EE_PATH
  case $server in
    haproxy) ec=$P_HA_EC direct=$P_HA_DIRECT h2=$P_HA_H2 ;;
    nginx) ec=$P_NG_EC direct=$P_NG_DIRECT h2=$P_NG_H2 ;;
    edge-e) ec=$P_EE direct=$P_EE h2="" ;;
  esac
  for ((r = 1; r <= RUNS; r++)); do
    REPEAT=$HS_REPEAT measure handshake-ec "$server" h2load "$r" "$pid" -- \
      h2load --h1 -n "$HS_N" -c "$HS_N" "https://127.0.0.1:$ec$path"
    measure handshake-ec "$server" edge-load "$r" "$pid" -- "${EL[@]}" --scenario handshake --request \
      --connections 50 --requests $((HS_N * HS_REPEAT)) --duration 60 --target "127.0.0.1:$ec" --path "$path" \
      ${EXPECT:+--expect-status $EXPECT}
    if [[ $server != edge-e ]]; then
      measure ka-h1-proxy "$server" h2load "$r" "$pid" -- h2load --h1 -n "$KA_N" -c 50 "https://127.0.0.1:$ec/"
      measure ka-h1-proxy "$server" edge-load "$r" "$pid" -- "${EL[@]}" --scenario http --connections 50 \
        --requests "$KA_N" --duration 60 --target "127.0.0.1:$ec"
      measure h2-proxy "$server" h2load "$r" "$pid" -- h2load -n "$H2_N" -c 1 -m 100 "https://127.0.0.1:$h2/"
    fi
    measure ka-h1-direct "$server" h2load "$r" "$pid" -- h2load --h1 -n "$KA_N" -c 50 "https://127.0.0.1:$direct$path"
    measure ka-h1-direct "$server" edge-load "$r" "$pid" -- "${EL[@]}" --scenario http --connections 50 \
      --requests "$KA_N" --duration 60 --target "127.0.0.1:$direct" --path "$path" ${EXPECT:+--expect-status $EXPECT}
  done
}

# run_rsa SERVER PID PORT
run_rsa() {
  local server=$1 pid=$2 port=$3 r path=/
  [[ $server == edge-e ]] && path=$EE_PATH
  for ((r = 1; r <= RUNS; r++)); do
    REPEAT=$HS_REPEAT measure handshake-rsa "$server" h2load "$r" "$pid" -- \
      h2load --h1 -n "$HS_N" -c "$HS_N" "https://127.0.0.1:$port$path"
    measure handshake-rsa "$server" edge-load "$r" "$pid" -- "${EL[@]}" --scenario handshake --request \
      --connections 50 --requests $((HS_N * HS_REPEAT)) --duration 60 --target "127.0.0.1:$port" --path "$path" \
      ${EXPECT:+--expect-status $EXPECT}
  done
}

# idle_run SERVER RUN PORT: fresh server, N idle TLS connections (handshake only), RSS delta / N
idle_run() {
  local server=$1 r=$2 port=$3 before after
  local ready=$TMP/idle.ready.$server.$r out=$TMP/idle.$server.$r
  start_server "$server"
  local pid=$SPID kill_pid=$SPID
  [[ $server == nginx ]] && kill_pid=${PIDS[-1]}
  sleep 0.5
  before=$(rss_kb "$pid")
  rm -f "$ready"
  # edge-load holds the connections until SIGTERM (or IDLE_RAMP_MAX + 30 s), then reports how many are alive.
  timeout $((IDLE_RAMP_MAX + 60)) taskset -c 1 "${EL[@]}" --scenario idle --connections "$IDLE_N" \
    --duration $((IDLE_RAMP_MAX + 30)) --ready-file "$ready" --target "127.0.0.1:$port" >"$out" 2>"$out.err" &
  local lpid=$!
  local i=0
  while ((i++ < IDLE_RAMP_MAX * 10)) && [[ ! -e $ready ]]; do sleep 0.1; done
  sleep 3 # let the server settle (tickets sent, buffers released)
  after=$(rss_kb "$pid")
  kill -TERM "$lpid" 2>/dev/null || true
  wait "$lpid" || true
  local up alive
  read -r up alive < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["idle"]["established"], j["idle"]["alive_at_end"])' "$out" 2>/dev/null || echo "0 0")
  local per
  per=$(awk -v a="$after" -v b="$before" -v n="$up" 'BEGIN{ if (n > 0) printf "%.1f", (a-b)/n; else print "nan" }')
  row idle-tls "$server" edge-load "$r" "$up" "" "$per" "" "rss ${before}->${after} kB, alive at end $alive/$IDLE_N"
  say "idle-tls $server run $r: $up up, RSS $before -> $after kB: $per kB/conn (alive at end $alive)"
  stop_server "$kill_pid"
}

# ------------------------------------------------------------------------------------------------ pair
# The pair with real peers, as tests/integration/test_edge_load.py runs it; Prosody needs $IMP_ADDR:5222
# (BENCH_IMP_ADDR: another 127/8 address lets a benchmark run beside the integration tests, which use 127.0.1.3).
IMP_ADDR=${BENCH_IMP_ADDR:-127.0.1.3}
pair_setup() {
  local d=$TMP/pair
  mkdir -p "$d/www/files" "$d/ngx" "$d/prosody-data"
  python3 -c "import socket; s=socket.socket(); s.bind(('$IMP_ADDR', 5222))" 2>/dev/null \
    || die "$IMP_ADDR:5222 is in use (Prosody, as IM&P, needs it)"
  read -r P_UCM P_WEB P_KAM P_KAMTLS < <(free_ports 4 127.0.1.1)
  read -r P_IMPF < <(free_ports 1 $IMP_ADDR)
  read -r P_PE P_PSIP P_PXMPP P_PLINK P_PADM_E P_PADM_C P_DNS < <(free_ports 7)
  printf 'ok\n' >"$d/www/files/ok"
  printf '<config version="1.0"><Policies><EnableTelephony>true</EnableTelephony></Policies></config>\n' \
    >"$d/www/files/jabber-config.xml"
  cat >"$d/ngx/nginx.conf" <<EOF
${ngx_common//PIDFILE/$d/ngx/nginx.pid}
worker_processes 1;
http {
  access_log off;
  client_body_temp_path $d/ngx; proxy_temp_path $d/ngx; fastcgi_temp_path $d/ngx;
  uwsgi_temp_path $d/ngx; scgi_temp_path $d/ngx;
  keepalive_requests 10000000;
  # Answers from memory: nginx's workers run as nobody and the temp dir is private to root.
  server { listen 127.0.1.1:$P_WEB; location = /files/ok { return 200 "ok\n"; }
           location = /files/jabber-config.xml { return 200 '$(cat "$d/www/files/jabber-config.xml")'; } }
}
EOF
  "$NGINX" -p "$d/ngx" -c "$d/ngx/nginx.conf" >"$d/nginx.log" 2>&1 &
  PIDS+=($!)
  local dnsmasq
  dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
  "$dnsmasq" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll --pid-file= \
    --bind-interfaces --listen-address=127.0.0.1 --port="$P_DNS" --log-facility=- --user=root \
    --local-ttl="${BENCH_DNS_TTL:-60}" \
    --address=/cucm1.example.com/127.0.1.1 --address=/imp1.example.com/$IMP_ADDR \
    --address=/expe1.example.com/127.0.0.1 \
    --srv-host="_collab-edge._tls.example.com,expe1.example.com,$P_PE" >"$d/dnsmasq.log" 2>&1 &
  PIDS+=($!)
  # Unified CM's SIP side: the integration tests' Kamailio, with per-request logging off.
  sed -e "s/@CERT@/${PKI//\//\\/}\/callmanager-cucm1-chain.crt/" -e "s/@KEY@/${PKI//\//\\/}\/callmanager-cucm1.key/" \
    "$ROOT/tests/integration/sip/tls.cfg.in" >"$d/kamailio-tls.cfg"
  # The last expression adds UDP on the TCP port, for the called internal endpoint (sipp) of the invite rows.
  sed -e "s|@ADDR@|127.0.1.1|g" -e "s|@PORT@|$P_KAM|" -e "s|@TLSPORT@|$P_KAMTLS|" -e "s|@TLSCFG@|$d/kamailio-tls.cfg|" \
    -e "s|@MPATH@|/usr/lib/x86_64-linux-gnu/kamailio/modules/|" -e "s|@CTL@|$d/kamailio_ctl|" -e 's/^debug=2/debug=1/' \
    -e "s|^listen=tcp:127.0.1.1:$P_KAM\$|&\\nlisten=udp:127.0.1.1:$P_KAM|" \
    "$ROOT/tests/integration/sip/kamailio.cfg.in" >"$d/kamailio.cfg"
  # -m: shared memory in MB. Back-to-back calls keep each INVITE and BYE transaction about 5 s after it ends
  # (tm's wait timer): at a few hundred calls/s that outgrows the default 64 MB, and Kamailio then fails
  # calls and drops TCP connections ("could not allocate shared memory from shm pool").
  start_kamailio
  # IM&P: the integration tests' Prosody with plain-text account files, so that BENCH_XMPP_HOLD users can be
  # written directly (prosodyctl register takes about a second per user).
  sed -e "s|@TMP@|$d|g" -e "s|@ADDR@|$IMP_ADDR|g" -e "s|@PORT@|5222|g" -e "s|@CERT@|$PKI/tomcat-imp1-chain.crt|g" \
    -e "s|@KEY@|$PKI/tomcat-imp1.key|g" -e 's/min = "debug"/min = "warn"/' \
    -e 's/authentication = "internal_hashed"/authentication = "internal_plain"/' \
    "$ROOT/tests/integration/xmpp/prosody.cfg.lua.in" >"$d/prosody.cfg.lua"
  prosodyctl --config "$d/prosody.cfg.lua" register alice example.com Alice-Passw0rd >/dev/null 2>&1 \
    || die "prosodyctl register failed"
  local acc
  acc=$(dirname "$(find "$d/prosody-data" -name alice.dat | head -1)")
  [[ -d $acc ]] || die "prosody account file not found"
  python3 - "$acc" "$((XMPP_HOLD > 50 ? XMPP_HOLD : 50))" <<'EOF'
import os, sys
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], f"load{i}.dat"), "w") as f:
        f.write('return {\n\t["password"] = "Load-Passw0rd";\n};\n')
EOF
  prosody --config "$d/prosody.cfg.lua" -F >"$d/prosody.log" 2>&1 &
  PROSODY_PID=$!; PIDS+=("$PROSODY_PID")
  cat >"$d/cluster.json" <<EOF
{"name": "cucm-cluster-1", "version": "14.0.1.10000-20", "security_mode": 0,
 "nodes": [{"name": "cucm1.example.com", "address": "127.0.1.1", "type": "ucm", "publisher": true,
            "sip_port": $P_KAM, "sip_tls_port": $P_KAMTLS},
           {"name": "imp1.example.com", "address": "$IMP_ADDR", "type": "imp", "publisher": true}],
 "axl_users": {"axladmin": {"password": "Axl-Passw0rd", "roles": ["axl"]}},
 "end_users": {"alice": {"password": "Alice-Passw0rd"}}}
EOF
  python3 "$ROOT/tools/fixtures/ucm_fixture.py" --cluster "$d/cluster.json" --node cucm1.example.com \
    --listen "127.0.1.1:$P_UCM" --cert "$PKI/tomcat-cucm1-chain.crt" --key "$PKI/tomcat-cucm1.key" \
    >"$d/fixture-cucm1.log" 2>&1 &
  PIDS+=($!)
  python3 "$ROOT/tools/fixtures/ucm_fixture.py" --cluster "$d/cluster.json" --node imp1.example.com \
    --listen "$IMP_ADDR:$P_IMPF" --cert "$PKI/tomcat-imp1-chain.crt" --key "$PKI/tomcat-imp1.key" \
    >"$d/fixture-imp1.log" 2>&1 &
  PIDS+=($!)
  wait_port "$P_WEB" 10 127.0.1.1
  wait_port "$P_KAM" 15 127.0.1.1
  wait_port 5222 15 $IMP_ADDR
  wait_port "$P_UCM" 15 127.0.1.1
  wait_port "$P_IMPF" 15 $IMP_ADDR

  # Call media (the invite rows): edge-e's client-facing and traversal ports, edge-c's internal ports, all on
  # 127.0.0.1: one free range cut in three, so that they cannot overlap.
  local m_e m_t m_c
  m_e=$(free_udp_range 804 127.0.0.1) || die "no free UDP port range for media"
  m_t=$((m_e + 400)) m_c=$((m_e + 404))
  printf '%s\n' bench-secret | "$BIN/edge-e" --hash-password bench >"$d/link-users.txt" 2>/dev/null \
    || die "edge-e --hash-password failed"
  cat >"$d/edge-e.yaml" <<EOF
node_name: expe1.example.com
workers: ${BENCH_PAIR_WORKERS:-1}
log: {level: warn}
admin: {listen: 127.0.0.1:$P_PADM_E}
tls:
  default_certificate: {cert: $PKI/edge-e-chain.crt, key: $PKI/edge-e.key}
  trusted_cas: $PKI/ca.crt
listeners:
  https: {listen: 127.0.0.1:$P_PE}
  sip_tls: {listen: 127.0.0.1:$P_PSIP}
  xmpp: {listen: 127.0.0.1:$P_PXMPP}
link:
  listen: 127.0.0.1:$P_PLINK
  tls_verify_subject_name: expc1.example.com
  auth_database: $d/link-users.txt
limits:
  client_idle_timeout: 10m
  max_connections: 100000
# All load comes from one address: measure the proxy, not the per-client request limit.
http: {rate_limit: {enabled: false}}
media: {listen: 127.0.0.1, ports: $m_e-$((m_e + 399)), traversal_ports: $m_t-$((m_t + 3))}
EOF
  cat >"$d/edge-c.yaml" <<EOF
node_name: expc1.example.com
workers: ${BENCH_PAIR_WORKERS:-1}
log: {level: warn}
admin: {listen: 127.0.0.1:$P_PADM_C}
tls:
  certificate: {cert: $PKI/edge-c.crt, key: $PKI/edge-c.key}
  trusted_cas: $PKI/ca.crt
link:
  peers: [127.0.0.1:$P_PLINK]
  username: bench
  password: "bench-secret"
discovery:
  state_file: $d/edge-c-state.json
  unified_cm:
    - {address: cucm1.example.com, port: $P_UCM, username: axladmin, password: "Axl-Passw0rd", tls_verify: true}
  im_and_presence:
    - {address: imp1.example.com, port: $P_IMPF, username: axladmin, password: "Axl-Passw0rd", tls_verify: true}
domains:
  - {name: example.com}
dns: {servers: ["127.0.0.1:$P_DNS"]}
allow_list:
  rules:
    - {url: "http://cucm1.example.com:$P_WEB/files/", methods: [GET], description: "bench origin and TFTP files"}
media: {address: 127.0.0.1, ports: $m_c-$((m_c + 399)), encryption: force}
${BENCH_EDGE_C_EXTRA:-}
EOF
  # BENCH_WRAP: a command the pair's processes run under (a profiler), e.g. "heaptrack -o /tmp/ht/pair".
  # shellcheck disable=SC2086  # word-split on purpose: a command and its options
  ${BENCH_WRAP:+$BENCH_WRAP.edge-e} "$BIN/edge-e" -c "$d/edge-e.yaml" >"$d/edge-e.log" 2>&1 &
  PAIR_E=$!; PIDS+=("$PAIR_E")
  # shellcheck disable=SC2086
  ${BENCH_WRAP:+$BENCH_WRAP.edge-c} "$BIN/edge-c" -c "$d/edge-c.yaml" >"$d/edge-c.log" 2>&1 &
  PAIR_C=$!; PIDS+=("$PAIR_C")
  taskset -a -p -c "${BENCH_PAIR_CPUS:-0}" "$PAIR_E" >/dev/null
  taskset -a -p -c "${BENCH_PAIR_CPUS:-0}" "$PAIR_C" >/dev/null
  # Ready when edge-e's snapshot names both nodes and a proxied request gets through.
  local i ok=0 b64
  b64=$(printf example.com | base64 | tr -d '=')
  PAIR_PROXY_PATH="/$b64/http/cucm1.example.com/$P_WEB/files/ok"
  for ((i = 0; i < 300; i++)); do
    if python3 - "$P_PADM_E" <<'EOF' 2>/dev/null; then ok=1; break; fi
import json, sys, urllib.request
s = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/status", timeout=2)).get("snapshot") or {}
sys.exit(0 if {"cucm1.example.com", "imp1.example.com"} <= set(s.get("nodes") or {}) else 1)
EOF
    sleep 0.1
  done
  ((ok)) || die "the pair did not get ready in 30 s (logs in $d)"
  "$BIN/edge-load" --insecure --no-progress --json --scenario http --target "127.0.0.1:$P_PE" \
    --path "$PAIR_PROXY_PATH" --user alice --password Alice-Passw0rd --requests 1 --timeout 20 >/dev/null \
    || die "a proxied request through the pair failed (logs in $d)"
  say "pair up: edge-e $PAIR_E, edge-c $PAIR_C (workers ${BENCH_PAIR_WORKERS:-1}, pinned to CPU ${BENCH_PAIR_CPUS:-0}); Kamailio, Prosody, fixtures, nginx, dnsmasq float"
}

# measure_direct METRIC SERVER RUN "PID..." -- CMD...: edge-load straight at an upstream (no pair), CPU of
# the listed processes (Kamailio: the main process and its children).
measure_direct() {
  local metric=$1 server=$2 run=$3 pids=$4 p b=0 a=0 t0 t1 ops rate err note=""
  shift 5
  local out=$TMP/out.$metric.$server.$run
  # Only processes alive at both ends count (one that exits between them takes its ticks with it).
  local -A before=()
  for p in $pids; do before[$p]=$(cpu_ticks "$p" 2>/dev/null) || unset "before[$p]"; done
  t0=$(date +%s.%N)
  timeout "$CLIENT_TIMEOUT" taskset -c 1 "$@" >"$out" 2>"$out.err" || note="edge-load rc=$?"
  t1=$(date +%s.%N)
  for p in "${!before[@]}"; do
    local now
    now=$(cpu_ticks "$p" 2>/dev/null) || continue
    b=$((b + before[$p])); a=$((a + now))
  done
  read -r ops rate err < <(el_parse "$out")
  rate=${rate%.*}
  [[ $err != 0 ]] && note="${note:+$note; }edge-load errors=$err"
  local cpu per
  cpu=$(awk -v a="$a" -v b="$b" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a-b)/t}')
  per=$(awk -v o="$ops" -v c="$cpu" 'BEGIN{ if (c > 0) printf "%.0f", o/c; else print "nan" }')
  row "$metric" "$server" edge-load "$run" "$ops" "$cpu" "$per" "$rate" "$note"
  say "$metric $server run $run: $ops ops, ${cpu} CPU-s -> $per /CPU-s, wall $rate/s ${note:+($note)}"
}

rss_pair() { echo $(($(rss_kb "$PAIR_E") + $(rss_kb "$PAIR_C"))); }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# hold_samples FILE: wait until HOLD_S - 3 s into a held row; with BENCH_RSS_EVERY seconds (default
# HOLD_S / 20 for holds of a minute or more), write a sample of both edges every so often to FILE: seconds
# since the start, RSS of edge-e and edge-c (kB), edge-e's open descriptors. The flatness of that curve is
# the point of a long hold, not its last value alone.
hold_samples() {
  local f=$1 every=${BENCH_RSS_EVERY:-$((HOLD_S >= 60 ? HOLD_S / 20 : 0))} start now
  start=$(date +%s)
  if ((every <= 0)); then sleep $((HOLD_S - 3)); return; fi
  printf 't_s\trss_e_kb\trss_c_kb\tfds_e\n' >"$f"
  while :; do
    now=$(date +%s)
    ((now - start >= HOLD_S - 3)) && break
    printf '%d\t%s\t%s\t%s\n' $((now - start)) "$(rss_kb "$PAIR_E")" "$(rss_kb "$PAIR_C")" "$(fd_count "$PAIR_E")" >>"$f"
    sleep "$(( every < HOLD_S - 3 - (now - start) ? every : HOLD_S - 3 - (now - start) ))"
  done
}

# rss_slope FILE: over the second half of the hold's samples, the least-squares slope of each edge's RSS
# in kB per minute, and the pair's RSS range in that half; empty without samples.
rss_slope() {
  [[ -s $1 ]] || return 0
  awk -F'\t' -v h="$HOLD_S" 'NR > 1 && $1 >= h / 2 { n++; x[n] = $1; e[n] = $2; c[n] = $3; p = $2 + $3
      if (n == 1 || p < lo) lo = p; if (n == 1 || p > hi) hi = p }
    function slope(y,   i, mx, my, sxy, sxx) { for (i = 1; i <= n; i++) { mx += x[i]; my += y[i] }
      mx /= n; my /= n; for (i = 1; i <= n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ^ 2 }
      return sxx > 0 ? 60 * sxy / sxx : 0 }
    END { if (n >= 3) printf "second half of the hold (%d samples): edge-e %+.1f kB/min, edge-c %+.1f kB/min, pair %d..%d kB", n, slope(e), slope(c), lo, hi }' "$1"
}

# measure_pair METRIC RUN [HOLD] -- CMD...: edge-load against the pair; CPU of edge-e + edge-c. With HOLD,
# RSS of both is also read HOLD_S - 3 s into the run, and the row's figure is kB per session up at the end.
measure_pair() {
  local metric=$1 run=$2 hold=0
  [[ $3 == hold ]] && { hold=1; shift; }
  shift 3
  local out=$TMP/out.$metric.pair.$run client
  client=$(basename "$1")
  local be bc ae ac t0 t1 ops rate err note="" rss0 rss1=0 rss0_e rss0_c rss1_e=0 rss1_c=0
  rss0_e=$(rss_kb "$PAIR_E"); rss0_c=$(rss_kb "$PAIR_C"); rss0=$((rss0_e + rss0_c))
  be=$(cpu_ticks "$PAIR_E"); bc=$(cpu_ticks "$PAIR_C")
  t0=$(date +%s.%N)
  # BENCH_PERF_DIR: also sample both edges' stacks (perf record) for the run, to compare builds by symbol.
  local perf_pid=
  if [[ -n ${BENCH_PERF_DIR:-} ]]; then
    mkdir -p "$BENCH_PERF_DIR"
    if [[ ${BENCH_PERF_MODE:-record} == callgrind ]]; then
      callgrind_control -z "$PAIR_E" >/dev/null; callgrind_control -z "$PAIR_C" >/dev/null
    else
      perf record -q -F 999 -g -p "$PAIR_E,$PAIR_C" -o "$BENCH_PERF_DIR/$metric.$run.data" >/dev/null 2>&1 &
      perf_pid=$!
    fi
  fi
  # A hold longer than the client timeout would be cut short by it.
  local ct=$CLIENT_TIMEOUT
  ((hold && HOLD_S + 120 > ct)) && ct=$((HOLD_S + 120))
  timeout "$ct" taskset -c 1 "$@" >"$out" 2>"$out.err" &
  local lpid=$!
  local rss_curve=""
  if ((hold)); then
    hold_samples "$TMP/rss.$metric.$run.tsv"
    rss1_e=$(rss_kb "$PAIR_E"); rss1_c=$(rss_kb "$PAIR_C"); rss1=$((rss1_e + rss1_c))
    rss_curve=$(rss_slope "$TMP/rss.$metric.$run.tsv")
  fi
  wait "$lpid" || note="edge-load rc=$?"
  [[ -n $perf_pid ]] && { kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null || true; }
  if [[ ${BENCH_PERF_MODE:-} == callgrind ]]; then
    callgrind_control --dump="$metric.$run" "$PAIR_E" >/dev/null; callgrind_control --dump="$metric.$run" "$PAIR_C" >/dev/null
  fi
  t1=$(date +%s.%N)
  ae=$(cpu_ticks "$PAIR_E"); ac=$(cpu_ticks "$PAIR_C")
  local cpu cpu_e cpu_c per lat=""
  if [[ $client == h2load ]]; then
    ops=$(awk '/^requests:/{for(i=1;i<=NF;i++) if($(i+1) ~ /^done/) s+=$i} END{print s+0}' "$out")
    rate=$(awk -v o="$ops" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", o/(b-a)}')
    err=$(awk '/^requests:/{for(i=1;i<=NF;i++) if($(i+1) ~ /^(failed|errored)/) s+=$i} END{print s+0}' "$out")
    [[ $err != 0 ]] && note="${note:+$note; }h2load failed+errored=$err"
    local codes
    codes=$(awk '/^status codes:/{print}' "$out" | tail -1)
    [[ -n $codes ]] && note="${note:+$note; }${codes#status codes: }"
  else
    read -r ops rate err < <(el_parse "$out")
    rate=${rate%.*}
    [[ $err != 0 ]] && note="${note:+$note; }edge-load errors=$err"
  fi
  cpu_e=$(awk -v a="$ae" -v b="$be" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a-b)/t}')
  cpu_c=$(awk -v a="$ac" -v b="$bc" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a-b)/t}')
  cpu=$(awk -v a="$cpu_e" -v b="$cpu_c" 'BEGIN{printf "%.2f", a+b}')
  [[ $client == h2load ]] || lat=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); l=j["latency_us"]; s=j.get("sessions",{})
print("p50 %.2f ms p99 %.2f ms, up at end %s" % (l["p50"]/1000, l["p99"]/1000, s.get("up_at_end","-")))' "$out" 2>/dev/null || echo "")
  note="${note:+$note; }edge-e ${cpu_e} + edge-c ${cpu_c} CPU-s${lat:+; $lat}"
  if ((hold)); then
    local up
    up=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sessions"]["up_at_end"])' "$out" 2>/dev/null || echo 0)
    per=$(awk -v a="$rss1" -v b="$rss0" -v n="$up" 'BEGIN{ if (n > 0) printf "%.1f", (a-b)/n; else print "nan" }')
    note="$note; RSS edge-e+edge-c ${rss0}->${rss1} kB (edge-e ${rss0_e}->${rss1_e}, edge-c ${rss0_c}->${rss1_c}) for $up sessions, $ops ops at $(awk -v o="$ops" -v c="$cpu" 'BEGIN{ if (c > 0) printf "%.0f", o/c; else print "nan" }')/CPU-s${rss_curve:+; $rss_curve}"
  else
    per=$(awk -v o="$ops" -v c="$cpu" 'BEGIN{ if (c > 0) printf "%.0f", o/c; else print "nan" }')
  fi
  row "$metric" pair "$client" "$run" "$ops" "$cpu" "$per" "$rate" "$note"
  say "$metric pair run $run: $ops ops, ${cpu} CPU-s -> $per $( ((hold)) && echo kB/session || echo /CPU-s), wall $rate/s ($note)"
}

pair_row() { [[ ,${BENCH_PAIR_ROWS:-ka,h2,sip,invite,xmpp,mra,direct,hold}, == *,$1,* ]]; }

# The called party of the sip-call rows: an internal endpoint as test_edge_load.py's sip-call test and
# test_media.py have it, sipp answering with tests/integration/sip/media-uas.xml (180, 200 with an RTP/AVP
# answer, ACK, BYE/200) on UDP, registered at Kamailio as "bob" by a second sipp. Its CPU is not counted.
callee_setup() {
  # Not on Kamailio's address: a Request-URI naming Kamailio itself reads to it as strict routing.
  local d=$TMP/pair ip=127.0.3.2 p_uas p_med p_reg
  p_uas=$(free_udp_range 1 "$ip") && p_med=$(free_udp_range 2 "$ip") && p_reg=$(free_udp_range 1 "$ip") \
    || die "no free UDP ports for the callee (sipp)"
  sipp -sf "$ROOT/tests/integration/sip/media-uas.xml" -t u1 -i "$ip" -p "$p_uas" -mi "$ip" -mp "$p_med" \
    -nostdin -trace_err -error_file "$d/sipp-uas-errors.log" >/dev/null 2>"$d/sipp-uas.log" &
  PIDS+=($!)
  sleep 0.5
  CALLEE_REGISTER=(timeout 30 sipp -sf "$ROOT/tests/integration/sip/media-register.xml" -t u1 "127.0.1.1:$P_KAM"
    -i "$ip" -p "$p_reg" -m 1 -timeout 20 -nostdin -key user bob -key domain example.com -key contact_ip "$ip"
    -key contact_port "$p_uas" -key expires 7200)
  "${CALLEE_REGISTER[@]}" >"$d/sipp-register.log" 2>&1 || die "the callee's REGISTER at Kamailio failed (logs in $d)"
  say "callee bob: sipp UAS on udp $ip:$p_uas, registered at Kamailio"
}

start_kamailio() {
  local d=$TMP/pair
  kamailio -DD -E -m 512 -f "$d/kamailio.cfg" -Y "$d" -w "$d" >>"$d/kamailio.log" 2>&1 &
  KAM_PID=$!; PIDS+=("$KAM_PID")
}

# Debian 12's Kamailio 5.6.3 with OpenSSL 3 corrupts its shared memory in the tls module now and then under
# TLS connection churn ("freeing already freed pointer ... tls_init.c", then a child's SIGSEGV and the whole
# server exits; kamailio/kamailio#3791, fixed upstream by tls_threads_mode in later releases). A dead
# Kamailio would turn every later row into errors: it is started again (and bob registered again) before the
# next row that needs it, and the log says so. A row during which it died shows its errors as it is.
kamailio_up() {
  kill -0 "$KAM_PID" 2>/dev/null && return 0
  say "Kamailio (pid $KAM_PID) exited (see $TMP/pair/kamailio.log: the tls module's known crash with OpenSSL 3); starting it again"
  start_kamailio
  wait_port "$P_KAM" 15 127.0.1.1
  wait_port "$P_KAMTLS" 15 127.0.1.1
  if [[ -n ${CALLEE_REGISTER:-} ]]; then "${CALLEE_REGISTER[@]}" >>"$TMP/pair/sipp-register.log" 2>&1 \
    || die "the callee's REGISTER at the restarted Kamailio failed"; fi
}

# BENCH_KAM_CPUS: the CPUs Kamailio's processes may use during its direct rows (taskset list; default: not
# pinned). With BENCH_KAM_CPUS=0 Kamailio gets what the pair gets by default (CPU 0 only, the load generator on
# CPU 1); unpinned it spreads its processes over both CPUs, which the pinned pair cannot.
pin_kamailio() {
  [[ -n ${BENCH_KAM_CPUS:-} ]] || return 0
  local p
  for p in $1; do taskset -a -p -c "$BENCH_KAM_CPUS" "$p" >/dev/null 2>&1 || true; done
}

run_pair() {
  # Verified TLS here: the names the pair presents (expe1.example.com, example.com) are part of the scenario.
  local r el=("$BIN/edge-load" --cafile "$PKI/ca.crt" --no-progress --json --threads 1)
  if pair_row invite || pair_row direct; then callee_setup; fi
  local sip=(--scenario sip-register --target "127.0.0.1:$P_PSIP" --sni expe1.example.com --domain example.com)
  local call=(--scenario sip-call --target "127.0.0.1:$P_PSIP" --sni expe1.example.com --domain example.com)
  local xmpp=(--scenario xmpp --target "127.0.0.1:$P_PXMPP" --domain example.com)
  # The upstreams on their own (B4/B5: directly vs through the pair), per CPU-second of the upstream: Kamailio
  # over its TLS listener, Prosody over STARTTLS. Their CPU during the pair rows is not counted there. Each run
  # measures the pair and then the upstreams alone, so a ratio compares runs made a minute apart, not the
  # first and the last of the invocation (the VM's speed drifts by a third within minutes).
  local kam_pids
  for ((r = 1; r <= RUNS; r++)); do
    pair_row ka && measure_pair pair-ka-h1-proxy "$r" -- "${el[@]}" --scenario http --connections 50 \
      --requests "$PAIR_KA_N" --duration 120 --target "127.0.0.1:$P_PE" --sni expe1.example.com \
      --path "$PAIR_PROXY_PATH" --user alice --password Alice-Passw0rd
    # The same proxied request over HTTP/2 from the client (edge-e's h2 front end), in the shape of the
    # anchors' h2-proxy row (1 connection x 100 streams) and with 50 connections x 1 stream.
    local auth
    auth="Authorization: Basic $(printf alice:Alice-Passw0rd | base64)"
    pair_row h2 && measure_pair pair-h2-proxy "$r" -- h2load -n "$PAIR_KA_N" -c 1 -m 100 -H "$auth" \
      --connect-to "127.0.0.1:$P_PE" "https://expe1.example.com:$P_PE$PAIR_PROXY_PATH"
    pair_row h2 && measure_pair pair-h2-proxy-c50 "$r" -- h2load -n "$PAIR_KA_N" -c 50 -m 1 -H "$auth" \
      --connect-to "127.0.0.1:$P_PE" "https://expe1.example.com:$P_PE$PAIR_PROXY_PATH"
    # Back-to-back re-REGISTERs on 50 flows: the pair's SIP relay rate (Kamailio answers without auth).
    if pair_row sip || pair_row invite || pair_row direct; then kamailio_up; fi
    pair_row sip && measure_pair sip-register "$r" -- "${el[@]}" "${sip[@]}" --connections 50 --user "r$r-%d" \
      --password x --interval 0 --keepalive 0 --expires 300 --requests "$SIP_N" --duration 120
    # Calls back to back on 50 registered flows: INVITE (SRTP offer) .. 200 .. ACK, BYE .. 200, each call
    # opening and closing its media relay on both edges (edge-e's ports over the link's control stream).
    pair_row invite && measure_pair sip-call "$r" -- "${el[@]}" "${call[@]}" --connections 50 \
      --user "c$r-%d" --password x --callee bob --keepalive 0 --expires 300 --requests "$INVITE_N" --duration 120
    pair_row xmpp && measure_pair xmpp-messages "$r" -- "${el[@]}" "${xmpp[@]}" --connections 50 --user "load%d" \
      --password Load-Passw0rd --keepalive 0 --requests "$XMPP_N" --duration 120
    pair_row mra && measure_pair mra-login "$r" -- "${el[@]}" --scenario mra-login --dns "127.0.0.1:$P_DNS" \
      --domain example.com --user alice --password Alice-Passw0rd --tftp-port "$P_WEB" \
      --tftp-file /files/jabber-config.xml --expires 300 --connections 4 --requests "$MRA_N" --duration 120
    pair_row direct || continue
    kamailio_up
    # Kamailio's processes as they are now (a child that ran at start-up may be gone).
    kam_pids="$KAM_PID $(pgrep -P "$KAM_PID" | tr '\n' ' ')"
    pin_kamailio "$kam_pids"
    measure_direct sip-register kamailio-direct "$r" "$kam_pids" -- "${el[@]}" --scenario sip-register \
      --target "127.0.1.1:$P_KAMTLS" --sni cucm1.example.com --domain example.com --connections 50 --user "d$r-%d" --password x \
      --interval 0 --keepalive 0 --expires 300 --requests "$SIP_N" --duration 120
    kamailio_up
    kam_pids="$KAM_PID $(pgrep -P "$KAM_PID" | tr '\n' ' ')"
    pin_kamailio "$kam_pids"
    measure_direct sip-call kamailio-direct "$r" "$kam_pids" -- "${el[@]}" --scenario sip-call \
      --target "127.0.1.1:$P_KAMTLS" --sni cucm1.example.com --domain example.com --connections 50 --user "dc$r-%d" \
      --password x --callee bob --keepalive 0 --expires 300 --requests "$INVITE_N" --duration 120
    measure_direct xmpp-messages prosody-direct "$r" "$PROSODY_PID" -- "${el[@]}" --scenario xmpp \
      --target $IMP_ADDR:5222 --sni imp1.example.com --domain example.com --connections 50 --user "load%d" \
      --password Load-Passw0rd --keepalive 0 --requests "$XMPP_N" --duration 120
  done
  # Held sessions: N registrations refreshed every 10 s with CRLF keep-alives every 15 s; N XMPP sessions
  # (one user each) sending one message every 5 s with whitespace keep-alives every 15 s.
  # "hold" runs both on the same processes (the XMPP figure then starts from the SIP run's freed heap);
  # "hold-sip" / "hold-xmpp" run one each, for one bench.sh invocation per fresh pair.
  if pair_row hold || pair_row hold-sip; then
    measure_pair sip-hold 1 hold -- "${el[@]}" "${sip[@]}" --connections "$SIP_HOLD" --user "hold%d" --password x \
      --interval 10 --keepalive 15 --expires 300 --duration "$HOLD_S" ${HOLD_SOURCES:+--source-range "$HOLD_SOURCES"}
  fi
  if pair_row hold || pair_row hold-xmpp; then
    measure_pair xmpp-hold 1 hold -- "${el[@]}" "${xmpp[@]}" --connections "$XMPP_HOLD" --user "load%d" \
      --password Load-Passw0rd --interval 5 --keepalive 15 --duration "$HOLD_S" \
      ${HOLD_SOURCES:+--source-range "$HOLD_SOURCES"}
  fi
}

# ------------------------------------------------------------------------------------ sign-in storm (#17)
SIGNIN_PEERS=${BENCH_SIGNIN_PEERS:-1,2,4}
SIGNIN_USERS=${BENCH_SIGNIN_USERS:-1000}
SIGNIN_N=${BENCH_SIGNIN_N:-3000}
SIGNIN_CONNS=${BENCH_SIGNIN_CONNS:-16}
SIGNIN_WRONG=${BENCH_SIGNIN_WRONG:-10}
SIGNIN_BAN_SOURCES=${BENCH_SIGNIN_BAN_SOURCES:-16}
((QUICK)) && SIGNIN_N=300 SIGNIN_USERS=100
SI_PIDS=() # the running cluster's processes (edges, Redis), stopped between configurations

# The parts every configuration shares: the UCM fixture with the storm's users, dnsmasq for cucm1's name,
# the link password file and one edge-token key for every edge-c (a token sealed by one edge-c must open on
# the others: the sign-in's second request may take another edge-c than its first).
signin_fixtures() {
  local d=$TMP/signin
  mkdir -p "$d"
  read -r SI_UCM < <(free_ports 1 127.0.1.1)
  read -r SI_HTTPS SI_ADM_E SI_LINK SI_ADM_C SI_DNS SI_REDIS < <(free_ports 6)
  python3 - "$d/cluster.json" "$SI_USERS" <<'EOF'
import json, sys
users = {f"load{i}": {"password": "Load-Passw0rd"} for i in range(int(sys.argv[2]))}
json.dump({"name": "cucm-cluster-1", "version": "14.0.1.10000-20", "security_mode": 0,
           "nodes": [{"name": "cucm1.example.com", "address": "127.0.1.1", "type": "ucm", "publisher": True}],
           "axl_users": {"axladmin": {"password": "Axl-Passw0rd", "roles": ["axl"]}},
           "end_users": users}, open(sys.argv[1], "w"))
EOF
  python3 "$ROOT/tools/fixtures/ucm_fixture.py" --cluster "$d/cluster.json" --node cucm1.example.com \
    --listen "127.0.1.1:$SI_UCM" --cert "$PKI/tomcat-cucm1-chain.crt" --key "$PKI/tomcat-cucm1.key" \
    >"$d/fixture.log" 2>&1 &
  SI_FIXTURE=$!; PIDS+=("$SI_FIXTURE")
  local dnsmasq
  dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
  "$dnsmasq" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll --pid-file= \
    --bind-interfaces --listen-address=127.0.0.1 --port="$SI_DNS" --log-facility=- --user=root \
    --address=/cucm1.example.com/127.0.1.1 --address=/expe1.example.com/127.0.60.11 \
    --address=/expe2.example.com/127.0.60.12 --address=/expe3.example.com/127.0.60.13 \
    --address=/expe4.example.com/127.0.60.14 --address=/expe5.example.com/127.0.60.15 \
    --address=/expe6.example.com/127.0.60.16 >"$d/dnsmasq.log" 2>&1 &
  PIDS+=($!)
  printf '%s\n' bench-secret | "$BIN/edge-e" --hash-password bench >"$d/link-users.txt" 2>/dev/null \
    || die "edge-e --hash-password failed"
  openssl rand -hex 32 >"$d/token.key"
  chmod 600 "$d/token.key"
  # edge-c checks that each edge-e's certificate names the host it dialled: one certificate naming
  # expe1..expe6.example.com (dnsmasq maps them to the peers' addresses), from the bench's CA.
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ee.key" \
    -subj /CN=expe1.example.com -out "$d/ee.csr" 2>/dev/null || die "openssl req failed"
  printf 'subjectAltName=DNS:expe1.example.com,DNS:expe2.example.com,DNS:expe3.example.com,DNS:expe4.example.com,DNS:expe5.example.com,DNS:expe6.example.com\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n' >"$d/ee.ext"
  openssl x509 -req -in "$d/ee.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/ee.ext" -out "$d/ee.crt" 2>/dev/null || die "openssl x509 failed"
  cat "$d/ee.crt" "$PKI/ca.crt" >"$d/ee-chain.crt"
  wait_port "$SI_UCM" 15 127.0.1.1
}

# signin_start P REDIS(0|1): P edge-e and P edge-c (and Redis), ready when every edge-e has every edge-c's link
# and the discovered node.
signin_start() {
  local P=$1 redis=$2 d=$TMP/signin i j peers="" cluster
  SI_PIDS=() SI_E=() SI_C=() SI_TARGETS=() SI_REDIS_PID=
  cluster="cluster: {name: bench}"
  if ((redis)); then
    redis-server --port "$SI_REDIS" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning \
      >"$d/redis.log" 2>&1 &
    SI_REDIS_PID=$!; PIDS+=("$SI_REDIS_PID"); SI_PIDS+=("$SI_REDIS_PID")
    wait_port "$SI_REDIS" 10
    cluster="cluster: {name: bench, redis: {address: \"127.0.0.1:$SI_REDIS\"}}"
  fi
  for ((i = 1; i <= P; i++)); do
    local a=127.0.60.$((10 + i))
    peers+="${peers:+, }expe$i.example.com:$SI_LINK"
    SI_TARGETS+=(--target "$a:$SI_HTTPS")
    cat >"$d/edge-e$i.yaml" <<EOF
node_name: expe$i.example.com
workers: 1
log: {level: warn}
admin: {listen: $a:$SI_ADM_E}
tls:
  default_certificate: {cert: $d/ee-chain.crt, key: $d/ee.key}
  trusted_cas: $PKI/ca.crt
listeners:
  https: {listen: $a:$SI_HTTPS}
link:
  listen: $a:$SI_LINK
  tls_verify_subject_name: expc1.example.com
  auth_database: $d/link-users.txt
limits: {client_idle_timeout: 10m, max_connections: 100000}
# Per-address limits and intrusion protection at their defaults: the storm comes from 254 addresses.
$cluster
EOF
    "$BIN/edge-e" -c "$d/edge-e$i.yaml" >"$d/edge-e$i.log" 2>&1 &
    SI_E+=($!); PIDS+=($!); SI_PIDS+=($!)
  done
  for ((j = 1; j <= P; j++)); do
    local a=127.0.60.$((30 + j))
    cat >"$d/edge-c$j.yaml" <<EOF
node_name: expc$j.example.com
workers: 1
log: {level: warn}
admin: {listen: $a:$SI_ADM_C}
tls:
  certificate: {cert: $PKI/edge-c.crt, key: $PKI/edge-c.key}
  trusted_cas: $PKI/ca.crt
link:
  peers: [$peers]
  username: bench
  password: "bench-secret"
discovery:
  state_file: $d/edge-c$j-state.json
  unified_cm:
    - {address: cucm1.example.com, port: $SI_UCM, username: axladmin, password: "Axl-Passw0rd", tls_verify: true}
domains:
  - {name: example.com}
dns: {servers: ["127.0.0.1:$SI_DNS"]}
credentials: {token_key_file: $d/token.key}
$cluster
EOF
    rm -f "$d/edge-c$j-state.json"
    "$BIN/edge-c" -c "$d/edge-c$j.yaml" >"$d/edge-c$j.log" 2>&1 &
    SI_C+=($!); PIDS+=($!); SI_PIDS+=($!)
  done
  local ok=0
  for ((i = 0; i < 300; i++)); do
    if python3 - "$SI_ADM_E" "$P" "$SI_ADM_C" <<'EOF' 2>/dev/null; then ok=1; break; fi
import json, sys, urllib.request
port, P = sys.argv[1], int(sys.argv[2])
for i in range(1, P + 1):
    s = json.load(urllib.request.urlopen(f"http://127.0.60.{10 + i}:{port}/status", timeout=2))
    if "cucm1.example.com" not in set((s.get("snapshot") or {}).get("nodes") or {}):
        sys.exit(1)
    peers = s["link"]["edge_c_peers"]
    if len(peers) != P or any(p["links_up"] < 1 for p in peers):
        sys.exit(1)
    # each edge-c has discovered cucm1 itself (until then it answers sign-ins 503)
    if b'"discovered_via"' not in urllib.request.urlopen(f"http://127.0.60.{30 + i}:{sys.argv[3]}/status", timeout=2).read():
        sys.exit(1)
sys.exit(0)
EOF
    sleep 0.1
  done
  ((ok)) || die "the $P+$P cluster did not get ready in 30 s (logs in $d)"
  # One sign-in per peer, so that no measured sign-in pays a first connection to the fixture.
  "$BIN/edge-load" --cafile "$PKI/ca.crt" --sni expe1.example.com --no-progress --json --scenario sign-in \
    "${SI_TARGETS[@]}" --domain example.com --user 'load%d' --users "$SI_USERS" --password Load-Passw0rd \
    --requests "$((P * 2))" --source-range 127.0.51.1-127.0.51.254 --timeout 20 >"$d/warmup.json" \
    || die "warm-up sign-ins through the $P+$P cluster failed: $(cat "$d/warmup.json")"
  say "sign-in cluster up: $P edge-e (${SI_E[*]}), $P edge-c (${SI_C[*]})${SI_REDIS_PID:+, redis $SI_REDIS_PID}"
}

signin_stop() {
  local p
  for p in "${SI_PIDS[@]}"; do stop_server "$p"; done
  SI_PIDS=()
}

redis_calls() { # total commands Redis has run (INFO commandstats), and "cmd=calls,..." on the second line
  redis-cli -h 127.0.0.1 -p "$SI_REDIS" INFO commandstats | tr -d '\r' |
    awk -F'[_:=,]' '/^cmdstat_/{n+=$4; s=s (s?" ":"") $2 "=" $4} END{print n+0; print s}'
}

# signin_measure METRIC P REDIS RUN -- edge-load options...: CPU of every edge (and Redis), Redis commands.
signin_measure() {
  local metric=$1 P=$2 redis=$3 run=$4 p b=0 a=0 rb=0 ra=0 cb=0 ca=0 fb fa t0 t1 note=""
  shift 5
  local out=$TMP/out.$metric.P$P.r$redis.$run
  local all=("${SI_E[@]}" "${SI_C[@]}")
  for p in "${all[@]}"; do b=$((b + $(cpu_ticks "$p"))); done
  fb=$(cpu_ticks "$SI_FIXTURE")
  if ((redis)); then rb=$(cpu_ticks "$SI_REDIS_PID"); { read -r cb; read -r _; } < <(redis_calls); fi
  local perf_pid=
  if [[ -n ${BENCH_PERF_DIR:-} ]]; then # as for the pair rows: sample the edge-c peers' stacks
    mkdir -p "$BENCH_PERF_DIR"
    perf record -q -F 999 -g -p "$(IFS=,; echo "${SI_C[*]}")" -o "$BENCH_PERF_DIR/$metric.P$P.r$redis.$run.data" \
      >/dev/null 2>&1 &
    perf_pid=$!
  fi
  t0=$(date +%s.%N)
  timeout "$CLIENT_TIMEOUT" "$BIN/edge-load" --cafile "$PKI/ca.crt" --sni expe1.example.com --no-progress --json \
    --scenario sign-in "${SI_TARGETS[@]}" --domain example.com --password Load-Passw0rd "$@" >"$out" 2>"$out.err" \
    || note="edge-load rc=$?"
  [[ -n $perf_pid ]] && { kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null || true; }
  t1=$(date +%s.%N)
  for p in "${all[@]}"; do a=$((a + $(cpu_ticks "$p"))); done
  fa=$(cpu_ticks "$SI_FIXTURE")
  local bycmd=""
  if ((redis)); then ra=$(cpu_ticks "$SI_REDIS_PID"); { read -r ca; read -r bycmd; } < <(redis_calls); fi
  local ok rate err wsent wref p50 p99
  read -r ok rate err wsent wref p50 p99 < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); s=j["sign_in"]
print(j["ok"], j["rate"], j["errors_total"], s["wrong_password"]["sent"], s["wrong_password"]["refused"],
      j["latency_us"]["p50"] / 1000, j["latency_us"]["p99"] / 1000)' "$out" 2>/dev/null || echo "0 0 -1 0 0 0 0")
  rate=${rate%.*}
  [[ $err != 0 ]] && note="${note:+$note; }edge-load errors=$err ($(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["errors"]; print(" ".join(f"{k}={v}" for k,v in e.items() if v))' "$out" 2>/dev/null))"
  local cpu per fcpu
  cpu=$(awk -v a="$a" -v b="$b" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a-b)/t}')
  fcpu=$(awk -v a="$fa" -v b="$fb" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a-b)/t}')
  per=$(awk -v o="$ok" -v c="$cpu" 'BEGIN{ if (c > 0) printf "%.0f", o/c; else print "nan" }')
  note="${note:+$note; }$P+$P edges ${cpu} CPU-s, fixture ${fcpu} CPU-s; wrong passwords $wsent, refused $wref; p50 ${p50} ms p99 ${p99} ms"
  if ((redis)); then
    local rcpu cmds
    rcpu=$(awk -v a="$ra" -v b="$rb" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a-b)/t}')
    cmds=$((ca - cb - 1)) # less the INFO that read the "before" figure
    note="$note; redis ${rcpu} CPU-s, $cmds commands in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s = $(awk -v c="$cmds" -v n="$((ok + wref))" 'BEGIN{ if (n > 0) printf "%.3f", c/n; else print "nan" }')/sign-in (after: $bycmd)"
  fi
  row "$metric" "P$P-$( ((redis)) && echo redis || echo local)" edge-load "$run" "$ok" "$cpu" "$per" "$rate" "$note"
  say "$metric P=$P redis=$redis run $run: $ok ok, ${cpu} CPU-s -> $per /CPU-s, wall $rate/s ($note)"
}

run_signin() {
  local P redis r bans
  signin_fixtures
  for P in ${SIGNIN_PEERS//,/ }; do
    for redis in 0 1; do
      signin_start "$P" "$redis"
      for ((r = 1; r <= RUNS; r++)); do
        # Each run its own user order offset is not needed: edge-c's credential cache is what a storm of
        # returning users meets; the first run of a configuration pays the cache misses (see the notes).
        signin_measure signin "$P" "$redis" "$r" -- --user 'load%d' --users "$SI_USERS" \
          --wrong-password-every "$SIGNIN_WRONG" --source-range 127.0.50.1-127.0.50.254 \
          --connections "$SIGNIN_CONNS" --requests "$SIGNIN_N" --duration 120 --timeout 20
      done
      if ((redis && P == 2)); then
        # Wrong passwords only, from a few addresses: each address is banned after 5 (protection defaults),
        # and the ban is written to Redis and published to the other peer.
        signin_measure signin-bans "$P" "$redis" 1 -- --user 'load%d' --users "$SI_USERS" \
          --wrong-password-every 2 --source-range "127.0.52.1-127.0.52.$SIGNIN_BAN_SOURCES" \
          --connections 4 --requests "$((SIGNIN_BAN_SOURCES * 2 * 8))" --duration 60 --timeout 5
        bans=$(for ((i = 1; i <= P; i++)); do curl -s "http://127.0.60.$((10 + i)):$SI_ADM_E/metrics"; done |
          awk '/^edgepair_intrusion_(peer_)?bans_total/{n[$1]+=$2} END{for (k in n) printf "%s=%s ", k, n[k]}')
        say "bans after the ban storm: $bans"
        row signin-bans-made "P$P-redis" metrics 1 0 0 0 0 "$bans"
      fi
      signin_stop
    done
  done
}

# ------------------------------------------------------------------------------ TLS resumption (issue 18)
RESUME_S=${BENCH_RESUME_S:-10}
((QUICK)) && RESUME_S=2
RESUME_CLIENTS=${BENCH_RESUME_CLIENTS:-1}
RESUME_CERTS=${BENCH_RESUME_CERTS:-ec,rsa}
RESUME_CHAIN=${BENCH_RESUME_CHAIN:-20}
RESUME_FAILED=0

# resume_measure SERVER CERT RUN PID PORT PATH MODE(new|reuse): one s_time run; the server's CPU over it.
resume_measure() {
  local server=$1 cert=$2 r=$3 pid=$4 port=$5 path=$6 mode=$7 metric=resume-full-$2
  [[ $mode == reuse ]] && metric=resume-resumed-$cert
  local out=$TMP/out.$metric.$server.$r b a t0 t1 note=""
  b=$(cpu_ticks "$pid")
  t0=$(date +%s.%N)
  local i cpids=()
  for ((i = 0; i < RESUME_CLIENTS; i++)); do
    timeout $((RESUME_S + 30)) taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -tls1_3 "-$mode" \
      -time "$RESUME_S" -www "$path" >"$out.$i" 2>&1 &
    cpids+=($!)
  done
  for i in "${!cpids[@]}"; do wait "${cpids[$i]}" || note="${note:+$note; }s_time $i rc=$?"; done
  t1=$(date +%s.%N)
  a=$(cpu_ticks "$pid")
  # The progress line has one character per timed connection: r resumed, anything else a full handshake.
  # -reuse's first connection (the one that fetches the ticket) is not printed, but its CPU is in the window:
  # one full handshake per client in thousands.
  local full resumed total ops
  read -r full resumed total < <(awk '/^[*rt3]+$/ { r += gsub(/r/, ""); f += length($0) }
    /connections in .* real seconds/ { t += $1 } END { print f + 0, r + 0, t + 0 }' "$out".*)
  ((full + resumed == total)) || note="${note:+$note; }s_time counted $total connections, printed $((full + resumed))"
  if [[ $mode == reuse ]]; then
    ops=$resumed
    if ((total == 0 || resumed * 100 < total * 95)); then
      note="${note:+$note; }FAILED: $resumed of $total resumed"; RESUME_FAILED=1
    else
      note="${note:+$note; }$resumed of $total resumed"
    fi
  else
    ops=$full
    if ((total == 0 || resumed > 0)); then
      note="${note:+$note; }FAILED: $resumed of $total resumed in a full-handshake row"; RESUME_FAILED=1
    fi
  fi
  local cpu per rate
  cpu=$(awk -v a="$a" -v b="$b" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a-b)/t}')
  per=$(awk -v o="$ops" -v c="$cpu" 'BEGIN{ if (c > 0) printf "%.0f", o/c; else print "nan" }')
  [[ $note == *FAILED* ]] && per=nan # a failed row has no figure: the summary shows n/a
  rate=$(awk -v o="$ops" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", o/(b-a)}')
  note="${note:+$note; }load $(cut -d' ' -f1-3 /proc/loadavg)"
  row "$metric" "$server" s_time "$r" "$ops" "$cpu" "$per" "$rate" "$note"
  say "$metric $server s_time run $r: $ops ops, ${cpu} CPU-s -> $per /CPU-s, wall $rate/s ($note)"
}

# resume_chain SERVER CERT PORT PATH: N connections, each resuming with the ticket the previous one got.
# s_client writes -sess_out when a ticket arrives; no file means the previous connection got none, and this one
# can only do a full handshake.
resume_chain() {
  local server=$1 cert=$2 port=$3 path=$4 i n=$RESUME_CHAIN resumed=0 fresh=0 d=$TMP/chain.$1.$2
  mkdir -p "$d"
  for ((i = 1; i <= n; i++)); do
    local in=()
    [[ -s $d/sess.$((i - 1)) ]] && in=(-sess_in "$d/sess.$((i - 1))")
    printf 'GET %s HTTP/1.0\r\n\r\n' "$path" | timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
      -ign_eof "${in[@]}" -sess_out "$d/sess.$i" >"$d/out.$i" 2>&1 || true
    grep -q '^Reused, TLSv1.3' "$d/out.$i" && resumed=$((resumed + 1))
    [[ -s $d/sess.$i ]] && fresh=$((fresh + 1))
  done
  local note="$resumed of $((n - 1)) resumed with the previous connection's ticket; $fresh of $n connections got a ticket"
  row "resume-chain-$cert" "$server" s_client 1 "$resumed" "" "" "" "$note"
  say "resume-chain-$cert $server: $note"
  ((resumed * 100 >= (n - 1) * 95)) ||
    say "WARNING: $server sent no new ticket on some resumed handshakes: a client that uses each TLS 1.3 ticket once falls back to full handshakes ($resumed of $((n - 1)) resumed)"
}

# Both servers run at once, pinned to CPU0 and idle when not measured; each run measures them in turn, the
# order swapped every run so that neither always follows the other on a machine whose load drifts.
run_resume() {
  local np nm ep epr r s c order port pid
  start_server nginx; np=$SPID; nm=${PIDS[-1]}
  start_server edge-e; ep=$SPID
  start_server edge-e-rsa; epr=$SPID
  for ((r = 1; r <= RUNS; r++)); do
    order="nginx edge-e"; ((r % 2)) || order="edge-e nginx"
    for c in ${RESUME_CERTS//,/ }; do
      for s in $order; do
        case $s.$c in
          nginx.ec) port=$P_NG_RESUME ;;
          nginx.rsa) port=$P_NG_RESUME_RSA ;;
          edge-e.ec) port=$P_EE ;;
          edge-e.rsa) port=$P_EE_RSA ;;
          *) die "BENCH_RESUME_CERTS: ec and/or rsa, not $c" ;;
        esac
        if [[ $s == nginx ]]; then
          resume_measure nginx "$c" "$r" "$np" "$port" / new
          resume_measure nginx "$c" "$r" "$np" "$port" / reuse
        else
          [[ $c == rsa ]] && pid=$epr || pid=$ep
          resume_measure edge-e "$c" "$r" "$pid" "$port" "$EE_PATH" new
          resume_measure edge-e "$c" "$r" "$pid" "$port" "$EE_PATH" reuse
        fi
      done
    done
  done
  for c in ${RESUME_CERTS//,/ }; do
    if [[ $c == rsa ]]; then
      resume_chain nginx rsa "$P_NG_RESUME_RSA" /; resume_chain edge-e rsa "$P_EE_RSA" "$EE_PATH"
    else
      resume_chain nginx ec "$P_NG_RESUME" /; resume_chain edge-e ec "$P_EE" "$EE_PATH"
    fi
  done
  stop_server "$epr"
  stop_server "$ep"
  stop_server "$nm"
  # The ratios the issue asks for, from the medians of the runs.
  python3 - "$OUT" <<'EOF' >&2
import csv, statistics, sys
med = {}
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    if r["metric"].startswith("resume-") and r["ops_per_cpu_s"] not in ("", "nan"):
        med.setdefault((r["metric"], r["server"]), []).append(float(r["ops_per_cpu_s"]))
med = {k: statistics.median(v) for k, v in med.items()}
def ratio(a, b):
    return f"{med[a] / med[b]:.2f}" if a in med and b in med else "n/a"
for c in ("ec", "rsa"):
    for s in ("edge-e", "nginx"):
        print(f"[bench] {s} {c}: resumed / full handshakes per CPU-s (medians) = "
              f"{ratio((f'resume-resumed-{c}', s), (f'resume-full-{c}', s))}")
    for m in (f"resume-full-{c}", f"resume-resumed-{c}"):
        print(f"[bench] {m}: edge-e / nginx per CPU-s (medians) = {ratio((m, 'edge-e'), (m, 'nginx'))}")
EOF
}

say "results: $OUT"
start_server backend
say "backend nginx on $P_BE"

if want haproxy; then
  say "HAProxy $("$HAPROXY" -v | head -1 | awk '{print $3}')"
  start_server haproxy; hp=$SPID
  run_suite haproxy "$hp"
  run_rsa haproxy "$hp" "$P_HA_RSA"
  stop_server "$hp"
  for ((r = 1; r <= IDLE_RUNS; r++)); do idle_run haproxy "$r" "$P_HA_DIRECT"; done
fi
if want nginx; then
  say "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
  start_server nginx; np=$SPID; nm=${PIDS[-1]}
  run_suite nginx "$np"
  run_rsa nginx "$np" "$P_NG_RSA"
  stop_server "$nm"
  for ((r = 1; r <= IDLE_RUNS; r++)); do idle_run nginx "$r" "$P_NG_DIRECT"; done
fi
if want edge-e; then
  say "edge-e $("$BIN/edge-e" --version)"
  start_server edge-e; ep=$SPID
  EXPECT=503 run_suite edge-e "$ep"
  stop_server "$ep"
  start_server edge-e-rsa; ep=$SPID
  EXPECT=503 run_rsa edge-e "$ep" "$P_EE_RSA"
  stop_server "$ep"
  for ((r = 1; r <= IDLE_RUNS; r++)); do idle_run edge-e "$r" "$P_EE"; done
fi
if want pair; then
  say "pair: $("$BIN/edge-e" --version), $("$BIN/edge-c" --version), kamailio $(kamailio -v | head -1 | awk '{print $3}'), prosody $(prosodyctl about 2>/dev/null | awk '/^Prosody [0-9]/{print $2; exit}')"
  pair_setup
  run_pair
fi

if want resume; then
  say "TLS resumption: nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), edge-e $("$BIN/edge-e" --version), $(openssl version | cut -d' ' -f1-2) s_time, ${RESUME_S} s per row"
  run_resume
fi
if want signin; then
  SI_USERS=$SIGNIN_USERS
  say "sign-in storm: P in $SIGNIN_PEERS, $SIGNIN_N sign-ins of $SI_USERS users per run, $SIGNIN_CONNS at once"
  run_signin
fi

# Summary: min-max of ops per CPU-second (and of the wall rate) over the runs.
python3 - "$OUT" <<'EOF'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
g = collections.OrderedDict()
for r in rows:
    g.setdefault((r["metric"], r["server"], r["tool"]), []).append(r)
def rng(vals, fmt="{:,.0f}"):
    v = sorted(float(x) for x in vals if x not in ("", "nan"))
    if not v: return "n/a"
    return fmt.format(v[0]) if len(v) == 1 or v[0] == v[-1] else fmt.format(v[0]) + "–" + fmt.format(v[-1])
print("| metric | server | tool | per CPU-s (min–max) | wall /s (min–max) | runs | notes |")
print("|---|---|---|---|---|---|---|")
for (m, s, t), rs in g.items():
    notes = sorted(set(r["note"] for r in rs if r["note"]))
    if m in ("idle-tls", "sip-hold", "xmpp-hold"):
        unit = "kB/conn" if m == "idle-tls" else "kB/session"
        print(f"| {m} | {s} | {t} | {rng([r['ops_per_cpu_s'] for r in rs], '{:.1f}')} {unit} | – | {len(rs)} | {'; '.join(notes)[:220]} |")
    else:
        print(f"| {m} | {s} | {t} | {rng([r['ops_per_cpu_s'] for r in rs])} | {rng([r['wall_rate'] for r in rs])} | {len(rs)} | {'; '.join(notes)[:220]} |")
EOF
if ((RESUME_FAILED)); then
  die "a resumption row failed (see FAILED in its notes): its figures are not resumed handshakes"
fi
