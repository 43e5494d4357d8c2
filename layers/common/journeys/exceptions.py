"""Every error Journeys raises on purpose, in one place.

The class names matter: Python Lambda errors reach Step Functions with the exception's
class name as the error name, so compiled state machines `Retry` and `Catch` on exactly
these names (see `journeys.compiler.emit`). Renaming one is a breaking change to every
compiled workflow.
"""

from __future__ import annotations


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


class ChannelUnreachable(JourneysError):
    """The contact cannot receive messages on the step's channel (no consent, bounced)."""


# --- Raised by the compiler and the CLI ----------------------------------------------------


class WorkflowError(JourneysError):
    """A workflow failed validation; `diagnostics` says every reason at once."""

    def __init__(self, diagnostics: list[object]) -> None:
        self.diagnostics = diagnostics
        super().__init__(f"{len(diagnostics)} problem(s) in workflow")


class CompiledOutputStale(JourneysError):
    """Generated files in the tree differ from what the sources compile to."""


#: Error names the compiled state machines raise and catch themselves (Fail states).
GOAL_REACHED = "Journeys.GoalReached"
EXITED = "Journeys.Exited"
COMPLETED = "Journeys.Completed"
