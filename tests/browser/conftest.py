"""The browser tier: the dashboard in a real headless Chromium, on its own local stack.

The browser is Debian's Chromium driven through Debian's ChromeDriver
(`scripts/install-browser` installs both; `make test` runs it first). Selenium gets the
driver's path, so Selenium Manager never looks for (or downloads) anything, and
`SE_OFFLINE` tells it the same should it ever be asked.

Without the browser these tests skip on a developer's machine (with how to install it),
and fail in CI (`CI` set): a CI run that silently skipped them would pass without ever
looking at the dashboard.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from journeys.local.stack import LocalStack
from tests.browser import scenario
from tests.browser.page import Dashboard

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: The browser window (CSS pixels); screenshots keep the width and take the page's height.
WINDOW = (1400, 1000)
#: Chromium as this machine's closed network needs it: no sandbox (root), and none of the
#: background connections (updates, sync, safe browsing) it would otherwise keep trying.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--lang=en-GB",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
]


def _missing_browser() -> str | None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return None
    return (
        f"the browser tests need Debian's Chromium and ChromeDriver; missing: "
        f"{', '.join(missing)}. Install them with scripts/install-browser "
        "(apt-get install chromium chromium-driver)"
    )


@pytest.fixture(scope="package")
def driver() -> Iterator[Any]:
    """One headless Chromium for the whole tier, with a new empty profile."""
    problem = _missing_browser()
    if problem:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI must run the browser tests: {problem}", pytrace=False)
        pytest.skip(problem)
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    logging.getLogger("selenium").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    profile = tempfile.mkdtemp(prefix="journeys-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="package")
def local_stack() -> Iterator[LocalStack]:
    """The whole product on 127.0.0.1 for the browser tier, its journey clock frozen at the
    scenario's start (`scenario.FROZEN`). Package scope, as in tests/e2e: the stack patches
    moto in this process and must be gone before the next tier starts."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    stack = LocalStack(
        ROOT,
        time_scale=scenario.FROZEN,
        start_time=scenario.START,
        quiet=True,
        schedules=False,
        api_key="browser-tests",
    )
    with stack:
        yield stack


@pytest.fixture(scope="package")
def story(local_stack: LocalStack) -> Iterator[scenario.Story]:
    """The scripted scenario, played once; the tests look at what it left."""
    journeys, story = scenario.run(local_stack)
    try:
        yield story
    finally:
        journeys.stop_all()


@pytest.fixture
def dashboard(driver: Any, local_stack: LocalStack, story: scenario.Story) -> Dashboard:
    """The dashboard of the scenario's stack, opened on the workflows list."""
    page = Dashboard(driver, local_stack.api_url, local_stack.api_key, window=WINDOW)
    page.open()
    return page
