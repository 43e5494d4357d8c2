from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from journeys.local.stack import LocalStack
from tests.helpers.local import WORKDAY_MORNING, Journeys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package")
def local_stack() -> Iterator[LocalStack]:
    """The whole product on 127.0.0.1, shared by the e2e tests (deploying takes seconds).

    Package scope: the stack patches moto and installs its clock in this process, so it
    must be gone before the functional tier's own moto mocks start."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # No hourly sweep: at 3600x it would scan every contact of the session each second;
    # the date and segment scenarios invoke the sweep function at the moments they test.
    stack = LocalStack(
        ROOT, time_scale=3600, start_time=WORKDAY_MORNING, quiet=True, schedules=False
    )
    with stack:
        yield stack


@pytest.fixture
def journeys(local_stack: LocalStack) -> Iterator[Journeys]:
    """A scenario on the local stack: fresh contacts, journey time at a workday morning."""
    scenario = Journeys(local_stack)
    scenario.at(WORKDAY_MORNING, speed=3600)
    yield scenario
    scenario.stop_all()
