#!/usr/bin/env python3
"""SUBSCRIBE against many retained messages, Ferrite beside Mosquitto in one run: a server holds
N retained messages (under k/0/... k/99/...); one client subscribes to 30 long exact filters
(none matches) and then to `k/7/#` (N/100 match), while another client measures QoS 1 round
trips to itself. Reports the time to SUBACK and the other client's worst round trip during it.

    bench/retained_subscribe.py --ferrite target/release/ferrite [--retained 60000]

Needs paho-mqtt and the mosquitto server (Debian's `mosquitto`)."""
import argparse
import os
import socket
import subprocess
import tempfile
import threading
import time

import paho.mqtt.client as mqtt


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def client(port, cid):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    return c


def load(port, n):
    c = client(port, "loader")
    for i in range(n):
        info = c.publish(f"k/{i % 100}/{i}", b"r" * 32, qos=0, retain=True)
        if i % 2000 == 0:
            info.wait_for_publish(10)
    c.publish("k-done", b"", qos=1).wait_for_publish(30)
    c.loop_stop()
    c.disconnect()


def measure(port):
    pinger = client(port, "pinger")
    got = threading.Event()
    pinger.on_message = lambda c, u, m: got.set()
    pinger.subscribe("ping/me", qos=1)
    time.sleep(0.3)
    worst = [0.0]
    stop = threading.Event()

    def ping():
        while not stop.is_set():
            got.clear()
            t = time.perf_counter()
            pinger.publish("ping/me", b"p", qos=1)
            got.wait(30)
            worst[0] = max(worst[0], time.perf_counter() - t)
            time.sleep(0.01)

    th = threading.Thread(target=ping)
    th.start()
    time.sleep(0.3)
    sub = client(port, "subscriber")
    results = {}
    worst[0] = 0.0
    time.sleep(0.5)
    results["(none: baseline)"] = (0.0, worst[0])
    for name, filters in [("30 exact filters", [(f"k/{i}/{'x' * 200}", 1) for i in range(30)]), ("k/7/#", [("k/7/#", 1)])]:
        acked = threading.Event()
        sub.on_subscribe = lambda c, u, mid, rc, p: acked.set()
        worst[0] = 0.0
        t = time.perf_counter()
        sub.subscribe(filters)
        acked.wait(60)
        results[name] = (time.perf_counter() - t, None)
        time.sleep(0.5)
        results[name] = (results[name][0], worst[0])
    stop.set()
    th.join()
    for c in (sub, pinger):
        c.loop_stop()
        c.disconnect()
    return results


def run(name, cmd, port, n):
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            wait_port(port)
            load(port, n)
            return measure(port)
        finally:
            proc.terminate()
            proc.wait(15)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferrite", default="target/release/ferrite")
    ap.add_argument("--retained", type=int, default=60000)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        p = free_port()
        cmd = [a.ferrite, "serve", "--data-dir", os.path.join(d, "f"), "--mqtt-listen", f"127.0.0.1:{p}"]
        for s in ["mqtt.tls_listen=off", "mqtt.ws_listen=off", "mqtt.wss_listen=off", "api.listen=off", "api.tls_listen=off", "store.sync=off", "mqtt.lifecycle_events=false"]:
            cmd += ["--set", s]
        rows.append(("Ferrite", run("ferrite", cmd, p, a.retained)))
        p = free_port()
        conf = os.path.join(d, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {p} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n")
        rows.append(("Mosquitto", run("mosquitto", ["mosquitto", "-c", conf], p, a.retained)))
    print(f"{a.retained} retained messages; time to SUBACK and another client's worst QoS 1 round trip meanwhile")
    print("| server | SUBSCRIBE | SUBACK after | worst round trip |")
    print("|---|---|--:|--:|")
    for server, res in rows:
        for what, (sub, rtt) in res.items():
            print(f"| {server} | {what} | {sub * 1000:.1f} ms | {rtt * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
