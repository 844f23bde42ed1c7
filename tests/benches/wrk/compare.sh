#!/usr/bin/env bash
# Compares builds of the orchestrator under POST /requests (or GET /catalog/items) load,
# in alternating runs: on a shared 2-core machine whose speed changes by a quarter or
# more between minutes, only runs taken side by side compare.
#
#   tests/benches/wrk/compare.sh [-n RUNS] [-k post|get] BINARY [BINARY...]
#
# Each run starts the binary on a fresh data directory (logs at warn), runs wrk for 10 s
# at 256 connections, and reads the server's CPU time from /proc. Prints every run, then
# the medians per binary: p50, p95, p99, requests per second and the server's CPU per
# request. Needs wrk and curl (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/../../.."
runs=3
kind=post
while getopts "n:k:" opt; do
  case "$opt" in
    n) runs="$OPTARG" ;;
    k) kind="$OPTARG" ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-n RUNS] [-k post|get] BINARY [BINARY...]" >&2; exit 2; }
port=18083
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ticks=$(getconf CLK_TCK)

one() { # binary label
  local bin="$1" data="$work/data" out
  rm -rf "$data"
  ORCHESTRATOR_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data "$data" >"$work/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.2
  done
  TOKEN="$("$bin" dev-token --sub bench --groups developers --data "$data")"
  export TOKEN
  local before after
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  if [ "$kind" = post ]; then
    out=$(wrk -t2 -c256 -d10s -s tests/benches/wrk/post.lua "http://127.0.0.1:$port/requests")
  else
    out=$(wrk -t2 -c256 -d10s -H "Authorization: Bearer $TOKEN" -s tests/benches/wrk/p95.lua \
      "http://127.0.0.1:$port/catalog/items")
  fi
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  local requests
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  # The scripts' last line: "p50 X ms, p95 Y ms, p99 Z ms, R req/s, errors E".
  echo "$out" | tail -1 | awk -v label="$2" -v cpu="$(((after - before) * 1000000 / ticks))" -v n="$requests" \
    '{gsub(",", ""); if ($13 != 0) print label ": " $13 " failed requests" > "/dev/stderr";
      printf "%s %s %s %s %s %.0f\n", label, $2, $5, $8, $10, cpu / n}'
}

results="$work/results"
for _ in $(seq "$runs"); do
  for bin in "$@"; do
    line=$(one "$bin" "$bin")
    echo "$line" >>"$results"
    echo "$line" | awk '{printf "%s: p50 %s ms, p95 %s ms, p99 %s ms, %s req/s, %s us server CPU per request\n", $1, $2, $3, $4, $5, $6}'
  done
done
echo "medians of $runs runs ($kind):"
for bin in "$@"; do
  for col in 2 3 4 5 6; do
    awk -v b="$bin" -v c="$col" '$1 == b {print $c}' "$results" | sort -g |
      awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
  done | paste -sd' ' | awk -v b="$bin" '{printf "%s: p50 %s ms, p95 %s ms, p99 %s ms, %s req/s, %s us server CPU per request\n", b, $1, $2, $3, $4, $5}'
done
