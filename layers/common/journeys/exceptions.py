"""Every error Journeys raises on purpose, in one place.

The class names matter: Python Lambda errors reach Step Functions with the exception's
class name as the error name, so compiled state machines `Retry` and `Catch` on exactly
these names (see `journeys.compiler.emit`). Renaming one is a breaking change to every
compiled workflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class JourneysError(Exception):
    """Base class for errors raised by Journeys."""


# --- Raised inside Lambda Task states; matched by name in ASL -----------------------------


class TransientError(JourneysError):
    """A dependency failed in a way worth retrying (throttling, timeouts, 5xx)."""


class SendDeferred(JourneysError):
    """A message may not go out now (quiet hours, frequency cap).

    The message is the ISO-8601 UTC timestamp at which sending may be tried again; the
    state machine waits until then and retries the send.
    """


class ContactNotFound(JourneysError):
    """The contact of an execution no longer exists."""


class WorkflowNotDeployed(JourneysError, LookupError):
    """A workflow id that is not in the deployed index; `deployed` lists those that are."""

    def __init__(self, workflow_id: str, deployed: list[str]) -> None:
        self.workflow_id = workflow_id
        self.deployed = deployed
        super().__init__(f"workflow {workflow_id!r} is not deployed")


class ChannelUnreachable(JourneysError):
    """The contact cannot receive messages on the step's channel (no consent, bounced)."""


# --- Raised by contact writes and the CSV import ------------------------------------------


class ContactTooLarge(JourneysError):
    """A change would make the contact item larger than DynamoDB allows (400 KB)."""


class ContactWriteConflict(JourneysError):
    """Other writes kept changing the contact between our read and our write; retry."""


class InvalidImportFile(JourneysError, ValueError):
    """An uploaded contact file the import refuses. `problems` holds the first problems
    found as (line, column or None, message); `total` counts every problem found."""

    def __init__(self, problems: list[tuple[int, str | None, str]], total: int) -> None:
        self.problems = problems
        self.total = total
        super().__init__(f"{total} problem(s) in the contact file")


class ImportTooLarge(JourneysError, ValueError):
    """An uploaded contact file over the size or row limit; the message says which."""


# --- Raised by the compiler and the CLI ----------------------------------------------------


class WorkflowError(JourneysError):
    """A workflow failed validation; `diagnostics` says every reason at once."""

    def __init__(self, diagnostics: list[object]) -> None:
        self.diagnostics = diagnostics
        super().__init__(f"{len(diagnostics)} problem(s) in workflow")


class InvalidScenario(JourneysError, ValueError):
    """A demo scenario file the local stack cannot play (`journeys.local.demo`);
    `diagnostics` says every problem at once, each with file, line, column and the fix."""

    def __init__(self, diagnostics: Sequence[Any]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class CompiledOutputStale(JourneysError):
    """Generated files in the tree differ from what the sources compile to."""


#: Error names the compiled state machines raise and catch themselves (Fail states).
GOAL_REACHED = "Journeys.GoalReached"
EXITED = "Journeys.Exited"
COMPLETED = "Journeys.Completed"
