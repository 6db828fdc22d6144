"""MQTT over WebSocket with paho-mqtt: subscribe, publish, and print what came back.

usage: ws_roundtrip.py PORT [CAFILE CERTFILE KEYFILE]   (with a CA file: WebSocket over TLS)
Prints the received payload and exits 0, or exits 1 after 10 s.
"""
import sys
import threading

import paho.mqtt.client as mqtt

port = int(sys.argv[1])
tls = len(sys.argv) > 2
got = threading.Event()
received = []
subscribed = threading.Event()


def on_connect(client, userdata, flags, reason_code, properties):
    if reason_code.is_failure:
        print("connect failed", reason_code, flush=True)
        sys.exit(1)
    client.subscribe("ws/test", qos=1)


def on_subscribe(client, userdata, mid, reason_codes, properties):
    subscribed.set()


def on_message(client, userdata, msg):
    received.append(msg.payload.decode())
    got.set()


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-ws", transport="websockets", protocol=mqtt.MQTTv5)
client.ws_set_options(path="/mqtt")
if tls:
    client.tls_set(ca_certs=sys.argv[2], certfile=sys.argv[3], keyfile=sys.argv[4])
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect("localhost", port, keepalive=30)
client.loop_start()
if not subscribed.wait(10):
    print("no SUBACK", flush=True)
    sys.exit(1)
client.publish("ws/test", "hello over websocket", qos=1).wait_for_publish(10)
if not got.wait(10):
    print("nothing received", flush=True)
    sys.exit(1)
client.disconnect()
client.loop_stop()
print(received[0], flush=True)
