#!/usr/bin/env bash
# tools/demo.sh: installs what is missing, builds, makes the test PKI, starts the demo topology of
# DESIGN.md section 6 on loopback (dnsmasq, the Unified CM / IM&P / Unity Connection fixtures, nginx as the
# TFTP file server, edge-e and edge-c) and shows the pair working with curl.
#
#   tools/demo.sh          start (or restart) everything and run the checks; the pair keeps running
#   tools/demo.sh stop     stop everything the demo started
#
# Logs and state: run/ (not in git). Admin endpoints: edge-e http://127.0.0.1:9901, edge-c :9902.
set -uo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd) || exit 1
cd -- "$ROOT" || exit 1
RUN=$ROOT/run
PIDS=$RUN/pids
PKI=$ROOT/certs/out

say() { printf '\n[demo] %s\n' "$*"; }
die() {
  printf '[demo] error: %s\n' "$*" >&2
  exit 1
}

stop_all() {
  [[ -f $PIDS ]] || return 0
  while read -r pid name; do
    kill "$pid" 2>/dev/null && printf '[demo] stopped %s (%s)\n' "$name" "$pid"
  done <"$PIDS"
  sleep 1
  while read -r pid _; do kill -9 "$pid" 2>/dev/null; done <"$PIDS"
  rm -f "$PIDS"
}

if [[ ${1:-} == stop ]]; then
  stop_all
  exit 0
fi

# 1. packages (tools/packages.txt, shared with tools/test.sh), then the build.
if [[ $(id -u) -eq 0 ]]; then
  tools/test.sh --install-only || die "package installation failed"
else
  say "not root: skipping apt-get (run as root on a fresh machine)"
fi
say "building (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEPAIR_WERROR=ON >/dev/null || die "cmake configure failed"
cmake --build build -j"$(nproc)" --target edge-e edge-c edge-load >/dev/null || die "build failed (run: cmake --build build)"

# 2. PKI and run directory.
bash certs/mkpki.sh "$PKI" || die "certs/mkpki.sh failed"
stop_all
mkdir -p "$RUN/tftp"
: >"$PIDS"

start() { # NAME CMD...
  local name=$1
  shift
  "$@" >"$RUN/$name.log" 2>&1 &
  echo "$! $name" >>"$PIDS"
}

wait_http() { # URL [SECONDS]
  local i
  for ((i = 0; i < ${2:-20} * 5; i++)); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.2
  done
  return 1
}

# 3. the enterprise side: DNS, Unified CM/IM&P/Unity Connection fixtures, TFTP-like file server.
say "starting dnsmasq on 127.0.2.53:53 (example.com records, _collab-edge and _cisco-uds SRV)"
start dnsmasq /usr/sbin/dnsmasq --no-daemon --no-resolv --no-hosts --user=root --bind-interfaces \
  --listen-address=127.0.2.53 --port=53 \
  --address=/expe1.example.com/127.0.0.1 --address=/expc1.example.com/127.0.0.1 \
  --address=/cucm1.example.com/127.0.1.1 --address=/cucm2.example.com/127.0.1.2 \
  --address=/imp1.example.com/127.0.1.3 --address=/cuc1.example.com/127.0.1.4 \
  --srv-host=_collab-edge._tls.example.com,expe1.example.com,8443,10,10 \
  --srv-host=_cisco-uds._tcp.example.com,cucm1.example.com,8443,10,10 \
  --srv-host=_sips._tcp.example.com,expe1.example.com,5061,10,10

say "starting the Unified CM / IM&P / Unity Connection fixtures (AXL, UDS, CUPI)"
for spec in cucm1:127.0.1.1:8443 cucm2:127.0.1.2:8443 imp1:127.0.1.3:8443 cuc1:127.0.1.4:443; do
  IFS=: read -r node addr port <<<"$spec"
  start "fixture-$node" /usr/bin/python3 tools/fixtures/ucm_fixture.py --cluster tools/fixtures/cluster-demo.yaml \
    --node "$node.example.com" --listen "$addr:$port" --cert "$PKI/tomcat-$node-chain.crt" --key "$PKI/tomcat-$node.key"
done

for node in cucm1 cucm2 imp1 cuc1; do
  for ((i = 0; i < 100; i++)); do grep -q READY "$RUN/fixture-$node.log" 2>/dev/null && break; sleep 0.2; done
  grep -q READY "$RUN/fixture-$node.log" || die "fixture $node did not start: see $RUN/fixture-$node.log"
done

printf '<?xml version="1.0"?>\n<device><deviceProtocol>SIP</deviceProtocol><note>demo TFTP file</note></device>\n' \
  >"$RUN/tftp/SEPDEMO.cnf.xml"
cat >"$RUN/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log;
events { worker_connections 256; }
http {
  access_log $RUN/nginx-access.log;
  client_body_temp_path $RUN/nginx-body; proxy_temp_path $RUN/nginx-proxy; fastcgi_temp_path $RUN/nginx-fcgi;
  uwsgi_temp_path $RUN/nginx-uwsgi; scgi_temp_path $RUN/nginx-scgi;
  server { listen 127.0.1.1:6970; root $RUN/tftp; }
}
EOF
say "starting nginx as cucm1's TFTP file service (127.0.1.1:6970)"
start nginx /usr/sbin/nginx -c "$RUN/nginx.conf"

# 4. the pair.
say "starting edge-e (conf/edge-e.yaml) and edge-c (conf/edge-c.yaml)"
start edge-e build/bin/edge-e -c conf/edge-e.yaml
start edge-c build/bin/edge-c -c conf/edge-c.yaml
wait_http http://127.0.0.1:9901/health || die "edge-e did not start: see $RUN/edge-e.log"
wait_http http://127.0.0.1:9902/health || die "edge-c did not start: see $RUN/edge-c.log"
wait_http http://127.0.0.1:9901/ready 30 || { curl -s http://127.0.0.1:9901/ready; die "edge-e not ready: see $RUN/*.log"; }
wait_http http://127.0.0.1:9902/ready 30 || { curl -s http://127.0.0.1:9902/ready; die "edge-c not ready: see $RUN/*.log"; }

# 5. show it working, as a remote Jabber client would use it. Every step checks its own result and says so.
B64=$(printf example.com | base64 | tr -d '=')
CURL=(curl -s --max-time 10 --cacert "$PKI/ca.crt" --resolve expe1.example.com:8443:127.0.0.1)
if [[ -t 1 ]]; then GREEN=$'\e[32m' RED=$'\e[31m' OFF=$'\e[0m'; else GREEN= RED= OFF=; fi
passed=0
failed=0
# step TITLE PATTERN CMD...: runs CMD, shows its output, and is green when the output matches the extended
# regular expression PATTERN (and CMD exited 0).
step() {
  local title=$1 pattern=$2 out rc
  shift 2
  printf '\n[demo] %s\n' "$title"
  out=$("$@" 2>&1)
  rc=$?
  printf '%s\n' "$out" | sed -e 's/^/  /' | head -n 40
  if ((rc == 0)) && grep -Eq -- "$pattern" <<<"$out"; then
    printf '%s  ok%s\n' "$GREEN" "$OFF"
    passed=$((passed + 1))
  else
    printf '%s  FAILED (exit %s; expected output matching: %s)%s\n' "$RED" "$rc" "$pattern" "$OFF"
    failed=$((failed + 1))
  fi
}
code() { "${CURL[@]}" -o /dev/null -w '%{http_code}\n' "$@"; }
discovered() {
  curl -s http://127.0.0.1:9902/status | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin).get("discovery", {})
for n in d.get("nodes", []): print("node", n.get("name"), n.get("type"), n.get("status"))
for z in d.get("zones", []): print("zone", z.get("name"))'
}

step "edge-e /ready" '^ready' curl -s http://127.0.0.1:9901/ready
step "edge-c /ready" '^ready' curl -s http://127.0.0.1:9902/ready
step "DNS: _collab-edge._tls.example.com SRV (what a client looks up first)" ' 8443 expe1\.example\.com' \
  /usr/bin/python3 tools/srv_lookup.py 127.0.2.53 _collab-edge._tls.example.com
step "get_edge_config for alice (credentials checked by edge-c against Unified CM UDS)" '<getEdgeConfigResponse' \
  "${CURL[@]}" -u alice:Alice-Passw0rd "https://expe1.example.com:8443/$B64/get_edge_config/?service_name=_cisco-uds&service_name=_cuplogin"
step "wrong password -> 401" '^401$' code -u alice:wrong "https://expe1.example.com:8443/$B64/get_edge_config/"
step "TFTP config file through the pair (/$B64/http/cucm1.example.com/6970/SEPDEMO.cnf.xml)" 'demo TFTP file' \
  "${CURL[@]}" -f -u alice:Alice-Passw0rd "https://expe1.example.com:8443/$B64/http/cucm1.example.com/6970/SEPDEMO.cnf.xml"
step "a host the allow list does not name -> 403" '^403$' \
  code -u alice:Alice-Passw0rd "https://expe1.example.com:8443/$B64/http/intranet.example.com/80/"
step "discovered nodes and zones (edge-c /status)" '^zone ' discovered
if ((failed)); then
  printf '\n%s[demo] %d of %d steps FAILED%s. Logs: %s/*.log. Stop the pair with: tools/demo.sh stop\n' "$RED" \
    "$failed" $((passed + failed)) "$OFF" "$RUN"
  exit 1
fi
printf '\n%s[demo] all %d steps ok%s: the pair is running. Logs: %s/*.log. Stop it with: tools/demo.sh stop\n' \
  "$GREEN" "$passed" "$OFF" "$RUN"
