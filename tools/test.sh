#!/usr/bin/env bash
# tools/test.sh: the one command that installs what edgepair needs, builds it and runs every test.
#
#   tools/test.sh [--quick] [--no-install] [--install-only] [--only STAGE[,STAGE...]] [-h]
#
# Stages (each prints a one-line result with its time; a summary closes the run):
#   install  apt-get install whatever in tools/packages.txt is missing or older than apt's candidate
#            (root; apt-get update only then),
#            and stop the system nginx/prosody/kamailio/haproxy services that packages may have started
#   build    cmake into build/ (RelWithDebInfo, -DEDGEPAIR_WERROR=ON), -j$(nproc)
#   test     ctest --test-dir build --output-on-failure -j2 (unit + integration)
#   asan     unit tests only, ASan+UBSan, in build-asan/                       (skipped by --quick)
#   fuzz     libFuzzer targets: replay each corpus, then a short fresh run     (skipped by --quick)
#   With clang++ installed, build-asan/ is one clang tree for both: the sanitized unit tests and the fuzz
#   targets share the compiled libraries (one build instead of two). Without clang the asan stage uses the
#   default compiler and the fuzz stage is skipped.
# --only runs just the named stages of build,test,asan,fuzz (install still runs unless --no-install).
# Exit status: 0 only if every stage that ran passed.
#
# Environment: CI=true (as CI runs it); JOBS (build parallelism, default nproc);
#   EDGEPAIR_FUZZ_SECONDS (fresh fuzzing per target, default 10; 0 = replay only);
#   CTEST_ARGS (extra ctest arguments, e.g. "-R integ_pki");
#   BUILD_DIR (default build; the sanitizer and fuzz tree is $BUILD_DIR-asan).
# shellcheck disable=SC2317 # stage functions are called indirectly, through run_stage
set -uo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd) || exit 1
cd -- "$ROOT" || exit 1

# The package list lives in tools/packages.txt (shared with tools/demo.sh).
[[ -r $ROOT/tools/packages.txt ]] || { echo "test.sh: cannot read tools/packages.txt" >&2; exit 1; }
mapfile -t PKGS < <(sed -e 's/#.*//' "$ROOT/tools/packages.txt" | xargs -n1)

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FUZZ_SECONDS=${EDGEPAIR_FUZZ_SECONDS:-10}
B=${BUILD_DIR:-build}
BA=$B-asan
CI=${CI:-}
quick=0
install=1
install_only=0
only=

usage() {
  sed -n '2,/^# shellcheck/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit "${1:-0}"
}
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --install-only) install_only=1 ;;
    --only)
      [[ $# -ge 2 ]] || { echo "test.sh: --only needs a stage list" >&2; exit 2; }
      only=,$2,
      shift
      ;;
    --only=*) only=,${1#--only=}, ;;
    -h | --help) usage 0 ;;
    *) echo "test.sh: unknown option: $1" >&2; usage 2 >&2 ;;
  esac
  shift
done

say() { printf '[test.sh] %s\n' "$*"; }

# ---------------------------------------------------------------------------------------------------------------
# stage bookkeeping

summary=()
failed=0
run_stage() { # NAME FUNCTION
  local name=$1 fn=$2 t0 rc secs
  say "=== $name ==="
  t0=$(date +%s)
  "$fn"
  rc=$?
  secs=$(($(date +%s) - t0))
  local line
  case $rc in
    0) line="$name: PASS (${secs}s)" ;;
    77) line="$name: SKIP (${secs}s) ${skip_reason:-}" ;;
    *) line="$name: FAIL rc=$rc (${secs}s)"; failed=1 ;;
  esac
  skip_reason=
  summary+=("$line")
  say "$line"
  return "$rc"
}
skip_reason=
skip() { skip_reason="- $*"; say "skipping: $*"; return 77; }

# Test counts for the closing line, from ctest's "N% tests passed, M tests failed out of T".
tests_passed=0
tests_failed=0
count_ctest() { # LOGFILE
  local line pct nfail total
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -1) || return 0
  [[ $line =~ ^([0-9]+)%\ tests\ passed,\ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]] || return 0
  pct=${BASH_REMATCH[1]} nfail=${BASH_REMATCH[2]} total=${BASH_REMATCH[3]}
  : "$pct"
  tests_passed=$((tests_passed + total - nfail))
  tests_failed=$((tests_failed + nfail))
}

# ---------------------------------------------------------------------------------------------------------------
# install

SERVICES=(nginx prosody kamailio haproxy)
declare -A PIDFILES=([nginx]=/run/nginx.pid [prosody]=/run/prosody/prosody.pid
  [kamailio]=/run/kamailio/kamailio.pid [haproxy]=/run/haproxy.pid)

# Packages can start system services that take ports the tests need (80, 5222, 5060, ...): stop and disable them.
# Containers may have no systemd; every step is allowed to fail.
stop_services() {
  local svc pf pid
  for svc in "${SERVICES[@]}"; do
    [[ -e /etc/init.d/$svc || -e /lib/systemd/system/$svc.service ]] || continue
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
      systemctl stop "$svc" >/dev/null 2>&1 || true
      systemctl disable "$svc" >/dev/null 2>&1 || true
    else
      if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
      if command -v update-rc.d >/dev/null 2>&1; then update-rc.d "$svc" disable >/dev/null 2>&1 || true; fi
    fi
    pf=${PIDFILES[$svc]}
    if [[ -r $pf ]]; then
      pid=$(head -n1 "$pf" 2>/dev/null | tr -dc 0-9)
      if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        say "stopping system $svc (pid $pid from $pf)"
        kill "$pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.3; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
  done
  return 0
}

# Listed packages that are installed at a version older than the candidate apt knows about (one apt-cache call).
# A newcomer's machine may hold an older point release of a -dev package; the build probes optional symbols,
# but tests run against what is installed, so the install stage brings them up to the candidate.
outdated_packages() {
  LC_ALL=C apt-cache policy "$@" 2>/dev/null | awk '
    /^[^ ]/ { pkg = $1; sub(/:$/, "", pkg); inst = ""; next }
    /^  Installed:/ { inst = $2; next }
    /^  Candidate:/ { if (inst != "" && inst != "(none)" && $2 != "(none)" && inst != $2) print pkg, inst, $2 }' |
    while read -r pkg inst cand; do
      dpkg --compare-versions "$inst" lt "$cand" && printf '%s\n' "$pkg"
    done
}

stage_install() {
  local p missing=() outdated=()
  command -v dpkg-query >/dev/null 2>&1 || { skip "not a Debian system (no dpkg-query)"; return; }
  # One dpkg-query for all: "name status" for each known package (unknown ones print nothing).
  local -A installed=()
  local name st
  while read -r name st; do
    [[ $st == ii* ]] && installed[${name%%:*}]=1
  done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PKGS[@]}" 2>/dev/null)
  for p in "${PKGS[@]}"; do
    [[ -n ${installed[$p]:-} ]] || missing+=("$p")
  done
  mapfile -t outdated < <(outdated_packages "${PKGS[@]}")
  if ((${#missing[@]} == 0 && ${#outdated[@]} == 0)); then
    say "all packages in tools/packages.txt are installed at their candidate version"
  else
    ((${#missing[@]})) && say "missing: ${missing[*]}"
    ((${#outdated[@]})) && say "older than the candidate: ${outdated[*]}"
    local sudo=()
    if [[ $(id -u) != 0 ]]; then
      if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
      else
        echo "test.sh: need root to install: ${missing[*]} ${outdated[*]} (or run with --no-install)" >&2
        return 1
      fi
    fi
    # Keep services from starting during the install where nothing else prevents it.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod 755 "$policy" &&
        made_policy=1
    fi
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3
      -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    local rc=0
    "${apt[@]}" update -qq || rc=$?
    if ((rc == 0)); then
      # After the update the candidates may be newer still: ask again, so one install brings everything up.
      mapfile -t outdated < <(outdated_packages "${PKGS[@]}")
      # --only-upgrade is not used: one command installs the missing and upgrades the outdated (apt-get install
      # of an installed package upgrades it to the candidate, with its dependencies).
      "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" "${outdated[@]}" || rc=$?
    fi
    if ((made_policy)); then "${sudo[@]}" rm -f "$policy"; fi
    if ((rc != 0)); then
      echo "test.sh: apt-get failed ($rc) installing: ${missing[*]} ${outdated[*]}" >&2
      return "$rc"
    fi
  fi
  if [[ $(id -u) == 0 ]]; then stop_services; fi
  return 0
}

# ---------------------------------------------------------------------------------------------------------------
# build and test

stage_build() {
  cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEPAIR_WERROR=ON || return
  cmake --build "$B" -j"$JOBS" || return
}

stage_test() {
  local log=$B/ctest.log rc
  # shellcheck disable=SC2086 # CTEST_ARGS is a list of words
  ctest --test-dir "$B" --output-on-failure -j2 ${CTEST_ARGS:-} 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  count_ctest "$log"
  if grep -q 'No tests were found' "$log"; then
    echo "test.sh: ctest found no tests" >&2
    return 1
  fi
  return "$rc"
}

unit_targets() {
  local d
  for d in tests/unit/*/; do
    [[ -d $d ]] || continue
    compgen -G "$d*.cpp" >/dev/null || continue
    d=${d%/}
    printf 'unit_%s\n' "${d##*/}"
  done
}

have_clang() { command -v clang++ >/dev/null 2>&1; }

# The sanitizer tree. -g1 / -gline-tables-only (line tables, no variable info): reports keep file:line and the
# build is 20-30 % faster than with -g (CI's time budget: these stages are mostly compiling).
configure_san() {
  # A tree configured with another compiler cannot be switched in place (an older GCC tree, say).
  if [[ -e $BA/CMakeCache.txt ]] && have_clang && ! grep -q "^CMAKE_CXX_COMPILER:.*clang" "$BA/CMakeCache.txt"; then
    rm -rf -- "$BA"
  fi
  if have_clang; then
    # EDGEPAIR_FUZZ=ON: ASan+UBSan plus libFuzzer's coverage hooks on every object; unit tests link without
    # libFuzzer (the ASan runtime has no-op hooks), fuzz targets with it.
    CC=clang CXX=clang++ cmake -S . -B "$BA" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DEDGEPAIR_FUZZ=ON -DEDGEPAIR_WERROR=OFF
  else
    # -Werror off here: GCC 12's -Wmaybe-uninitialized gives false positives inside libstdc++ (std::regex,
    # std::function) under -fsanitize=address; the main build enforces warnings.
    cmake -S . -B "$BA" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
      -DEDGEPAIR_SANITIZE=ON -DEDGEPAIR_WERROR=OFF
  fi
}

stage_asan() {
  local targets fuzz=() log=$BA/ctest.log rc
  mapfile -t targets < <(unit_targets)
  ((${#targets[@]})) || { skip "no unit test folders under tests/unit/"; return; }
  say "unit targets: ${targets[*]}"
  configure_san || return
  # The fuzz targets are built here too when the fuzz stage will run: one make run keeps both cores busy.
  if have_clang && want fuzz; then
    mapfile -t fuzz < <(fuzz_names)
    fuzz=("${fuzz[@]/#/fuzz_}")
  fi
  cmake --build "$BA" -j"$JOBS" --target "${targets[@]}" "${fuzz[@]}" || return
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  ctest --test-dir "$BA" -L unit --output-on-failure -j2 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  count_ctest "$log"
  return "$rc"
}

fuzz_names() {
  local f n
  for f in tests/fuzz/*_fuzz.cpp; do
    [[ -f $f ]] || continue
    n=${f##*/}
    printf '%s\n' "${n%_fuzz.cpp}"
  done
}

stage_fuzz() {
  local names n bin corpus work log rc=0 status
  mapfile -t names < <(fuzz_names)
  ((${#names[@]})) || { skip "no fuzz targets (tests/fuzz/*_fuzz.cpp) yet"; return; }
  have_clang || { skip "clang++ not installed"; return; }
  say "fuzz targets: ${names[*]}"
  configure_san || return
  cmake --build "$BA" -j"$JOBS" --target "${names[@]/#/fuzz_}" || return
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  mkdir -p "$BA/logs" "$BA/artifacts"
  for n in "${names[@]}"; do
    bin=$BA/bin/fuzz_$n
    corpus=tests/fuzz/corpus/$n
    log=$BA/logs/$n.log
    local dict=()
    [[ -f tests/fuzz/$n.dict ]] && dict=(-dict="tests/fuzz/$n.dict")
    mkdir -p "$BA/artifacts/$n"
    local common=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$BA/artifacts/$n/" "${dict[@]}")
    status=ok
    # 1) replay the checked-in corpus
    if compgen -G "$corpus/*" >/dev/null; then
      if ! "$bin" "${common[@]}" -runs=0 "$corpus" >"$log" 2>&1; then
        status="FAIL replaying $corpus"
      fi
    else
      echo "(no corpus at $corpus)" >"$log"
    fi
    # 2) a short fresh run on a temp copy (the checked-in corpus is never modified)
    if [[ $status == ok ]] && ((FUZZ_SECONDS > 0)); then
      work=$(mktemp -d)
      if [[ -d $corpus ]]; then cp -R "$corpus/." "$work/"; fi
      if ! "$bin" "${common[@]}" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "$work" >>"$log" 2>&1; then
        status="FAIL fuzzing ${FUZZ_SECONDS}s"
      fi
      rm -rf -- "$work"
    fi
    if [[ $status == ok ]]; then
      say "fuzz_$n: ok ($(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || echo '?') execs)"
    else
      rc=1
      say "fuzz_$n: $status; log $log; artifacts in $BA/artifacts/$n/:"
      find "$BA/artifacts/$n" -type f 2>/dev/null | sed 's/^/    /'
      tail -n 60 "$log" | sed 's/^/    /'
    fi
  done
  return "$rc"
}

# ---------------------------------------------------------------------------------------------------------------

if [[ -n $only ]]; then
  _list=${only#,}
  IFS=, read -ra _stages <<<"${_list%,}"
  for _s in "${_stages[@]}"; do
    case $_s in build | test | asan | fuzz) ;; *) echo "test.sh: unknown stage in --only: $_s" >&2; exit 2 ;; esac
  done
fi

start=$(date +%s)
say "repo $ROOT; build dir $B; CI=${CI:-no}; jobs $JOBS; $( ((quick)) && echo quick)"

if ((install)); then
  run_stage install stage_install
  rc=$?
  if ((rc != 0 && rc != 77)); then
    say "install failed: stopping"
    exit 1
  fi
else
  summary+=("install: SKIP (--no-install)")
fi
if ((install_only)); then
  exit "$failed"
fi

want() { [[ -z $only || $only == *",$1,"* ]]; }
built=1
if want build; then
  run_stage build stage_build || built=0
fi
if want test; then
  if ((built)); then run_stage test stage_test; else summary+=("test: SKIP (build failed)"); fi
fi
if ((quick)); then
  summary+=("asan: SKIP (--quick)" "fuzz: SKIP (--quick)")
else
  if want asan; then run_stage asan stage_asan; fi
  if want fuzz; then run_stage fuzz stage_fuzz; fi
fi

say "=== summary ($(($(date +%s) - start))s) ==="
printf '[test.sh] %s\n' "${summary[@]}"
echo "tests: $tests_passed passed, $tests_failed failed"
if ((failed)); then
  say "FAILED"
  exit 1
fi
say "OK"
exit 0
