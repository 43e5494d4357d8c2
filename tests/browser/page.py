"""The dashboard as the tests see it: routes to open, DOM hooks to wait for, pictures to take.

Every look waits explicitly (WebDriverWait on the contract's `data-testid` hooks and their
attributes) for the page to show what is expected; the dashboard refreshes every 2 s, so
a wait that fails has seen several refreshes. A failed wait says what it waited for, the
dashboard's error banner and the page's JavaScript errors.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import screenshots
from tests.helpers.local import PATIENCE

T = TypeVar("T")

#: Seconds a look may take before the test fails (times PATIENCE on a loaded machine).
LOOK = 10
#: Screenshots freeze what may move: CSS animations and transitions, and the text caret.
STILL = (
    "*, *::before, *::after { animation: none !important; transition: none !important;"
    " caret-color: transparent !important; }"
)
#: Messages of the browser console that are not the dashboard's fault.
HARMLESS = ("favicon.ico",)


class Dashboard:
    def __init__(
        self, driver: Any, api_url: str, api_key: str, window: tuple[int, int] = (1400, 1000)
    ) -> None:
        self.driver = driver
        self.base = f"{api_url.rstrip('/')}/dashboard/"
        self.api_key = api_key
        self.window = window

    # --- getting there ----------------------------------------------------------------------

    def open(self, route: str = "#/") -> None:
        """Load the dashboard with the API key (as `journeys up` prints it) at `route`."""
        self._emulate()
        self.driver.get(f"{self.base}?key={self.api_key}{route}")
        self.wait(lambda d: "key=" not in d.current_url, "the key to leave the address bar")

    def go(self, route: str) -> None:
        """Follow a hash route in the page already open (no reload)."""
        self.driver.execute_script("window.location.hash = arguments[0]", route.lstrip("#"))

    def _emulate(self) -> None:
        """The same screen, zone and language on every machine, so pictures repeat."""
        width, height = self.window
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
        self.driver.execute_cdp_cmd("Emulation.setLocaleOverride", {"locale": "en-GB"})
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]},
        )

    # --- looking ------------------------------------------------------------------------------

    def wait(self, condition: Callable[[Any], T], what: str, timeout: float = LOOK) -> T:
        """`condition(driver)` once it is truthy; fails saying `what` was awaited."""
        waiting = WebDriverWait(
            self.driver,
            timeout * PATIENCE,
            poll_frequency=0.1,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )
        try:
            return waiting.until(condition)
        except TimeoutException:
            raise AssertionError(
                f"the dashboard never showed {what} (at {self.driver.current_url}); "
                f"error banner: {self.error()!r}; JavaScript errors: {self.js_errors()}"
            ) from None

    def find(self, css: str, within: WebElement | None = None) -> WebElement:
        """The element matching `css`, once there is one (and it is displayed)."""

        def shown(driver: Any) -> WebElement | None:
            element: WebElement = (within or driver).find_element(By.CSS_SELECTOR, css)
            return element if element.is_displayed() else None

        return self.wait(shown, repr(css))

    def all(self, css: str, within: WebElement | None = None) -> list[WebElement]:
        found: list[WebElement] = (within or self.driver).find_elements(By.CSS_SELECTOR, css)
        return found

    def text_of(self, css: str, expected: str, within: WebElement | None = None) -> str:
        """Wait until the element `css` reads `expected` (whitespace normalised)."""
        self.wait(
            lambda d: normal(self.find(css, within).text) == expected,
            f"{css!r} reading {expected!r} (it reads {self._text(css, within)!r})",
        )
        return expected

    def attributes_of(self, css: str, expected: dict[str, str]) -> None:
        """Wait until the element `css` has these attribute values."""

        def matches(driver: Any) -> bool:
            element = driver.find_element(By.CSS_SELECTOR, css)
            return all(element.get_attribute(name) == value for name, value in expected.items())

        self.wait(matches, f"{css!r} with {expected} (it has {self._attributes(css, expected)})")

    def _text(self, css: str, within: WebElement | None) -> str | None:
        try:
            return normal((within or self.driver).find_element(By.CSS_SELECTOR, css).text)
        except (NoSuchElementException, StaleElementReferenceException):
            return None

    def _attributes(self, css: str, names: dict[str, str]) -> dict[str, str | None] | None:
        try:
            element = self.driver.find_element(By.CSS_SELECTOR, css)
            return {name: element.get_attribute(name) for name in names}
        except (NoSuchElementException, StaleElementReferenceException):
            return None

    def error(self) -> str | None:
        """The dashboard's error banner, if shown."""
        try:
            banner = self.driver.find_element(By.CSS_SELECTOR, "[data-testid=error]")
        except NoSuchElementException:
            return None
        return normal(banner.text) if banner.is_displayed() else None

    def js_errors(self) -> list[str]:
        """What the page logged as errors (uncaught exceptions, failed requests) since the
        last call."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE" and not any(h in entry["message"] for h in HARMLESS)
        ]

    def click(self, css: str, within: WebElement | None = None) -> None:
        self.find(css, within).click()

    # --- pictures -----------------------------------------------------------------------------

    def screenshot(self, name: str) -> bool:
        """The whole page (window width, page height) as docs/screenshots/<name>.png, kept
        only when it shows something new; returns whether the file was written."""
        self.driver.execute_script(
            "document.activeElement && document.activeElement.blur();"
            "const still = document.createElement('style');"
            "still.id = 'test-still'; still.textContent = arguments[0];"
            "document.head.appendChild(still);",
            STILL,
        )
        # The pointer rests where the last click left it: move it off every link.
        self.driver.execute_cdp_cmd(
            "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": self.window[0] - 1, "y": 0}
        )
        width, height = self.window
        full = int(
            self.driver.execute_script(
                "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)"
            )
        )
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": max(height, full), "deviceScaleFactor": 1, "mobile": False},
        )
        try:
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "fromSurface": True}
            )
        finally:
            self.driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            self.driver.execute_script("document.getElementById('test-still')?.remove()")
        return screenshots.keep(name, base64.b64decode(shot["data"]))

    # --- reading the page ---------------------------------------------------------------------

    def node_labels(self) -> dict[str, str]:
        """Every box of the graph's SVG: its data-key -> the label it draws (its first
        <text>, lines joined)."""
        script = """
        const found = {};
        for (const node of document.querySelectorAll('[data-testid=graph] svg g.node[data-key]')) {
          const text = node.querySelector('text');
          if (!text) continue;
          const lines = Array.from(text.querySelectorAll('tspan')).map((t) => t.textContent);
          found[node.dataset.key] = lines.length ? lines.join(' ') : text.textContent;
        }
        return JSON.stringify(found);
        """
        labels: dict[str, str] = json.loads(self.driver.execute_script(script))
        return {key: normal(label) for key, label in labels.items()}


def normal(text: str | None) -> str:
    return " ".join((text or "").split())
