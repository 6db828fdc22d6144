#!/usr/bin/env bash
# A reconnect storm, Ferrite beside Mosquitto in one run: 10,000 persistent sessions (each
# subscribed at QoS 1 to its own one of 10,000 retained messages) reconnect at once; the time
# until every one has its CONNACK with the session present.
#   bench/reconnect_storm.sh [FERRITE] [SESSIONS]
# Needs Debian's mosquitto (apt-get install mosquitto).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/ferrite_serve.sh
bin=${1:-target/release/ferrite} n=${2:-10000}
cargo build --release -q -p bench
for round in 1 2; do
  data=$(mktemp -d "${TMPDIR:-/tmp}/ferrite-storm-XXXXXX")
  ferrite_serve "$bin" "$data" --set log.level=error
  echo "## Ferrite (store.sync = full), round $round"
  target/release/ferrite-storm --port "$mqtt_port" --sessions "$n" || echo "(failed)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/mosquitto-storm-XXXXXX")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_queued_messages 1000\n' "$port" "$dir" >"$dir/mosquitto.conf"
  chown -R mosquitto "$dir" 2>/dev/null || true
  mosquitto -c "$dir/mosquitto.conf" >/dev/null 2>&1 &
  mpid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  echo "## Mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}') (persistence true), round $round"
  target/release/ferrite-storm --port "$port" --sessions "$n" || echo "(failed)"
  kill "$mpid"; wait "$mpid" 2>/dev/null || true
  rm -rf "$dir"
done
