#!/usr/bin/env bash
# certs/mkpki.sh: make the edgepair test PKI with the openssl CLI.
#
#   certs/mkpki.sh [-v] [--rsa] [--force] OUTDIR
#
# Idempotent: OUTDIR/.done stores a hash of this script (and the options); when it matches and the
# outputs are present, nothing is done. Silent unless -v, except for errors (exit non-zero).
# ECDSA P-256 keys by default; --rsa (or EDGEPAIR_PKI_RSA=1) adds edge-e-rsa.crt/key (RSA-2048).
# See certs/README.md for the list of files. Nothing made here belongs in git.
set -euo pipefail

prog=${0##*/}
usage() {
  echo "usage: $prog [-v] [--rsa] [--force] OUTDIR" >&2
  exit 2
}
die() {
  echo "$prog: error: $*" >&2
  exit 1
}

verbose=0
rsa=${EDGEPAIR_PKI_RSA:-0}
[[ $rsa == 1 || $rsa == yes || $rsa == true ]] && rsa=1 || rsa=0
force=0
outdir=
while (($#)); do
  case $1 in
    -v | --verbose) verbose=1 ;;
    --rsa) rsa=1 ;;
    --force) force=1 ;;
    -h | --help) usage ;;
    -*) echo "$prog: unknown option: $1" >&2; usage ;;
    *)
      [[ -z $outdir ]] || usage
      outdir=$1
      ;;
  esac
  shift
done
[[ -n $outdir ]] || usage

command -v openssl >/dev/null 2>&1 || die "openssl not found in PATH (apt-get install openssl)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found in PATH"

log() { if ((verbose)); then echo "$prog: $*" >&2; fi; }

self=${BASH_SOURCE[0]}
script_hash=$(sha256sum "$self" | cut -d' ' -f1) || die "cannot hash $self"
stamp="$script_hash rsa=$rsa"

# Files whose presence says the PKI is complete (checked with the stamp).
required=(ca.crt ca.key edge-e.crt edge-e.key edge-e-alt.crt edge-c.crt edge-c.key
  edge-c-noclientauth.crt edge-c-wrongsan.crt edge-c-cnonly.crt rogue-ca.crt rogue-edge-c.crt
  edge-e-expired.crt tomcat-cucm1.crt tomcat-cucm2.crt tomcat-imp1.crt tomcat-cuc1.crt
  callmanager-cucm1.crt callmanager-cucm2.crt)
((rsa)) && required+=(edge-e-rsa.crt edge-e-rsa.key)

mkdir -p -- "$outdir" || die "cannot create $outdir"
outdir=$(cd -- "$outdir" && pwd) || die "cannot enter $outdir"

if ((!force)) && [[ -f $outdir/.done ]]; then
  old=$(cat "$outdir/.done" 2>/dev/null || true)
  # A stamp made with --rsa also serves a request without it.
  if [[ $old == "$stamp" || ($rsa == 0 && $old == "$script_hash rsa=1") ]]; then
    complete=1
    for f in "${required[@]}"; do [[ -s $outdir/$f ]] || complete=0; done
    if ((complete)); then
      log "$outdir is up to date"
      exit 0
    fi
  fi
fi

# Build everything in a staging dir inside OUTDIR, then move the results in and write the stamp last.
stage=$(mktemp -d "$outdir/.staging.XXXXXX") || die "cannot create a staging dir in $outdir"
trap 'rm -rf -- "$stage"' EXIT
rm -f -- "$outdir/.done"

# Run a command quietly; on failure show its output and stop.
run() {
  local out
  if ! out=$("$@" 2>&1 </dev/null); then
    echo "$prog: error: command failed: $*" >&2
    [[ -n $out ]] && printf '%s\n' "$out" >&2
    exit 1
  fi
  if ((verbose)) && [[ -n $out ]]; then printf '%s\n' "$out" | sed 's/^/    /' >&2; fi
  return 0
}

cnf=$stage/openssl.cnf
cat >"$cnf" <<EOF
# Minimal config: nothing is taken from the system openssl.cnf.
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = unused

[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ca]
default_ca = ca_default
[ca_default]
dir = $stage/cadb
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
preserve = yes
[policy_any]
commonName = supplied
organizationName = optional
EOF
mkdir -p "$stage/cadb/new"
: >"$stage/cadb/index.txt"
echo 1000 >"$stage/cadb/serial"

# Keys are private: everything is created 0600 and certificates are opened to 0644 afterwards.
umask 077

genkey() { # NAME [rsa]
  local name=$1 kind=${2:-ec}
  if [[ $kind == rsa ]]; then
    run openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$stage/$name.key"
  else
    run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve \
      -out "$stage/$name.key"
  fi
}

serial() { echo "0x$(openssl rand -hex 15)"; }

mkca() { # NAME "Common Name"
  local name=$1 cn=$2
  log "CA $name ($cn)"
  genkey "$name"
  run openssl req -new -x509 -config "$cnf" -extensions v3_ca -key "$stage/$name.key" -sha256 \
    -subj "/O=edgepair/CN=$cn" -days 3650 -set_serial "$(serial)" -out "$stage/$name.crt"
}

# leaf NAME ISSUER CN SAN EKU [KEYTYPE] [STARTDATE ENDDATE]
#   SAN: subjectAltName value ("" for none); EKU: extendedKeyUsage value.
#   With STARTDATE/ENDDATE (YYYYMMDDHHMMSSZ) the certificate is issued with `openssl ca` (x509 -req can't
#   backdate in OpenSSL 3.0).
leaf() {
  local name=$1 issuer=$2 cn=$3 san=$4 eku=$5 kind=${6:-ec} start=${7:-} end=${8:-}
  local ku=digitalSignature
  [[ $kind == rsa ]] && ku=digitalSignature,keyEncipherment
  log "leaf $name: CN=$cn SAN=${san:-none} EKU=$eku issuer=$issuer key=$kind${start:+ valid $start..$end}"
  genkey "$name" "$kind"
  local ext=$stage/$name.ext
  {
    echo "[leaf]"
    echo "basicConstraints = critical,CA:FALSE"
    echo "keyUsage = critical,$ku"
    echo "extendedKeyUsage = $eku"
    [[ -n $san ]] && echo "subjectAltName = $san"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid,issuer"
  } >"$ext"
  run openssl req -new -config "$cnf" -key "$stage/$name.key" -subj "/O=edgepair/CN=$cn" -sha256 \
    -out "$stage/$name.csr"
  if [[ -n $start ]]; then
    run openssl ca -batch -config "$cnf" -name ca_default -cert "$stage/$issuer.crt" \
      -keyfile "$stage/$issuer.key" -in "$stage/$name.csr" -out "$stage/$name.crt" -notext \
      -startdate "$start" -enddate "$end" -extfile "$ext" -extensions leaf
  else
    run openssl x509 -req -in "$stage/$name.csr" -CA "$stage/$issuer.crt" -CAkey "$stage/$issuer.key" \
      -set_serial "$(serial)" -days 825 -sha256 -extfile "$ext" -extensions leaf -out "$stage/$name.crt"
  fi
  rm -f -- "$stage/$name.csr" "$ext"
  # Chain (leaf + issuer) and a single PEM with key + chain (haproxy, sipp, nginx-style consumers).
  cat "$stage/$name.crt" "$stage/$issuer.crt" >"$stage/$name-chain.crt"
  cat "$stage/$name.key" "$stage/$name.crt" "$stage/$issuer.crt" >"$stage/$name.pem"
}

SA=serverAuth
SC=serverAuth,clientAuth

mkca ca "edgepair Test CA"
mkca rogue-ca "edgepair Rogue CA"

# The pair.
leaf edge-e ca expe1.example.com \
  "DNS:expe1.example.com,DNS:collab-edge.example.com,DNS:example.com,IP:127.0.0.1" $SC
leaf edge-e-alt ca collab-edge.example.org \
  "DNS:collab-edge.example.org,DNS:example.org,DNS:*.example.org" $SA
leaf edge-c ca expc1.example.com "DNS:expc1.example.com" $SC
if ((rsa)); then
  leaf edge-e-rsa ca expe1.example.com \
    "DNS:expe1.example.com,DNS:collab-edge.example.com,DNS:example.com,IP:127.0.0.1" $SC rsa
fi

# Negatives for the link's certificate checks.
leaf edge-c-noclientauth ca expc1.example.com "DNS:expc1.example.com" $SA
leaf edge-c-wrongsan ca other.example.com "DNS:other.example.com" $SC
leaf edge-c-cnonly ca expc1.example.com "" $SC
leaf rogue-edge-c rogue-ca expc1.example.com "DNS:expc1.example.com" $SC
leaf edge-e-expired ca expe1.example.com \
  "DNS:expe1.example.com,DNS:collab-edge.example.com,DNS:example.com,IP:127.0.0.1" $SC ec \
  20200101000000Z 20210101000000Z

# UC fixture nodes: "tomcat" (HTTPS: AXL, UDS, web) and "CallManager" (SIP TLS) certificates.
leaf tomcat-cucm1 ca cucm1.example.com "DNS:cucm1.example.com,IP:127.0.1.1" $SC
leaf tomcat-cucm2 ca cucm2.example.com "DNS:cucm2.example.com,IP:127.0.1.2" $SC
leaf tomcat-imp1 ca imp1.example.com "DNS:imp1.example.com,IP:127.0.1.3" $SC
leaf tomcat-cuc1 ca cuc1.example.com "DNS:cuc1.example.com,IP:127.0.1.4" $SC
leaf callmanager-cucm1 ca cucm1.example.com "DNS:cucm1.example.com,IP:127.0.1.1" $SC
leaf callmanager-cucm2 ca cucm2.example.com "DNS:cucm2.example.com,IP:127.0.1.2" $SC

# XMPP federation (issue #19): the partner domain's server, outside the enterprise.
leaf xmpp-partner ca partner.test "DNS:partner.test,DNS:partner2.test" $SC

# Trust bundles: ca.crt is the one to trust; both-cas.crt holds the test CA and the rogue CA.
cat "$stage/ca.crt" "$stage/rogue-ca.crt" >"$stage/both-cas.crt"

# Permissions: keys and key-bearing PEMs 0600, certificates 0644.
chmod 0644 "$stage"/*.crt
chmod 0600 "$stage"/*.key "$stage"/*.pem

# Sanity: every certificate made by x509 -req verifies against its CA (cheap, catches a broken openssl).
run openssl verify -CAfile "$stage/ca.crt" "$stage/edge-e.crt" "$stage/edge-c.crt"

# Move into place (same filesystem: rename), stamp last.
(
  cd "$stage"
  ls -1 -- *.crt *.key *.pem >MANIFEST
  chmod 0644 MANIFEST
  mv -f -- *.crt *.key *.pem MANIFEST "$outdir/"
)
umask 022
printf '%s\n' "$stamp" >"$outdir/.done"
log "PKI ready in $outdir"
