"""Problems found in a workflow, each pointing at a file, line and column."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: where it is, what is wrong, how to fix it."""

    severity: Severity
    file: str
    line: int
    column: int
    message: str
    hint: str = ""
    step: str = ""
    code: str = ""

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        step = f" [{self.step}]" if self.step else ""
        text = f"{where}: {self.severity.value}{step}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' Did you mean "x"?' for the closest choice, or '' when nothing is close."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {option.lower(): option for option in options}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f' Did you mean "{close[0]}"?' if close else ""


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    return (diagnostic.file, diagnostic.line, diagnostic.column, diagnostic.message)
