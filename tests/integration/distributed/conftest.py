"""A distributed deployment made of real processes: API nodes and workers on RabbitMQ and
PostgreSQL, each module with its own vhost and database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import fresh_postgres_database
from tests.integration.bus.conftest import _vhost_reaper, amqp_url, amqp_vhost  # noqa: F401
from tests.support.clients import Api
from tests.support.processes import Cluster


@pytest.fixture(scope="module")
def cluster_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def cluster(
    amqp_url: str,  # noqa: F811
    cluster_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Cluster]:
    logs = Path(tmp_path_factory.mktemp("cluster"))
    env = {
        "INSIGHTHUB_DATABASE_URL": cluster_database,
        "INSIGHTHUB_AMQP_URL": amqp_url,
        "INSIGHTHUB_JWT_SECRET": "cluster-secret-" + uuid.uuid4().hex,
        "INSIGHTHUB_DATA_DIR": str(logs / "data"),
        "INSIGHTHUB_SYNTHETIC_RECORD_PATH": str(logs / "synthetic.jsonl"),
        "INSIGHTHUB_CHECKPOINT_INTERVAL_S": "0.2",
        "INSIGHTHUB_LEASE_S": "2",
        "INSIGHTHUB_SWEEP_INTERVAL_S": "1",
        "INSIGHTHUB_SHUTDOWN_GRACE_S": "5",
        "INSIGHTHUB_LLM_RETRY_BASE_DELAY_S": "0.05",
    }
    cluster = Cluster(env, logs)
    cluster.migrate()
    try:
        yield cluster
    finally:
        await cluster.stop_all()


@pytest_asyncio.fixture
async def api_of() -> AsyncIterator[dict[str, Api]]:
    """Api clients by base URL, closed after the test."""
    clients: dict[str, Api] = {}
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()
