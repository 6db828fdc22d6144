"""Topic rules end to end: boto3 creates rules, paho-mqtt publishes and subscribes. The topic rule
API and its errors (SqlParseException, 401 for a missing rule, 409), republish with substitution
templates and MQTT 5 headers, overlapping rules, enable/disable/replace/delete, Basic Ingest, the
errorAction payload, and rules surviving a restart."""
import base64
import json
import time

import paho.mqtt.properties as mqtt_props
import pytest
from paho.mqtt.packettypes import PacketTypes

from conftest import aws_error
from rules_helpers import Client, republish, rule, start_ferrite


@pytest.fixture(scope="module")
def server():
    f = start_ferrite()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def iot(server):
    return server.client("iot")


def test_rule_api_create_get_list_replace_delete(server, iot):
    payload = rule("SELECT temp FROM 'api/+/temp' WHERE temp > 1", [republish("api/out")], description="first")
    iot.create_topic_rule(ruleName="api_rule", topicRulePayload=payload, tags="team=a&env=test")
    got = iot.get_topic_rule(ruleName="api_rule")
    assert got["ruleArn"].endswith(":rule/api_rule")
    r = got["rule"]
    assert r["ruleName"] == "api_rule"
    assert r["sql"] == payload["sql"]
    assert r["description"] == "first"
    assert r["awsIotSqlVersion"] == "2016-03-23"
    assert r["ruleDisabled"] is False
    assert r["actions"] == [republish("api/out")]
    created = r["createdAt"]
    # The default SQL version is 2015-10-08, as on AWS outside the console.
    iot.create_topic_rule(ruleName="api_rule_2", topicRulePayload={"sql": "SELECT * FROM 'other/#'", "actions": [], "ruleDisabled": True})
    assert iot.get_topic_rule(ruleName="api_rule_2")["rule"]["awsIotSqlVersion"] == "2015-10-08"

    names = [x["ruleName"] for x in iot.list_topic_rules()["rules"]]
    assert {"api_rule", "api_rule_2"} <= set(names)
    only = iot.list_topic_rules(topic="api/+/temp")["rules"]
    assert [x["ruleName"] for x in only] == ["api_rule"]
    assert only[0]["topicPattern"] == "api/+/temp"
    assert only[0]["ruleArn"] == got["ruleArn"]
    # A topic name matched by the pattern finds the rule too.
    assert [x["ruleName"] for x in iot.list_topic_rules(topic="api/d1/temp")["rules"]] == ["api_rule"]
    disabled = [x["ruleName"] for x in iot.list_topic_rules(ruleDisabled=True)["rules"]]
    assert "api_rule_2" in disabled and "api_rule" not in disabled
    first = iot.list_topic_rules(maxResults=1)
    assert len(first["rules"]) == 1 and "nextToken" in first
    rest = iot.list_topic_rules(maxResults=1000, nextToken=first["nextToken"])["rules"]
    assert first["rules"][0]["ruleName"] not in [x["ruleName"] for x in rest]
    paginated = [x["ruleName"] for p in iot.get_paginator("list_topic_rules").paginate(PaginationConfig={"PageSize": 1}) for x in p["rules"]]
    assert paginated == sorted(names)

    iot.replace_topic_rule(ruleName="api_rule", topicRulePayload=rule("SELECT * FROM 'api/#'", [republish("api/out2")]))
    r = iot.get_topic_rule(ruleName="api_rule")["rule"]
    assert r["sql"] == "SELECT * FROM 'api/#'" and r["createdAt"] == created and "description" not in r
    iot.delete_topic_rule(ruleName="api_rule")
    iot.delete_topic_rule(ruleName="api_rule_2")
    with pytest.raises(iot.exceptions.UnauthorizedException) as e:
        iot.get_topic_rule(ruleName="api_rule")
    assert aws_error(e)[:2] == ("UnauthorizedException", 401)


def test_rule_api_errors(iot):
    with pytest.raises(iot.exceptions.SqlParseException) as e:
        iot.create_topic_rule(ruleName="bad_sql", topicRulePayload=rule("SELECT * FROM 'a' WHERE", []))
    code, status, message = aws_error(e)
    assert (code, status) == ("SqlParseException", 400)
    assert message.startswith("Line 1:") and "character" in message, message
    with pytest.raises(iot.exceptions.SqlParseException) as e:
        iot.create_topic_rule(ruleName="bad_sql", topicRulePayload=rule("SELECT nosuchfunction(x) FROM 'a'", []))
    assert "nosuchfunction" in aws_error(e)[2].lower()
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_topic_rule(ruleName="bad-name", topicRulePayload=rule("SELECT * FROM 'a'", []))
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_topic_rule(ruleName="unsupported", topicRulePayload=rule("SELECT * FROM 'a'", [{"sns": {"targetArn": "x", "roleArn": "y"}}]))
    assert "sns action is not supported" in aws_error(e)[2]
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_topic_rule(ruleName="bad_template", topicRulePayload=rule("SELECT * FROM 'a'", [republish("x/${topic(")]))
    iot.create_topic_rule(ruleName="twice", topicRulePayload=rule("SELECT * FROM 'a'", []))
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_topic_rule(ruleName="twice", topicRulePayload=rule("SELECT * FROM 'a'", []))
    assert aws_error(e)[1] == 409
    iot.delete_topic_rule(ruleName="twice")
    for call in (
        lambda: iot.delete_topic_rule(ruleName="never"),
        lambda: iot.enable_topic_rule(ruleName="never"),
        lambda: iot.disable_topic_rule(ruleName="never"),
        lambda: iot.replace_topic_rule(ruleName="never", topicRulePayload=rule("SELECT * FROM 'a'", [])),
    ):
        with pytest.raises(iot.exceptions.UnauthorizedException):
            call()


def test_republish_with_templates_and_mqtt5_headers(server, iot):
    headers = {
        "contentType": "application/json",
        "correlationData": "${encode(topic(2), 'base64')}",
        "messageExpiry": "${30 * 4}",
        "payloadFormatIndicator": "UTF8_DATA",
        "responseTopic": "replies/${clientid()}",
        "userProperties": [{"key": "site", "value": "${topic(1)}"}, {"key": "unit", "value": "${get_user_properties('unit')[0]}"}],
    }
    sql = "SELECT temp, temp * 1.8 + 32 AS temp_f, topic(2) AS device, timestamp() AS at FROM 'plant/+/telemetry' WHERE temp > 25"
    iot.create_topic_rule(ruleName="heat", topicRulePayload=rule(sql, [republish("alerts/${topic(2)}/${upper(level)}", qos=1, headers=headers)]))
    app = Client(server.mqtt_port, "heat-app", ["alerts/#"])
    dev = Client(server.mqtt_port, "sensor-9")
    try:
        props = mqtt_props.Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("unit", "celsius")]
        dev.publish("plant/s9/telemetry", {"temp": 20, "level": "low"}, properties=props)
        dev.publish("plant/s9/telemetry", {"temp": 30, "level": "high"}, properties=props)
        m = app.next()
        assert m.topic == "alerts/s9/HIGH"
        body = json.loads(m.payload)
        assert body["temp"] == 30 and body["temp_f"] == 86.0 and body["device"] == "s9"
        assert abs(body["at"] / 1000 - time.time()) < 60
        assert m.qos == 1
        p = m.properties
        assert p.ContentType == "application/json"
        assert p.CorrelationData == b"s9"
        assert p.PayloadFormatIndicator == 1
        assert p.ResponseTopic == "replies/sensor-9"
        assert 110 <= p.MessageExpiryInterval <= 120
        assert p.UserProperty == [("site", "plant"), ("unit", "celsius")]
        app.none()
    finally:
        app.stop()
        dev.stop()
        iot.delete_topic_rule(ruleName="heat")


def test_overlapping_rules_enable_disable_and_reserved_topics(server, iot):
    iot.create_topic_rule(ruleName="ov_a", topicRulePayload=rule("SELECT 'a' AS r, * FROM 'ov/#'", [republish("ovout/a")]))
    iot.create_topic_rule(ruleName="ov_b", topicRulePayload=rule("SELECT VALUE n FROM 'ov/+'", [republish("$$aws/things/ovthing/shadow/update")]))
    app = Client(server.mqtt_port, "ov-app", ["ovout/#", "$aws/things/ovthing/shadow/update"])
    dev = Client(server.mqtt_port, "ov-dev")
    try:
        dev.publish("ov/x", {"n": 5})
        got = {m.topic: m.payload for m in (app.next(), app.next())}
        assert json.loads(got["ovout/a"]) == {"r": "a", "n": 5}
        assert got["$aws/things/ovthing/shadow/update"] == b"5"
        iot.disable_topic_rule(ruleName="ov_b")
        assert iot.get_topic_rule(ruleName="ov_b")["rule"]["ruleDisabled"] is True
        dev.publish("ov/x", {"n": 6})
        assert app.next().topic == "ovout/a"
        app.none()
        iot.enable_topic_rule(ruleName="ov_b")
        dev.publish("ov/x", {"n": 7})
        assert {app.next().topic, app.next().topic} == {"ovout/a", "$aws/things/ovthing/shadow/update"}
    finally:
        app.stop()
        dev.stop()
        iot.delete_topic_rule(ruleName="ov_a")
        iot.delete_topic_rule(ruleName="ov_b")


def test_basic_ingest_reaches_the_rule_and_no_subscriber(server, iot):
    iot.create_topic_rule(ruleName="ingest", topicRulePayload=rule("SELECT *, topic() AS t, topic(1) AS first", [republish("ingested/${topic()}")]))
    snoop = Client(server.mqtt_port, "ingest-snoop", ["$aws/rules/ingest/#", "$aws/rules/+/#"])
    app = Client(server.mqtt_port, "ingest-app", ["ingested/#"])
    dev = Client(server.mqtt_port, "ingest-dev")
    try:
        dev.publish("$aws/rules/ingest/site/3", {"v": 1})
        m = app.next()
        assert m.topic == "ingested/site/3"
        assert json.loads(m.payload) == {"v": 1, "t": "site/3", "first": "site"}
        snoop.none()
        # Over HTTP (iot-data Publish) too.
        server.client("iot-data").publish(topic="$aws/rules/ingest/http/1", qos=1, payload=b'{"v": 9}')
        m = app.next()
        assert (m.topic, json.loads(m.payload)) == ("ingested/http/1", {"v": 9, "t": "http/1", "first": "http"})
        snoop.none(0.1)
        # A disabled (or missing) rule: the message goes nowhere.
        iot.disable_topic_rule(ruleName="ingest")
        dev.publish("$aws/rules/ingest/site/3", {"v": 2})
        dev.publish("$aws/rules/nosuchrule/x", {"v": 3})
        app.none()
        snoop.none(0.1)
    finally:
        for c in (snoop, app, dev):
            c.stop()
        iot.delete_topic_rule(ruleName="ingest")


def test_get_thing_shadow_reads_ferrite_shadows(server, iot):
    iotdata = server.client("iot-data")
    iotdata.update_thing_shadow(thingName="lamp-7", payload=json.dumps({"state": {"reported": {"power": "on", "watts": 40}}}))
    sql = "SELECT topic(2) AS thing, get_thing_shadow(topic(2), 'arn:aws:iam::123456789012:role/r').state.reported AS reported FROM 'lamps/+/ask'"
    iot.create_topic_rule(ruleName="shadow_lookup", topicRulePayload=rule(sql, [republish("lamps/${topic(2)}/answer")]))
    app = Client(server.mqtt_port, "shadow-app", ["lamps/+/answer"])
    dev = Client(server.mqtt_port, "shadow-dev")
    try:
        dev.publish("lamps/lamp-7/ask", {})
        m = app.next()
        assert json.loads(m.payload) == {"thing": "lamp-7", "reported": {"power": "on", "watts": 40}}
    finally:
        app.stop()
        dev.stop()
        iot.delete_topic_rule(ruleName="shadow_lookup")


def test_error_action_gets_aws_error_payload(server, iot):
    missing = "arn:aws:lambda:us-east-1:123456789012:function:no_such_function"
    payload = rule("SELECT * FROM 'err/+'", [{"lambda": {"functionArn": missing}}, republish("err-ok/${topic(2)}")], errorAction=republish("errors/${topic(2)}"))
    iot.create_topic_rule(ruleName="with_errors", topicRulePayload=payload)
    app = Client(server.mqtt_port, "err-app", ["errors/#", "err-ok/#"])
    dev = Client(server.mqtt_port, "err-dev")
    try:
        dev.publish("err/d1", {"x": 1})
        msgs = {m.topic: m for m in (app.next(), app.next())}
        assert set(msgs) == {"errors/d1", "err-ok/d1"}
        e = json.loads(msgs["errors/d1"].payload)
        assert e["ruleName"] == "with_errors"
        assert e["topic"] == "err/d1"
        assert e["clientId"] == "err-dev"
        assert json.loads(base64.b64decode(e["base64OriginalPayload"])) == {"x": 1}
        assert len(e["cloudwatchTraceId"]) == 36
        assert len(e["failures"]) == 1
        f = e["failures"][0]
        assert f["failedAction"] == "LambdaAction"
        assert f["failedResource"] == missing
        assert "not found" in f["errorMessage"].lower()
        app.none()
    finally:
        app.stop()
        dev.stop()
        iot.delete_topic_rule(ruleName="with_errors")


def test_rules_survive_a_restart():
    f = start_ferrite()
    try:
        iot = f.client("iot")
        iot.create_topic_rule(ruleName="durable", topicRulePayload=rule("SELECT * FROM 'dur/in'", [republish("dur/out")]))
        iot.create_topic_rule(ruleName="durable_off", topicRulePayload=rule("SELECT * FROM 'dur/in'", [republish("dur/off")], ruleDisabled=True))
        f.restart()
        iot = f.client("iot")
        assert iot.get_topic_rule(ruleName="durable_off")["rule"]["ruleDisabled"] is True
        app = Client(f.mqtt_port, "dur-app", ["dur/out", "dur/off"])
        dev = Client(f.mqtt_port, "dur-dev")
        try:
            dev.publish("dur/in", {"k": "v"})
            assert app.next().topic == "dur/out"
            app.none()
        finally:
            app.stop()
            dev.stop()
    finally:
        f.stop()
