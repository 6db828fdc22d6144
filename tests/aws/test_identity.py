"""Device identity end to end: boto3 creates keys and a certificate, registers a thing, attaches
the certificate and a policy; paho-mqtt connects with mutual TLS and is held to the policy
(MQTT 5: PUBACK/SUBACK 0x87; MQTT 3.1.1: disconnected); deactivating or revoking the
certificate, or its CA, drops the live connection and a reconnect fails. Also registered CAs
with a verification certificate, thing group inheritance, TestAuthorization and the local
policy of the plain listener."""
import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import ROOT, Ferrite, aws_error
from identity_helpers import Device, connect_ok, key_pem, make_cert, make_key, pem

NOT_AUTHORIZED = 0x87
ACCOUNT = "123456789012"
BASE = f"arn:aws:iot:us-east-1:{ACCOUNT}"


@pytest.fixture(scope="module")
def tls():
    """A Ferrite with the MQTT over TLS listener on."""
    f = Ferrite(extra_sets=["mqtt.tls_listen=127.0.0.1:0", f"aws.account_id=\"{ACCOUNT}\""])
    yield f
    f.stop()


@pytest.fixture(scope="module")
def tiot(tls):
    return tls.client("iot")


def policy(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def device_files(tls, name, cert_pem, key_pem_text):
    cert, key = tls.dir / f"{name}.pem", tls.dir / f"{name}.key"
    cert.write_text(cert_pem)
    key.write_text(key_pem_text)
    return cert, key


def provision(tls, iot, thing, policy_doc, policy_name):
    """CreateKeysAndCertificate, a thing attached to it and a policy attached to it."""
    created = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=created["certificateArn"])
    iot.create_policy(policyName=policy_name, policyDocument=policy_doc)
    iot.attach_policy(policyName=policy_name, target=created["certificateArn"])
    cert, key = device_files(tls, thing, created["certificatePem"], created["keyPair"]["PrivateKey"])
    return created, cert, key


def device(tls, client_id, cert, key, v5=True):
    return Device(tls.ports["mqtts"], client_id, ca=tls.dir / "certs" / "ca.pem", cert=cert, key=key, v5=v5)


def thing_policy(base=BASE):
    return policy(
        [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{base}:client/${{iot:Connection.Thing.ThingName}}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{base}:topic/dev/${{iot:Connection.Thing.ThingName}}/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{base}:topicfilter/dev/${{iot:Connection.Thing.ThingName}}/*"},
        ]
    )


def test_keys_and_certificate_shapes(tiot):
    created = tiot.create_keys_and_certificate(setAsActive=False)
    cid = created["certificateId"]
    assert len(cid) == 64 and created["certificateArn"].endswith(f":cert/{cid}")
    assert created["certificatePem"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in created["keyPair"]["PrivateKey"]
    d = tiot.describe_certificate(certificateId=cid)["certificateDescription"]
    assert d["status"] == "INACTIVE" and d["certificatePem"] == created["certificatePem"]
    assert d["validity"]["notAfter"].year == 2049
    listed = [c["certificateId"] for c in tiot.list_certificates(pageSize=250)["certificates"]]
    assert cid in listed
    tiot.update_certificate(certificateId=cid, newStatus="ACTIVE")
    with pytest.raises(tiot.exceptions.CertificateStateException) as e:
        tiot.delete_certificate(certificateId=cid)
    assert aws_error(e)[1] == 406
    tiot.update_certificate(certificateId=cid, newStatus="REVOKED")
    with pytest.raises(tiot.exceptions.CertificateStateException):
        tiot.update_certificate(certificateId=cid, newStatus="ACTIVE")
    tiot.delete_certificate(certificateId=cid)
    with pytest.raises(tiot.exceptions.ResourceNotFoundException):
        tiot.describe_certificate(certificateId=cid)


def test_policies_versions_and_malformed_documents(tls, tiot):
    doc = policy([{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}])
    with pytest.raises(tiot.exceptions.MalformedPolicyException) as e:
        tiot.create_policy(policyName="bad", policyDocument='{"Statement": [{"Effect": "Maybe"}]}')
    assert aws_error(e)[1] == 400
    created = tiot.create_policy(policyName="versions", policyDocument=doc)
    assert created["policyVersionId"] == "1"
    # The aws CLI sees it too.
    assert "versions" in [p["policyName"] for p in tls.cli("iot", "list-policies")["policies"]]
    for i in range(2, 6):
        v = tiot.create_policy_version(policyName="versions", policyDocument=doc, setAsDefault=(i == 5))
        assert v["policyVersionId"] == str(i)
    with pytest.raises(tiot.exceptions.VersionsLimitExceededException) as e:
        tiot.create_policy_version(policyName="versions", policyDocument=doc)
    assert aws_error(e)[1] == 409
    assert tiot.get_policy(policyName="versions")["defaultVersionId"] == "5"
    versions = tiot.list_policy_versions(policyName="versions")["policyVersions"]
    assert sorted(v["versionId"] for v in versions) == ["1", "2", "3", "4", "5"]
    assert [v["versionId"] for v in versions if v["isDefaultVersion"]] == ["5"]
    with pytest.raises(tiot.exceptions.DeleteConflictException):
        tiot.delete_policy_version(policyName="versions", policyVersionId="5")
    with pytest.raises(tiot.exceptions.DeleteConflictException):
        tiot.delete_policy(policyName="versions")
    tiot.set_default_policy_version(policyName="versions", policyVersionId="2")
    assert tiot.get_policy_version(policyName="versions", policyVersionId="2")["isDefaultVersion"]
    for v in ["1", "3", "4", "5"]:
        tiot.delete_policy_version(policyName="versions", policyVersionId=v)
    tiot.delete_policy(policyName="versions")
    with pytest.raises(tiot.exceptions.ResourceNotFoundException):
        tiot.get_policy(policyName="versions")


def test_mqtt5_is_held_to_the_policy_and_revocation_disconnects(tls, tiot):
    created, cert, key = provision(tls, tiot, "dev-5", thing_policy(), "dev-5-policy")
    d = device(tls, "dev-5", cert, key)
    try:
        assert connect_ok(d.connect())
        assert d.subscribe("dev/dev-5/#", "other/#") == [1, NOT_AUTHORIZED]
        assert not d.publish("dev/dev-5/a", b"hello").is_failure
        assert d.next_message().payload == b"hello"
        assert d.publish("other/a").value == NOT_AUTHORIZED
        # Still connected: MQTT 5 clients are told, not disconnected.
        assert not d.publish("dev/dev-5/b").is_failure
        # Revoked: the live connection drops within a second or two.
        started = time.time()
        tiot.update_certificate(certificateId=created["certificateId"], newStatus="REVOKED")
        rc = d.disconnected_within(3)
        assert rc is not None and rc.value == NOT_AUTHORIZED, rc
        assert time.time() - started < 2.5
    finally:
        d.stop()
    again = device(tls, "dev-5", cert, key)
    try:
        assert not connect_ok(again.connect())
    finally:
        again.stop()


def test_mqtt311_is_disconnected_on_a_denied_publish_and_deactivation(tls, tiot):
    created, cert, key = provision(tls, tiot, "dev-3", thing_policy(), "dev-3-policy")
    d = device(tls, "dev-3", cert, key, v5=False)
    try:
        assert connect_ok(d.connect())
        assert d.subscribe("dev/dev-3/#", "other/#") == [1, 0x80]
        assert not d.publish("dev/dev-3/x").is_failure
        d.client.publish("other/x", b"x", qos=1)
        assert d.disconnected_within(5) is not None
    finally:
        d.stop()
    # Another client id than the thing's: iot:Connect is not allowed.
    wrong = device(tls, "not-dev-3", cert, key, v5=False)
    try:
        assert not connect_ok(wrong.connect())
    finally:
        wrong.stop()
    d = device(tls, "dev-3", cert, key, v5=False)
    try:
        assert connect_ok(d.connect())
        tiot.update_certificate(certificateId=created["certificateId"], newStatus="INACTIVE")
        assert d.disconnected_within(3) is not None
    finally:
        d.stop()
    again = device(tls, "dev-3", cert, key, v5=False)
    try:
        assert not connect_ok(again.connect())
    finally:
        again.stop()


def test_an_unregistered_certificate_cannot_connect(tls, tiot):
    """A certificate of Ferrite's CA that was never registered passes the handshake and is
    refused on CONNECT; registered (RegisterCertificate accepts Ferrite's CA), it connects."""
    cert, key = tls.dir / "cli.pem", tls.dir / "cli.key"
    binary = os.environ.get("FERRITE_BIN", str(ROOT / "target" / "debug" / "ferrite"))
    subprocess.run([binary, "certs", "issue-client", "--cn", "cli-dev", "--data-dir", str(tls.dir), "--cert-out", str(cert), "--key-out", str(key)], check=True, capture_output=True)
    d = device(tls, "cli-dev", cert, key)
    try:
        assert not connect_ok(d.connect())
    finally:
        d.stop()
    registered = tiot.register_certificate(certificatePem=cert.read_text(), status="ACTIVE")
    assert "caCertificateId" not in tiot.describe_certificate(certificateId=registered["certificateId"])["certificateDescription"]
    tiot.create_policy(policyName="cli-any", policyDocument=policy([{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]))
    tiot.attach_policy(policyName="cli-any", target=registered["certificateArn"])
    d = device(tls, "cli-dev", cert, key)
    try:
        assert connect_ok(d.connect())
    finally:
        d.stop()


def test_a_registered_ca_with_a_verification_certificate(tls, tiot):
    ca_key = make_key()
    ca = make_cert("Acme Test Root", ca_key, ca=True)
    code = tiot.get_registration_code()["registrationCode"]
    assert len(code) == 64
    wrong = make_cert("not-the-code", make_key(), issuer_cn="Acme Test Root", issuer_key=ca_key)
    with pytest.raises(tiot.exceptions.RegistrationCodeValidationException):
        tiot.register_ca_certificate(caCertificate=pem(ca), verificationCertificate=pem(wrong))
    other_key = make_key()
    forged = make_cert(code, make_key(), issuer_cn="Acme Test Root", issuer_key=other_key)
    with pytest.raises(tiot.exceptions.CertificateValidationException):
        tiot.register_ca_certificate(caCertificate=pem(ca), verificationCertificate=pem(forged))
    verification = make_cert(code, make_key(), issuer_cn="Acme Test Root", issuer_key=ca_key)
    reg = tiot.register_ca_certificate(caCertificate=pem(ca), verificationCertificate=pem(verification), setAsActive=True)
    ca_id = reg["certificateId"]
    assert reg["certificateArn"].endswith(f":cacert/{ca_id}")
    with pytest.raises(tiot.exceptions.ResourceAlreadyExistsException):
        tiot.register_ca_certificate(caCertificate=pem(ca), verificationCertificate=pem(verification))
    described = tiot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert described["status"] == "ACTIVE"
    assert ca_id in [c["certificateId"] for c in tiot.list_ca_certificates()["certificates"]]

    dev_key = make_key()
    dev = make_cert("acme-dev", dev_key, issuer_cn="Acme Test Root", issuer_key=ca_key)
    cert, key = device_files(tls, "acme-dev", pem(dev), key_pem(dev_key))
    # Chains to an ACTIVE registered CA, but is not registered itself: refused.
    d = device(tls, "acme-dev", cert, key)
    try:
        assert not connect_ok(d.connect())
    finally:
        d.stop()
    registered = tiot.register_certificate(certificatePem=pem(dev), caCertificatePem=pem(ca), setAsActive=True)
    described = tiot.describe_certificate(certificateId=registered["certificateId"])["certificateDescription"]
    assert described["caCertificateId"] == ca_id
    assert [c["certificateId"] for c in tiot.list_certificates_by_ca(caCertificateId=ca_id)["certificates"]] == [registered["certificateId"]]
    tiot.create_policy(policyName="acme", policyDocument=policy([{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]))
    tiot.attach_policy(policyName="acme", target=registered["certificateArn"])
    d = device(tls, "acme-dev", cert, key)
    try:
        assert connect_ok(d.connect())
        assert not d.publish("acme/x").is_failure
        # The CA is deactivated: the connections of its certificates drop.
        tiot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
        assert d.disconnected_within(3) is not None
    finally:
        d.stop()
    again = device(tls, "acme-dev", cert, key)
    try:
        assert not connect_ok(again.connect())
    finally:
        again.stop()
    with pytest.raises(tiot.exceptions.CertificateStateException):
        tiot.register_certificate(certificatePem=pem(make_cert("late", make_key(), issuer_cn="Acme Test Root", issuer_key=ca_key)), setAsActive=True)


def test_register_without_ca_and_conflicts(tls, tiot):
    key = make_key()
    selfsigned = make_cert("lonely", key)
    with pytest.raises(tiot.exceptions.CertificateValidationException):
        tiot.register_certificate(certificatePem=pem(selfsigned), setAsActive=True)
    reg = tiot.register_certificate_without_ca(certificatePem=pem(selfsigned), status="ACTIVE")
    with pytest.raises(tiot.exceptions.ResourceAlreadyExistsException) as e:
        tiot.register_certificate_without_ca(certificatePem=pem(selfsigned))
    assert aws_error(e)[1] == 409
    tiot.create_policy(policyName="lonely", policyDocument=policy([{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]))
    tiot.attach_policy(policyName="lonely", target=reg["certificateArn"])
    cert, keyfile = device_files(tls, "lonely", pem(selfsigned), key_pem(key))
    d = device(tls, "lonely", cert, keyfile)
    try:
        assert connect_ok(d.connect())
    finally:
        d.stop()
    tiot.create_thing(thingName="lonely-thing")
    tiot.attach_thing_principal(thingName="lonely-thing", principal=reg["certificateArn"])
    tiot.update_certificate(certificateId=reg["certificateId"], newStatus="INACTIVE")
    with pytest.raises(tiot.exceptions.DeleteConflictException):
        tiot.delete_certificate(certificateId=reg["certificateId"], forceDelete=True)
    tiot.detach_thing_principal(thingName="lonely-thing", principal=reg["certificateArn"])
    with pytest.raises(tiot.exceptions.DeleteConflictException):
        tiot.delete_certificate(certificateId=reg["certificateId"])
    with pytest.raises(tiot.exceptions.DeleteConflictException):
        tiot.delete_policy(policyName="lonely")
    tiot.delete_certificate(certificateId=reg["certificateId"], forceDelete=True)
    tiot.delete_policy(policyName="lonely")


def test_thing_group_policies_are_inherited(tls, tiot):
    created = tiot.create_keys_and_certificate(setAsActive=True)
    base = BASE
    root = tiot.create_thing_group(thingGroupName="fleet")
    tiot.create_thing_group(thingGroupName="fleet-eu", parentGroupName="fleet")
    tiot.create_thing(thingName="grouped-1")
    tiot.add_thing_to_thing_group(thingGroupName="fleet-eu", thingName="grouped-1")
    tiot.attach_thing_principal(thingName="grouped-1", principal=created["certificateArn"])
    tiot.create_policy(policyName="connect-self", policyDocument=policy([{"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{base}:client/${{iot:Connection.Thing.ThingName}}"}]))
    tiot.attach_policy(policyName="connect-self", target=created["certificateArn"])
    fleet = policy(
        [
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Subscribe", "iot:Receive"], "Resource": "*"},
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{base}:topic/fleet/locked"},
        ]
    )
    tiot.create_policy(policyName="fleet-wide", policyDocument=fleet)
    tiot.attach_policy(policyName="fleet-wide", target=root["thingGroupArn"])

    eu_arn = tiot.describe_thing_group(thingGroupName="fleet-eu")["thingGroupArn"]
    assert tiot.list_attached_policies(target=eu_arn)["policies"] == []
    assert [p["policyName"] for p in tiot.list_attached_policies(target=eu_arn, recursive=True)["policies"]] == ["fleet-wide"]
    assert tiot.list_targets_for_policy(policyName="fleet-wide")["targets"] == [root["thingGroupArn"]]
    effective = tiot.get_effective_policies(principal=created["certificateArn"], thingName="grouped-1")["effectivePolicies"]
    assert sorted(p["policyName"] for p in effective) == ["connect-self", "fleet-wide"]
    assert [p["policyName"] for p in tiot.get_effective_policies(principal=created["certificateArn"])["effectivePolicies"]] == ["connect-self"]

    results = tiot.test_authorization(
        principal=created["certificateArn"],
        clientId="grouped-1",
        authInfos=[
            {"actionType": "CONNECT", "resources": [f"{base}:client/grouped-1"]},
            {"actionType": "PUBLISH", "resources": [f"{base}:topic/fleet/locked"]},
            {"actionType": "SUBSCRIBE", "resources": [f"{base}:topicfilter/fleet/#"]},
        ],
    )["authResults"]
    assert [r["authDecision"] for r in results] == ["ALLOWED", "EXPLICIT_DENY", "ALLOWED"]
    assert [p["policyName"] for p in results[0]["allowed"]["policies"]] == ["connect-self"]
    assert [p["policyName"] for p in results[1]["denied"]["explicitDeny"]["policies"]] == ["fleet-wide"]
    skipped = tiot.test_authorization(
        principal=created["certificateArn"],
        clientId="grouped-1",
        authInfos=[{"actionType": "CONNECT", "resources": [f"{base}:client/grouped-1"]}],
        policyNamesToSkip=["connect-self"],
    )["authResults"][0]
    assert skipped["authDecision"] == "IMPLICIT_DENY"

    cert, key = device_files(tls, "grouped-1", created["certificatePem"], created["keyPair"]["PrivateKey"])
    d = device(tls, "grouped-1", cert, key)
    try:
        assert connect_ok(d.connect())
        assert d.subscribe("fleet/#") == [1]
        assert not d.publish("fleet/open").is_failure
        assert d.publish("fleet/locked").value == NOT_AUTHORIZED
        # Removed from the group: the inherited rights go with it.
        tiot.remove_thing_from_thing_group(thingGroupName="fleet-eu", thingName="grouped-1")
        assert d.publish("fleet/open").value == NOT_AUTHORIZED
    finally:
        d.stop()
    metrics = urllib.request.urlopen(f"{tls.endpoint}/metrics", timeout=10).read().decode()
    # Counted by action only: no device identity in a label (bounded cardinality).
    assert "client_id=" not in metrics and created["certificateId"] not in metrics
    denied = [float(l.split()[-1]) for l in metrics.splitlines() if l.startswith('ferrite_authz_denied_total{action="publish"}')]
    assert denied and denied[0] >= 2, metrics


def test_the_local_policy_of_the_plain_listener():
    account = ACCOUNT
    doc = policy(
        [
            {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"arn:aws:iot:us-east-1:{account}:topic/locked/*"},
            {"Effect": "Deny", "Action": "iot:Connect", "Resource": f"arn:aws:iot:us-east-1:{account}:client/banned"},
        ]
    )
    f = Ferrite(extra_sets=[f"aws.account_id=\"{account}\"", f"mqtt.local_policy={doc}"])
    try:
        banned = Device(f.mqtt_port, "banned")
        try:
            assert not connect_ok(banned.connect())
        finally:
            banned.stop()
        d = Device(f.mqtt_port, "local-1")
        try:
            assert connect_ok(d.connect())
            assert d.subscribe("locked/#") == [1]
            assert not d.publish("open/x").is_failure
            assert d.publish("locked/x").value == NOT_AUTHORIZED
        finally:
            d.stop()
    finally:
        f.stop()
