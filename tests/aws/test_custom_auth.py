"""Custom authorizers end to end: the authorizer API through boto3 (CRUD, the default authorizer,
AWS's errors, TestInvokeAuthorizer), and paho-mqtt clients on the plain listener authenticated by
a Ferrite command function (tests/aws/functions/authorizer.py) named in the MQTT username
(`user?x-amz-customauthorizer-name=NAME`), held to the policies it returned, refused at CONNECT
with a wrong password, and disconnected when disconnectAfterInSeconds elapses."""
import base64
import json
import queue
import threading
import time
import urllib.parse

import paho.mqtt.client as mqtt
import pytest
from botocore.exceptions import ClientError

from conftest import aws_error
from rules_helpers import FUNCTIONS_DIR, ROLE, start_ferrite

AUTHORIZER_FN = FUNCTIONS_DIR / "authorizer.py"
WAIT = 10


@pytest.fixture(scope="module")
def server():
    f = start_ferrite()
    lam = f.client("lambda")
    lam.create_function(FunctionName="authfn", Role=ROLE, Code={"ImageUri": f"file://{AUTHORIZER_FN}"}, PackageType="Image", Timeout=10)
    yield f
    f.stop()


@pytest.fixture(scope="module")
def iot(server):
    return server.client("iot")


def fn_arn(server):
    return server.client("lambda").get_function(FunctionName="authfn")["Configuration"]["FunctionArn"]


class Conn:
    """An MQTT client that records its CONNACK, PUBACK reason codes, messages and disconnection."""

    def __init__(self, port, client_id, username=None, password=None, v5=True):
        proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.connack = queue.Queue()
        self.pubacks = {}
        self.messages = queue.Queue()
        self.disconnected = threading.Event()
        self.c.on_connect = lambda c, u, flags, rc, props: self.connack.put(rc)
        self.c.on_publish = lambda c, u, mid, rc, props: self.pubacks.__setitem__(mid, rc)
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_disconnect = lambda *a: self.disconnected.set()
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        self.rc = self.connack.get(timeout=WAIT)

    def publish(self, topic, payload=b"x"):
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(WAIT)
        deadline = time.time() + WAIT
        while info.mid not in self.pubacks and time.time() < deadline:
            time.sleep(0.01)
        rc = self.pubacks.get(info.mid)
        # 0x10 "no matching subscribers" is a success too.
        return 0 if rc is not None and rc.value < 0x80 else rc

    def stop(self):
        self.c.disconnect()
        self.c.loop_stop()


def test_authorizer_api_crud_default_and_errors(server, iot):
    arn = fn_arn(server)
    made = iot.create_authorizer(authorizerName="crud-a", authorizerFunctionArn=arn, signingDisabled=True, tags=[{"Key": "k", "Value": "v"}])
    assert made["authorizerName"] == "crud-a" and made["authorizerArn"].endswith(":authorizer/crud-a")
    d = iot.describe_authorizer(authorizerName="crud-a")["authorizerDescription"]
    assert d["authorizerFunctionArn"] == arn and d["status"] == "ACTIVE" and d["signingDisabled"] is True
    assert "creationDate" in d and "lastModifiedDate" in d
    with pytest.raises(ClientError) as e:
        iot.create_authorizer(authorizerName="crud-a", authorizerFunctionArn=arn, signingDisabled=True)
    assert aws_error(e)[:2] == ("ResourceAlreadyExistsException", 409)
    with pytest.raises(ClientError) as e:
        iot.create_authorizer(authorizerName="needs-keys", authorizerFunctionArn=arn)
    assert aws_error(e)[:2] == ("InvalidRequestException", 400)
    with pytest.raises(ClientError) as e:
        iot.create_authorizer(authorizerName="bad-arn", authorizerFunctionArn="not an arn", signingDisabled=True)
    assert aws_error(e)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        iot.describe_authorizer(authorizerName="missing")
    assert aws_error(e)[:2] == ("ResourceNotFoundException", 404)
    iot.create_authorizer(authorizerName="crud-b", authorizerFunctionArn=arn, signingDisabled=True, status="INACTIVE")
    names = [a["authorizerName"] for a in iot.list_authorizers(ascendingOrder=True)["authorizers"]]
    assert names.index("crud-a") < names.index("crud-b")
    inactive = [a["authorizerName"] for a in iot.list_authorizers(status="INACTIVE")["authorizers"]]
    assert "crud-b" in inactive and "crud-a" not in inactive
    page = iot.list_authorizers(pageSize=1, ascendingOrder=True)
    assert len(page["authorizers"]) == 1 and "nextMarker" in page

    with pytest.raises(ClientError) as e:
        iot.describe_default_authorizer()
    assert aws_error(e)[0] == "ResourceNotFoundException"
    iot.set_default_authorizer(authorizerName="crud-b")
    assert iot.describe_default_authorizer()["authorizerDescription"]["authorizerName"] == "crud-b"
    with pytest.raises(ClientError) as e:
        iot.delete_authorizer(authorizerName="crud-b")
    assert aws_error(e)[:2] == ("DeleteConflictException", 409)
    iot.clear_default_authorizer()
    with pytest.raises(ClientError) as e:
        iot.delete_authorizer(authorizerName="crud-a")
    assert aws_error(e)[0] == "DeleteConflictException"
    iot.update_authorizer(authorizerName="crud-a", status="INACTIVE")
    assert iot.describe_authorizer(authorizerName="crud-a")["authorizerDescription"]["status"] == "INACTIVE"
    iot.delete_authorizer(authorizerName="crud-a")
    iot.delete_authorizer(authorizerName="crud-b")
    with pytest.raises(ClientError) as e:
        iot.update_authorizer(authorizerName="crud-a", status="ACTIVE")
    assert aws_error(e)[0] == "ResourceNotFoundException"


def test_test_invoke_authorizer(server, iot):
    iot.create_authorizer(authorizerName="tester", authorizerFunctionArn=fn_arn(server), signingDisabled=True)
    out = iot.test_invoke_authorizer(authorizerName="tester", mqttContext={"username": "alice", "password": b"secret", "clientId": "c1"}, tlsContext={"serverName": "example.com"})
    assert out["isAuthenticated"] is True and out["principalId"] == "alice"
    assert out["disconnectAfterInSeconds"] == 3600 and out["refreshAfterInSeconds"] == 300
    policy = json.loads(out["policyDocuments"][0])
    assert policy["Statement"][0]["Action"] == "iot:Connect"
    assert iot.test_invoke_authorizer(authorizerName="tester", mqttContext={"username": "bob", "password": b"nope"})["isAuthenticated"] is False
    assert iot.test_invoke_authorizer(authorizerName="tester", token="allow-token")["isAuthenticated"] is True
    with pytest.raises(ClientError) as e:
        iot.test_invoke_authorizer(authorizerName="missing", token="t")
    assert aws_error(e)[0] == "ResourceNotFoundException"


def test_mqtt_clients_are_authorized_by_the_function(server, iot):
    iot.create_authorizer(authorizerName="mqtt-auth", authorizerFunctionArn=fn_arn(server), signingDisabled=True)
    user = "alice?x-amz-customauthorizer-name=mqtt-auth"
    c = Conn(server.mqtt_port, "dev-1", user, "secret")
    try:
        assert c.rc == 0
        c.c.subscribe("allowed/#", qos=1)
        time.sleep(0.3)
        assert c.publish("allowed/x", b"hello") == 0
        m = c.messages.get(timeout=WAIT)
        assert (m.topic, m.payload) == ("allowed/x", b"hello")
        assert c.publish("denied/x") == 0x87
    finally:
        c.stop()
    bad = Conn(server.mqtt_port, "dev-2", user, "wrong")
    assert bad.rc == 0x86
    bad.c.loop_stop()
    old = Conn(server.mqtt_port, "dev-3", user, "wrong", v5=False)
    assert old.rc == 0x86  # paho reports the MQTT 3.1.1 return code 4 as 0x86
    old.c.loop_stop()
    missing = Conn(server.mqtt_port, "dev-4", "alice?x-amz-customauthorizer-name=nope", "secret")
    assert missing.rc == 0x87
    missing.c.loop_stop()
    # disconnectAfterInSeconds: the function gives "short..." users 2 seconds.
    short = Conn(server.mqtt_port, "dev-5", "shorty?x-amz-customauthorizer-name=mqtt-auth", "secret")
    assert short.rc == 0
    assert short.disconnected.wait(8), "not disconnected after disconnectAfterInSeconds"
    short.c.loop_stop()


def test_signed_tokens(server, iot):
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    iot.create_authorizer(authorizerName="signed", authorizerFunctionArn=fn_arn(server), tokenKeyName="tok", tokenSigningPublicKeys={"k1": pem})
    sig = base64.b64encode(key.sign(b"allow-token", padding.PKCS1v15(), hashes.SHA256())).decode()
    assert iot.test_invoke_authorizer(authorizerName="signed", token="allow-token", tokenSignature=sig)["isAuthenticated"] is True
    forged = base64.b64encode(key.sign(b"other", padding.PKCS1v15(), hashes.SHA256())).decode()
    with pytest.raises(ClientError) as e:
        iot.test_invoke_authorizer(authorizerName="signed", token="allow-token", tokenSignature=forged)
    assert aws_error(e)[0] == "InvalidRequestException"
    user = f"dev?x-amz-customauthorizer-name=signed&tok=allow-token&x-amz-customauthorizer-signature={urllib.parse.quote(sig, safe='')}"
    ok = Conn(server.mqtt_port, "signed-1", user, "")
    assert ok.rc == 0 and ok.publish("allowed/y") == 0
    ok.stop()
    user = f"dev?x-amz-customauthorizer-name=signed&tok=allow-token&x-amz-customauthorizer-signature={urllib.parse.quote(forged, safe='')}"
    refused = Conn(server.mqtt_port, "signed-2", user, "secret")
    assert refused.rc == 0x87
    refused.c.loop_stop()


def test_default_authorizer_applies_to_plain_clients(server, iot):
    iot.create_authorizer(authorizerName="dflt", authorizerFunctionArn=fn_arn(server), signingDisabled=True)
    iot.set_default_authorizer(authorizerName="dflt")
    try:
        c = Conn(server.mqtt_port, "d-1", "carol", "secret")
        assert c.rc == 0 and c.publish("denied/z") == 0x87 and c.publish("allowed/z") == 0
        c.stop()
        bad = Conn(server.mqtt_port, "d-2", "carol", "wrong")
        assert bad.rc == 0x86
        bad.c.loop_stop()
    finally:
        iot.clear_default_authorizer()
    free = Conn(server.mqtt_port, "d-3")
    assert free.rc == 0 and free.publish("denied/z") == 0
    free.stop()
