"""Real servers and real processes for the deploy checks: a SecantusDB of our own on a free port,
a seeded MySQL database on the local MariaDB, the binaries themselves, /metrics scrapes and NATS
publishes over the wire protocol. Everything started here is stopped here, by its own PID."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from conftest import REPO

NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
MYSQL_SERVER = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306").rstrip("/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, check, timeout: float = 30.0, interval: float = 0.1):
    """Polls `check` until it returns something truthy; fails with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def unique_name(prefix: str = "t_deploy") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def secantus() -> Iterator[str]:
    """A SecantusDB (Mongo wire protocol) in memory on a free port; yields its base URL."""
    bin_ = REPO / ".venv-mongo/bin/secantusd-py"
    assert bin_.exists(), f"{bin_} is missing: run deploy/local/ensure-mongo.sh (make services)"
    port = free_port()
    proc = subprocess.Popen(
        [str(bin_), "--host", "127.0.0.1", "--port", str(port), "--storage-path", ":memory:", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(f"secantusd-py on {port}", lambda: _connects(port) or proc.poll() is not None)
        assert proc.poll() is None, "secantusd-py exited"
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def seeded_mysql(binary_dir: Path, symbols: str = "BTCUSDT") -> Iterator[str]:
    """A fresh database seeded by `dm-demo seed` (the extractor's schema and klines); yields its
    URL and drops it afterwards."""
    name = unique_name()
    url = f"{MYSQL_SERVER}/{name}"
    subprocess.run([str(binary_dir / "dm-demo"), "seed", "--symbols", symbols, "--days", "3", "--fine-days", "2"],
                   env={**os.environ, "MYSQL_URI": url}, check=True, capture_output=True)
    try:
        yield url
    finally:
        subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", f"DROP DATABASE IF EXISTS `{name}`"],
                       check=False, capture_output=True)


def _connects(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


class Process:
    """One binary of ours, started with `env`, serving /metrics on `port`."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.port = port
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(argv, env={**os.environ, **env, "METRICS_PORT": str(port)},
                                     stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> dict:
        def ready():
            assert self.proc.poll() is None, f"exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}"
            status, body = http_get(self.port, "/health/readiness")
            return json.loads(body) if status == 200 else None
        return wait_until(f"{self.log.name} to be ready", ready, timeout)

    def metrics(self) -> str:
        status, body = http_get(self.port, "/metrics")
        assert status == 200, status
        return body

    def stop(self) -> int:
        """SIGTERM, as Kubernetes sends it; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self._log_file.close()


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[Process]:
    process = Process(argv, env, free_port(), log)
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.stop()


def nats_publish(subject: str, payloads: list[bytes], url: str = NATS_URL) -> None:
    """Publishes over NATS's text protocol and waits for the server's PONG, so every message is
    in the server when this returns."""
    host, port = url.removeprefix("nats://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.recv(4096)  # INFO
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
        for p in payloads:
            s.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(p), p))
        s.sendall(b"PING\r\n")
        buf = b""
        while b"PONG" not in buf:
            chunk = s.recv(4096)
            assert chunk, "NATS closed the connection"
            assert b"-ERR" not in chunk, chunk
            buf += chunk


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric != name:
            continue
        found = dict(part.split("=", 1) for part in label_text.rstrip("}").split(",") if part)
        found = {k: v.strip('"') for k, v in found.items()}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return None
