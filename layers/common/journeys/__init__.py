"""Journeys: marketing-automation workflows as code, compiled to AWS Step Functions."""

from __future__ import annotations

__version__ = "0.1.0"
