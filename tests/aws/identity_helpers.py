"""Helpers of the identity suites: a paho-mqtt device over mutual TLS that records what happens,
and a CA made with `cryptography` (scripts/test installs it) for RegisterCACertificate."""
import datetime
import queue
import ssl

import paho.mqtt.client as mqtt

WAIT = 10


class Device:
    """A paho-mqtt client (MQTT 5 or 3.1.1), over TLS with a client certificate when `cert` is
    given, recording CONNACK, SUBACK, PUBACK, messages and the disconnect."""

    def __init__(self, port, client_id, ca=None, cert=None, key=None, v5=True):
        self.port = port
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.pubacks = queue.Queue()
        self.messages = queue.Queue()
        self.disconnects = queue.Queue()
        protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, reconnect_on_failure=False
        )
        if ca:
            self.client.tls_set(ca_certs=str(ca), certfile=cert and str(cert), keyfile=key and str(key))
        self.client.on_connect = lambda c, u, f, rc, p: self.connacks.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(list(rcs))
        self.client.on_publish = lambda c, u, mid, rc, p: self.pubacks.put(rc)
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc)

    def connect(self):
        """Connects; returns the CONNACK reason code, or the exception that stopped the handshake."""
        try:
            self.client.connect("localhost", self.port, keepalive=30)
        except (ssl.SSLError, OSError) as e:
            return e
        self.client.loop_start()
        try:
            return self.connacks.get(timeout=WAIT)
        except queue.Empty:
            # Closed without a CONNACK (paho reports it as a disconnect).
            return self.disconnects.get(timeout=WAIT)

    def subscribe(self, *filters, qos=1):
        self.client.subscribe([(f, qos) for f in filters])
        return [int(rc.value) for rc in self.subacks.get(timeout=WAIT)]

    def publish(self, topic, payload=b"x", qos=1, retain=False):
        """Publishes; returns the PUBACK reason code (QoS 1)."""
        self.client.publish(topic, payload, qos=qos, retain=retain)
        return self.pubacks.get(timeout=WAIT)

    def next_message(self, timeout=WAIT):
        return self.messages.get(timeout=timeout)

    def disconnected_within(self, seconds):
        try:
            return self.disconnects.get(timeout=seconds)
        except queue.Empty:
            return None

    def stop(self):
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


def connect_ok(rc):
    return not isinstance(rc, Exception) and not rc.is_failure


def make_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def make_cert(subject_cn, key, issuer_cn=None, issuer_key=None, ca=False, days=365):
    """A certificate for `key` named `subject_cn`, self-signed or signed by (issuer_cn, issuer_key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or subject_cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(cert):
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key):
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
