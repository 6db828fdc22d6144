"""GetThingConnectivityData through boto3 and the aws CLI: a thing whose name a device uses as
its client id is connected while that device is, then disconnected with AWS's reason."""
import time

import paho.mqtt.client as mqtt
import pytest


def until(f, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        v = f()
        if v:
            return v
        time.sleep(0.05)
    return f()


def test_a_things_connectivity_follows_its_device(iot, ferrite):
    iot.create_thing(thingName="conn-dev")
    before = iot.get_thing_connectivity_data(thingName="conn-dev")
    assert before["thingName"] == "conn-dev" and before["connected"] is False
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="conn-dev", protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", ferrite.mqtt_port)
    c.loop_start()
    try:
        up = until(lambda: (d := iot.get_thing_connectivity_data(thingName="conn-dev"))["connected"] and d)
        assert up["connected"] is True and "disconnectReason" not in up
        assert abs(up["timestamp"].timestamp() - time.time()) < 60
        # The aws CLI reads the same.
        assert ferrite.cli("iot", "get-thing-connectivity-data", "--thing-name", "conn-dev")["connected"] is True
    finally:
        c.disconnect()
        c.loop_stop()
    down = until(lambda: (d := iot.get_thing_connectivity_data(thingName="conn-dev"))["connected"] is False and d)
    assert down["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert down["timestamp"] >= up["timestamp"]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_thing_connectivity_data(thingName="conn-none")
