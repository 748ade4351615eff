"""The journal: records round-trip; damage is reported with its offset and the reader
goes on; a torn tail is cut off when appending; nothing accepted before is lost."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skyfence.adapters.base import Rejected
from skyfence.adapters.journal import (
    JournalHeader,
    JournalWriter,
    Record,
    Source,
    read_journal,
)
from skyfence.errors import InputError
from skyfence.geo import Origin
from skyfence.scenario import Scenario, SensorSpec

HEADER = JournalHeader(
    scenario=Scenario(name="j", origin=Origin(47.0, 8.0, 500.0), sensors=(
        SensorSpec(id="adsb", kind="cooperative", position_enu_m=(0, 0, 0), pd=1.0,
                   noise_std=(math.nan, math.nan, math.nan)),
        SensorSpec(id="pos", kind="position", position_enu_m=(0, 0, 0), pd=0.9,
                   noise_std=(3.0, 3.0, 5.0)))),
    sources=(Source(id="rx1", format="beast", sensor="adsb"),
             Source(id="feed", format="jsonl", sensor="pos", options={"x": 1})),
)
PAYLOADS = [(1000.0 + k * 0.25, k % 2, bytes([k]) * (k * 7 % 50)) for k in range(40)]


def _write(path: Path) -> list[int]:
    with JournalWriter(path, HEADER) as w:
        return [w.append(t, s, p) for t, s, p in PAYLOADS]


def _records(path: Path) -> list[Record | Rejected]:
    header, records = read_journal(path)
    assert header.to_json() == HEADER.to_json()
    return list(records)


def test_records_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    offsets = _write(path)
    out = _records(path)
    assert [(r.t_receive, r.source, r.payload) for r in out if isinstance(r, Record)] == PAYLOADS
    assert [r.offset for r in out] == offsets


def test_a_damaged_record_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    offsets = _write(path)
    data = bytearray(path.read_bytes())
    data[offsets[10] + 20] ^= 0xFF  # inside record 10's payload or CRC
    path.write_bytes(bytes(data))
    out = _records(path)
    bad = [r for r in out if isinstance(r, Rejected)]
    assert len(bad) == 1 and bad[0].offset == offsets[10] and "CRC" in bad[0].reason
    good = [(r.t_receive, r.source, r.payload) for r in out if isinstance(r, Record)]
    assert good == PAYLOADS[:10] + PAYLOADS[11:]


def test_a_torn_tail_is_cut_off_when_appending(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 3)
    out = _records(path)
    assert isinstance(out[-1], Rejected) and "truncated" in out[-1].reason
    with JournalWriter(path, HEADER) as w:
        assert w.records == len(PAYLOADS) - 1
        w.append(2000.0, 1, b"after")
    out = _records(path)
    assert all(isinstance(r, Record) for r in out)
    assert [r.payload for r in out if isinstance(r, Record)][-2:] == [PAYLOADS[-2][2], b"after"]


def test_refusals(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path)
    other = JournalHeader(scenario=HEADER.scenario, sources=HEADER.sources[:1])
    with pytest.raises(InputError, match="other sources"):
        JournalWriter(path, other)
    with JournalWriter(tmp_path / "k.bin", HEADER) as w, pytest.raises(InputError,
                                                                        match="source index"):
        w.append(1.0, 5, b"")
    (tmp_path / "x.bin").write_bytes(b"not a journal at all")
    with pytest.raises(InputError, match="not a skyfence journal"):
        read_journal(tmp_path / "x.bin")
    data = bytearray(path.read_bytes())
    data[20] ^= 1
    (tmp_path / "h.bin").write_bytes(bytes(data))
    with pytest.raises(InputError, match="header fails its CRC"):
        read_journal(tmp_path / "h.bin")


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=6),
       cut=st.integers(0, 400))
def test_fuzz_damage_never_raises_and_keeps_only_real_records(
        tmp_path: Path, flips: list[tuple[int, int]], cut: int) -> None:
    path = tmp_path / "f.bin"
    path.unlink(missing_ok=True)
    _write(path)
    data = bytearray(path.read_bytes())
    start = len(data) - sum(16 + len(p) + 4 for _, _, p in PAYLOADS)  # after the header
    for pos, x in flips:
        data[start + pos % (len(data) - start)] ^= x
    path.write_bytes(bytes(data[:len(data) - cut]))
    real = set(PAYLOADS)
    for r in _records(path):
        if isinstance(r, Record):
            assert (r.t_receive, r.source, r.payload) in real
