#!/usr/bin/env bash
# Instructions the server executes per POST /requests, counted by callgrind: repeatable
# where wall-clock figures on a shared 2-core machine vary by 15% or more from run to run.
# Four connections for 20 seconds; startup is not counted (the counters are zeroed once
# the server is ready). The count includes the worker's handling of each request.
#
#   tests/benches/wrk/instructions.sh [path/to/orchestrator]
#
# Needs valgrind and wrk (Debian packages). Counts depend on batching (group commits are
# smaller at four connections than at 256), so compare builds at the same settings.
set -euo pipefail
cd "$(dirname "$0")/../../.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/orchestrator-target}"
bin="${1:-$target/release/orchestrator}"
port=18082
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ORCHESTRATOR_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  "$bin" serve --listen "127.0.0.1:$port" --data "$work/data" >"$work/server.log" 2>&1 &
vpid=$!
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.5
done
TOKEN="$("$bin" dev-token --sub bench --groups developers --data "$work/data")"
export TOKEN
callgrind_control -z "$vpid" >/dev/null 2>&1
requests=$(wrk -t1 -c4 -d20s -s tests/benches/wrk/post.lua "http://127.0.0.1:$port/requests" |
  awk '/requests in/ {print $1}')
sleep 3 # the worker finishes the last requests
callgrind_control -d "$vpid" >/dev/null 2>&1
sleep 1
kill -INT "$vpid"
wait "$vpid" || true
dump="$(ls -t "$work"/cg.out.* | head -1)"
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$requests requests, $((total / requests)) instructions per request"
