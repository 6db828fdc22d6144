"""Registry events: UpdateEventConfigurations/DescribeEventConfigurations through boto3 and the
aws CLI, and the `$aws/events/...` messages (topics and payloads of the developer guide's
"Registry events") received by a paho-mqtt subscriber."""
import datetime
import json
import threading

import paho.mqtt.client as mqtt
import pytest

from conftest import Ferrite, aws_error

ALL_TYPES = [
    "THING", "THING_GROUP", "THING_TYPE", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION", "JOB", "JOB_EXECUTION", "POLICY", "CERTIFICATE", "CA_CERTIFICATE",
]
REGISTRY_TYPES = ALL_TYPES[:6]


# Lifecycle events (the broker's, not the registry's) share the `$aws/events/` prefix.
LIFECYCLE = ("$aws/events/presence/", "$aws/events/subscriptions/")


class Events:
    """A paho-mqtt MQTT 5 client subscribed to `$aws/events/#` that records the registry events
    it receives as (topic, payload)."""

    def __init__(self, port, client_id):
        self.received = []
        self.cond = threading.Condition()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("$aws/events/#", qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def _on_message(self, client, userdata, msg):
        if msg.topic.startswith(LIFECYCLE):
            return
        with self.cond:
            self.received.append((msg.topic, json.loads(msg.payload)))
            self.cond.notify_all()

    def next(self, timeout=10):
        """The next event, in arrival order."""
        with self.cond:
            assert self.cond.wait_for(lambda: self.received, timeout), "no event arrived"
            return self.received.pop(0)

    def take(self, n, timeout=10):
        return [self.next(timeout) for _ in range(n)]

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def server(request):
    f = Ferrite(extra_sets=["registry.thing_type_delete_delay_secs=0"])
    request.addfinalizer(f.stop)
    return f


@pytest.fixture
def events(server):
    e = Events(server.mqtt_port, f"events-{threading.get_ident()}")
    yield e
    e.stop()


def enable(iot, types, on=True):
    iot.update_event_configurations(eventConfigurations={t: {"Enabled": on} for t in types})


def test_event_configurations(server):
    iot = server.client("iot")
    d = iot.describe_event_configurations()
    assert sorted(d["eventConfigurations"]) == sorted(ALL_TYPES)
    assert all(v == {"Enabled": False} for v in d["eventConfigurations"].values())
    assert isinstance(d["creationDate"], datetime.datetime) and isinstance(d["lastModifiedDate"], datetime.datetime)
    iot.update_event_configurations(eventConfigurations={"JOB": {"Enabled": True}, "POLICY": {"Enabled": True}})
    d = iot.describe_event_configurations()
    assert d["eventConfigurations"]["JOB"] == {"Enabled": True}
    assert d["eventConfigurations"]["THING"] == {"Enabled": False}
    assert d["lastModifiedDate"] >= d["creationDate"]
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.update_event_configurations(eventConfigurations={"NOT_A_TYPE": {"Enabled": True}})
    assert "NOT_A_TYPE" in aws_error(e)[2]
    # The aws CLI, as in the developer guide.
    server.cli("iot", "update-event-configurations", "--event-configurations", '{"JOB":{"Enabled": false}}')
    assert server.cli("iot", "describe-event-configurations")["eventConfigurations"]["JOB"] == {"Enabled": False}
    enable(iot, ["POLICY"], on=False)


def test_no_events_until_enabled(server, events):
    iot = server.client("iot")
    enable(iot, REGISTRY_TYPES, on=False)
    iot.create_thing(thingName="quiet")
    enable(iot, ["THING"])
    try:
        iot.create_thing(thingName="loud")
        # Events leave in commit order, so "quiet" would have come first.
        topic, payload = events.next()
        assert topic == "$aws/events/thing/loud/created"
    finally:
        enable(iot, ["THING"], on=False)


def test_thing_events(server, events):
    iot = server.client("iot")
    enable(iot, ["THING", "THING_TYPE_ASSOCIATION"])
    try:
        iot.create_thing_type(thingTypeName="ev-type")
        account = iot.describe_thing_type(thingTypeName="ev-type")["thingTypeArn"].split(":")[4]
        created = iot.create_thing(thingName="ev-thing", thingTypeName="ev-type", attributePayload={"attributes": {"a": "1"}})
        (t1, p1), (t2, p2) = events.take(2)
        assert t1 == "$aws/events/thing/ev-thing/created"
        assert p1["eventType"] == "THING_EVENT" and p1["operation"] == "CREATED"
        assert p1["accountId"] == account
        assert p1["thingId"] == created["thingId"] and p1["thingName"] == "ev-thing"
        assert p1["versionNumber"] == 1 and p1["thingTypeName"] == "ev-type" and p1["attributes"] == {"a": "1"}
        assert isinstance(p1["eventId"], str) and p1["timestamp"] > 1_600_000_000_000
        assert t2 == "$aws/events/thingTypeAssociation/thing/ev-thing/ev-type"
        assert p2["eventType"] == "THING_TYPE_ASSOCIATION_EVENT" and p2["operation"] == "CREATED"
        assert p2["thingId"] == created["thingId"] and p2["thingTypeName"] == "ev-type"

        iot.update_thing(thingName="ev-thing", removeThingType=True, attributePayload={"attributes": {"b": "2"}, "merge": True})
        (t1, p1), (t2, p2) = events.take(2)
        assert t1 == "$aws/events/thing/ev-thing/updated"
        assert p1["operation"] == "UPDATED" and p1["versionNumber"] == 2 and p1["thingTypeName"] is None
        assert p1["attributes"] == {"a": "1", "b": "2"}
        assert t2 == "$aws/events/thingTypeAssociation/thing/ev-thing/ev-type" and p2["operation"] == "DELETED"

        iot.delete_thing(thingName="ev-thing")
        topic, payload = events.next()
        assert topic == "$aws/events/thing/ev-thing/deleted" and payload["operation"] == "DELETED"
    finally:
        enable(iot, ["THING", "THING_TYPE_ASSOCIATION"], on=False)


def test_thing_type_events(server, events):
    iot = server.client("iot")
    enable(iot, ["THING_TYPE"])
    try:
        t = iot.create_thing_type(thingTypeName="ev-bulb", thingTypeProperties={"thingTypeDescription": "bulb", "searchableAttributes": ["w"]})
        topic, p = events.next()
        assert topic == "$aws/events/thingType/ev-bulb/created"
        assert p["eventType"] == "THING_TYPE_EVENT" and p["operation"] == "CREATED"
        assert p["thingTypeId"] == t["thingTypeId"] and p["thingTypeName"] == "ev-bulb"
        assert p["isDeprecated"] is False and p["deprecationDate"] is None
        assert p["searchableAttributes"] == ["w"] and p["description"] == "bulb"
        iot.deprecate_thing_type(thingTypeName="ev-bulb")
        topic, p = events.next()
        assert topic == "$aws/events/thingType/ev-bulb/updated" and p["isDeprecated"] is True and p["deprecationDate"] > 0
        iot.deprecate_thing_type(thingTypeName="ev-bulb", undoDeprecate=True)
        topic, p = events.next()
        assert topic == "$aws/events/thingType/ev-bulb/updated" and p["isDeprecated"] is False
        iot.deprecate_thing_type(thingTypeName="ev-bulb")
        events.next()
        iot.delete_thing_type(thingTypeName="ev-bulb")
        topic, p = events.next()
        assert topic == "$aws/events/thingType/ev-bulb/deleted" and p["operation"] == "DELETED"
    finally:
        enable(iot, ["THING_TYPE"], on=False)


def test_thing_group_membership_and_hierarchy_events(server, events):
    iot = server.client("iot")
    enable(iot, ["THING_GROUP", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY"])
    try:
        root = iot.create_thing_group(thingGroupName="ev-root", thingGroupProperties={"thingGroupDescription": "root group"})
        topic, p = events.next()
        assert topic == "$aws/events/thingGroup/ev-root/created"
        assert p["eventType"] == "THING_GROUP_EVENT" and p["operation"] == "CREATED"
        assert p["thingGroupId"] == root["thingGroupId"] and p["versionNumber"] == 1
        assert p["parentGroupName"] is None and p["parentGroupId"] is None and p["rootToParentThingGroups"] is None
        assert p["description"] == "root group" and p["attributes"] == {}

        kid = iot.create_thing_group(thingGroupName="ev-kid", parentGroupName="ev-root")
        (t1, p1), (t2, p2) = events.take(2)
        assert t1 == "$aws/events/thingGroup/ev-kid/created"
        assert p1["parentGroupName"] == "ev-root" and p1["parentGroupId"] == root["thingGroupId"]
        assert p1["rootToParentThingGroups"] == [{"groupArn": root["thingGroupArn"], "groupId": root["thingGroupId"]}]
        assert t2 == "$aws/events/thingGroupHierarchy/thingGroup/ev-root/childThingGroup/ev-kid/added"
        assert p2["eventType"] == "THING_GROUP_HIERARCHY_EVENT" and p2["operation"] == "ADDED"
        assert p2["thingGroupId"] == root["thingGroupId"] and p2["thingGroupName"] == "ev-root"
        assert p2["childGroupId"] == kid["thingGroupId"] and p2["childGroupName"] == "ev-kid"

        iot.update_thing_group(thingGroupName="ev-kid", thingGroupProperties={"attributePayload": {"attributes": {"x": "1"}}})
        topic, p = events.next()
        assert topic == "$aws/events/thingGroup/ev-kid/updated" and p["versionNumber"] == 2 and p["attributes"] == {"x": "1"}

        thing = iot.create_thing(thingName="ev-member")
        iot.add_thing_to_thing_group(thingGroupName="ev-kid", thingName="ev-member")
        topic, added = events.next()
        assert topic == "$aws/events/thingGroupMembership/thingGroup/ev-kid/thing/ev-member/added"
        assert added["eventType"] == "THING_GROUP_MEMBERSHIP_EVENT" and added["operation"] == "ADDED"
        assert added["groupArn"] == kid["thingGroupArn"] and added["groupId"] == kid["thingGroupId"]
        assert added["thingArn"] == thing["thingArn"] and added["thingId"] == thing["thingId"]
        iot.remove_thing_from_thing_group(thingGroupName="ev-kid", thingName="ev-member")
        topic, removed = events.next()
        assert topic == "$aws/events/thingGroupMembership/thingGroup/ev-kid/thing/ev-member/removed"
        assert removed["operation"] == "REMOVED" and removed["membershipId"] == added["membershipId"]

        iot.delete_thing_group(thingGroupName="ev-kid")
        (t1, p1), (t2, p2) = events.take(2)
        assert t1 == "$aws/events/thingGroupHierarchy/thingGroup/ev-root/childThingGroup/ev-kid/removed" and p1["operation"] == "REMOVED"
        assert t2 == "$aws/events/thingGroup/ev-kid/deleted" and p2["operation"] == "DELETED"
    finally:
        enable(iot, ["THING_GROUP", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY"], on=False)
