"""Errors raised by skyfence, each naming the offending place and the fix."""

from __future__ import annotations


class SkyfenceError(ValueError):
    """Base of every error skyfence raises for bad input or configuration."""


class InputError(SkyfenceError):
    """Bad user input: a file, a line, a field, and what to do about it.

    ``str(err)`` is a complete one-line message suitable for a terminal, e.g.
    ``detections.csv, line 12, field 'azimuth_rad': 187.5 is larger than 2π;
    azimuths are radians — convert degrees with radians()``.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.line = line
        self.field = field
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        text = ", ".join(where)
        text = f"{text}: {self.problem}" if text else self.problem
        if self.fix:
            text = f"{text} — {self.fix}"
        return text
