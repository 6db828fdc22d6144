#!/usr/bin/env bash
# Write throughput of the state layer against the release before it, in one run: CreateThing/s
# and UpdateThingShadow/s (16 clients, 5 s, SigV4 over HTTP) on a fresh data directory with
# store.sync = "full", for each binary given.
#   bench/state_writes_vs_previous.sh OLD_FERRITE [NEW_FERRITE]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/ferrite_serve.sh
old=${1:?the previous release binary} new=${2:-target/release/ferrite}
cargo build --release -q -p bench
for bin in "$old" "$new"; do
  for round in 1 2; do
    data=$(mktemp -d "${TMPDIR:-/tmp}/ferrite-writes-XXXXXX")
    ferrite_serve "$bin" "$data" --set log.level=error
    echo "## $bin (round $round)"
    target/release/ferrite-state-bench measure --port "$port" --key "$key" --secret "$secret" --things 1 --writes-only
    target/release/ferrite-shadow-bench http --port "$port" --key "$key" --secret "$secret" --clients 16 --duration 5
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
  done
done
