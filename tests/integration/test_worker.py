"""``tuya-archiver run`` end to end: simulator → real pulsar-lite → the real worker process → SQLite / PostgreSQL.

Exactly-once is checked by counts against what was published: ``messages.message_id`` is the primary key, so a
stored count equal to the number of valid messages published means none is missing and none is doubled (and the
status rows, keyed by message id and item index, must equal the items published).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from streams.sim.broker import EmbeddedBroker
from tests.integration.worker_harness import (
    ROOT,
    archived,
    assert_exactly_once,
    fleet_messages,
    publish_all,
    run_worker,
    running_worker,
    unique_access_id,
    upgrade,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration


def test_every_message_stored_once_and_corrupt_ones_dead_lettered(pulsar_broker, sqlite_url):
    access_id = unique_access_id()
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(3000, corrupt=0.02))
    assert published.corrupt > 0
    result = run_worker(worker_env(access_id, pulsar_broker.url, sqlite_url), "--idle-timeout", "3")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert_exactly_once(sqlite_url, published)
    assert b"batch received=" in result.stderr


def test_worker_refuses_a_database_not_at_head(pulsar_broker, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run_worker(worker_env(unique_access_id(), pulsar_broker.url, url), "--idle-timeout", "1")
    assert result.returncode == 2
    assert b"db upgrade" in result.stderr
    assert b"Traceback" not in result.stderr


def test_worker_refuses_an_invalid_rules_file(pulsar_broker, sqlite_url, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: broken\n    triggers: []\n    actions: []\n")
    env = worker_env(unique_access_id(), pulsar_broker.url, sqlite_url, RULES_FILE=str(rules))
    result = run_worker(env, "--idle-timeout", "1")
    assert result.returncode == 2
    assert str(rules).encode() in result.stderr and b"broken" in result.stderr


@pytest.mark.parametrize("kill_at_ack", [1, 4])
def test_kill_between_commit_and_ack_then_restart_stores_each_once(pulsar_broker, sqlite_url, kill_at_ack):
    access_id = unique_access_id()
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(4000, corrupt=0.01))
    # two batches of 500 a transaction: the default (5,000) would commit all 4,000 before the first ack; and two
    # batches in flight, so that a slow worker has not had every batch committed by its fourth ack (the default, 15)
    env = worker_env(access_id, pulsar_broker.url, sqlite_url, COMMIT_MAX_MESSAGES="1000", WRITER_IN_FLIGHT="2")
    crashed = subprocess.run(
        [sys.executable, "-m", "tests.integration.worker_harness", "--kill-at-ack", str(kill_at_ack)],
        env=env, cwd=ROOT, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL
    assert 0 < archived(sqlite_url).messages < published.valid
    result = run_worker(env, "--idle-timeout", "3")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert_exactly_once(sqlite_url, published)


def test_kill_9_at_random_points_then_restart_stores_each_once(pulsar_broker, sqlite_url):
    access_id = unique_access_id()
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(20000, corrupt=0.005))
    env = worker_env(access_id, pulsar_broker.url, sqlite_url, BATCH_SIZE="200")
    for fraction in (0.15, 0.45, 0.75):
        with running_worker(env, "--idle-timeout", "30"):
            assert wait_for(lambda f=fraction: archived(sqlite_url).messages >= f * published.valid, timeout=90)
    result = run_worker(env, "--idle-timeout", "3")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert_exactly_once(sqlite_url, published)


def test_sigterm_commits_batch_in_hand_exits_zero_and_restart_resumes(pulsar_broker, sqlite_url):
    access_id = unique_access_id()
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(15000))
    env = worker_env(access_id, pulsar_broker.url, sqlite_url, BATCH_SIZE="200")
    with running_worker(env, "--idle-timeout", "30") as worker:
        assert wait_for(lambda: archived(sqlite_url).messages > 0, timeout=60)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr.decode()[-2000:]
    assert b"stop requested" in stderr
    assert archived(sqlite_url).messages < published.valid
    result = run_worker(env, "--idle-timeout", "3")
    assert result.returncode == 0
    assert_exactly_once(sqlite_url, published)


def test_broker_restart_during_run_reconnects_and_completes(tmp_path, sqlite_url):
    with EmbeddedBroker(tmp_path / "broker") as broker:
        access_id = unique_access_id()
        published = publish_all(broker.url, access_id, fleet_messages(15000))
        env = worker_env(access_id, broker.url, sqlite_url, BATCH_SIZE="200")
        with running_worker(env, "--idle-timeout", "20") as worker:
            assert wait_for(lambda: archived(sqlite_url).messages > 0, timeout=60)
            broker.restart()
            _, stderr = worker.communicate(timeout=180)
        assert worker.returncode == 0, stderr.decode()[-2000:]
    assert_exactly_once(sqlite_url, published)


def test_postgres_down_acks_nothing_then_run_completes(pulsar_broker, private_postgres):
    access_id = unique_access_id()
    url = private_postgres.url
    upgrade(url)
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(12000))
    env = worker_env(access_id, pulsar_broker.url, url, BATCH_SIZE="200")
    with running_worker(env, "--idle-timeout", "8") as worker:
        assert wait_for(lambda: archived(url).messages > 0, timeout=60)
        private_postgres.stop()
        time.sleep(3)  # the worker keeps retrying its batch with backoff, acking nothing
        private_postgres.start()
        _, stderr = worker.communicate(timeout=180)
    assert worker.returncode == 0, stderr.decode()[-2000:]
    assert b"nothing acknowledged, retrying" in stderr
    assert_exactly_once(url, published)
