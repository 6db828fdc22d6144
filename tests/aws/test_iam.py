"""IAM (issue "Core hardening", item 11): users with access keys and inline policies through
boto3's and the aws CLI's `iam`, every API call authorized by the caller's policies (explicit
deny wins, default deny, AccessDeniedException 403), `sts get-caller-identity`, and root's keys
keeping full access."""
import json
import time

import boto3
import pytest
from botocore.config import Config

from conftest import REGION, aws_error


def client(ferrite, service, key):
    return boto3.client(
        service,
        endpoint_url=ferrite.endpoint,
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )


def doc(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@pytest.fixture(scope="module")
def iam(ferrite):
    return ferrite.client("iam")


def test_users_keys_and_policies_crud(ferrite, iam):
    u = iam.create_user(UserName="crud-user")["User"]
    assert u["UserName"] == "crud-user" and u["Arn"].endswith(":user/crud-user") and u["UserId"].startswith("AIDA")
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName="crud-user")
    assert "crud-user" in [x["UserName"] for x in iam.list_users()["Users"]]
    assert iam.get_user(UserName="crud-user")["User"]["UserId"] == u["UserId"]
    key = iam.create_access_key(UserName="crud-user")["AccessKey"]
    assert key["Status"] == "Active" and key["SecretAccessKey"]
    listed = iam.list_access_keys(UserName="crud-user")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    policy = doc([{"Effect": "Allow", "Action": "iot:List*", "Resource": "*"}])
    iam.put_user_policy(UserName="crud-user", PolicyName="list", PolicyDocument=policy)
    assert iam.list_user_policies(UserName="crud-user")["PolicyNames"] == ["list"]
    got = iam.get_user_policy(UserName="crud-user", PolicyName="list")
    assert got["PolicyDocument"] == json.loads(policy)  # botocore decodes IAM's URL-encoded document
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_user_policy(UserName="crud-user", PolicyName="bad", PolicyDocument='{"Statement": "x"}')
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_user(UserName="crud-user")
    iam.delete_user_policy(UserName="crud-user", PolicyName="list")
    iam.delete_access_key(UserName="crud-user", AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName="crud-user")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="crud-user")
    # The aws CLI speaks the same protocol.
    out = ferrite.cli("iam", "create-user", "--user-name", "cli-user")
    assert out["User"]["UserName"] == "cli-user"
    assert "cli-user" in [x["UserName"] for x in ferrite.cli("iam", "list-users")["Users"]]
    ferrite.cli("iam", "delete-user", "--user-name", "cli-user")


def test_every_call_is_held_to_the_users_policies(ferrite, iam):
    root_iot = ferrite.client("iot")
    root_iot.create_thing(thingName="iam-allowed-1")
    root_iot.create_thing(thingName="iam-secret")
    iam.create_user(UserName="operator")
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    iam.put_user_policy(
        UserName="operator",
        PolicyName="fleet",
        PolicyDocument=doc(
            [
                {"Effect": "Allow", "Action": ["iot:ListThings", "iot:DescribeThing", "iot:Publish"], "Resource": "*"},
                {"Effect": "Deny", "Action": "iot:DescribeThing", "Resource": "arn:aws:iot:*:*:thing/iam-secret"},
                {"Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/locked/*"},
            ]
        ),
    )
    iot = client(ferrite, "iot", key)
    data = client(ferrite, "iot-data", key)
    names = [t["thingName"] for t in iot.list_things()["things"]]
    assert "iam-allowed-1" in names
    assert iot.describe_thing(thingName="iam-allowed-1")["thingName"] == "iam-allowed-1"
    with pytest.raises(iot.exceptions.ClientError) as e:
        iot.describe_thing(thingName="iam-secret")
    code, status, message = aws_error(e)
    assert (code, status) == ("AccessDeniedException", 403)
    assert message.endswith("is not authorized to perform: iot:DescribeThing on resource: arn:aws:iot:us-east-1:" + message.split("arn:aws:iot:us-east-1:")[1])
    assert ":user/operator" in message and "thing/iam-secret" in message
    with pytest.raises(iot.exceptions.ClientError) as e:
        iot.create_thing(thingName="not-allowed")
    assert aws_error(e)[:2] == ("AccessDeniedException", 403)
    data.publish(topic="open/t", qos=0, payload=b"x")
    with pytest.raises(data.exceptions.ClientError) as e:
        data.publish(topic="locked/t", qos=0, payload=b"x")
    assert aws_error(e)[:2] == ("AccessDeniedException", 403)
    # The user cannot manage IAM (no iam: actions), so cannot grant itself more.
    with pytest.raises(iam.exceptions.ClientError) as e:
        client(ferrite, "iam", key).put_user_policy(UserName="operator", PolicyName="all", PolicyDocument=doc([{"Effect": "Allow", "Action": "*", "Resource": "*"}]))
    assert aws_error(e)[:2] == ("AccessDenied", 403)
    # Root keeps full access.
    root_iot.delete_thing(thingName="iam-secret")
    # An Inactive key signs nothing.
    iam.update_access_key(UserName="operator", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    time.sleep(0.1)
    with pytest.raises(iot.exceptions.ClientError) as e:
        iot.list_things()
    assert aws_error(e)[:2] == ("UnrecognizedClientException", 403)


def test_get_caller_identity(ferrite, iam):
    me = ferrite.cli("sts", "get-caller-identity")
    assert me["Arn"].endswith(":root") and me["Account"] == me["Arn"].split(":")[4]
    iam.create_user(UserName="whoami")
    key = iam.create_access_key(UserName="whoami")["AccessKey"]
    ident = client(ferrite, "sts", key).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{me['Account']}:user/whoami"
    assert ident["Account"] == me["Account"]
