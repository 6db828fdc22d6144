"""iot-data through boto3 and the aws CLI: HTTP publish reaches MQTT subscribers (paho-mqtt),
retained messages, DeleteConnection; plus SigV4 refusals and the operations endpoints."""
import base64
import json
import threading
import time
import urllib.request

import botocore
import paho.mqtt.client as mqtt
import pytest


class Subscriber:
    """A paho-mqtt MQTT 5 client that records what it receives."""

    def __init__(self, port, topic, client_id, clean=True):
        self.messages = []
        self.got = threading.Condition()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_reason = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.connected.set()
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1) if topic else self.connected.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(10), "MQTT subscriber did not get its SUBACK"

    def _on_message(self, client, userdata, msg):
        with self.got:
            self.messages.append(msg)
            self.got.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnect_reason = reason_code
        self.disconnected.set()

    def wait(self, n=1, timeout=10):
        with self.got:
            assert self.got.wait_for(lambda: len(self.messages) >= n, timeout), f"got {len(self.messages)} of {n} messages"
            return self.messages[:n]

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_publish_over_http_reaches_mqtt_with_mqtt5_properties(ferrite, iotdata):
    sub = Subscriber(ferrite.mqtt_port, "http/in/#", "sub-http")
    try:
        iotdata.publish(
            topic="http/in/1",
            qos=1,
            payload=b'{"t": 21}',
            contentType="application/json",
            responseTopic="http/reply",
            userProperties=json.dumps([{"unit": "C"}, {"site": "lab"}]),
            payloadFormatIndicator="UTF8_DATA",
            correlationData=base64.b64encode(b"req-7").decode(),
            messageExpiry=60,
        )
        (msg,) = sub.wait()
        assert msg.topic == "http/in/1"
        assert msg.payload == b'{"t": 21}'
        assert msg.qos == 1
        p = msg.properties
        assert p.ContentType == "application/json"
        assert p.ResponseTopic == "http/reply"
        assert p.CorrelationData == b"req-7"
        assert p.PayloadFormatIndicator == 1
        assert p.UserProperty == [("unit", "C"), ("site", "lab")]
        assert 0 < p.MessageExpiryInterval <= 60
    finally:
        sub.stop()


def test_retained_messages_over_http(ferrite, iotdata):
    iotdata.publish(topic="http/ret/a", qos=1, retain=True, payload=b"A", userProperties=json.dumps([{"k": "v"}]))
    iotdata.publish(topic="http/ret/b", qos=0, retain=True, payload=b"BB")
    got = iotdata.get_retained_message(topic="http/ret/a")
    assert got["topic"] == "http/ret/a"
    assert got["payload"] == b"A"
    assert got["qos"] == 1
    assert got["lastModifiedTime"] > 1_700_000_000_000
    assert json.loads(got["userProperties"]) == [{"k": "v"}]
    listed = {t["topic"]: t for t in iotdata.list_retained_messages()["retainedTopics"]}
    assert listed["http/ret/b"]["payloadSize"] == 2
    # A retained message published over HTTP reaches a later MQTT subscriber.
    sub = Subscriber(ferrite.mqtt_port, "http/ret/b", "sub-retained")
    try:
        (msg,) = sub.wait()
        assert msg.payload == b"BB" and msg.retain
    finally:
        sub.stop()
    # Cleared by an empty retained payload.
    iotdata.publish(topic="http/ret/b", qos=1, retain=True, payload=b"")
    with pytest.raises(iotdata.exceptions.ResourceNotFoundException):
        iotdata.get_retained_message(topic="http/ret/b")


def test_list_retained_messages_paginates(ferrite, iotdata):
    for i in range(7):
        iotdata.publish(topic=f"http/page/{i}", qos=1, retain=True, payload=b"x")
    pages = iotdata.get_paginator("list_retained_messages").paginate(PaginationConfig={"PageSize": 3})
    topics = [t["topic"] for page in pages for t in page["retainedTopics"] if t["topic"].startswith("http/page/")]
    assert topics == [f"http/page/{i}" for i in range(7)]


def test_delete_connection_disconnects_the_client(ferrite, iotdata):
    sub = Subscriber(ferrite.mqtt_port, None, "to-be-kicked")
    iotdata.delete_connection(clientId="to-be-kicked", preventWillMessage=True)
    assert sub.disconnected.wait(10)
    assert sub.disconnect_reason == 0x98  # Administrative action
    sub.client.loop_stop()
    with pytest.raises(iotdata.exceptions.ResourceNotFoundException):
        iotdata.delete_connection(clientId="nobody-by-this-name")


def test_aws_cli_publish_and_get_retained(ferrite):
    ferrite.cli("iot-data", "publish", "--topic", "cli/t", "--qos", "1", "--retain", "--payload", "from-cli")
    got = ferrite.cli("iot-data", "get-retained-message", "--topic", "cli/t")
    assert base64.b64decode(got["payload"]) == b"from-cli"


def test_bad_signatures_are_refused_with_aws_error_types(ferrite):
    wrong = ferrite.client("iot-data", secret="not-the-secret-at-all-0000000000000000000")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        wrong.list_retained_messages()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    unknown = ferrite.client("iot-data", key_id="AKIAUNKNOWNKEY000000")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unknown.list_retained_messages()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    # Unsigned.
    req = urllib.request.Request(f"{ferrite.endpoint}/retainedMessage")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_clock_skew_over_5_minutes_is_refused(ferrite, iotdata, monkeypatch):
    import botocore.auth

    real = botocore.auth.datetime.datetime

    class Skewed(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() - botocore.auth.datetime.timedelta(minutes=20)

        @classmethod
        def now(cls, tz=None):
            return real.now(tz) - botocore.auth.datetime.timedelta(minutes=20)

    monkeypatch.setattr(botocore.auth.datetime, "datetime", Skewed)
    client = ferrite.client("iot-data")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.list_retained_messages()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "Signature expired" in e.value.response["Error"]["Message"]


def test_presigned_url_is_accepted(ferrite, iotdata):
    iotdata.publish(topic="presign/t", qos=1, retain=True, payload=b"p")
    url = iotdata.generate_presigned_url("get_retained_message", Params={"topic": "presign/t"}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert base64.b64decode(body["payload"]) == b"p"


def test_operations_endpoints(ferrite):
    with urllib.request.urlopen(f"{ferrite.endpoint}/healthz", timeout=10) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"{ferrite.endpoint}/readyz", timeout=10) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"{ferrite.endpoint}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert "ferrite_mqtt_connections " in text
    assert 'ferrite_mqtt_messages_received_total{qos="1"}' in text
    assert 'ferrite_api_requests_total{operation="Publish",status="200"}' in text
    assert "ferrite_api_request_seconds_bucket" in text
