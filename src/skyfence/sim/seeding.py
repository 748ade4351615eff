"""Named, independent random streams derived from one integer seed.

Each part of a simulation (a target group, a sensor) draws from its own stream,
keyed by a stable name, so that adding a sensor does not change the targets and
the same arguments always give the same numbers.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator for ``name`` under ``seed`` (``seed`` ≥ 0)."""
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(key,)))
