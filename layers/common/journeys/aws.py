"""boto3 clients made once per process and reused, as Lambda best practice asks.

Making a client loads botocore's service model (tens of milliseconds, more under load);
a warm Lambda, and the local stack running every handler in one process, should pay that
once, not on every invocation. Services take `client=None` and fall back to `client()`.
Clients are thread-safe once made; making them is not, hence the lock.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

__all__ = ["clear_clients", "client"]

_lock = threading.Lock()
_clients: dict[tuple[str, str | None, int | None, str | None], Any] = {}


def client(service: str, region: str | None = None, *, attempts: int | None = None) -> Any:
    """The shared client of `service` (in `region`, else the environment's region);
    `attempts` makes botocore retry throttling and 5xx that many times (standard mode)."""
    key = (service, region, attempts, os.environ.get("AWS_ENDPOINT_URL"))
    made = _clients.get(key)
    if made is None:
        with _lock:
            made = _clients.get(key)
            if made is None:
                config = (
                    Config(retries={"mode": "standard", "max_attempts": attempts})
                    if attempts
                    else None
                )
                made = boto3.client(service, region_name=region, config=config)
                _clients[key] = made
    return made


def clear_clients() -> None:
    """Forget every client (tests switching between moto mocks call this)."""
    with _lock:
        _clients.clear()
