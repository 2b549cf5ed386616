#!/usr/bin/env bash
# Measures the CPU that monero-wallet-rpc spends on process start,
# create_wallet and open_wallet under three flag sets:
#   stock     - SSL autodetect (throwaway RSA certificates generated)
#   cert      - one key/certificate generated once and passed in
#   nossl     - --rpc-ssl disabled --daemon-ssl disabled (escrowflow's default)
# CPU is utime+stime of the process from /proc, read after each step.
# Usage: scripts/measure-walletrpc-flags.sh [runs]   (default 3)
set -euo pipefail
runs=${1:-3}
bin=${MONERO_WALLET_RPC:-monero-wallet-rpc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clk=$(getconf CLK_TCK)

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj /CN=127.0.0.1 >/dev/null 2>&1

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu() { awk -v c="$clk" '{print ($14+$15)/c}' "/proc/$1/stat"; }

measure() { # label flags...
  local label=$1; shift
  local d port pid c0 c1 c2 c3
  d=$(mktemp -d "$work/run.XXXX"); port=$(free_port)
  "$bin" --testnet --offline --disable-rpc-login --non-interactive \
    --shared-ringdb-dir "$d/ringdb" --rpc-bind-ip 127.0.0.1 --rpc-bind-port "$port" \
    --wallet-dir "$d" --log-file "$d/log" "$@" >/dev/null 2>&1 &
  pid=$!
  rpc() { curl -s -m 120 "http://127.0.0.1:$port/json_rpc" -d "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"$1\",\"params\":$2}"; }
  until rpc get_version '{}' 2>/dev/null | grep -q version; do sleep 0.05; done
  c0=$(cpu "$pid")
  rpc create_wallet '{"filename":"w","password":"p","language":"English"}' >/dev/null
  c1=$(cpu "$pid")
  rpc close_wallet '{}' >/dev/null
  c2=$(cpu "$pid")
  rpc open_wallet '{"filename":"w","password":"p"}' | grep -q result
  c3=$(cpu "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v l="$label" -v a="$c0" -v b="$c1" -v c="$c2" -v d="$c3" \
    'BEGIN{printf "%-6s start %.2f  create %.2f  open %.2f\n", l, a, b-a, d-c}'
}

for i in $(seq "$runs"); do
  measure stock
  measure cert --rpc-ssl-private-key "$work/key.pem" --rpc-ssl-certificate "$work/cert.pem" \
    --daemon-ssl-private-key "$work/key.pem" --daemon-ssl-certificate "$work/cert.pem"
  measure nossl --rpc-ssl disabled --daemon-ssl disabled
done | sort -s -k1,1 | awk '
  { s[$1]=s[$1] " " $3; c[$1]=c[$1] " " $5; o[$1]=o[$1] " " $7 }
  END {
    print "CPU seconds of monero-wallet-rpc per run (runs listed), one call at a time:"
    for (k in s) printf "%-6s start:%s | create_wallet:%s | open_wallet:%s\n", k, s[k], c[k], o[k]
  }'
