"""Every output field is declared in a schema, with a dtype and a unit."""

import dataclasses
from pathlib import Path

import numpy as np

from skyfence.scenario import TracksCsvWriter
from skyfence.types import (
    DETECTIONS_SCHEMA,
    TRACKS_CSV_SCHEMA,
    TRACKS_SCHEMA,
    TRUTH_CSV_SCHEMA,
    Detections,
    Tracks,
)


def test_struct_of_arrays_match_their_schemas() -> None:
    assert tuple(f.name for f in dataclasses.fields(Detections)) == DETECTIONS_SCHEMA.names
    assert tuple(f.name for f in dataclasses.fields(Tracks)) == TRACKS_SCHEMA.names
    empty = Tracks.empty()
    for f in TRACKS_SCHEMA.fields:
        arr = getattr(empty, f.name)
        if f.dtype == "str":  # text of any width
            assert arr.dtype.kind == "U", f.name
        else:
            assert arr.dtype == np.dtype(f.dtype), f.name
        assert arr.shape[1:] == f.shape, f.name


def test_tracks_csv_carries_only_declared_fields(tmp_path: Path) -> None:
    path = tmp_path / "tracks.csv"
    with TracksCsvWriter(path) as w:
        w.write(5.0, np.array([3]), np.zeros((1, 6)), ["confirmed"], np.array([1.5]))
    header, row = path.read_text().splitlines()
    assert tuple(header.split(",")) == TRACKS_CSV_SCHEMA.names
    assert len(row.split(",")) == len(TRACKS_CSV_SCHEMA.fields)
    # The contract's leading columns, exactly, in order.
    want = (*TRUTH_CSV_SCHEMA.names[:1], "track", *TRUTH_CSV_SCHEMA.names[2:])
    assert TRACKS_CSV_SCHEMA.names[:8] == want


def test_every_field_has_a_unit_or_is_dimensionless() -> None:
    for schema in (DETECTIONS_SCHEMA, TRACKS_SCHEMA, TRACKS_CSV_SCHEMA, TRUTH_CSV_SCHEMA):
        for f in schema.fields:
            assert f.doc, f"{schema.name}.{f.name} has no description"
            if f.name.endswith("_m"):
                assert f.unit == "m"
            if f.name.endswith("_mps"):
                assert f.unit == "m/s"
