#!/usr/bin/env bash
# Prints how long ctlog-sim takes to serve a 1,000,000-entry generated log
# (both views), in release mode. A measurement, not a test: nothing asserts it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p ctlog-sim
bin="${CARGO_TARGET_DIR:-target}/release/ctlog-sim"
out="$(mktemp)"
start=$(date +%s.%N)
"$bin" --listen 127.0.0.1:0 --entries "${ENTRIES:-1000000}" --both >"$out" 2>/dev/null &
pid=$!
until grep -q listening "$out"; do sleep 0.05; done
end=$(date +%s.%N)
echo "ready to serve ${ENTRIES:-1000000} entries after $(echo "$end - $start" | bc) s: $(cat "$out")"
kill -TERM "$pid"
wait "$pid" || true
rm -f "$out"
