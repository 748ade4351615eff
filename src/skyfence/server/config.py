"""The HTTP server's settings, from arguments or from ``SKYFENCE_API_*`` variables."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from skyfence.errors import InputError

ENV_PREFIX = "SKYFENCE_API_"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    #: Largest request body (bytes): a zone file and nothing much bigger.
    max_body_bytes: int = 16 * 1024 * 1024
    #: Requests a second one client (by address) may make to the API, sustained ...
    rate_per_s: float = 20.0
    #: ... and at once.
    burst: int = 100
    #: Serve the Swagger UI at /api/v1/docs (its assets ship with ``fastapi-offline``).
    docs: bool = True

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise InputError(f"{self.max_body_bytes} is not a positive size",
                             field="max_body_bytes", fix="give bytes, e.g. 16777216")
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s > 0):
            raise InputError(f"{self.rate_per_s!r} is not a positive rate", field="rate_per_s",
                             fix="give requests per second, e.g. 20")
        if self.burst < 1:
            raise InputError(f"{self.burst} is not a positive count", field="burst",
                             fix="give how many requests may come at once, e.g. 100")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """Defaults overridden by ``SKYFENCE_API_MAX_BODY_BYTES``, ``…_RATE_PER_S``,
        ``…_BURST``, ``…_DOCS`` (0/1)."""
        env = os.environ if environ is None else environ
        values: dict[str, int | float | bool] = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if name not in env:
                continue
            text = env[name].strip()
            try:
                if f.type == "bool":
                    if text.lower() not in ("0", "1", "true", "false"):
                        raise ValueError(text)
                    values[f.name] = text.lower() in ("1", "true")
                elif f.type == "int":
                    values[f.name] = int(text)
                else:
                    values[f.name] = float(text)
            except ValueError:
                raise InputError(f"{text!r} is not a {f.type}", field=name,
                                 fix=f"give a {f.type}, or unset it for the default "
                                     f"{getattr(cls(), f.name)!r}") from None
        return cls(**values)  # type: ignore[arg-type]
