"""Thing groups (hierarchy, membership), billing groups and tags through boto3, with the errors
the AWS IoT API documents for each operation."""
import datetime
import re

import pytest

from conftest import aws_error

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_thing_group_hierarchy(iot):
    root = iot.create_thing_group(
        thingGroupName="reg-lights",
        thingGroupProperties={"thingGroupDescription": "all lights", "attributePayload": {"attributes": {"site": "lab"}}},
        tags=[{"Key": "env", "Value": "test"}],
    )
    assert re.match(r"^arn:aws:iot:us-east-1:\d{12}:thinggroup/reg-lights$", root["thingGroupArn"])
    assert UUID.match(root["thingGroupId"])
    child = iot.create_thing_group(thingGroupName="reg-red", parentGroupName="reg-lights")
    iot.create_thing_group(thingGroupName="reg-red-led", parentGroupName="reg-red")
    iot.create_thing_group(thingGroupName="reg-blue", parentGroupName="reg-lights")

    d = iot.describe_thing_group(thingGroupName="reg-red-led")
    assert d["version"] == 1 and d["status"] == "ACTIVE"
    meta = d["thingGroupMetadata"]
    assert meta["parentGroupName"] == "reg-red"
    assert meta["rootToParentThingGroups"] == [
        {"groupName": "reg-lights", "groupArn": root["thingGroupArn"]},
        {"groupName": "reg-red", "groupArn": child["thingGroupArn"]},
    ]
    assert isinstance(meta["creationDate"], datetime.datetime)
    d = iot.describe_thing_group(thingGroupName="reg-lights")
    assert d["thingGroupProperties"] == {"thingGroupDescription": "all lights", "attributePayload": {"attributes": {"site": "lab"}}}
    assert "parentGroupName" not in d["thingGroupMetadata"]

    # The same group again is fine; different properties are not.
    same = iot.create_thing_group(thingGroupName="reg-red", parentGroupName="reg-lights")
    assert same["thingGroupId"] == child["thingGroupId"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_thing_group(thingGroupName="reg-red", thingGroupProperties={"thingGroupDescription": "other"})
    assert e.value.response["resourceArn"] == child["thingGroupArn"]
    assert e.value.response["resourceId"] == child["thingGroupId"]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_group(thingGroupName="reg-orphan", parentGroupName="reg-no-such-group")

    def names(**kw):
        return [g["groupName"] for g in iot.list_thing_groups(**kw)["thingGroups"]]

    assert names(parentGroup="reg-lights") == ["reg-blue", "reg-red"]
    assert names(parentGroup="reg-lights", recursive=True) == ["reg-blue", "reg-red", "reg-red-led"]
    assert names(namePrefixFilter="reg-red") == ["reg-red", "reg-red-led"]
    assert names(parentGroup="reg-lights", namePrefixFilter="reg-b") == ["reg-blue"]
    assert "reg-lights" in names() and "reg-red-led" in names()
    assert "reg-red" not in names(recursive=False)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_groups(parentGroup="reg-no-such-group")

    # A group with child groups cannot be deleted.
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing_group(thingGroupName="reg-red")
    assert "child groups" in aws_error(e)[2]

    v = iot.update_thing_group(
        thingGroupName="reg-lights",
        thingGroupProperties={"thingGroupDescription": "every light", "attributePayload": {"attributes": {"owner": "ops"}, "merge": True}},
        expectedVersion=1,
    )
    assert v["version"] == 2
    props = iot.describe_thing_group(thingGroupName="reg-lights")["thingGroupProperties"]
    assert props == {"thingGroupDescription": "every light", "attributePayload": {"attributes": {"site": "lab", "owner": "ops"}}}
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_thing_group(thingGroupName="reg-lights", thingGroupProperties={"thingGroupDescription": "x"}, expectedVersion=1)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing_group(thingGroupName="reg-no-such-group", thingGroupProperties={"thingGroupDescription": "x"})
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName="reg-no-such-group")

    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_thing_group(thingGroupName="reg-blue", expectedVersion=9)
    iot.delete_thing_group(thingGroupName="reg-blue", expectedVersion=1)
    iot.delete_thing_group(thingGroupName="reg-blue")  # gone: still a success
    assert names(parentGroup="reg-lights") == ["reg-red"]


def test_a_deleted_groups_policy_attachments_go_with_it(iot):
    doc = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}'
    iot.create_policy(policyName="reg-group-policy", policyDocument=doc)
    arn = iot.create_thing_group(thingGroupName="reg-attached")["thingGroupArn"]
    iot.attach_policy(policyName="reg-group-policy", target=arn)
    assert iot.list_targets_for_policy(policyName="reg-group-policy")["targets"] == [arn]
    iot.delete_thing_group(thingGroupName="reg-attached")
    assert iot.list_targets_for_policy(policyName="reg-group-policy")["targets"] == []
    # A new group of the same name starts without them, and the policy can be deleted.
    assert iot.create_thing_group(thingGroupName="reg-attached")["thingGroupArn"] == arn
    assert iot.list_attached_policies(target=arn)["policies"] == []
    iot.delete_policy(policyName="reg-group-policy")
    iot.delete_thing_group(thingGroupName="reg-attached")


def test_hierarchy_is_at_most_seven_levels_deep(iot):
    parent = None
    for i in range(1, 8):
        kw = {"parentGroupName": parent} if parent else {}
        iot.create_thing_group(thingGroupName=f"reg-level-{i}", **kw)
        parent = f"reg-level-{i}"
    assert len(iot.describe_thing_group(thingGroupName="reg-level-7")["thingGroupMetadata"]["rootToParentThingGroups"]) == 6
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing_group(thingGroupName="reg-level-8", parentGroupName="reg-level-7")
    assert "7" in aws_error(e)[2]


def test_thing_group_membership(iot):
    a = iot.create_thing_group(thingGroupName="reg-m-a")
    iot.create_thing_group(thingGroupName="reg-m-b", parentGroupName="reg-m-a")
    iot.create_thing_group(thingGroupName="reg-m-c", parentGroupName="reg-m-b")
    iot.create_thing_group(thingGroupName="reg-m-other")
    things = {}
    for t in ["reg-m-1", "reg-m-2", "reg-m-3"]:
        things[t] = iot.create_thing(thingName=t)
    iot.add_thing_to_thing_group(thingGroupName="reg-m-a", thingName="reg-m-1")
    iot.add_thing_to_thing_group(thingGroupArn=iot.describe_thing_group(thingGroupName="reg-m-c")["thingGroupArn"], thingArn=things["reg-m-2"]["thingArn"])
    iot.add_thing_to_thing_group(thingGroupName="reg-m-a", thingName="reg-m-1", overrideDynamicGroups=True)  # again: fine
    iot.update_thing_groups_for_thing(thingName="reg-m-3", thingGroupsToAdd=["reg-m-b", "reg-m-other"])

    def members(group, **kw):
        return iot.list_things_in_thing_group(thingGroupName=group, **kw)["things"]

    assert members("reg-m-a") == ["reg-m-1"]
    assert members("reg-m-a", recursive=True) == ["reg-m-1", "reg-m-2", "reg-m-3"]
    assert members("reg-m-b", recursive=True) == ["reg-m-2", "reg-m-3"]
    pages = list(iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName="reg-m-a", recursive=True, PaginationConfig={"PageSize": 2}))
    assert [t for p in pages for t in p["things"]] == ["reg-m-1", "reg-m-2", "reg-m-3"]
    groups = iot.list_thing_groups_for_thing(thingName="reg-m-3")["thingGroups"]
    assert [g["groupName"] for g in groups] == ["reg-m-a", "reg-m-b", "reg-m-other"]
    assert groups[0]["groupArn"] == a["thingGroupArn"]

    # One group per hierarchy.
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.add_thing_to_thing_group(thingGroupName="reg-m-c", thingName="reg-m-1")
    assert "hierarchy" in aws_error(e)[2]
    # Moving within a hierarchy in one call works.
    iot.update_thing_groups_for_thing(thingName="reg-m-1", thingGroupsToAdd=["reg-m-c"], thingGroupsToRemove=["reg-m-a"])
    assert members("reg-m-c") == ["reg-m-1", "reg-m-2"]

    iot.remove_thing_from_thing_group(thingGroupName="reg-m-c", thingName="reg-m-2")
    iot.remove_thing_from_thing_group(thingGroupName="reg-m-c", thingName="reg-m-2")  # not in it: fine
    assert members("reg-m-c") == ["reg-m-1"]

    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_thing_group(thingGroupName="reg-m-a", thingName="reg-no-such-thing")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_thing_group(thingGroupName="reg-no-such-group", thingName="reg-m-1")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingName="reg-m-1")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingGroupName="reg-m-a", thingGroupArn=iot.describe_thing_group(thingGroupName="reg-m-other")["thingGroupArn"], thingName="reg-m-1")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing_groups_for_thing(thingName="reg-m-1", thingGroupsToAdd=["reg-no-such-group"])
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_things_in_thing_group(thingGroupName="reg-no-such-group")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_groups_for_thing(thingName="reg-no-such-thing")

    # Deleting a group or a thing ends its memberships.
    iot.delete_thing_group(thingGroupName="reg-m-other")
    assert [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="reg-m-3")["thingGroups"]] == ["reg-m-a", "reg-m-b"]
    iot.delete_thing(thingName="reg-m-3")
    assert members("reg-m-b") == []


def test_a_thing_is_in_at_most_ten_thing_groups(iot):
    iot.create_thing(thingName="reg-ten")
    for i in range(11):
        iot.create_thing_group(thingGroupName=f"reg-ten-{i:02}")
    for i in range(10):
        iot.add_thing_to_thing_group(thingGroupName=f"reg-ten-{i:02}", thingName="reg-ten")
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.add_thing_to_thing_group(thingGroupName="reg-ten-10", thingName="reg-ten")
    assert "10" in aws_error(e)[2]
    pages = list(iot.get_paginator("list_thing_groups_for_thing").paginate(thingName="reg-ten", PaginationConfig={"PageSize": 4}))
    assert len(pages) == 3
    assert [g["groupName"] for p in pages for g in p["thingGroups"]] == [f"reg-ten-{i:02}" for i in range(10)]


def test_billing_groups(iot):
    b = iot.create_billing_group(billingGroupName="reg-bill", billingGroupProperties={"billingGroupDescription": "cost center 1"}, tags=[{"Key": "cc", "Value": "1"}])
    assert b["billingGroupArn"].endswith(":billinggroup/reg-bill") and UUID.match(b["billingGroupId"])
    assert iot.create_billing_group(billingGroupName="reg-bill", billingGroupProperties={"billingGroupDescription": "cost center 1"})["billingGroupId"] == b["billingGroupId"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_billing_group(billingGroupName="reg-bill", billingGroupProperties={"billingGroupDescription": "other"})
    iot.create_billing_group(billingGroupName="reg-bill-2")
    d = iot.describe_billing_group(billingGroupName="reg-bill")
    assert d["version"] == 1 and d["billingGroupProperties"] == {"billingGroupDescription": "cost center 1"}
    assert isinstance(d["billingGroupMetadata"]["creationDate"], datetime.datetime)

    iot.create_thing(thingName="reg-billed", billingGroupName="reg-bill")
    assert iot.describe_thing(thingName="reg-billed")["billingGroupName"] == "reg-bill"
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing(thingName="reg-billed-x", billingGroupName="reg-no-such-bill")
    # A thing is in at most one billing group.
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.add_thing_to_billing_group(billingGroupName="reg-bill-2", thingName="reg-billed")
    assert "reg-bill" in aws_error(e)[2]
    iot.create_thing(thingName="reg-billed-2")
    iot.add_thing_to_billing_group(billingGroupArn=b["billingGroupArn"], thingName="reg-billed-2")
    assert iot.list_things_in_billing_group(billingGroupName="reg-bill")["things"] == ["reg-billed", "reg-billed-2"]
    pages = list(iot.get_paginator("list_things_in_billing_group").paginate(billingGroupName="reg-bill", PaginationConfig={"PageSize": 1}))
    assert [t for p in pages for t in p["things"]] == ["reg-billed", "reg-billed-2"]
    iot.remove_thing_from_billing_group(billingGroupName="reg-bill", thingName="reg-billed")
    assert "billingGroupName" not in iot.describe_thing(thingName="reg-billed")
    iot.add_thing_to_billing_group(billingGroupName="reg-bill-2", thingName="reg-billed")
    assert iot.describe_thing(thingName="reg-billed")["billingGroupName"] == "reg-bill-2"
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_billing_group(billingGroupName="reg-no-such-bill", thingName="reg-billed")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_billing_group(billingGroupName="reg-bill", thingName="reg-no-such-thing")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_billing_group(billingGroupName="reg-bill")

    assert iot.update_billing_group(billingGroupName="reg-bill", billingGroupProperties={"billingGroupDescription": "cc 2"}, expectedVersion=1)["version"] == 2
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_billing_group(billingGroupName="reg-bill", billingGroupProperties={}, expectedVersion=1)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_billing_group(billingGroupName="reg-no-such-bill", billingGroupProperties={})
    listed = iot.list_billing_groups(namePrefixFilter="reg-bill")["billingGroups"]
    assert listed == [{"groupName": "reg-bill", "groupArn": b["billingGroupArn"]}, {"groupName": "reg-bill-2", "groupArn": b["billingGroupArn"] + "-2"}]
    pages = list(iot.get_paginator("list_billing_groups").paginate(namePrefixFilter="reg-bill", PaginationConfig={"PageSize": 1}))
    assert len(pages) == 2

    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_billing_group(billingGroupName="reg-bill-2", expectedVersion=5)
    iot.delete_billing_group(billingGroupName="reg-bill-2")
    assert "billingGroupName" not in iot.describe_thing(thingName="reg-billed")
    iot.delete_billing_group(billingGroupName="reg-bill-2")  # gone: still a success
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_billing_group(billingGroupName="reg-bill-2")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_things_in_billing_group(billingGroupName="reg-bill-2")


def test_tags_on_groups_types_and_billing_groups(iot):
    arns = [
        iot.create_thing_group(thingGroupName="reg-tagged-group", tags=[{"Key": "a", "Value": "1"}])["thingGroupArn"],
        iot.create_thing_type(thingTypeName="reg-tagged-type", tags=[{"Key": "a", "Value": "1"}])["thingTypeArn"],
        iot.create_billing_group(billingGroupName="reg-tagged-bill", tags=[{"Key": "a", "Value": "1"}])["billingGroupArn"],
    ]
    for arn in arns:
        assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "a", "Value": "1"}]
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "2"}, {"Key": "Équipe b", "Value": ""}])
        tags = {t["Key"]: t["Value"] for t in iot.list_tags_for_resource(resourceArn=arn)["tags"]}
        assert tags == {"a": "2", "Équipe b": ""}
        iot.untag_resource(resourceArn=arn, tagKeys=["Équipe b", "never-set"])
        assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "a", "Value": "2"}]
    pages = list(iot.get_paginator("list_tags_for_resource").paginate(resourceArn=arns[0]))
    assert [t for p in pages for t in p["tags"]] == [{"Key": "a", "Value": "2"}]

    group = arns[0]
    with pytest.raises(iot.exceptions.LimitExceededException) as e:
        iot.tag_resource(resourceArn=group, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert aws_error(e)[:2] == ("LimitExceededException", 410)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.tag_resource(resourceArn=group, tags=[{"Key": "aws:reserved", "Value": "v"}])
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.tag_resource(resourceArn=group, tags=[{"Key": "bad*key", "Value": "v"}])
    # Not a taggable ARN, or not an ARN at all (rules are taggable: test_tags.py).
    thing_arn = iot.create_thing(thingName="reg-untaggable")["thingArn"]
    for bad in ["not-an-arn", thing_arn, group.replace(":thinggroup/", ":cert/")]:
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.list_tags_for_resource(resourceArn=bad)
    # A taggable kind of resource that does not exist.
    for missing in [group + "-missing", arns[1] + "-missing", arns[2] + "-missing"]:
        with pytest.raises(iot.exceptions.ResourceNotFoundException):
            iot.tag_resource(resourceArn=missing, tags=[{"Key": "a", "Value": "1"}])
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.untag_resource(resourceArn=group + "-missing", tagKeys=["a"])
    # Deleting a resource deletes its tags.
    iot.delete_thing_group(thingGroupName="reg-tagged-group")
    iot.create_thing_group(thingGroupName="reg-tagged-group")
    assert iot.list_tags_for_resource(resourceArn=group)["tags"] == []


def test_group_names_and_descriptions_are_validated(iot):
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing_group(thingGroupName="bad group")
    assert "thingGroupName" in aws_error(e)[2]
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing_group(thingGroupName="reg-desc", thingGroupProperties={"thingGroupDescription": "tab\there"})
    assert "thingGroupDescription" in aws_error(e)[2]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_group(thingGroupName="reg-desc", thingGroupProperties={"thingGroupDescription": "x" * 2029})
    many = {f"a{i}": "v" for i in range(51)}
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_group(thingGroupName="reg-desc", thingGroupProperties={"attributePayload": {"attributes": many}})
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_billing_group(billingGroupName="bad:name!")
