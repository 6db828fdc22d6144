#!/usr/bin/env bash
# Shadow updates/s over MQTT, the shadow service before and after the service runtime, in one
# run: 16 clients updating 16 things (no other subscribers: the earlier baseline), then 1,000
# and 10,000 things each with a persistent QoS 1 subscriber to its /update/accepted and
# /update/documents; a fresh data directory per run, store.sync = "full".
#   bench/shadow_runtime.sh OLD_FERRITE [NEW_FERRITE]
# (LOADS="--things 1000 --subscribers;--things 10000 --subscribers" runs only those loads.)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/ferrite_serve.sh
old=${1:?the earlier binary} new=${2:-target/release/ferrite}
cargo build --release -q -p bench
loads=("--things 16" "--things 1000 --subscribers" "--things 10000 --subscribers")
[ -n "${LOADS:-}" ] && IFS=';' read -r -a loads <<<"$LOADS"
for load in "${loads[@]}"; do
  for bin in "$old" "$new"; do
    data=$(mktemp -d "${TMPDIR:-/tmp}/ferrite-shadows-XXXXXX")
    # Each client subscribes to the replies of its own things (up to 1,250 filters).
    ferrite_serve "$bin" "$data" --set log.level=error --set mqtt.max_queued_messages=100000 --set mqtt.max_subscriptions_per_session=2000
    echo "## $bin $load"
    # shellcheck disable=SC2086
    target/release/ferrite-shadow-bench mqtt --port "$mqtt_port" --clients 16 $load --duration 10 || echo "(failed)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$data"
  done
done
