"""Functional tier: the project's services and handlers on moto, tables from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from journeys.settings import Settings, get_settings
from journeys.store import bind_tables
from tests.helpers.aws import REGION, create_buckets, create_tables, load_template

TABLE_SETTINGS = {
    "ContactsTable": "CONTACTS_TABLE",
    "EventsTable": "EVENTS_TABLE",
    "MessagesTable": "MESSAGES_TABLE",
    "WaitsTable": "WAITS_TABLE",
    "EntriesTable": "ENTRIES_TABLE",
    "IdempotencyTable": "IDEMPOTENCY_TABLE",
    "StatsTable": "STATS_TABLE",
    "ImportsTable": "IMPORTS_TABLE",
}
BUCKET_SETTINGS = {"ImportsBucket": "IMPORTS_BUCKET"}
SENDER = "journeys@example.com"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto, every table and bucket of template.yaml, and the environment a deployed
    function gets."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        template = load_template()
        tables = create_tables(boto3.client("dynamodb", region_name=REGION), template)
        for logical_id, variable in TABLE_SETTINGS.items():
            monkeypatch.setenv(variable, tables[logical_id])
        buckets = create_buckets(boto3.client("s3", region_name=REGION), template)
        for logical_id, variable in BUCKET_SETTINGS.items():
            monkeypatch.setenv(variable, buckets[logical_id])
        monkeypatch.setenv("SENDER_ADDRESS", SENDER)
        monkeypatch.setenv("PUBLIC_BASE_URL", "https://journeys.example.com")
        monkeypatch.setenv("LINK_SECRET", "test-secret")
        monkeypatch.setenv("TEMPLATES_DIR", str(ROOT / "workflows" / "templates"))
        get_settings.cache_clear()
        settings = Settings.from_env()
        bind_tables(settings)
        yield {"settings": settings, "tables": tables, "buckets": buckets}
        get_settings.cache_clear()
