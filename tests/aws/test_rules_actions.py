"""Rule actions that leave the broker, end to end: the http action with AWS's topic rule
destination confirmation flow against a local HTTP receiver, retries and the errorAction; Ferrite
functions through boto3's `lambda` client (a command function from tests/aws/functions and a
webhook), the lambda rule action and aws_lambda(); `ferrite functions` on the command line."""
import json
import os
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, aws_error
from rules_helpers import FUNCTIONS_DIR, ROLE, Client, Receiver, republish, rule, start_ferrite

ENRICH = FUNCTIONS_DIR / "enrich.py"


@pytest.fixture(scope="module")
def server():
    f = start_ferrite()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def iot(server):
    return server.client("iot")


@pytest.fixture(scope="module")
def lam(server):
    return server.client("lambda")


def confirm_and_enable(iot, receiver, url_path):
    """Waits for the confirmation request, checks it as AWS documents it, confirms and enables."""
    req = receiver.next()
    assert req["path"] == url_path
    body = json.loads(req["body"])
    token = body["confirmationToken"]
    assert req["query"] == {"confirmationToken": token}
    assert req["headers"]["x-amz-rules-engine-message-type"] == "DestinationConfirmation"
    assert req["headers"]["x-amz-rules-engine-destination-arn"] == body["arn"]
    assert req["headers"]["content-type"] == "application/json"
    assert body["messageType"] == "DestinationConfirmation"
    assert body["enableUrl"].endswith(f"/confirmdestination/{token}")
    arn = body["arn"]
    assert ":ruledestination/http/" in arn
    assert iot.get_topic_rule_destination(arn=arn)["topicRuleDestination"]["status"] == "IN_PROGRESS"
    iot.confirm_topic_rule_destination(confirmationToken=token)
    assert iot.get_topic_rule_destination(arn=arn)["topicRuleDestination"]["status"] == "DISABLED"
    iot.update_topic_rule_destination(arn=arn, status="ENABLED")
    return arn


def test_destination_api_and_confirmation_flow(iot):
    receiver = Receiver()
    try:
        url = f"{receiver.url}/confirm-me"
        d = iot.create_topic_rule_destination(destinationConfiguration={"httpUrlConfiguration": {"confirmationUrl": url}})["topicRuleDestination"]
        assert d["status"] == "IN_PROGRESS"
        assert d["httpUrlProperties"] == {"confirmationUrl": url}
        arn = confirm_and_enable(iot, receiver, "/confirm-me")
        got = iot.get_topic_rule_destination(arn=arn)["topicRuleDestination"]
        assert got["status"] == "ENABLED" and got["lastUpdatedAt"] >= got["createdAt"]
        summaries = iot.list_topic_rule_destinations()["destinationSummaries"]
        mine = [s for s in summaries if s["arn"] == arn]
        assert mine and mine[0]["httpUrlSummary"] == {"confirmationUrl": url} and mine[0]["status"] == "ENABLED"
        with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
            iot.create_topic_rule_destination(destinationConfiguration={"httpUrlConfiguration": {"confirmationUrl": url}})
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.confirm_topic_rule_destination(confirmationToken="not-a-token")
        # IN_PROGRESS sends a new confirmation with a new token.
        iot.update_topic_rule_destination(arn=arn, status="IN_PROGRESS")
        again = json.loads(receiver.next()["body"])
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.update_topic_rule_destination(arn=arn, status="ENABLED")
        iot.confirm_topic_rule_destination(confirmationToken=again["confirmationToken"])
        iot.delete_topic_rule_destination(arn=arn)
        with pytest.raises(iot.exceptions.UnauthorizedException) as e:
            iot.get_topic_rule_destination(arn=arn)
        assert aws_error(e)[1] == 401
    finally:
        receiver.stop()


def test_http_action_posts_to_a_confirmed_destination_with_retries(server, iot):
    receiver = Receiver()
    try:
        base = f"{receiver.url}/ingest"
        action = {
            "http": {
                "url": base + "/${topic(2)}",
                "confirmationUrl": base,
                "headers": [{"key": "x-device", "value": "${topic(2)}"}, {"key": "x-static", "value": "yes"}],
            }
        }
        payload = rule("SELECT temp, topic(2) AS device FROM 'web/+'", [action], errorAction=republish("web-errors"))
        iot.create_topic_rule(ruleName="to_web", topicRulePayload=payload)
        # The rule's http action created the destination and sent the confirmation.
        arn = confirm_and_enable(iot, receiver, "/ingest")
        errors = Client(server.mqtt_port, "web-errors-app", ["web-errors"])
        dev = Client(server.mqtt_port, "web-dev")
        try:
            dev.publish("web/d7", {"temp": 21})
            req = receiver.next()
            assert req["path"] == "/ingest/d7"
            assert json.loads(req["body"]) == {"temp": 21, "device": "d7"}
            assert req["headers"]["x-device"] == "d7" and req["headers"]["x-static"] == "yes"
            assert req["headers"]["content-type"] == "application/json"
            # 500 then 429 then 200: three tries, one delivery, no error.
            receiver.statuses = [500, 429]
            dev.publish("web/d8", {"temp": 22})
            assert [receiver.next()["path"] for _ in range(3)] == ["/ingest/d8"] * 3
            errors.none()
            # Three failures: the error action reports the http action.
            receiver.statuses = [503, 503, 503]
            dev.publish("web/d9", {"temp": 23})
            e = json.loads(errors.next().payload)
            assert e["failures"][0]["failedAction"] == "HttpAction"
            assert e["failures"][0]["failedResource"] == f"{base}/d9"
            assert "503" in e["failures"][0]["errorMessage"]
            assert [receiver.next()["path"] for _ in range(3)] == ["/ingest/d9"] * 3
            # A disabled destination is not used.
            iot.update_topic_rule_destination(arn=arn, status="DISABLED")
            dev.publish("web/d10", {"temp": 24})
            assert "not confirmed and enabled" in json.loads(errors.next().payload)["failures"][0]["errorMessage"]
            receiver.none(wait=0.2)
        finally:
            errors.stop()
            dev.stop()
    finally:
        iot.delete_topic_rule(ruleName="to_web")
        receiver.stop()


def test_lambda_api_command_and_webhook_functions(lam, tmp_path):
    created = lam.create_function(FunctionName="enrich", Role=ROLE, Code={"ImageUri": f"file://{ENRICH}"}, PackageType="Image", Timeout=10, Description="adds up numbers")
    assert created["FunctionArn"].endswith(":function:enrich")
    assert created["Timeout"] == 10 and created["State"] == "Active"
    got = lam.get_function(FunctionName=created["FunctionArn"])
    assert got["Code"]["Location"] == f"file://{ENRICH}"
    assert "enrich" in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    out = lam.invoke(FunctionName="enrich", Payload=json.dumps({"a": 2, "b": 3}))
    assert out["StatusCode"] == 200 and "FunctionError" not in out
    result = json.loads(out["Payload"].read())
    assert result["event"] == {"a": 2, "b": 3} and result["sum"] == 5
    assert result["function"] == "enrich"
    assert set(result["env"]) <= {"PATH", "FERRITE_FUNCTION_NAME", "LC_CTYPE"}, result["env"]
    assert result["cwd"] == str(FUNCTIONS_DIR)
    failed = lam.invoke(FunctionName="enrich", Payload=json.dumps({"fail": True}))
    assert failed["FunctionError"] == "Unhandled"
    err = json.loads(failed["Payload"].read())
    assert err["errorType"] == "Runtime.ExitError" and "asked to fail" in err["errorMessage"]
    assert lam.invoke(FunctionName="enrich", InvocationType="DryRun")["StatusCode"] == 204
    assert lam.invoke(FunctionName="enrich", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202

    # The API can only name programs inside functions.allowed_command_dirs.
    outside = tmp_path / "evil.sh"
    outside.write_text("#!/bin/sh\necho '{}'\n")
    outside.chmod(0o755)
    for location in (f"file://{outside}", f"file://{FUNCTIONS_DIR}/../conftest.py", "/bin/sh"):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            lam.create_function(FunctionName="evil", Role=ROLE, Code={"ImageUri": location})
        assert "allowed_command_dirs" in aws_error(e)[2]
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_function(FunctionName="zip", Role=ROLE, Code={"ZipFile": b"PK"})
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_function(FunctionName="enrich", Role=ROLE, Code={"ImageUri": f"file://{ENRICH}"})

    receiver = Receiver(body=b'{"answer": 42}')
    try:
        lam.create_function(FunctionName="hook", Role=ROLE, Code={"ImageUri": f"{receiver.url}/fn"})
        out = lam.invoke(FunctionName="hook", Payload=b'{"q": 1}')
        assert json.loads(out["Payload"].read()) == {"answer": 42}
        req = receiver.next()
        assert req["path"] == "/fn" and json.loads(req["body"]) == {"q": 1}
        assert req["headers"]["x-ferrite-function"] == "hook"
    finally:
        receiver.stop()
        lam.delete_function(FunctionName="hook")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="hook", Payload=b"{}")


def test_lambda_action_and_aws_lambda_in_sql(server, iot, lam):
    try:
        lam.create_function(FunctionName="enrich_rule", Role=ROLE, Code={"ImageUri": f"file://{ENRICH}"})
    except lam.exceptions.ResourceConflictException:
        pass
    record = tempfile.NamedTemporaryFile(prefix="ferrite-rules-", suffix=".jsonl", delete=False).name
    arn = "arn:aws:lambda:us-east-1:123456789012:function:enrich_rule"
    sql = f"SELECT a, b, '{record}' AS record, aws_lambda('{arn}', {{'x': a, 'y': b}}).sum AS total FROM 'fn/+'"
    iot.create_topic_rule(ruleName="to_function", topicRulePayload=rule(sql, [{"lambda": {"functionArn": arn}}]))
    dev = Client(server.mqtt_port, "fn-dev")
    try:
        dev.publish("fn/1", {"a": 4, "b": 5})
        deadline = time.time() + 10
        while time.time() < deadline and not open(record).read().strip():
            time.sleep(0.05)
        event = json.loads(open(record).read().splitlines()[0])
        assert event == {"a": 4, "b": 5, "record": record, "total": 9}
    finally:
        dev.stop()
        iot.delete_topic_rule(ruleName="to_function")
        os.unlink(record)


def test_functions_cli(server):
    binary = os.environ.get("FERRITE_BIN", str(ROOT / "target" / "debug" / "ferrite"))
    data = ["--data-dir", str(server.dir), "--set", f'functions.allowed_command_dirs=["{FUNCTIONS_DIR}"]']
    # The same state store as the server (its PostgreSQL database, when it has one).
    for s in server.extra_sets:
        if s.startswith("store."):
            data += ["--set", s]

    def run(*args, check=True):
        out = subprocess.run([binary, "functions", *args, *data], capture_output=True, text=True, timeout=60)
        if check:
            assert out.returncode == 0, out.stderr
        return out

    arn = run("create", "cli_fn", "--command", str(ENRICH), "--timeout-secs", "5").stdout.strip()
    assert arn.endswith(":function:cli_fn")
    assert f"cli_fn\tcommand\tfile://{ENRICH}" in run("list").stdout
    result = json.loads(run("invoke", "cli_fn", "--payload", '{"n": 7}').stdout)
    assert result["sum"] == 7
    failed = run("invoke", "cli_fn", "--payload", '{"fail": true}', check=False)
    assert failed.returncode == 1 and "asked to fail" in failed.stdout
    assert "not inside functions.allowed_command_dirs" in run("create", "cli_bad", "--command", "/bin/sh", check=False).stderr
    # The running server sees the function the CLI created.
    lam = server.client("lambda")
    time.sleep(2.1)
    assert json.loads(lam.invoke(FunctionName="cli_fn", Payload=b'{"m": 1}')["Payload"].read())["sum"] == 1
    run("delete", "cli_fn")
    assert run("get", "cli_fn", check=False).returncode != 0
