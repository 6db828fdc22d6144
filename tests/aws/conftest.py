"""Black-box AWS API tests: one `ferrite serve` per test session, driven with unmodified boto3
and the aws CLI over its real HTTP port.

The binary is target/debug/ferrite (scripts/test builds it first); FERRITE_BIN overrides it.
With FERRITE_TEST_BACKEND=postgres every server keeps its state in a fresh database on the
cluster at FERRITE_TEST_POSTGRES_URL (scripts/test starts one).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
_DATABASES = iter(range(1_000_000))


def new_database():
    """A new, empty database on the run's PostgreSQL cluster: (url, drop)."""
    admin = os.environ.get("FERRITE_TEST_POSTGRES_URL")
    if not admin:
        raise RuntimeError("FERRITE_TEST_POSTGRES_URL is not set (scripts/test starts a cluster and sets it)")
    name = f"ferrite_py_{os.getpid()}_{next(_DATABASES)}"
    subprocess.run(["psql", admin, "-qtAc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    drop = lambda: subprocess.run(["psql", admin, "-qtAc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)
    return admin.rsplit("/", 1)[0] + "/" + name, drop


class Ferrite:
    """A running Ferrite: its ports, its root credentials, and helpers to reach it."""

    def __init__(self, extra_sets=(), database=None, seed=None, prepare=None):
        """`database`: a PostgreSQL URL to keep the state in (two nodes can share one).
        `seed`: a .tar.gz of a data directory to start from; `prepare(dir)` runs before start."""
        self.dir = Path(tempfile.mkdtemp(prefix="ferrite-aws-"))
        if seed is not None:
            subprocess.run(["tar", "-C", str(self.dir), "-xzf", str(seed)], check=True)
        if prepare is not None:
            prepare(self.dir)
        self.extra_sets = list(extra_sets)
        self._drop_database = None
        if database is None and os.environ.get("FERRITE_TEST_BACKEND") == "postgres":
            database, self._drop_database = new_database()
        if database is not None:
            self.extra_sets = ["store.backend=postgres", f"store.postgres_url={database}", *self.extra_sets]
        self.key_id = self.secret = None
        self._start()

    def _start(self):
        binary = os.environ.get("FERRITE_BIN", str(ROOT / "target" / "debug" / "ferrite"))
        sets = [
            "mqtt.listen=127.0.0.1:0",
            "mqtt.tls_listen=off",
            "mqtt.ws_listen=off",
            "mqtt.wss_listen=off",
            "api.listen=127.0.0.1:0",
            "api.tls_listen=off",
            "store.sync=normal",
            *self.extra_sets,
        ]
        cmd = [binary, "serve", "--data-dir", str(self.dir)]
        for s in sets:
            cmd += ["--set", s]
        env = dict(os.environ, FERRITE_LOG__LEVEL=os.environ.get("FERRITE_TEST_LOG", "warn"))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        self.ports = {}
        deadline = time.time() + 30
        for line in self.proc.stdout:
            line = line.strip()
            if " listening on " in line:
                name, addr = line.split(" listening on ")
                self.ports[name] = int(addr.rsplit(":", 1)[1])
            elif line.startswith("root credentials: "):
                self.key_id, self.secret = line.split(": ", 1)[1].split()
            elif line == "ferrite ready":
                break
            if time.time() > deadline:
                raise RuntimeError("ferrite did not start")
        else:
            raise RuntimeError(f"ferrite exited with {self.proc.wait()}")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.ports['http']}"
        self.mqtt_port = self.ports["mqtt"]

    def client(self, service, key_id=None, secret=None):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=key_id or self.key_id,
            aws_secret_access_key=secret or self.secret,
            config=Config(retries={"max_attempts": 1}),
        )

    def cli(self, *args, check=True):
        """Runs the aws CLI against Ferrite; returns the parsed JSON output (or None)."""
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID=self.key_id,
            AWS_SECRET_ACCESS_KEY=self.secret,
            AWS_DEFAULT_REGION=REGION,
            AWS_PAGER="",
        )
        env.pop("AWS_PROFILE", None)
        out = subprocess.run(
            ["aws", "--endpoint-url", self.endpoint, "--output", "json", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {out.stderr}")
        if not check:
            return out
        return json.loads(out.stdout) if out.stdout.strip() else None

    def _terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self):
        """Stops the server (SIGTERM, a clean shutdown) and starts it again on the same data
        directory with the same credentials. Ports are chosen anew: make new clients."""
        self._terminate()
        self._start()

    def stop(self):
        self._terminate()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._drop_database:
            self._drop_database()


@pytest.fixture(scope="session")
def ferrite():
    f = Ferrite()
    yield f
    f.stop()


@pytest.fixture(scope="session")
def iot(ferrite):
    return ferrite.client("iot")


@pytest.fixture(scope="session")
def iotdata(ferrite):
    return ferrite.client("iot-data")


def aws_error(excinfo):
    """(error code, HTTP status, message) of a botocore ClientError caught by pytest.raises."""
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
