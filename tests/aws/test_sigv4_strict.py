"""SigV4 as strict as AWS (issue "Core hardening", items 12 and 19): presigned URLs live at most a
week and never start in the future, the credential scope names Ferrite's region, `host` is
signed, the header form signs the body, and the clock window is AWS's 5 minutes with AWS's
messages. Signed by botocore itself, with the clock or the parameters bent."""
import datetime
import urllib.error
import urllib.request

import botocore.auth
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import REGION


def shifted(monkeypatch, delta):
    """botocore signs as if its clock were `delta` away from ours."""
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: real() + delta)


def refused(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    err = e.value.response["Error"]
    return err["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"], err["Message"]


def http_error(url, data=None, headers=None, method=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    return e.value.code, e.value.headers["x-amzn-ErrorType"], e.value.read().decode()


def presigned(ferrite, expires, delta=datetime.timedelta(0)):
    creds = Credentials(ferrite.key_id, ferrite.secret)
    req = AWSRequest(method="GET", url=f"{ferrite.endpoint}/retainedMessage")
    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: real() + delta
    try:
        botocore.auth.SigV4QueryAuth(creds, "iotdata", REGION, expires=expires).add_auth(req)
    finally:
        botocore.auth.get_current_datetime = real
    return req.url


def test_presigned_urls_live_at_most_a_week(ferrite):
    with urllib.request.urlopen(presigned(ferrite, 604800), timeout=10) as r:
        assert r.status == 200
    for expires in [604801, 10**12, -5, 0]:
        status, kind, body = http_error(presigned(ferrite, expires))
        assert (status, kind) == (403, "IncompleteSignatureException"), (expires, body)
        assert "X-Amz-Expires" in body


def test_presigned_urls_cannot_be_dated_in_the_future(ferrite):
    status, kind, body = http_error(presigned(ferrite, 900, datetime.timedelta(days=365)))
    assert (status, kind) == (403, "InvalidSignatureException"), body
    assert "Signature not yet current" in body


def test_the_credential_scope_must_name_our_region(ferrite):
    import boto3
    from botocore.config import Config

    wrong = boto3.client(
        "iot-data",
        endpoint_url=ferrite.endpoint,
        region_name="eu-west-1",
        aws_access_key_id=ferrite.key_id,
        aws_secret_access_key=ferrite.secret,
        config=Config(retries={"max_attempts": 1}),
    )
    code, status, message = refused(lambda: wrong.list_retained_messages())
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message == "Credential should be scoped to a valid region, not 'eu-west-1'."


def signed_headers(ferrite, body=b"", sign_host=True, unsigned_payload=False):
    creds = Credentials(ferrite.key_id, ferrite.secret)
    req = AWSRequest(method="POST", url=f"{ferrite.endpoint}/topics/strict-t?qos=0", data=body)
    if unsigned_payload:
        req.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
        req.context["payload_signing_enabled"] = False

    class Auth(botocore.auth.SigV4Auth):
        def headers_to_sign(self, request):
            h = super().headers_to_sign(request)
            if not sign_host:
                del h["host"]
            return h

        def payload(self, request):
            return "UNSIGNED-PAYLOAD" if unsigned_payload else super().payload(request)

    Auth(creds, "iotdata", REGION).add_auth(req)
    return req.url, dict(req.headers.items())


def test_host_must_be_signed(ferrite):
    url, headers = signed_headers(ferrite, sign_host=False)
    status, kind, body = http_error(url, data=b"", headers=headers, method="POST")
    assert (status, kind) == (403, "IncompleteSignatureException"), body
    assert "'Host' must be a 'SignedHeader'" in body
    url, headers = signed_headers(ferrite)
    with urllib.request.urlopen(urllib.request.Request(url, data=b"", headers=headers, method="POST"), timeout=10) as r:
        assert r.status == 200


def test_the_header_form_signs_the_payload(ferrite):
    url, headers = signed_headers(ferrite, body=b"hello", unsigned_payload=True)
    status, kind, body = http_error(url, data=b"tampered", headers=headers, method="POST")
    assert (status, kind) == (403, "InvalidSignatureException"), body


@pytest.mark.parametrize("minutes", [6, -6])
def test_the_clock_window_is_five_minutes(ferrite, monkeypatch, minutes):
    shifted(monkeypatch, datetime.timedelta(minutes=minutes))
    code, status, message = refused(lambda: ferrite.client("iot-data").list_retained_messages())
    assert (code, status) == ("InvalidSignatureException", 403)
    if minutes > 0:
        assert message.startswith("Signature not yet current: ") and message.endswith(" + 5 min.)"), message
    else:
        assert message.startswith("Signature expired: ") and message.endswith(" - 5 min.)"), message


def test_four_minutes_of_skew_are_fine(ferrite, monkeypatch):
    shifted(monkeypatch, datetime.timedelta(minutes=-4))
    ferrite.client("iot-data").list_retained_messages()
