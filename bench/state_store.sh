#!/usr/bin/env bash
# The state layer at registry scale, SQLite and PostgreSQL side by side in one run (release
# builds): a registry of THINGS things with attributes and SHADOWS shadows written straight into
# the store, then for each backend: the first start (which indexes them once), start-up time to "ferrite ready", RSS, DescribeThing and
# GetThingShadow p50/p99, ListThings (attribute filter) p99, CreateThing/s and
# UpdateThingShadow/s with 16 clients. PostgreSQL runs with its durable defaults (fsync on);
# SQLite with store.sync = "full".
#   bench/state_store.sh [THINGS] [SHADOWS]      (defaults 1000000 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/ferrite_serve.sh
things=${1:-1000000} shadows=${2:-100000}
cargo build --release -q -p ferrite -p bench
bin=target/release
work=$(mktemp -d "${TMPDIR:-/tmp}/ferrite-state-bench-XXXXXX")
pg_dir=$(mktemp -u -d "${TMPDIR:-/tmp}/ferrite-bench-pg-XXXXXX")  # outside $work: the postgres user must reach it
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; scripts/pg stop "$pg_dir"; rm -rf "$work"; }
trap cleanup EXIT
pg_url=$(PG_DURABLE=1 scripts/pg start "$pg_dir")
echo "# $things things, $shadows shadows; $(nproc) cores; $(date -u +%F)"
for backend in sqlite postgres; do
  data="$work/data-$backend"
  mkdir -p "$data"
  sets=(--set aws.account_id=\"123456789012\" --set log.level=warn)
  if [ "$backend" = postgres ]; then
    db="ferrite_bench"
    psql "$pg_url" -qtAc "CREATE DATABASE $db"
    url="${pg_url%/*}/$db"
    sets+=(--set store.backend=postgres --set "store.postgres_url=$url")
    $bin/ferrite-state-bench populate --postgres "$url" --things "$things" --shadows "$shadows"
  else
    $bin/ferrite-state-bench populate --sqlite "$data/state.db" --things "$things" --shadows "$shadows"
  fi
  # The first start indexes the things and shadows written straight into the store (as it
  # does once for a data directory of an earlier release); the second is an ordinary start.
  start=$(date +%s.%N)
  ferrite_serve "$bin/ferrite" "$data" "${sets[@]}"
  first=$(python3 -c "print($(date +%s.%N) - $start)")
  root_key=$key root_secret=$secret
  kill "$pid"; wait "$pid" 2>/dev/null || true
  start=$(date +%s.%N)
  ferrite_serve "$bin/ferrite" "$data" "${sets[@]}"
  ready=$(date +%s.%N)
  key=$root_key secret=$root_secret
  rss=$(ps -o rss= -p "$pid")
  echo "## $backend"
  printf 'first start (indexes the stored registry once): %.2f s\n' "$first"
  printf 'start-up to ready: %.2f s; RSS after start: %d MiB\n' "$(python3 -c "print($ready - $start)")" "$((rss / 1024))"
  $bin/ferrite-state-bench measure --port "$port" --key "$key" --secret "$secret" --things "$things" --shadows "$shadows"
  $bin/ferrite-shadow-bench http --port "$port" --key "$key" --secret "$secret" --clients 16 --duration 5
  printf 'RSS at the end: %d MiB\n' "$(( $(ps -o rss= -p "$pid") / 1024 ))"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
