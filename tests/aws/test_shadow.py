"""Device Shadow: an AWS-IoT-style device flow over MQTT (paho-mqtt) with an application using
boto3 iot-data, the shadow REST API's documented errors, named shadows, durability."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as mqtt
import pytest


class Device:
    """A paho-mqtt client speaking the shadow MQTT contract for one thing."""

    def __init__(self, port, thing, client_id=None):
        self.thing = thing
        self.prefix = f"$aws/things/{thing}/shadow"
        self.inbox = []
        self.cv = threading.Condition()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"dev-{thing}", protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_connect = lambda c, *a: c.subscribe([(f"{self.prefix}/#", 1)])
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_message(self, client, userdata, msg):
        if msg.topic.rsplit("/", 1)[1] in ("get", "update", "delete"):
            return  # our own request, echoed by the "#" subscription
        with self.cv:
            self.inbox.append((msg.topic, json.loads(msg.payload)))
            self.cv.notify_all()

    def expect(self, suffix, pred=lambda d: True, timeout=10):
        """Waits for (and removes) the first message on prefix/suffix matching pred."""
        topic = f"{self.prefix}/{suffix}"
        with self.cv:
            def find():
                for i, (t, d) in enumerate(self.inbox):
                    if t == topic and pred(d):
                        return i
                return None
            assert self.cv.wait_for(lambda: find() is not None, timeout), f"no {topic}; got {[t for t, _ in self.inbox]}"
            return self.inbox.pop(find())[1]

    def none(self, suffix, wait=0.3):
        time.sleep(wait)
        with self.cv:
            return not any(t == f"{self.prefix}/{suffix}" for t, _ in self.inbox)

    def request(self, op, doc):
        self.client.publish(f"{self.prefix}/{op}", json.dumps(doc), qos=1).wait_for_publish(10)

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


def shadow_of(iotdata, thing, name=None):
    kw = {"shadowName": name} if name else {}
    return json.loads(iotdata.get_thing_shadow(thingName=thing, **kw)["payload"].read())


def test_device_flow_reported_desired_delta(ferrite, iotdata):
    dev = Device(ferrite.mqtt_port, "lamp-1")
    try:
        dev.request("update", {"state": {"reported": {"color": "red", "power": "on"}}, "clientToken": "t1"})
        acc = dev.expect("update/accepted")
        assert acc["state"] == {"reported": {"color": "red", "power": "on"}}
        assert acc["version"] == 1 and acc["clientToken"] == "t1"
        assert "timestamp" in acc["metadata"]["reported"]["color"]

        # The application sets desired over HTTP; the device receives the delta.
        resp = iotdata.update_thing_shadow(thingName="lamp-1", payload=json.dumps({"state": {"desired": {"color": "green"}}}))
        assert json.loads(resp["payload"].read())["version"] == 2
        delta = dev.expect("update/delta")
        assert delta["state"] == {"color": "green"}
        assert delta["version"] == 2
        docs = dev.expect("update/documents", lambda d: d["current"]["version"] == 2)
        assert docs["previous"]["state"]["reported"]["color"] == "red"
        assert docs["current"]["state"]["desired"]["color"] == "green"

        # The device reports back; the delta disappears.
        dev.request("update", {"state": {"reported": {"color": "green"}}})
        dev.expect("update/accepted", lambda d: d["version"] == 3)
        got = shadow_of(iotdata, "lamp-1")
        assert got["state"]["desired"] == {"color": "green"}
        assert got["state"]["reported"] == {"color": "green", "power": "on"}
        assert "delta" not in got["state"]
        assert dev.none("update/delta")
    finally:
        dev.stop()


def test_offline_device_gets_pending_delta_with_get(ferrite, iotdata):
    iotdata.update_thing_shadow(thingName="sleeper", payload=json.dumps({"state": {"reported": {"mode": "eco"}}}))
    iotdata.update_thing_shadow(thingName="sleeper", payload=json.dumps({"state": {"desired": {"mode": "boost", "fan": 3}}}))
    dev = Device(ferrite.mqtt_port, "sleeper")
    try:
        dev.request("get", {"clientToken": "wake"})
        got = dev.expect("get/accepted")
        assert got["state"]["delta"] == {"mode": "boost", "fan": 3}
        assert got["clientToken"] == "wake"
        assert got["version"] == 2
    finally:
        dev.stop()


def test_rejections_over_mqtt_carry_aws_codes(ferrite):
    dev = Device(ferrite.mqtt_port, "picky")
    try:
        dev.client.publish(f"{dev.prefix}/update", b"{not json", qos=1).wait_for_publish(10)
        rej = dev.expect("update/rejected")
        assert rej["code"] == 400 and rej["message"] == "Invalid JSON"
        dev.request("update", {"state": {"reported": {"a": 1}}})
        dev.expect("update/accepted")
        dev.request("update", {"state": {"reported": {"a": 2}}, "version": 7, "clientToken": "c"})
        rej = dev.expect("update/rejected")
        assert (rej["code"], rej["message"], rej["clientToken"]) == (409, "Version conflict", "c")
        dev.client.publish("$aws/things/nobody-home/shadow/get", b"{}", qos=1)
    finally:
        dev.stop()


def test_rest_api_errors(ferrite, iotdata):
    with pytest.raises(iotdata.exceptions.ResourceNotFoundException):
        iotdata.get_thing_shadow(thingName="never-created")
    with pytest.raises(iotdata.exceptions.InvalidRequestException):
        iotdata.update_thing_shadow(thingName="bad-json", payload=b"{]")
    iotdata.update_thing_shadow(thingName="versioned", payload=json.dumps({"state": {"desired": {"x": 1}}}))
    with pytest.raises(iotdata.exceptions.ConflictException):
        iotdata.update_thing_shadow(thingName="versioned", payload=json.dumps({"state": {"desired": {"x": 2}}, "version": 99}))
    big = {"state": {"reported": {f"k{i}": "v" * 100 for i in range(100)}}}
    with pytest.raises(iotdata.exceptions.RequestEntityTooLargeException):
        iotdata.update_thing_shadow(thingName="too-big", payload=json.dumps(big))
    with pytest.raises(iotdata.exceptions.ResourceNotFoundException):
        iotdata.delete_thing_shadow(thingName="never-created")


def test_named_shadows_and_delete(ferrite, iotdata):
    for name in ["config", "battery", "alerts"]:
        iotdata.update_thing_shadow(thingName="multi", shadowName=name, payload=json.dumps({"state": {"reported": {"n": name}}}))
    iotdata.update_thing_shadow(thingName="multi", payload=json.dumps({"state": {"reported": {"classic": True}}}))
    listed = iotdata.list_named_shadows_for_thing(thingName="multi")
    assert listed["results"] == ["alerts", "battery", "config"]
    page = iotdata.list_named_shadows_for_thing(thingName="multi", pageSize=2)
    assert page["results"] == ["alerts", "battery"] and page["nextToken"]
    rest = iotdata.list_named_shadows_for_thing(thingName="multi", pageSize=2, nextToken=page["nextToken"])
    assert rest["results"] == ["config"]
    assert shadow_of(iotdata, "multi", "battery")["state"]["reported"] == {"n": "battery"}
    deleted = json.loads(iotdata.delete_thing_shadow(thingName="multi", shadowName="battery")["payload"].read())
    assert deleted["version"] == 1
    with pytest.raises(iotdata.exceptions.ResourceNotFoundException):
        iotdata.get_thing_shadow(thingName="multi", shadowName="battery")
    assert iotdata.list_named_shadows_for_thing(thingName="multi")["results"] == ["alerts", "config"]


def test_concurrent_updates_lose_nothing(ferrite, iotdata):
    def set_key(i):
        iotdata.update_thing_shadow(thingName="busy", payload=json.dumps({"state": {"reported": {f"k{i}": i}}}))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(set_key, range(40)))
    got = shadow_of(iotdata, "busy")
    assert got["version"] == 40
    assert got["state"]["reported"] == {f"k{i}": i for i in range(40)}


def test_many_clients_updating_shadows_never_seen_before_all_get_answers(iotdata):
    # Each first update reads the store (a cache miss) while the other requests wait for the
    # shadow lane: on PostgreSQL, waiting must leave the runtime free to finish that read.
    from concurrent.futures import wait

    def create(i):
        iotdata.update_thing_shadow(thingName=f"fresh-{i}", payload=json.dumps({"state": {"reported": {"n": i}}}))

    pool = ThreadPoolExecutor(16)
    futures = [pool.submit(create, i) for i in range(160)]
    done, pending = wait(futures, timeout=60)
    pool.shutdown(wait=False, cancel_futures=True)
    assert not pending, f"{len(pending)} of 160 updates were not answered within 60 s"
    for f in done:
        f.result()
    assert shadow_of(iotdata, "fresh-159")["state"]["reported"] == {"n": 159}


def test_shadows_survive_kill_9():
    from conftest import Ferrite

    f = Ferrite()
    try:
        f.client("iot-data").update_thing_shadow(thingName="durable", payload=json.dumps({"state": {"desired": {"t": 20}}}))
        f.proc.kill()  # no clean shutdown: what was acknowledged must be in the store
        f.proc.wait()
        f._start()
        got = shadow_of(f.client("iot-data"), "durable")
        assert got["state"]["desired"] == {"t": 20} and got["version"] == 1
    finally:
        f.stop()
