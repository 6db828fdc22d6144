# Sourced by the state benchmarks: `ferrite_serve BINARY DATA_DIR [--set ...]` starts
# `BINARY serve` on DATA_DIR with only plain HTTP and MQTT on loopback (free ports) and waits for
# "ferrite ready"; sets pid, port (HTTP), mqtt_port and, on a first start, key and secret.
ferrite_serve() {
  local bin=$1 data=$2 line
  shift 2
  coproc FERRITE { exec "$bin" serve --data-dir "$data" --set mqtt.listen=127.0.0.1:0 --set mqtt.tls_listen=off \
    --set mqtt.ws_listen=off --set mqtt.wss_listen=off --set api.listen=127.0.0.1:0 --set api.tls_listen=off "$@"; }
  pid=$FERRITE_PID port="" mqtt_port="" key="" secret=""
  while read -r line <&"${FERRITE[0]}"; do
    case $line in
      "http listening on "*) port=${line##*:} ;;
      "mqtt listening on "*) mqtt_port=${line##*:} ;;
      "root credentials: "*) read -r _ _ key secret <<<"$line" ;;
      "ferrite ready") return 0 ;;
    esac
  done
  echo "ferrite did not start" >&2
  return 1
}
