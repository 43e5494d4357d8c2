"""The time every service reads: real time on AWS, scaled time in the local stack.

Journeys measure days and weeks. The local stack runs them in seconds by scaling time
(`ScaledClock`: one real second is `scale` seconds of journey time), and the scale must
hold everywhere at once or the journey contradicts itself: a handler computing "3 days
from now" and the Step Functions engine waiting for that moment must agree on what "now"
is. So services never call `datetime.now()`; they call `clock.now()`, and the local stack
installs its clock here and in the engine (`journeys.local.engine`).

Deployed on AWS nothing is ever installed and `now()` is the system's UTC time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ScaledClock", "SystemClock", "current", "install", "now"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of clock time take in real time."""
        ...


class SystemClock:
    """Real time."""

    scale = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, seconds: float) -> float:
        return seconds


class ScaledClock:
    """Time that runs `scale` times faster than real time from the moment it is made.

    `ScaledClock(86400)` makes a day pass every real second, so a journey that waits
    3 days waits 3 seconds; `ScaledClock(1)` is real time. The clock starts at the real
    time of its creation (or `start`), so dates stay plausible and time zones still work.
    """

    def __init__(self, scale: float, start: datetime | None = None) -> None:
        self.scale = _checked(scale)
        self._real_origin = time.time()
        self._origin = (start or datetime.now(UTC)).astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            elapsed = (time.time() - self._real_origin) * self.scale
            return self._origin + timedelta(seconds=elapsed)

    def set_scale(self, scale: float) -> None:
        """Run faster or slower from now on; time already passed stays passed."""
        moment = self.now()
        with self._lock:
            self.scale = _checked(scale)
            self._real_origin, self._origin = time.time(), moment

    def reset(self, start: datetime, scale: float | None = None) -> None:
        """Start over at `start` (tests put each scenario at a known moment; only safe
        when nothing is waiting on the clock)."""
        with self._lock:
            if scale is not None:
                self.scale = _checked(scale)
            self._real_origin, self._origin = time.time(), start.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        """Jump forward: waits due in the next `seconds` end at once."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._origin += timedelta(seconds=seconds)

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.scale


def _checked(scale: float) -> float:
    if not scale > 0:
        raise ValueError(f"the time scale must be greater than zero (got {scale})")
    return float(scale)


_lock = threading.Lock()
_current: Clock = SystemClock()


def install(clock: Clock) -> Clock:
    """Make `clock` the time of this process; returns the one it replaces."""
    global _current
    with _lock:
        previous, _current = _current, clock
    return previous


def current() -> Clock:
    return _current


def now() -> datetime:
    """The current time (UTC, timezone-aware) on the installed clock."""
    return _current.now()
