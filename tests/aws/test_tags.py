"""Tags by ARN across resource types and the services that keep them: TagResource,
UntagResource and ListTagsForResource on thing groups (registry), policies and authorizers
(authz) and topic rules (rules engine), through boto3 and the aws CLI, with AWS's errors."""
import json

import pytest

from conftest import aws_error

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})


def tags_of(iot, arn):
    return {t["Key"]: t["Value"] for t in iot.list_tags_for_resource(resourceArn=arn)["tags"]}


def test_every_taggable_resource_is_tagged_by_arn(iot, ferrite):
    group = iot.create_thing_group(thingGroupName="tags-group", tags=[{"Key": "made", "Value": "at-create"}])["thingGroupArn"]
    policy = iot.create_policy(policyName="tags-policy", policyDocument=POLICY, tags=[{"Key": "made", "Value": "at-create"}])["policyArn"]
    authorizer = iot.create_authorizer(
        authorizerName="tags-authorizer",
        authorizerFunctionArn="arn:aws:lambda:us-east-1:123456789012:function:none",
        signingDisabled=True,
        tags=[{"Key": "made", "Value": "at-create"}],
    )["authorizerArn"]
    iot.create_topic_rule(
        ruleName="tags_rule",
        topicRulePayload={"sql": "SELECT * FROM 'tags/in'", "actions": [{"republish": {"roleArn": "arn:aws:iam::123456789012:role/r", "topic": "tags/out"}}]},
        tags="made=at-create",
    )
    rule = iot.get_topic_rule(ruleName="tags_rule")["ruleArn"]
    for arn in (group, policy, authorizer, rule):
        assert tags_of(iot, arn) == {"made": "at-create"}, arn
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "env", "Value": "prod"}, {"Key": "made", "Value": "later"}])
        assert tags_of(iot, arn) == {"made": "later", "env": "prod"}, arn
        iot.untag_resource(resourceArn=arn, tagKeys=["made", "absent"])
        assert tags_of(iot, arn) == {"env": "prod"}, arn
        # 50 tags at most, per resource.
        with pytest.raises(iot.exceptions.LimitExceededException):
            iot.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.tag_resource(resourceArn=arn, tags=[{"Key": "aws:reserved", "Value": "v"}])
    # The aws CLI reads the same tags.
    out = ferrite.cli("iot", "list-tags-for-resource", "--resource-arn", policy)
    assert out["tags"] == [{"Key": "env", "Value": "prod"}]
    # A rule's tags survive its replacement.
    iot.replace_topic_rule(ruleName="tags_rule", topicRulePayload={"sql": "SELECT * FROM 'tags/other'", "actions": []})
    assert tags_of(iot, rule) == {"env": "prod"}


def test_missing_and_untaggable_resources_are_refused(iot):
    for arn in (
        "arn:aws:iot:us-east-1:123456789012:policy/tags-none",
        "arn:aws:iot:us-east-1:123456789012:rule/tags_none",
        "arn:aws:iot:us-east-1:123456789012:thinggroup/tags-none",
        "arn:aws:iot:us-east-1:123456789012:authorizer/tags-none",
    ):
        with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
            iot.list_tags_for_resource(resourceArn=arn)
        assert aws_error(e)[1] == 404 and arn in aws_error(e)[2]
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.tag_resource(resourceArn="arn:aws:iot:us-east-1:123456789012:thing/x", tags=[{"Key": "k", "Value": "v"}])
    assert "Things cannot be tagged" in aws_error(e)[2]
    for arn in ("not-an-arn", "arn:aws:lambda:us-east-1:123456789012:policy/tags-none"):
        with pytest.raises(iot.exceptions.InvalidRequestException) as e:
            iot.list_tags_for_resource(resourceArn=arn)
        assert aws_error(e)[1] == 400


def test_tags_given_at_creation_follow_the_same_rules(iot):
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_authorizer(
            authorizerName="tags-bad-authorizer",
            authorizerFunctionArn="arn:aws:lambda:us-east-1:123456789012:function:none",
            signingDisabled=True,
            tags=[{"Key": "aws:reserved", "Value": "v"}],
        )
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_authorizer(authorizerName="tags-bad-authorizer")


def test_functions_are_tagged_by_arn_as_lambda_does(ferrite):
    lam = ferrite.client("lambda")
    arn = lam.create_function(
        FunctionName="tags-fn", Role="arn:aws:iam::123456789012:role/r", Code={"ImageUri": "http://127.0.0.1:9/fn"}, Tags={"made": "at-create"}
    )["FunctionArn"]
    try:
        lam.tag_resource(Resource=arn, Tags={"env": "prod", "team": "a"})
        lam.untag_resource(Resource=arn, TagKeys=["team", "absent"])
        assert lam.list_tags(Resource=arn)["Tags"] == {"made": "at-create", "env": "prod"}
        assert lam.get_function(FunctionName="tags-fn")["Tags"] == {"made": "at-create", "env": "prod"}
        for bad in ({"aws:reserved": "v"}, {f"k{i}": "v" for i in range(50)}):
            with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
                lam.tag_resource(Resource=arn, Tags=bad)
            assert aws_error(e)[1] == 400
        assert len(lam.list_tags(Resource=arn)["Tags"]) == 2
        with pytest.raises(lam.exceptions.InvalidParameterValueException):
            lam.create_function(FunctionName="tags-fn2", Role="arn:aws:iam::123456789012:role/r", Code={"ImageUri": "http://127.0.0.1:9/fn"}, Tags={"aws:x": "v"})
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.list_tags(Resource=arn.replace("tags-fn", "tags-none"))
        # A malformed page marker is Lambda's own validation error, not another service's.
        with pytest.raises(lam.exceptions.InvalidParameterValueException):
            lam.list_functions(Marker="not a marker")
    finally:
        lam.delete_function(FunctionName="tags-fn")
