"""Every operation of every vendored model, called with boto3 on a minimal valid input built
from the model, gets either a real answer (a success, or one of the operation's own modeled
errors) or the uniform 501 NotImplementedException — never a route miss, a 5xx, or a
validation error for input the model allows. The operations table (docs/operations.md) is
what this run saw: the test fails when the checked-in one differs
(WRITE_OPERATIONS_TABLE=1 rewrites it)."""

import datetime
import gzip
import re._parser as sre
import json
import os
import subprocess
from pathlib import Path

import botocore.session
import pytest
import regex
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REGION, Ferrite

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
TABLE = ROOT / "docs" / "operations.md"

# Strings tried, in order, for a string member: the first that fits its length and pattern.
CANDIDATES = [
    "a1",
    "abc",
    "a",
    "1",
    "A1",
    "arn:aws:iot:us-east-1:123456789012:thing/a1",
    "00000000-0000-0000-0000-000000000001",
    "0" * 64,
    "a1.b1",
    "us-east-1",
    "123456789012",
    "user@example.com",
    "2026-01-01T00:00:00Z",
    "https://example.com",
    "/a1",
    "$a1",
    "a1/b1",
    "a1:b1",
    "aws:a1",
    "AKIAIOSFODNN7EXAMPLE",
    "arn:aws:iam::123456789012:role/a1",
    "arn:aws:lambda:us-east-1:123456789012:function:a1",
    "arn:aws:iotevents:us-east-1:123456789012:input/a1",
    "sha256:" + "0" * 64,
    "1.0.0",
    "externalId:a1",
]

# Unsigned in AWS (botocore does not sign them); Ferrite refuses unsigned requests.
UNSIGNED = {("sts", "AssumeRoleWithSAML"), ("sts", "AssumeRoleWithWebIdentity")}


def model_names():
    return sorted(p.name for p in MODELS.iterdir() if p.is_dir())


def session():
    """A botocore session reading the vendored models (iot1click is not in botocore today)."""
    s = botocore.session.get_session()
    s.get_component("data_loader").search_paths.insert(0, str(MODELS))
    return s


def fits(pattern, value):
    if pattern is None:
        return True
    try:
        return regex.fullmatch(pattern, value) is not None
    except regex.error:
        return True


PROPERTY = regex.compile(r"\\[pP]\{[^}]*\}")


def example(pattern, k):
    """A string the pattern (Java syntax) matches, from its parse tree: first branches, first
    characters of classes, each repetition `max(min, k)` times within its bounds; None when it
    cannot be made."""
    # Unicode properties (\p{L}, \p{Graph}) as a letter: sre does not parse them.
    simplified = PROPERTY.sub("a", pattern)
    try:
        tree = sre.parse(simplified)
    except Exception:  # noqa: BLE001
        return None
    out = []
    # An explicit stack of parse items (no recursion over the pattern's depth).
    work = list(reversed(list(tree)))
    while work:
        op, arg = work.pop()
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(arg) != "a" else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(class_char(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = arg
            n = max(lo, min(k, hi if hi != sre.MAXREPEAT else k))
            for _ in range(n):
                work.extend(reversed(list(sub)))
        elif name == "SUBPATTERN":
            work.extend(reversed(list(arg[-1])))
        elif name == "ATOMIC_GROUP":
            work.extend(reversed(list(arg)))
        elif name == "BRANCH":
            work.extend(reversed(list(arg[1][0])))
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        else:
            return None
    return "".join(out)


def class_char(items):
    negate = any(str(op) == "NEGATE" for op, _ in items)
    allowed = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            allowed.append(chr(arg))
        elif name == "RANGE":
            lo, hi = arg
            pick = next((c for c in "a0A" if lo <= ord(c) <= hi), chr(lo))
            allowed.append(pick)
        elif name == "CATEGORY":
            allowed.append({"CATEGORY_DIGIT": "1", "CATEGORY_SPACE": " "}.get(str(arg), "a"))
    if negate:
        return next(c for c in "a1A_-." if c not in allowed)
    preferred = [c for c in allowed if c.isalnum()]
    return (preferred or allowed or ["a"])[0]


def string_value(shape):
    if shape.enum:
        return shape.enum[0]
    meta = shape.metadata
    lo, hi, pattern = meta.get("min", 0), meta.get("max"), meta.get("pattern")
    if pattern is not None:
        for k in range(1, lo + 3):
            v = example(pattern, k)
            if v is not None and len(v) >= lo and (hi is None or len(v) <= hi) and fits(pattern, v):
                return v
    for c in CANDIDATES:
        for v in (c, c + c[-1] * max(0, lo - len(c)), c + "0" * max(0, lo - len(c)), c + "a" * max(0, lo - len(c))):
            if len(v) >= lo and (hi is None or len(v) <= hi) and fits(pattern, v):
                return v
    raise AssertionError(f"no candidate string fits {shape.name}: min {lo} max {hi} pattern {pattern}")


def number(shape, default):
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    v = default if lo is None else lo
    if hi is not None:
        v = min(v, hi)
    return type(default)(v)


def value(shape, depth=0):
    """A minimal value of `shape`: required members only, one item in a required list."""
    assert depth < 30, f"shape {shape.name} nests too deep"
    t = shape.type_name
    if t == "structure":
        members = shape.members
        if shape.metadata.get("union"):
            name = next(iter(members))
            return {name: value(members[name], depth + 1)}
        return {n: value(members[n], depth + 1) for n in shape.required_members if n in members}
    if t == "list":
        lo = shape.metadata.get("min", 1)
        return [value(shape.member, depth + 1) for _ in range(max(1, lo))]
    if t == "map":
        lo = shape.metadata.get("min", 0)
        return {string_value(shape.key): value(shape.value, depth + 1)} if lo > 0 else {}
    if t == "string":
        return string_value(shape)
    if t in ("integer", "long"):
        return number(shape, 1)
    if t in ("float", "double"):
        return number(shape, 1.0)
    if t == "boolean":
        return False
    if t == "blob":
        return b"{}"
    if t == "timestamp":
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    raise AssertionError(f"shape {shape.name}: type {t}")


def minimal_input(op):
    if op.input_shape is None:
        return {}
    return value(op.input_shape)


def modeled_codes(op):
    codes = set()
    for e in op.error_shapes:
        codes.add(e.name)
        code = e.metadata.get("error", {}).get("code")
        if code:
            codes.add(code)
    return codes


@pytest.fixture(scope="module")
def server():
    f = Ferrite()
    yield f
    f.stop()


def call_everything(server):
    """{model: {op: "implemented" | "not implemented" | "unsigned"}}, and the failures."""
    s = session()
    seen, failures = {}, []
    for name in model_names():
        client = s.create_client(
            name,
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=server.key_id,
            aws_secret_access_key=server.secret,
            config=Config(retries={"max_attempts": 1}, inject_host_prefix=False, read_timeout=60),
        )
        ops = {}
        for op_name in client.meta.service_model.operation_names:
            op = client.meta.service_model.operation_model(op_name)
            params = minimal_input(op)
            try:
                client._make_api_call(op_name, params)
                ops[op_name] = "implemented"
            except ClientError as e:
                err, meta = e.response.get("Error", {}), e.response.get("ResponseMetadata", {})
                code, status, message = err.get("Code"), meta.get("HTTPStatusCode"), err.get("Message") or ""
                if (name, op_name) in UNSIGNED and status == 403:
                    ops[op_name] = "unsigned"
                elif code == "NotImplementedException" and status == 501:
                    ops[op_name] = "not implemented"
                    # iot1click's devices and projects share `/tags/{arn}` (AWS tells them
                    # apart by host): the message may name the other model.
                    if f":{op_name} yet." not in message:
                        failures.append(f"{name}:{op_name}: the 501 does not name the operation: {message!r}")
                elif "validation error" in message and "detected" in message:
                    failures.append(f"{name}:{op_name}: minimal valid input {params!r} refused: {message}")
                elif status is None or status >= 500:
                    failures.append(f"{name}:{op_name}: {status} {code}: {message}")
                elif code in modeled_codes(op) or (code == "ValidationError" and client.meta.service_model.protocol == "query"):
                    ops[op_name] = "implemented"
                else:
                    failures.append(f"{name}:{op_name}: {status} {code} is not one of its modeled errors: {message}")
            except Exception as e:  # noqa: BLE001 - any other failure is a finding
                failures.append(f"{name}:{op_name}: {type(e).__name__}: {e}")
        seen[name] = ops
    return seen, failures


def render_table(seen):
    lines = [
        "# Operations Ferrite implements",
        "",
        "Generated by `tests/aws/test_conformance.py` (which calls every operation of every model in",
        "`models/` with boto3 and fails when this file differs from what it saw; run it with",
        "`WRITE_OPERATIONS_TABLE=1` to rewrite it). An operation not implemented answers",
        "501 `NotImplementedException` (\"Ferrite does not implement iot:CreateOTAUpdate yet.\").",
        "",
        "| model | implemented | of |",
        "|---|---|---|",
    ]
    for name, ops in seen.items():
        done = sum(1 for v in ops.values() if v == "implemented")
        lines.append(f"| {name} | {done} | {len(ops)} |")
    for name, ops in seen.items():
        done = sorted(op for op, v in ops.items() if v == "implemented")
        other = sorted(op for op, v in ops.items() if v == "unsigned")
        lines += ["", f"## {name}", ""]
        lines.append("Implemented: " + (", ".join(done) if done else "none") + ".")
        if other:
            lines += ["", "Unsigned in AWS, refused unsigned by Ferrite (403): " + ", ".join(other) + "."]
        missing = sorted(op for op, v in ops.items() if v == "not implemented")
        if missing:
            lines += ["", f"Not yet ({len(missing)}): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def test_every_operation_answers_or_says_it_is_not_implemented(server):
    seen, failures = call_everything(server)
    assert not failures, f"{len(failures)} operations misbehave:\n" + "\n".join(failures)
    # Every operation of every model was tried.
    for name in model_names():
        version = sorted((MODELS / name).iterdir())[-1]
        model = json.loads(gzip.decompress((version / "service-2.json.gz").read_bytes()))
        assert set(seen[name]) == set(model["operations"]), name
    table = render_table(seen)
    if os.environ.get("WRITE_OPERATIONS_TABLE") == "1":
        TABLE.parent.mkdir(exist_ok=True)
        TABLE.write_text(table)
    assert TABLE.exists() and TABLE.read_text() == table, (
        "docs/operations.md is not what this run saw: run WRITE_OPERATIONS_TABLE=1 python3 -m pytest tests/aws/test_conformance.py"
    )


def cli(server, *args, extra_env=None):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=server.key_id, AWS_SECRET_ACCESS_KEY=server.secret, AWS_DEFAULT_REGION=REGION, AWS_PAGER="")
    env.pop("AWS_PROFILE", None)
    env.update(extra_env or {})
    return subprocess.run(["aws", "--endpoint-url", server.endpoint, *args], capture_output=True, text=True, env=env, timeout=60)


def test_the_aws_cli_reads_the_not_implemented_error(server):
    out = cli(server, "iotevents", "list-detector-models")
    assert out.returncode != 0
    assert "NotImplementedException" in out.stderr and "Ferrite does not implement iotevents:ListDetectorModels yet" in out.stderr, out.stderr


def test_sitewise_host_prefixes_need_one_setting(server):
    """boto3 and the aws CLI prepend `api.`/`data.` to the endpoint's host for SiteWise, even
    to an IP address (measured: `http://api.127.0.0.1:PORT/assets`, which does not resolve);
    AWS_DISABLE_HOST_PREFIX_INJECTION=true (or `disable_host_prefix_injection = true` in the
    profile) sends them to the endpoint as given, and Ferrite answers whatever host arrives."""
    out = cli(server, "iotsitewise", "list-assets", "--cli-connect-timeout", "2")
    assert out.returncode != 0 and "api.127.0.0.1" in out.stderr, out.stderr
    out = cli(server, "iotsitewise", "list-assets", extra_env={"AWS_DISABLE_HOST_PREFIX_INJECTION": "true"})
    assert "Ferrite does not implement iotsitewise:ListAssets yet" in out.stderr, out.stderr
    out = cli(server, "iotsitewise", "batch-put-asset-property-value", "--entries", "[]", extra_env={"AWS_DISABLE_HOST_PREFIX_INJECTION": "true"})
    assert "Ferrite does not implement iotsitewise:BatchPutAssetPropertyValue yet" in out.stderr, out.stderr


def test_protocols_carry_the_error_code_as_boto3_reads_it(server):
    """rest-json via x-amzn-ErrorType, json (iotsecuretunneling) via the body's __type, query
    (IAM) via the XML Code: boto3 names NotImplementedException in each."""
    s = session()
    for name, op, params in [
        ("iotevents", "ListInputs", {}),
        ("iotsecuretunneling", "ListTunnels", {}),
        ("iam", "ListRoles", {}),
        ("iot1click-projects", "ListProjects", {}),
    ]:
        client = s.create_client(
            name, endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=server.key_id, aws_secret_access_key=server.secret
        )
        with pytest.raises(ClientError) as e:
            client._make_api_call(op, params)
        assert e.value.response["Error"]["Code"] == "NotImplementedException", (name, e.value.response)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
