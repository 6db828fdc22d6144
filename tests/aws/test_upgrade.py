"""Upgrade: a data directory written by an earlier release opens and keeps everything.

tests/fixtures/datadir-6c8fb05.tar.gz was written by `ferrite serve` built at commit 6c8fb05
(documents in ferrite.db, before the state store): a thing with a type, attributes, a group and
a certificate; a policy attached to the certificate; a topic rule; a shadow; a retained message;
an IAM user; a persistent session with a queued QoS 1 message; the root key and the certificate
are in fixture.json. Run in the SQLite pass (the old directory has no PostgreSQL database)."""
import json
import os
import queue
import sqlite3
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import ROOT, Ferrite

pytestmark = pytest.mark.skipif(os.environ.get("FERRITE_TEST_BACKEND") == "postgres", reason="an old data directory is SQLite")

FIXTURE = ROOT / "tests" / "fixtures" / "datadir-6c8fb05.tar.gz"


def disconnected_just_now(data_dir):
    """The fixture's persistent session ended when the fixture was made; a persistent session
    expires an hour after it ends, so it is dated now, as if the old release stopped a moment ago."""
    db = sqlite3.connect(data_dir / "ferrite.db")
    db.execute("UPDATE sessions SET disconnected_at = ?", (int(time.time() * 1000),))
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def upgraded():
    # The fixture was written with this account id in its configuration.
    f = Ferrite(seed=FIXTURE, extra_sets=['aws.account_id="123456789012"'], prepare=disconnected_just_now)
    saved = json.loads((f.dir / "fixture.json").read_text())
    assert f.key_id is None, "an existing data directory gets no new root key"
    f.key_id, f.secret = saved["key_id"], saved["secret"]
    yield f, saved
    f.stop()


def test_the_registry_certificates_and_policies_are_kept(upgraded):
    f, saved = upgraded
    iot = f.client("iot")
    thing = iot.describe_thing(thingName="fixture-thing")
    assert (thing["thingTypeName"], thing["attributes"], thing["version"]) == ("sensor", {"site": "lab", "fw": "1.2"}, 2)
    assert [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="fixture-thing")["thingGroups"]] == ["plant"]
    described = iot.describe_certificate(certificateId=saved["certificateId"])["certificateDescription"]
    cert_arn = described["certificateArn"]
    # Its PEM was stored inside the certificate's document then; it is read from there now.
    assert described["certificatePem"].startswith("-----BEGIN CERTIFICATE-----")
    assert iot.list_thing_principals(thingName="fixture-thing")["principals"] == [cert_arn]
    assert [p["policyName"] for p in iot.list_attached_policies(target=cert_arn)["policies"]] == ["fixture-policy"]
    assert iot.get_topic_rule(ruleName="fixture_rule")["rule"]["sql"] == "SELECT * FROM 'in/#'"
    assert f.client("iam").get_user(UserName="fixture-user")["User"]["UserName"] == "fixture-user"
    # Still writable: an update bumps the kept version.
    assert iot.update_thing(thingName="fixture-thing", attributePayload={"attributes": {"fw": "1.3"}, "merge": True}, expectedVersion=2) is not None
    assert iot.describe_thing(thingName="fixture-thing")["version"] == 3


def test_shadows_retained_messages_and_sessions_are_kept(upgraded):
    f, _ = upgraded
    shadow = json.loads(f.client("iot-data").get_thing_shadow(thingName="fixture-thing")["payload"].read())
    assert shadow["state"]["reported"] == {"temp": 21}
    got = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fixture-sub", clean_session=False)
    c.on_message = lambda cl, u, m: got.put((m.topic, m.payload, m.retain))
    c.connect("127.0.0.1", f.mqtt_port)
    c.loop_start()
    try:
        assert got.get(timeout=10)[:2] == ("queued/one", b"waiting"), "the queued message of the persistent session"
        c.subscribe("fixture/retained", qos=1)
        assert got.get(timeout=10) == ("fixture/retained", b"kept", True)
    finally:
        c.disconnect()
        c.loop_stop()
