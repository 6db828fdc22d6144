"""The thing registry through boto3 and the aws CLI: things, thing types, thing principals,
DescribeEndpoint, name and attribute rules, pagination with boto3 paginators, and persistence
across a restart. Thing groups, billing groups and tags: test_registry_groups.py; registry
events over MQTT: test_registry_events.py."""
import datetime
import re

import pytest

from conftest import Ferrite, aws_error

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CERT = "arn:aws:iot:us-east-1:123456789012:cert/" + "ab" * 32


@pytest.fixture(scope="module")
def fast(request):
    """A Ferrite whose thing types can be deleted right after deprecation."""
    f = Ferrite(extra_sets=["registry.thing_type_delete_delay_secs=0"])
    request.addfinalizer(f.stop)
    return f


def test_create_describe_update_delete_thing(iot):
    created = iot.create_thing(thingName="reg-lamp", attributePayload={"attributes": {"wattage": "75", "model": "123"}})
    assert created["thingName"] == "reg-lamp"
    assert re.match(r"^arn:aws:iot:us-east-1:\d{12}:thing/reg-lamp$", created["thingArn"])
    assert UUID.match(created["thingId"])
    # The same configuration again succeeds and returns the same thing.
    again = iot.create_thing(thingName="reg-lamp", attributePayload={"attributes": {"model": "123", "wattage": "75"}})
    assert again["thingId"] == created["thingId"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_thing(thingName="reg-lamp", attributePayload={"attributes": {"wattage": "100"}})
    assert aws_error(e)[:2] == ("ResourceAlreadyExistsException", 409)
    assert e.value.response["resourceId"] == created["thingId"]
    assert e.value.response["resourceArn"] == created["thingArn"]

    d = iot.describe_thing(thingName="reg-lamp")
    assert d["defaultClientId"] == "reg-lamp"
    assert d["thingId"] == created["thingId"] and d["thingArn"] == created["thingArn"]
    assert d["attributes"] == {"wattage": "75", "model": "123"}
    assert d["version"] == 1
    assert "thingTypeName" not in d and "billingGroupName" not in d

    # Merge: an empty value removes an attribute.
    iot.update_thing(thingName="reg-lamp", attributePayload={"attributes": {"wattage": "150", "model": ""}, "merge": True}, expectedVersion=1)
    d = iot.describe_thing(thingName="reg-lamp")
    assert d["attributes"] == {"wattage": "150"} and d["version"] == 2
    with pytest.raises(iot.exceptions.VersionConflictException) as e:
        iot.update_thing(thingName="reg-lamp", attributePayload={"attributes": {"a": "b"}}, expectedVersion=1)
    assert aws_error(e)[:2] == ("VersionConflictException", 409)
    # Without merge the attributes are replaced.
    iot.update_thing(thingName="reg-lamp", attributePayload={"attributes": {"color": "red"}})
    d = iot.describe_thing(thingName="reg-lamp")
    assert d["attributes"] == {"color": "red"} and d["version"] == 3
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing(thingName="reg-no-such-thing", attributePayload={"attributes": {"a": "b"}})

    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_thing(thingName="reg-lamp", expectedVersion=1)
    iot.delete_thing(thingName="reg-lamp", expectedVersion=3)
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.describe_thing(thingName="reg-lamp")
    assert aws_error(e)[:2] == ("ResourceNotFoundException", 404)
    # Deleting a thing that does not exist succeeds, as in AWS.
    iot.delete_thing(thingName="reg-lamp")


def test_thing_types_deprecation_and_association(iot):
    props = {"thingTypeDescription": "light bulb type", "searchableAttributes": ["wattage", "model"]}
    t = iot.create_thing_type(thingTypeName="reg-bulb", thingTypeProperties=props, tags=[{"Key": "team", "Value": "lights"}])
    assert t["thingTypeArn"].endswith(":thingtype/reg-bulb") and UUID.match(t["thingTypeId"])
    assert iot.create_thing_type(thingTypeName="reg-bulb", thingTypeProperties=props)["thingTypeId"] == t["thingTypeId"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_thing_type(thingTypeName="reg-bulb", thingTypeProperties={"thingTypeDescription": "other"})
    assert e.value.response["resourceArn"] == t["thingTypeArn"]
    d = iot.describe_thing_type(thingTypeName="reg-bulb")
    assert d["thingTypeProperties"] == props
    assert d["thingTypeMetadata"]["deprecated"] is False
    assert isinstance(d["thingTypeMetadata"]["creationDate"], datetime.datetime)
    assert "deprecationDate" not in d["thingTypeMetadata"]
    listed = iot.list_thing_types(thingTypeName="reg-bulb")["thingTypes"]
    assert [x["thingTypeName"] for x in listed] == ["reg-bulb"]
    assert listed[0]["thingTypeArn"] == t["thingTypeArn"]

    iot.create_thing(thingName="reg-bulb-1", thingTypeName="reg-bulb", attributePayload={"attributes": {"wattage": "75"}})
    assert iot.describe_thing(thingName="reg-bulb-1")["thingTypeName"] == "reg-bulb"
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing(thingName="reg-bulb-x", thingTypeName="reg-no-such-type")

    iot.deprecate_thing_type(thingTypeName="reg-bulb")
    meta = iot.describe_thing_type(thingTypeName="reg-bulb")["thingTypeMetadata"]
    assert meta["deprecated"] is True and isinstance(meta["deprecationDate"], datetime.datetime)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing(thingName="reg-bulb-2", thingTypeName="reg-bulb")
    iot.create_thing(thingName="reg-bulb-3")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName="reg-bulb-3", thingTypeName="reg-bulb")
    # Existing things keep their (deprecated) type.
    assert iot.describe_thing(thingName="reg-bulb-1")["thingTypeName"] == "reg-bulb"
    # AWS waits five minutes after deprecation before a delete (the default here too).
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing_type(thingTypeName="reg-bulb")
    assert "300" in aws_error(e)[2]

    iot.deprecate_thing_type(thingTypeName="reg-bulb", undoDeprecate=True)
    assert iot.describe_thing_type(thingTypeName="reg-bulb")["thingTypeMetadata"]["deprecated"] is False
    iot.update_thing(thingName="reg-bulb-3", thingTypeName="reg-bulb")
    iot.update_thing(thingName="reg-bulb-3", removeThingType=True)
    assert "thingTypeName" not in iot.describe_thing(thingName="reg-bulb-3")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName="reg-bulb-3", thingTypeName="reg-bulb", removeThingType=True)

    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing_type(thingTypeName="reg-four", thingTypeProperties={"searchableAttributes": ["a", "b", "c", "d"]})
    assert "searchable" in aws_error(e)[2]
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName="reg-no-such-type")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.deprecate_thing_type(thingTypeName="reg-no-such-type")


def test_update_thing_type_changes_only_the_mqtt5_configuration(iot):
    iot.create_thing_type(thingTypeName="reg-mqtt5", thingTypeProperties={"thingTypeDescription": "d"})
    mqtt5 = {"propagatingAttributes": [{"userPropertyKey": "iot:ClientId", "connectionAttribute": "iot:ClientId"}, {"userPropertyKey": "serial", "thingAttribute": "sn"}]}
    iot.update_thing_type(thingTypeName="reg-mqtt5", thingTypeProperties={"mqtt5Configuration": mqtt5})
    d = iot.describe_thing_type(thingTypeName="reg-mqtt5")
    assert d["thingTypeProperties"]["mqtt5Configuration"] == mqtt5
    assert d["thingTypeProperties"]["thingTypeDescription"] == "d"
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing_type(thingTypeName="reg-mqtt5", thingTypeProperties={"thingTypeDescription": "changed"})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing_type(thingTypeName="reg-no-such-type", thingTypeProperties={"mqtt5Configuration": mqtt5})


def test_delete_thing_type_only_after_deprecation_and_without_things(fast):
    iot = fast.client("iot")
    iot.create_thing_type(thingTypeName="sensor")
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing_type(thingTypeName="sensor")
    assert "deprecate" in aws_error(e)[2]
    iot.create_thing(thingName="s1", thingTypeName="sensor")
    iot.deprecate_thing_type(thingTypeName="sensor")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing_type(thingTypeName="sensor")
    iot.update_thing(thingName="s1", removeThingType=True)
    iot.delete_thing_type(thingTypeName="sensor")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName="sensor")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_thing_type(thingTypeName="sensor")


def test_list_things_filters(fast):
    iot = fast.client("iot")
    iot.create_thing_type(thingTypeName="lamp", thingTypeProperties={"searchableAttributes": ["wattage"]})
    iot.create_thing(thingName="lamp-1", thingTypeName="lamp", attributePayload={"attributes": {"wattage": "75", "color": "red"}})
    iot.create_thing(thingName="lamp-2", thingTypeName="lamp", attributePayload={"attributes": {"wattage": "750"}})
    iot.create_thing(thingName="plain-1", attributePayload={"attributes": {"wattage": "75", "color": "red"}})

    def names(**kw):
        return [t["thingName"] for t in iot.list_things(**kw)["things"]]

    assert names(thingTypeName="lamp") == ["lamp-1", "lamp-2"]
    assert names(attributeName="wattage", attributeValue="75") == ["lamp-1", "plain-1"]
    assert names(attributeName="wattage", attributeValue="75", usePrefixAttributeValue=True) == ["lamp-1", "lamp-2", "plain-1"]
    assert names(attributeName="wattage", attributeValue="75", thingTypeName="lamp") == ["lamp-1"]
    # Only searchable attributes are searched: "color" is not one for lamps.
    assert names(attributeName="color", attributeValue="red") == ["plain-1"]
    item = next(t for t in iot.list_things(thingTypeName="lamp")["things"] if t["thingName"] == "lamp-1")
    assert item["thingTypeName"] == "lamp" and item["version"] == 1 and item["thingArn"].endswith(":thing/lamp-1")
    assert item["attributes"] == {"wattage": "75", "color": "red"}


def test_list_things_paginates(iot):
    for i in range(12):
        iot.create_thing(thingName=f"reg-page-{i:02}")
    pages = list(iot.get_paginator("list_things").paginate(PaginationConfig={"PageSize": 5}))
    assert len(pages) >= 3
    assert all(len(p["things"]) <= 5 for p in pages)
    names = [t["thingName"] for p in pages for t in p["things"]]
    assert len(names) == len(set(names))
    assert [n for n in names if n.startswith("reg-page-")] == [f"reg-page-{i:02}" for i in range(12)]
    first = iot.list_things(maxResults=2)
    assert len(first["things"]) == 2 and first["nextToken"]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_things(maxResults=251)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_things(nextToken="not-a-token")


@pytest.mark.parametrize(
    "name, fragment",
    [("bad name", "'bad name'"), ("a" * 129, "128"), ("ünïcode", "[a-zA-Z0-9:_-]+"), ("slash%2Fname", "[a-zA-Z0-9:_-]+")],
)
def test_bad_thing_names_are_refused_naming_the_value(iot, name, fragment):
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing(thingName=name)
    code, status, message = aws_error(e)
    assert (code, status) == ("InvalidRequestException", 400)
    assert fragment in message and "thingName" in message


def test_attribute_rules(iot):
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing(thingName="reg-attr", attributePayload={"attributes": {"bad name": "v"}})
    assert "bad name" in aws_error(e)[2]
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing(thingName="reg-attr", attributePayload={"attributes": {"k": "no spaces allowed"}})
    assert "no spaces allowed" in aws_error(e)[2]
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing(thingName="reg-attr", attributePayload={"attributes": {"k": "v" * 801}})
    assert "800" in aws_error(e)[2]
    # A thing without a thing type has at most three attributes.
    four = {f"a{i}": "v" for i in range(4)}
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing(thingName="reg-attr", attributePayload={"attributes": four})
    assert "3" in aws_error(e)[2]
    iot.create_thing(thingName="reg-attr", attributePayload={"attributes": {"serial/no": "AB-12:34#x@y,z.[0]=1"}})


def test_thing_principals(iot):
    for t in ["reg-p1", "reg-p2", "reg-p3"]:
        iot.create_thing(thingName=t)
        iot.attach_thing_principal(thingName=t, principal=CERT)
    iot.attach_thing_principal(thingName="reg-p1", principal=CERT)  # again: fine
    assert iot.list_thing_principals(thingName="reg-p1")["principals"] == [CERT]
    pages = list(iot.get_paginator("list_principal_things").paginate(principal=CERT, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 2
    assert [t for p in pages for t in p["things"]] == ["reg-p1", "reg-p2", "reg-p3"]
    v2 = iot.list_thing_principals_v2(thingName="reg-p2")["thingPrincipalObjects"]
    assert v2 == [{"principal": CERT, "thingPrincipalType": "NON_EXCLUSIVE_THING"}]
    objs = iot.list_principal_things_v2(principal=CERT)["principalThingObjects"]
    assert [o["thingName"] for o in objs] == ["reg-p1", "reg-p2", "reg-p3"]

    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing(thingName="reg-p1")
    assert "still attached" in aws_error(e)[2]
    iot.detach_thing_principal(thingName="reg-p1", principal=CERT)
    assert iot.list_thing_principals(thingName="reg-p1")["principals"] == []
    iot.delete_thing(thingName="reg-p1")
    assert iot.list_principal_things(principal=CERT)["things"] == ["reg-p2", "reg-p3"]

    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(thingName="reg-no-such-thing", principal=CERT)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_principals(thingName="reg-no-such-thing")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.detach_thing_principal(thingName="reg-no-such-thing", principal=CERT)

    # An exclusive attachment admits no other thing.
    other = "arn:aws:iot:us-east-1:123456789012:cert/" + "cd" * 32
    iot.create_thing(thingName="reg-px")
    iot.attach_thing_principal(thingName="reg-px", principal=other, thingPrincipalType="EXCLUSIVE_THING")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.attach_thing_principal(thingName="reg-p2", principal=other)
    assert iot.list_thing_principals_v2(thingName="reg-px")["thingPrincipalObjects"][0]["thingPrincipalType"] == "EXCLUSIVE_THING"


def test_describe_endpoint(iot):
    for t in ["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"]:
        assert iot.describe_endpoint(endpointType=t)["endpointAddress"] == "localhost"
    assert iot.describe_endpoint()["endpointAddress"] == "localhost"
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.describe_endpoint(endpointType="iot:Nope")
    assert "iot:Nope" in aws_error(e)[2]


def test_describe_endpoint_uses_the_configured_host():
    f = Ferrite(extra_sets=["aws.endpoint_host=iot.example.com"])
    try:
        assert f.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == "iot.example.com"
    finally:
        f.stop()


def test_aws_cli(ferrite):
    out = ferrite.cli("iot", "create-thing", "--thing-name", "reg-cli-1", "--attribute-payload", '{"attributes": {"wattage": "75"}}')
    assert out["thingName"] == "reg-cli-1"
    listed = ferrite.cli("iot", "list-things", "--attribute-name", "wattage", "--attribute-value", "75")
    assert "reg-cli-1" in [t["thingName"] for t in listed["things"]]
    assert "reg-cli-1" in [t["thingName"] for t in ferrite.cli("iot", "list-things")["things"]]
    d = ferrite.cli("iot", "describe-thing", "--thing-name", "reg-cli-1")
    assert d["attributes"] == {"wattage": "75"} and d["version"] == 1
    ferrite.cli("iot", "update-thing", "--thing-name", "reg-cli-1", "--attribute-payload", '{"attributes": {"wattage": "150"}}')
    assert ferrite.cli("iot", "describe-thing", "--thing-name", "reg-cli-1")["version"] == 2
    ferrite.cli("iot", "create-thing-type", "--thing-type-name", "reg-cli-type", "--thing-type-properties", "thingTypeDescription=light bulb type, searchableAttributes=wattage,model")
    t = ferrite.cli("iot", "describe-thing-type", "--thing-type-name", "reg-cli-type")
    assert t["thingTypeProperties"]["searchableAttributes"] == ["wattage", "model"]
    assert ferrite.cli("iot", "describe-endpoint", "--endpoint-type", "iot:Data-ATS")["endpointAddress"] == "localhost"
    failed = ferrite.cli("iot", "describe-thing", "--thing-name", "reg-cli-none", check=False)
    assert failed.returncode != 0 and "ResourceNotFoundException" in failed.stderr
    ferrite.cli("iot", "delete-thing", "--thing-name", "reg-cli-1")


def test_registry_survives_a_restart():
    f = Ferrite()
    try:
        iot = f.client("iot")
        iot.create_thing_type(thingTypeName="kept-type", thingTypeProperties={"searchableAttributes": ["a"]}, tags=[{"Key": "k", "Value": "v"}])
        iot.deprecate_thing_type(thingTypeName="kept-type")
        iot.deprecate_thing_type(thingTypeName="kept-type", undoDeprecate=True)
        iot.create_thing_group(thingGroupName="kept-root", thingGroupProperties={"thingGroupDescription": "root"})
        iot.create_thing_group(thingGroupName="kept-child", parentGroupName="kept-root")
        iot.create_billing_group(billingGroupName="kept-bill", tags=[{"Key": "cost", "Value": "center-1"}])
        iot.create_thing(thingName="kept", thingTypeName="kept-type", attributePayload={"attributes": {"a": "1"}}, billingGroupName="kept-bill")
        iot.update_thing(thingName="kept", attributePayload={"attributes": {"b": "2"}, "merge": True})
        iot.add_thing_to_thing_group(thingGroupName="kept-child", thingName="kept")
        iot.attach_thing_principal(thingName="kept", principal=CERT)
        iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": True}})

        def snapshot(c):
            calls = [
                c.describe_thing(thingName="kept"),
                c.describe_thing_type(thingTypeName="kept-type"),
                c.describe_thing_group(thingGroupName="kept-child"),
                c.describe_billing_group(billingGroupName="kept-bill"),
                c.list_things_in_thing_group(thingGroupName="kept-root", recursive=True),
                c.list_thing_groups_for_thing(thingName="kept"),
                c.list_things_in_billing_group(billingGroupName="kept-bill"),
                c.list_thing_principals(thingName="kept"),
                c.list_principal_things(principal=CERT),
                c.list_tags_for_resource(resourceArn=c.describe_billing_group(billingGroupName="kept-bill")["billingGroupArn"]),
                c.describe_event_configurations(),
            ]
            for r in calls:
                r.pop("ResponseMetadata")
            return calls

        before = snapshot(iot)
        assert before[0]["version"] == 2 and before[0]["billingGroupName"] == "kept-bill"
        f.restart()
        assert snapshot(f.client("iot")) == before
    finally:
        f.stop()
