"""Two Ferrite nodes on one PostgreSQL database (the run's cluster, FERRITE_TEST_POSTGRES_URL):
what one node commits, the other serves within a second; races between them are decided by the
store (one CreateThing wins, one UpdateThing with a stale expectedVersion loses); a certificate
revoked through one node drops its connection on the other; a policy changed through one node
changes the other's decisions; a shadow updated through one node is read on the other, and one
shadow version is taken once. Run once, in the SQLite pass (the nodes use PostgreSQL anyway)."""
import json
import os
import threading
import time

import pytest

from conftest import Ferrite, new_database
from identity_helpers import Device, connect_ok

pytestmark = pytest.mark.skipif(os.environ.get("FERRITE_TEST_BACKEND") == "postgres", reason="runs in the SQLite pass")

ACCOUNT = "123456789012"
BASE = f"arn:aws:iot:us-east-1:{ACCOUNT}"


@pytest.fixture(scope="module")
def nodes():
    url, drop = new_database()
    sets = ["mqtt.tls_listen=127.0.0.1:0", f'aws.account_id="{ACCOUNT}"']
    a = Ferrite(extra_sets=sets, database=url)
    b = Ferrite(extra_sets=sets, database=url)
    assert a.key_id and b.key_id is None, "the first node creates the root key, the second finds it"
    b.key_id, b.secret = a.key_id, a.secret
    yield a, b
    b.stop()
    a.stop()
    drop()


def within(seconds, check):
    """Polls `check` until it returns something true; returns (value, elapsed seconds)."""
    start = time.monotonic()
    while True:
        v = check()
        if v:
            return v, time.monotonic() - start
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.02)


def test_the_nodes_share_one_account_and_one_ca(nodes):
    a, b = nodes
    assert (a.dir / "certs" / "ca.pem").read_text() == (b.dir / "certs" / "ca.pem").read_text()
    arn = a.client("sts").get_caller_identity()["Arn"]
    assert arn == b.client("sts").get_caller_identity()["Arn"]


def test_a_thing_created_on_one_node_is_described_on_the_other_within_a_second(nodes):
    a, b = nodes
    ia, ib = a.client("iot"), b.client("iot")
    ia.create_thing(thingName="seen-on-b", attributePayload={"attributes": {"site": "lab"}})

    def described():
        try:
            return ib.describe_thing(thingName="seen-on-b")
        except ib.exceptions.ResourceNotFoundException:
            return None

    thing, elapsed = within(1.0, described)
    assert thing["attributes"] == {"site": "lab"} and elapsed < 1.0
    ia.delete_thing(thingName="seen-on-b")
    within(1.0, lambda: not [t for t in ib.list_things()["things"] if t["thingName"] == "seen-on-b"])


def version_on(iot, name):
    """The thing's version as this node serves it (None while the node has not caught up)."""
    try:
        return iot.describe_thing(thingName=name)["version"]
    except iot.exceptions.ResourceNotFoundException:
        return None


def code(e):
    return e.response["Error"]["Code"]


def race(*calls):
    """Runs the calls at the same moment; returns each one's result or exception."""
    results = [None] * len(calls)
    go = threading.Barrier(len(calls))

    def run(i, f):
        go.wait()
        try:
            results[i] = f()
        except Exception as e:  # noqa: BLE001 - the test inspects what each call raised
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_concurrent_creates_of_one_thing_on_both_nodes_succeed_once(nodes):
    a, b = nodes
    ia, ib = a.client("iot"), b.client("iot")
    for n in range(6):
        name = f"contested-{n}"
        results = race(
            lambda: ia.create_thing(thingName=name, attributePayload={"attributes": {"by": "a"}}),
            lambda: ib.create_thing(thingName=name, attributePayload={"attributes": {"by": "b"}}),
        )
        failed = [r for r in results if isinstance(r, Exception)]
        assert len(failed) == 1, results
        assert code(failed[0]) == "ResourceAlreadyExistsException", failed[0]
        winner = next(r for r in results if not isinstance(r, Exception))
        by = ia.describe_thing(thingName=name)["attributes"]["by"]
        assert winner["thingArn"].endswith(f"thing/{name}") and by in ("a", "b")
        assert ib.describe_thing(thingName=name)["attributes"]["by"] == by


def test_updates_with_one_expected_version_on_both_nodes_conflict_once(nodes):
    a, b = nodes
    ia, ib = a.client("iot"), b.client("iot")
    ia.create_thing(thingName="versioned")
    for n in range(6):
        version = ia.describe_thing(thingName="versioned")["version"]
        within(1.0, lambda: version_on(ib, "versioned") == version)
        results = race(
            lambda: ia.update_thing(thingName="versioned", attributePayload={"attributes": {"v": f"a{n}"}}, expectedVersion=version),
            lambda: ib.update_thing(thingName="versioned", attributePayload={"attributes": {"v": f"b{n}"}}, expectedVersion=version),
        )
        failed = [r for r in results if isinstance(r, Exception)]
        assert len(failed) == 1, results
        assert code(failed[0]) == "VersionConflictException", failed[0]
        assert ia.describe_thing(thingName="versioned")["version"] == version + 1


def provision(node, iot, name, statements):
    created = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_policy(policyName=name, policyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    iot.attach_policy(policyName=name, target=created["certificateArn"])
    cert, key = node.dir / f"{name}.pem", node.dir / f"{name}.key"
    cert.write_text(created["certificatePem"])
    key.write_text(created["keyPair"]["PrivateKey"])
    return created, cert, key


def connected_device(node, client_id, cert, key):
    """A device connected to `node` (retrying while the node has not yet applied its certificate)."""

    def attempt():
        d = Device(node.ports["mqtts"], client_id, ca=node.dir / "certs" / "ca.pem", cert=cert, key=key)
        if connect_ok(d.connect()):
            return d
        d.stop()
        return None

    return within(5.0, attempt)[0]


def test_a_certificate_revoked_on_one_node_drops_its_connection_on_the_other_within_a_second(nodes):
    a, b = nodes
    ia = a.client("iot")
    everything = [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]
    created, cert, key = provision(a, ia, "revoked-on-a", everything)
    d = connected_device(b, "revoked-device", cert, key)
    try:
        start = time.monotonic()
        ia.update_certificate(certificateId=created["certificateId"], newStatus="REVOKED")
        assert d.disconnected_within(1.0) is not None, "the connection on the other node is still up after 1 s"
        assert time.monotonic() - start < 1.0
        again = Device(b.ports["mqtts"], "revoked-device", ca=b.dir / "certs" / "ca.pem", cert=cert, key=key)
        assert not connect_ok(again.connect())
        again.stop()
    finally:
        d.stop()


def test_a_policy_changed_on_one_node_changes_the_other_nodes_decisions_within_a_second(nodes):
    a, b = nodes
    ia = a.client("iot")
    connect = {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}
    created, cert, key = provision(a, ia, "changed-on-a", [connect, {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{BASE}:topicfilter/allowed/*"}])
    d = connected_device(b, "policy-device", cert, key)
    try:
        assert d.subscribe("later/x") == [0x87]
        widened = [connect, {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [f"{BASE}:topicfilter/allowed/*", f"{BASE}:topicfilter/later/*"]}]
        ia.create_policy_version(policyName="changed-on-a", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": widened}), setAsDefault=True)
        granted, elapsed = within(1.0, lambda: d.subscribe("later/x") == [1])
        assert granted and elapsed < 1.0
    finally:
        d.stop()


def test_a_rule_created_on_one_node_runs_on_the_other_and_stops_when_disabled(nodes):
    a, b = nodes
    ia = a.client("iot")
    sub = Device(b.mqtt_port, "rule-watcher")
    pub = Device(b.mqtt_port, "rule-source")
    assert connect_ok(sub.connect()) and connect_ok(pub.connect())
    try:
        sub.subscribe("cluster-out/#")
        ia.create_topic_rule(ruleName="across_nodes", topicRulePayload={
            "sql": "SELECT * FROM 'cluster-in/#'",
            "actions": [{"republish": {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "topic": "cluster-out/${topic(2)}"}}]})

        def republished():
            pub.publish("cluster-in/x", b'{"n": 1}')
            try:
                return sub.next_message(timeout=0.1)
            except Exception:  # noqa: BLE001 - queue.Empty: not yet
                return None

        msg, elapsed = within(2.0, republished)
        assert msg.topic == "cluster-out/x" and elapsed < 1.5
        ia.disable_topic_rule(ruleName="across_nodes")
        time.sleep(1.0)
        while not sub.messages.empty():
            sub.messages.get()
        pub.publish("cluster-in/y", b'{"n": 2}')
        with pytest.raises(Exception):
            sub.next_message(timeout=1.0)
    finally:
        sub.stop()
        pub.stop()


def shadow_on(data, name):
    """The classic shadow as this node serves it (None while it has none)."""
    try:
        return json.loads(data.get_thing_shadow(thingName=name)["payload"].read())
    except data.exceptions.ResourceNotFoundException:
        return None


def test_a_shadow_updated_on_one_node_is_read_on_the_other_within_a_second(nodes):
    a, b = nodes
    da, db = a.client("iot-data"), b.client("iot-data")
    for n in range(3):
        da.update_thing_shadow(thingName="shadowed", payload=json.dumps({"state": {"reported": {"n": n}}}))
        doc, elapsed = within(1.0, lambda: (s := shadow_on(db, "shadowed")) and s["state"]["reported"].get("n") == n and s)
        assert doc["version"] == n + 1 and elapsed < 1.0
    db.delete_thing_shadow(thingName="shadowed")
    within(1.0, lambda: shadow_on(da, "shadowed") is None)


def test_updates_of_one_shadow_version_on_both_nodes_are_taken_once(nodes):
    a, b = nodes
    da, db = a.client("iot-data"), b.client("iot-data")
    da.update_thing_shadow(thingName="contested-shadow", payload=json.dumps({"state": {"reported": {"by": "start"}}}))
    for n in range(6):
        version = within(1.0, lambda: (v := shadow_on(da, "contested-shadow")["version"]) == shadow_on(db, "contested-shadow")["version"] and v)[0]
        results = race(
            lambda: da.update_thing_shadow(thingName="contested-shadow", payload=json.dumps({"state": {"reported": {"by": f"a{n}"}}, "version": version})),
            lambda: db.update_thing_shadow(thingName="contested-shadow", payload=json.dumps({"state": {"reported": {"by": f"b{n}"}}, "version": version})),
        )
        failed = [r for r in results if isinstance(r, Exception)]
        assert len(failed) == 1, results
        assert code(failed[0]) == "ConflictException", failed[0]
        winner = "a" if isinstance(results[1], Exception) else "b"
        for data in (da, db):
            doc = within(1.0, lambda: (s := shadow_on(data, "contested-shadow")) and s["version"] == version + 1 and s)[0]
            assert doc["state"]["reported"]["by"] == f"{winner}{n}"
