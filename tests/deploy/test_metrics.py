"""Each binary's /metrics, as Prometheus would scrape it, passes `promtool check metrics`. The
built binaries (target/debug, `make test` builds them first) run against the local NATS and
MariaDB and a SecantusDB of this module's own, do real work (messages, one audit and one analytics
cycle on seeded klines), are scraped, and stop on SIGTERM with status 0."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, promtool
from services import NATS_URL, nats_publish, running, sample, secantus, seeded_mysql, unique_name, wait_until

BIN_DIR = Path(os.environ.get("DM_BIN_DIR", REPO / "target/debug"))


def binary(name: str) -> str:
    path = BIN_DIR / name
    assert path.is_file(), f"{path} is missing: build the binaries first (cargo build --workspace --bins; make test does)"
    return str(path)


def check_metrics(text: str) -> None:
    result = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "" and result.stderr.strip() == "", (
        result.stdout + result.stderr)


@pytest.fixture(scope="module")
def databases():
    binary("dm-demo")
    with secantus() as mongo, seeded_mysql(BIN_DIR) as mysql:
        yield mysql, mongo


def test_consumer_metrics_pass_promtool_check_metrics(tmp_path):
    subject = unique_name("t.deploy").replace("_", ".")
    env = {"NATS_URL": NATS_URL, "NATS_CONSUMER_SUBJECT": subject, "NATS_QUEUE_GROUP": unique_name("q"),
           "FLUSH_INTERVAL": "100ms", "LOG_FORMAT": "json"}
    with running([binary("dm-consumer")], env, tmp_path / "consumer.log") as consumer:
        consumer.wait_ready()
        trade = {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1761055392345, "s": "BTCUSDT", "p": "1.5", "q": "2"}}
        nats_publish(subject, [json.dumps(trade).encode()] * 3 + [b"{not json", b'{"data":{"e":"nope","s":"BTCUSDT"}}'])
        text = wait_until("5 messages counted", lambda: (
            t := consumer.metrics()) and (sample(t, "data_manager_messages_received_total") or 0) >= 5 and t)
        assert sample(text, "data_manager_messages_processed_total", event_type="trade") == 3
        assert sample(text, "data_manager_messages_rejected_total", reason="invalid_json") == 1
        check_metrics(text)
        assert consumer.stop() == 0, consumer.log.read_text()[-2000:]


@pytest.mark.parametrize("name, cycles", [("auditor", "data_manager_audit_cycles_total"),
                                          ("analytics", "data_manager_analytics_cycles_total")])
def test_scheduler_metrics_pass_promtool_check_metrics(name, cycles, databases, tmp_path):
    mysql, mongo = databases
    env = {"LEADER_ELECTION": "disabled", "MYSQL_URI": mysql, "MONGODB_URL": f"{mongo}/{unique_name()}",
           "SUPPORTED_PAIRS": "BTCUSDT", "LOG_FORMAT": "json"}
    with running([binary(f"dm-{name}"), "run"], env, tmp_path / f"{name}.log") as scheduler:
        scheduler.wait_ready()
        text = wait_until(f"one {name} cycle", lambda: (
            t := scheduler.metrics()) and (sample(t, cycles, outcome="ok") or 0) >= 1 and t, timeout=120)
        assert sample(text, "data_manager_leader_is_leader", lease=f"data-manager-{name}") == 1
        check_metrics(text)
        assert scheduler.stop() == 0, scheduler.log.read_text()[-2000:]
