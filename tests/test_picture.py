"""The picture and its files: classes, identities, flags and groups, end to end."""

import csv
from pathlib import Path

import numpy as np

from skyfence import sim
from skyfence.picture import Picture
from skyfence.pipeline import track_directory
from skyfence.types import GROUPS_CSV_SCHEMA, TRACKS_CSV_SCHEMA


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_track_writes_classes_identities_flags_and_groups(tmp_path: Path) -> None:
    sim.write(tmp_path, sim.build("mixed", seed=3, duration_s=60.0))
    track_directory(tmp_path, tmp_path / "tracks.csv")
    rows = _rows(tmp_path / "tracks.csv")
    assert tuple(rows[0]) == TRACKS_CSV_SCHEMA.names
    last_t = rows[-1]["t"]
    last = [r for r in rows if r["t"] == last_t]
    classes = {r["class"] for r in last}
    assert {"drone_multirotor", "crewed_aircraft"} <= classes
    # Crewed replays carry their ICAO address and are never drones; drones without an
    # identity are dark.
    for r in rows:
        if r["identity"].startswith("icao:"):
            assert not r["class"].startswith("drone_"), r
        if r["class"].startswith("drone_") and not r["identity"]:
            assert "dark" in r["flags"].split("|"), r
    assert all(0.0 <= float(r["class_p"]) <= 1.0 for r in rows)
    # The swarm is one group in tracks.csv and groups.csv, with its members counted.
    grouped = [r for r in last if r["group"]]
    assert grouped
    groups = _rows(tmp_path / "groups.csv")
    assert tuple(groups[0]) == GROUPS_CSV_SCHEMA.names
    now = {int(g["group"]): int(g["count"]) for g in groups if g["t"] == last_t}
    members = np.unique([int(r["group"]) for r in grouped], return_counts=True)
    assert dict(zip(members[0].tolist(), members[1].tolist(), strict=True)) == now
    # A 30-drone swarm that split in two at 36 s: two groups holding most of it.
    assert len(now) == 2 and sum(now.values()) >= 25


def test_an_adsb_receiver_makes_a_missing_identity_evidence() -> None:
    with_rx = sim.build("mixed", seed=1, duration_s=5.0).scenario
    without = sim.build("swarm", seed=1, duration_s=5.0).scenario
    assert Picture.for_scenario(with_rx).classifier.config.adsb_coverage > 0.8
    assert Picture.for_scenario(without).classifier.config.adsb_coverage == 0.0


def test_swarm_members_take_their_groups_class() -> None:
    import dataclasses

    from skyfence.classify import CLASSES, Classification
    from skyfence.picture import _group_classes

    n = 6
    base = Classification.empty(0.0)
    arrays = {f.name: np.zeros((n, *getattr(base, f.name).shape[1:]),
                               dtype=getattr(base, f.name).dtype)
              for f in dataclasses.fields(base) if f.name != "t"}
    multi, bird, unknown = (CLASSES.index(c) for c in ("drone_multirotor", "bird", "unknown"))
    arrays["label"][:] = [multi, bird, bird, multi, bird, unknown]
    arrays["probs"][np.arange(n), arrays["label"]] = 1.0
    arrays["identity_kind"][1] = 2  # a Remote ID member speaks for itself
    c = Classification(t=0.0, **arrays)
    # Tracks 0-3 form group 7; track 4 is alone; track 5 is in group 9 on its own.
    out = _group_classes(c, np.array([7, 7, 7, 7, -1, 9]))
    # Group 7 without its Remote ID member: two multirotors, one bird → multirotor.
    # Group 9's only member is undecided: it stays unknown.
    assert out.label.tolist() == [multi, bird, multi, multi, bird, unknown]
    assert np.allclose(out.probs.sum(axis=1), 1.0)
    # Group 7's members without identity (0, 2, 3) share their mean evidence.
    assert np.allclose(out.probs[[0, 2, 3]], out.probs[0])
