"""Helpers of the rules suites: a Ferrite that allows the command functions of tests/aws/functions,
a paho-mqtt MQTT 5 client that records messages with their properties, and a local HTTP receiver
(http.server in a thread) that records requests and answers with scripted statuses."""
import http.server
import json
import queue
import threading
import urllib.parse

import paho.mqtt.client as mqtt

from conftest import ROOT, Ferrite

FUNCTIONS_DIR = ROOT / "tests" / "aws" / "functions"
ROLE = "arn:aws:iam::123456789012:role/ferrite-rules"
WAIT = 10


def start_ferrite():
    return Ferrite(
        extra_sets=[
            f'functions.allowed_command_dirs=["{FUNCTIONS_DIR}"]',
            "rules.http_retry_backoff_ms=20",
            "functions.retry_backoff_ms=20",
            # The tests' HTTP receivers and webhooks listen on loopback.
            "functions.allow_private_targets=true",
            "rules.allow_plain_http=true",
        ]
    )


class Client:
    """A paho-mqtt MQTT 5 client: publish, subscribe, and wait for messages (with properties)."""

    def __init__(self, port, client_id, subscribe=()):
        self.messages = queue.Queue()
        self.subacks = queue.Queue()
        connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda *a: connected.set()
        self.client.on_subscribe = lambda *a: self.subacks.put(a)
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert connected.wait(WAIT), "no CONNACK"
        for t in subscribe:
            self.subscribe(t)

    def subscribe(self, topic, qos=1):
        self.client.subscribe(topic, qos=qos)
        self.subacks.get(timeout=WAIT)

    def publish(self, topic, payload, qos=1, properties=None):
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        self.client.publish(topic, payload, qos=qos, properties=properties).wait_for_publish(WAIT)

    def next(self, timeout=WAIT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message arrived") from None

    def none(self, wait=0.5):
        try:
            m = self.messages.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


class Receiver:
    """An HTTP server on 127.0.0.1 recording every request (method, path, query, headers, body)
    and answering from `statuses` in order (then 200 with `body`)."""

    def __init__(self, statuses=(), body=b""):
        self.requests = queue.Queue()
        self.statuses = list(statuses)
        self.body = body
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                data = self.rfile.read(n)
                url = urllib.parse.urlsplit(self.path)
                outer.requests.put(
                    {
                        "path": url.path,
                        "query": dict(urllib.parse.parse_qsl(url.query)),
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": data,
                    }
                )
                status = outer.statuses.pop(0) if outer.statuses else 200
                reply = outer.body if status == 200 else b""
                self.send_response(status)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, timeout=WAIT):
        try:
            return self.requests.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no HTTP request arrived") from None

    def none(self, wait=0.5):
        try:
            r = self.requests.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected HTTP request {r['path']}")

    def stop(self):
        self.server.shutdown()


def republish(topic, **extra):
    return {"republish": {"topic": topic, "roleArn": ROLE, **extra}}


def rule(sql, actions, version="2016-03-23", **extra):
    return {"sql": sql, "awsIotSqlVersion": version, "actions": actions, **extra}
