#!/usr/bin/env python3
"""A custom authorizer function for tests/aws/test_custom_auth.py: reads AWS IoT's authorizer
event on stdin. The MQTT password "secret" (or the token "allow-token") authenticates; the
principal is the username before any "?". The policies allow connecting, publishing to and
receiving from allowed/*, subscribing to allowed/#; a username starting with "short" is
disconnected after 2 seconds. The answer's principalId carries no event, so the event itself is
echoed under "event" (ignored by Ferrite) for TestInvokeAuthorizer checks."""
import base64
import json
import sys

event = json.load(sys.stdin)
mqtt = event.get("protocolData", {}).get("mqtt", {})
password = base64.b64decode(mqtt["password"]).decode() if "password" in mqtt else None
username = mqtt.get("username", "tester").split("?", 1)[0]
ok = password == "secret" or event.get("token") == "allow-token"
ARN = "arn:aws:iot:*:*:"
policy = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": ARN + "client/*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": ARN + "topic/allowed/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": ARN + "topicfilter/allowed/#"},
    ],
}
answer = {
    "isAuthenticated": ok,
    "principalId": "".join(c for c in username if c.isalnum()) or "anonymous",
    "disconnectAfterInSeconds": 2 if username.startswith("short") else 3600,
    "refreshAfterInSeconds": 300,
    "policyDocuments": [json.dumps(policy)],
    "event": event,
}
json.dump(answer, sys.stdout)
