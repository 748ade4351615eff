"""Seeded, deterministic scenario simulator: targets, sensors, clutter, scenario files.

``build(preset, ...)`` simulates one of ``PRESETS`` into a :class:`SimResult`;
``write(directory, result)`` writes it as a scenario directory (``scenario.json``,
``detections.csv``, ``truth.csv``; see :mod:`skyfence.scenario`).
"""

from skyfence.sim.presets import PRESETS, build
from skyfence.sim.result import TARGET_KINDS, SimResult, write

__all__ = ["PRESETS", "TARGET_KINDS", "SimResult", "build", "write"]
