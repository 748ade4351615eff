"""What the tests of ``skyfence serve`` share: a node.toml's parts built from a
scenario."""

from __future__ import annotations

import json
from typing import Any

from skyfence.scenario import SensorSpec


def sensor_toml(spec: SensorSpec, *, sensor_id: str | None = None, **keys: Any) -> str:
    """A ``[[sensors]]`` table declaring a radar as the scenario has it (id, position,
    detection probability, range and noise), with ``keys`` added (owner, release,
    sapient_node_id …)."""
    assert spec.kind == "radar", spec.kind
    std = dict(zip(("range_m", "azimuth_rad", "elevation_rad"), spec.noise_std, strict=True))
    lines = [
        "[[sensors]]",
        f'id = "{sensor_id or spec.id}"',
        'kind = "radar"',
        f"position_enu_m = {list(spec.position_enu_m)}",
        f"pd = {spec.pd}",
        *([f"max_range_m = {spec.max_range_m}"] if spec.max_range_m != float("inf") else []),
        "noise_std = { " + ", ".join(f"{k} = {v}" for k, v in std.items()) + " }",
        *(f"{k} = {json.dumps(v)}" for k, v in keys.items()),
    ]
    return "\n".join(lines) + "\n"
