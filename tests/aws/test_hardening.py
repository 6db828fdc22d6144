"""Regression tests of the holes an attacker found in sessions and wills (issue "Core
hardening"), with paho-mqtt devices over mutual TLS and a loopback client: a session is resumed
only by its own principal, in-flight messages are resent only where iot:Receive still allows,
and a will is checked again when it is sent."""
import queue

import pytest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


from identity_helpers import Device, connect_ok
from test_identity import BASE, policy, provision, thing_policy
from test_identity import tiot, tls  # noqa: F401 (the fixtures: a Ferrite with MQTT over TLS, its iot client)

QUIET = 2


class Persistent:
    """A paho MQTT 5 client with a persistent session (expiry 300 s) and manual acknowledgement:
    a QoS 1 message it receives stays in flight until `ack`."""

    def __init__(self, port, client_id, ca=None, cert=None, key=None):
        self.port = port
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True, reconnect_on_failure=False)
        if ca:
            self.client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
        self.client.on_connect = lambda c, u, flags, rc, p: self.connacks.put((rc, flags.session_present))
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)

    def connect(self):
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        self.client.connect("localhost", self.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        return self.connacks.get(timeout=10)

    def subscribe(self, f):
        subacks = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subacks.put([int(r.value) for r in rcs])
        self.client.subscribe(f, qos=1)
        return subacks.get(timeout=10)

    def next_message(self, timeout):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


def loopback(tls, client_id):
    d = Device(tls.mqtt_port, client_id)
    assert connect_ok(d.connect())
    return d


def tls_device(tls, client_id, cert, key):
    return Persistent(tls.ports["mqtts"], client_id, ca=tls.dir / "certs" / "ca.pem", cert=cert, key=key)


def test_a_loopback_client_cannot_resume_a_devices_session(tls, tiot):
    _, cert, key = provision(tls, tiot, "sess-dev", thing_policy(), "sess-dev-policy")
    d = tls_device(tls, "sess-dev", cert, key)
    rc, _ = d.connect()
    assert not rc.is_failure
    assert d.subscribe("dev/sess-dev/#") == [1]
    d.stop()
    pub = loopback(tls, "sess-pub")
    try:
        assert not pub.publish("dev/sess-dev/secret", b"for the device only").is_failure
    finally:
        pub.stop()
    # Same client id, clean start off, from the unauthenticated loopback listener.
    thief = Persistent(tls.mqtt_port, "sess-dev")
    try:
        rc, present = thief.connect()
        assert not rc.is_failure
        assert present is False, "another principal resumed the device's session"
        assert thief.next_message(QUIET) is None, "another principal received the device's queued message"
    finally:
        thief.stop()


def test_inflight_messages_are_resent_only_where_receive_is_still_allowed(tls, tiot):
    created, cert, key = provision(tls, tiot, "inflight-dev", thing_policy(), "inflight-policy")
    d = tls_device(tls, "inflight-dev", cert, key)
    rc, _ = d.connect()
    assert not rc.is_failure
    assert d.subscribe("dev/inflight-dev/#") == [1]
    pub = loopback(tls, "inflight-pub")
    try:
        assert not pub.publish("dev/inflight-dev/secret", b"s").is_failure
    finally:
        pub.stop()
    first = d.next_message(10)
    assert first is not None and first.topic == "dev/inflight-dev/secret"
    d.stop()  # never acknowledged: it stays in flight in the session
    # The policy now denies Receive on that topic.
    denying = policy(
        [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{BASE}:client/inflight-dev"},
            {"Effect": "Allow", "Action": ["iot:Subscribe"], "Resource": f"{BASE}:topicfilter/dev/inflight-dev/*"},
            {"Effect": "Allow", "Action": ["iot:Receive"], "Resource": f"{BASE}:topic/dev/inflight-dev/*"},
            {"Effect": "Deny", "Action": ["iot:Receive"], "Resource": f"{BASE}:topic/dev/inflight-dev/secret"},
        ]
    )
    tiot.create_policy_version(policyName="inflight-policy", policyDocument=denying, setAsDefault=True)
    again = tls_device(tls, "inflight-dev", cert, key)
    try:
        rc, present = again.connect()
        assert not rc.is_failure and present is True
        resent = again.next_message(QUIET)
        assert resent is None, f"resent {resent.topic} although iot:Receive is denied"
    finally:
        again.stop()


def will_device(tls, tiot, name):
    """A provisioned device connected over mutual TLS with a QoS 1 will on dev/NAME/lastwill, and a
    loopback watcher subscribed to dev/NAME/#. Returns (certificate, device, watcher)."""
    created, cert, key = provision(tls, tiot, name, thing_policy(), f"{name}-policy")
    watcher = loopback(tls, f"{name}-watcher")
    assert watcher.subscribe(f"dev/{name}/#") == [1]
    d = Device(tls.ports["mqtts"], name, ca=tls.dir / "certs" / "ca.pem", cert=cert, key=key)
    d.client.will_set(f"dev/{name}/lastwill", b"offline", qos=1)
    assert connect_ok(d.connect())
    return created, d, watcher


def test_a_will_is_not_sent_for_a_revoked_certificate(tls, tiot):
    created, d, watcher = will_device(tls, tiot, "will-dev")
    try:
        tiot.update_certificate(certificateId=created["certificateId"], newStatus="REVOKED")
        assert d.disconnected_within(5) is not None
        d.stop()
        try:
            msg = watcher.next_message(timeout=QUIET)
        except queue.Empty:
            msg = None
        assert msg is None, "the will of a revoked certificate was published"
    finally:
        watcher.stop()


def test_an_allowed_will_is_still_published(tls, tiot):
    _, d, watcher = will_device(tls, tiot, "will-ok")
    try:
        d.client.socket().close()  # vanish without DISCONNECT
        msg = watcher.next_message(timeout=10)
        assert (msg.topic, msg.payload) == ("dev/will-ok/lastwill", b"offline")
        d.client.loop_stop()
    finally:
        watcher.stop()


def test_webhooks_cannot_reach_private_addresses_by_default(tls):
    """Server-side request forgery: a webhook function pointed at Ferrite's own API, the cloud
    metadata address or any loopback service is refused at connect time (the default), and the
    error does not carry the target's answer."""
    from rules_helpers import ROLE, Receiver

    lam = tls.client("lambda")
    receiver = Receiver(body=b'{"secret": "internal"}')
    try:
        for name, url in [
            ("own-api", f"{tls.endpoint}/metrics"),
            ("metadata", "http://169.254.169.254/latest/meta-data/"),
            ("loopback", f"{receiver.url}/fn"),
            ("by-name", f"http://localhost:{tls.ports['http']}/healthz"),
        ]:
            lam.create_function(FunctionName=f"ssrf-{name}", Role=ROLE, Code={"ImageUri": url})
            out = lam.invoke(FunctionName=f"ssrf-{name}", Payload=b"{}")
            assert out.get("FunctionError") == "Unhandled", (name, out)
            err = out["Payload"].read().decode()
            assert "allow_private_targets" in err, (name, err)
            assert "internal" not in err and "ferrite_" not in err, (name, err)
        assert receiver.requests.empty(), "the loopback receiver was reached"
    finally:
        receiver.stop()


def test_an_x509_v1_device_certificate_connects(tls, tiot):
    """AWS's documented `openssl x509 -req` flow makes version 1 certificates (no extensions):
    registered, they connect and are held to their policies like any other."""
    import subprocess

    key, csr, crt = tls.dir / "v1.key", tls.dir / "v1.csr", tls.dir / "v1.crt"
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-subj", "/CN=v1-dev", "-out", str(csr)], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-signkey", str(key), "-out", str(crt), "-days", "30", "-sha256"], check=True, capture_output=True)
    text = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-text"], check=True, capture_output=True, text=True).stdout
    assert "Version: 1 (0x0)" in text
    registered = tiot.register_certificate_without_ca(certificatePem=crt.read_text(), status="ACTIVE")
    doc = policy(
        [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{BASE}:client/v1-dev"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{BASE}:topic/v1/*"},
        ]
    )
    tiot.create_policy(policyName="v1-policy", policyDocument=doc)
    tiot.attach_policy(policyName="v1-policy", target=registered["certificateArn"])
    d = Device(tls.ports["mqtts"], "v1-dev", ca=tls.dir / "certs" / "ca.pem", cert=crt, key=key)
    try:
        assert connect_ok(d.connect())
        assert not d.publish("v1/x").is_failure
        assert d.publish("other/x").value == 0x87
    finally:
        d.stop()
    # Revoked, it no longer passes the handshake's signature check.
    tiot.update_certificate(certificateId=registered["certificateId"], newStatus="REVOKED")
    again = Device(tls.ports["mqtts"], "v1-dev", ca=tls.dir / "certs" / "ca.pem", cert=crt, key=key)
    try:
        assert not connect_ok(again.connect())
    finally:
        again.stop()


def test_http_actions_need_https_by_default(tls, tiot):
    payload = {"sql": "SELECT * FROM 'h/#'", "actions": [{"http": {"url": "http://example.com/hook"}}]}
    with pytest.raises(tiot.exceptions.InvalidRequestException) as e:
        tiot.create_topic_rule(ruleName="plain_http", topicRulePayload=payload)
    assert "https://" in e.value.response["Error"]["Message"]
    with pytest.raises(tiot.exceptions.InvalidRequestException):
        tiot.create_topic_rule_destination(destinationConfiguration={"httpUrlConfiguration": {"confirmationUrl": "http://example.com/"}})
