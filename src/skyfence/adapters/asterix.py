"""EUROCONTROL ASTERIX: radar plots (CAT048) and ADS-B reports (CAT021) in, system tracks
(CAT062) out.

The codec is ``libasterix`` (MIT, generated from the published category specifications,
parses and builds every item); this module adds the stream framing, the conversion of
wire units to SI once, and the skyfence meaning of each record. Editions: CAT048 1.32
and CAT021 2.6 read (CAT048 1.27–1.32 and CAT021 2.1–2.7 lay out every item read here
alike; CAT021 0.2x does not and is not read), CAT062 1.20 written (1.16–1.21 readers
agree on every item written).

Data block framing (``CAT``, ``LEN`` big-endian counting the 3-byte header, records):
a header is trusted at the start of the stream or of a datagram and where the block
before it ended cleanly; after garbage, a candidate header must name a known category,
be at most ``MAX_RESYNC_BLOCK_BYTES`` long and be followed back to back by
``RESYNC_LINKS`` more such headers (or end exactly at the end of the data), so that a
stray category byte with a long ``LEN`` cannot swallow the good blocks behind it.
Records carry no length: a record that does not parse loses the rest of its block (one
rejection from its offset), not the stream.
A UDP datagram holds whole blocks, so ``feed_datagram`` never waits on the next one.

Units and frames, converted here once:

- ``RadarPlot``: slant range in metres (I048/040 RHO, 1/256 NM), azimuth in radians
  clockwise from the radar's north (THETA, 360/2¹⁶ °). The Mode C flight level is kept
  as ``pressure_altitude_m`` (pressure altitude, standard atmosphere) but is *not* made
  into an elevation: it is barometric, off from geometric height by hundreds of metres
  with QNH and temperature, and a primary plot has none, so a CAT048 radar is a
  ``radar2d`` sensor and the tracker measures range and azimuth only.
- ``AdsbReport``: WGS84 latitude/longitude (I021/131 high resolution, else I021/130);
  ``geometric_height_m`` above the WGS84 ellipsoid (I021/140 is defined from a plane
  tangent to the WGS84 ellipsoid); ``pressure_altitude_m`` from the flight level
  (I021/145). ``to_position`` prefers the geometric height and otherwise takes the
  pressure altitude as height above mean sea level (EGM96), with a widened σ.
- Times: ASTERIX gives seconds since UTC midnight (1/128 s). The day comes from the
  receive time handed to ``feed`` (``t=``, Unix seconds; by default the clock): the
  report is put at the instant nearest the receive time, which holds across midnight
  both ways as long as reports are less than 12 h old.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

import asterix.generated as _gen
import numpy as np
from asterix.base import Bits, ParsingMode

from skyfence.adapters.base import SHOWN_BYTES, Counters, Message, PositionReport, Rejected
from skyfence.errors import InputError, SkyfenceError
from skyfence.geo import Origin
from skyfence.geoid import amsl_to_ellipsoid_m
from skyfence.scenario import Scenario
from skyfence.types import Detections, TrackFlag, Tracks, TrackStatus

_Cat048 = _gen.Cat_048_1_32
_Cat021 = _gen.Cat_021_2_6
_Cat062 = _gen.Cat_062_1_20
_Rec048: TypeAlias = _gen.Cat_048_1_32.cv_record
_Rec021: TypeAlias = _gen.Cat_021_2_6.cv_record

NM_M = 1852.0
FT_M = 0.3048
#: One flight level: 100 ft of pressure altitude.
FL_M = 100.0 * FT_M
FT_PER_MIN_MPS = FT_M / 60.0
DAY_S = 86400.0
#: ASTERIX categories in use (those either codec here has specifications for): a block
#: header naming another one is taken for garbage.
KNOWN_CATEGORIES: frozenset[int] = frozenset({
    1, 2, 4, 7, 8, 9, 10, 11, 15, 16, 17, 18, 19, 20, 21, 23, 25, 30, 31, 32, 34, 48, 62,
    63, 65, 150, 205, 240, 247, 252})
#: Categories decoded into messages.
DECODED_CATEGORIES: frozenset[int] = frozenset({21, 48})
#: Service messages that travel with the decoded ones and carry no target (CAT023 ADS-B
#: ground station, CAT034 monoradar north marker / sector crossing): passed over quietly.
SERVICE_CATEGORIES: frozenset[int] = frozenset({23, 34})
#: Shortest block: the header and a one-byte FSPEC.
MIN_BLOCK_BYTES = 4
#: Longest block believed just after garbage (while in step, any LEN is): bounds how
#: much a false header can hold up or swallow. Real blocks fit a datagram, ~1.5 kB.
MAX_RESYNC_BLOCK_BYTES = 8192
#: After garbage, a header is believed when this many more plausible headers follow it
#: back to back (or the data ends exactly): a byte that only looks like a header, in
#: garbage or inside a record, passes one such check in ~1 case of 70, two in ~5 000.
RESYNC_LINKS = 2

#: NACp → 95 % horizontal bound (EPU) in metres (DO-260B §2.2.3.2.7.1.3.8); 0 = unknown.
NACP_EPU_M: Mapping[int, float] = {
    1: 10 * NM_M, 2: 4 * NM_M, 3: 2 * NM_M, 4: 1 * NM_M, 5: 0.5 * NM_M, 6: 0.3 * NM_M,
    7: 0.1 * NM_M, 8: 0.05 * NM_M, 9: 30.0, 10: 10.0, 11: 3.0}
#: NACp → 95 % vertical bound (VEPU), defined for the top three classes only.
NACP_VEPU_M: Mapping[int, float] = {9: 45.0, 10: 15.0, 11: 4.0}
#: NUCp (DO-260, version 0) → 95 % horizontal accuracy bound μ in metres; 0 = unknown.
NUCP_95_M: Mapping[int, float] = {
    1: 10 * NM_M, 2: 5 * NM_M, 3: 1 * NM_M, 4: 0.5 * NM_M, 5: 0.25 * NM_M, 6: 0.1 * NM_M,
    7: 0.05 * NM_M, 8: 10.0, 9: 3.0}
#: GVA → 95 % bound of the geometric height in metres; 0 = unknown or more than 150 m.
GVA_95_M: Mapping[int, float] = {1: 150.0, 2: 45.0}
#: 95 % radius of a circular 2-D Gaussian in σ (√(−2 ln 0.05)), and the 1-D 95 % bound.
R95_2D = 2.4477
R95_1D = 1.96
#: σ when a report states no accuracy: the worst class, "10 NM or more, or unknown".
UNKNOWN_STD_H_M = 10 * NM_M / R95_2D

#: CAT021 I021/020 ECAT (and CAT062 I062/380 EMC) → ADS-B emitter category text
#: (DO-260B set A–C); 0 (no information) and reserved codes have none.
ECAT_CATEGORY: Mapping[int, str] = {
    1: "A1", 2: "A2", 3: "A3", 4: "A4", 5: "A5", 6: "A6", 10: "A7",
    11: "B1", 12: "B2", 13: "B6", 14: "B7", 15: "B4", 16: "B3",
    20: "C1", 21: "C2", 22: "C3", 23: "C4", 24: "C5"}
CATEGORY_ECAT: Mapping[str, int] = {v: k for k, v in ECAT_CATEGORY.items()}


def data_source_id(sac: int, sic: int) -> str:
    """The sensor id a data source goes by in a scenario: ``asterix:25/201``."""
    return f"asterix:{sac}/{sic}"


def resolve_time_of_day(tod_s: float, t_ref: float) -> float:
    """Seconds since UTC midnight → Unix seconds: the instant nearest ``t_ref``."""
    t = math.floor(t_ref / DAY_S) * DAY_S + tod_s
    if t - t_ref > DAY_S / 2:
        t -= DAY_S
    elif t_ref - t > DAY_S / 2:
        t += DAY_S
    return t


def _nan_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class RadarPlot:
    """One CAT048 target report, SI units.

    ``range_m`` (slant) and ``azimuth_rad`` (clockwise from north) are NaN when the
    record has no measured position (a track-only report). ``report_type`` is I048/020
    TYP: 0 no detection, 1 PSR, 2 SSR, 3 SSR+PSR, 4–7 Mode S (all-call, roll-call, each
    with or without PSR). ``pressure_altitude_m``: the Mode C flight level × 100 ft, NaN
    when absent; ``*_valid`` false when the reply was flagged not validated or garbled.
    ``track_number`` −1 when absent; ``ground_speed_mps``/``heading_rad`` (I048/200) NaN
    when absent.
    """

    t: float
    sac: int
    sic: int
    time_of_day_s: float
    range_m: float
    azimuth_rad: float
    report_type: int = 0
    simulated: bool = False
    test: bool = False
    fixed_transponder: bool = False
    spi: bool = False
    mode3a: str = ""
    mode3a_valid: bool = False
    pressure_altitude_m: float = math.nan
    pressure_altitude_valid: bool = False
    icao_address: str = ""
    callsign: str = ""
    track_number: int = -1
    ground_speed_mps: float = math.nan
    heading_rad: float = math.nan

    @property
    def sensor_id(self) -> str:
        return data_source_id(self.sac, self.sic)

    @property
    def is_measurement(self) -> bool:
        """A real detection with a measured position (not simulated, test or coasted)."""
        return (self.report_type != 0 and not self.simulated and not self.test
                and math.isfinite(self.range_m) and math.isfinite(self.azimuth_rad))

    def to_json(self) -> dict[str, Any]:
        return {
            "cat": 48, "t": self.t, "sensor": self.sensor_id,
            "time_of_day_s": _nan_none(self.time_of_day_s),
            "range_m": _nan_none(self.range_m),
            "azimuth_rad": _nan_none(self.azimuth_rad), "report_type": self.report_type,
            "simulated": self.simulated, "test": self.test,
            "fixed_transponder": self.fixed_transponder, "spi": self.spi,
            "mode3a": self.mode3a, "mode3a_valid": self.mode3a_valid,
            "pressure_altitude_m": _nan_none(self.pressure_altitude_m),
            "pressure_altitude_valid": self.pressure_altitude_valid,
            "icao_address": self.icao_address, "callsign": self.callsign,
            "track_number": self.track_number,
            "ground_speed_mps": _nan_none(self.ground_speed_mps),
            "heading_rad": _nan_none(self.heading_rad),
        }


@dataclass(frozen=True, slots=True)
class AdsbReport:
    """One CAT021 ADS-B target report, SI units (NaN where the record is silent).

    ``t``: time of applicability for position (I021/071), else of reception of position
    (073), of velocity (075), of transmission (077), else the receive time.
    ``address_type``: I021/040 ATP, 0 for a 24-bit ICAO address (−1 when 040 is absent).
    ``std_h_m``: horizontal 1σ from NACp (EPU/2.448) or, for DO-260 (version 0)
    transponders, NUCp; the worst class when neither says. ``std_v_m``: 1σ of the
    geometric height from GVA, else NACp's vertical bound, else no better than
    horizontally (and at least 150 m / 1.96). ``velocity_enu_mps``: east and north from
    the airborne ground vector (I021/160), up from the geometric (157) else barometric
    (155) vertical rate.
    """

    t: float
    sac: int
    sic: int
    lat_deg: float = math.nan
    lon_deg: float = math.nan
    geometric_height_m: float = math.nan
    pressure_altitude_m: float = math.nan
    icao_address: str = ""
    address_type: int = -1
    callsign: str = ""
    ecat: int = 0
    nucp_nic: int = -1
    nacp: int = -1
    gva: int = -1
    sil: int = -1
    mops_version: int = -1
    std_h_m: float = UNKNOWN_STD_H_M
    std_v_m: float = UNKNOWN_STD_H_M
    velocity_enu_mps: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    simulated: bool = False
    test: bool = False
    on_ground: bool = False

    @property
    def sensor_id(self) -> str:
        return data_source_id(self.sac, self.sic)

    @property
    def category(self) -> str:
        """The ADS-B emitter category (``"A3"``), empty when not given."""
        return ECAT_CATEGORY.get(self.ecat, "")

    @property
    def identity(self) -> str:
        """``icao:4840D6`` for a 24-bit ICAO address; empty for other address types."""
        return f"icao:{self.icao_address}" if self.icao_address and self.address_type in (
            -1, 0) else ""

    def to_position(self, *, pressure_altitude_std_m: float = 100.0,
                    pressure_altitude_std_fraction: float = 0.04) -> PositionReport | None:
        """The report as a ``PositionReport`` (height above the WGS84 ellipsoid), or None
        without a position or any height, or for a simulated or test target.

        Without a geometric height the pressure altitude stands in as height above mean
        sea level, converted with the EGM96 geoid; its σ is widened by
        ``pressure_altitude_std_m`` (QNH: ±12 hPa is ±100 m) and
        ``pressure_altitude_std_fraction`` of the height (temperature off standard).
        """
        if self.simulated or self.test or not (
                math.isfinite(self.lat_deg) and math.isfinite(self.lon_deg)):
            return None
        if math.isfinite(self.geometric_height_m):
            h, std_v = self.geometric_height_m, self.std_v_m
        elif math.isfinite(self.pressure_altitude_m):
            h = float(amsl_to_ellipsoid_m(self.pressure_altitude_m, self.lat_deg,
                                          self.lon_deg))
            std_v = math.hypot(pressure_altitude_std_m,
                               pressure_altitude_std_fraction * abs(self.pressure_altitude_m),
                               0.25 * FL_M / math.sqrt(12.0))
        else:
            return None
        return PositionReport(t=self.t, lat_deg=self.lat_deg, lon_deg=self.lon_deg,
                              height_m=h, std_h_m=self.std_h_m, std_v_m=std_v,
                              identity=self.identity, category=self.category,
                              velocity_enu_mps=self.velocity_enu_mps)

    def to_json(self) -> dict[str, Any]:
        return {
            "cat": 21, "t": self.t, "sensor": self.sensor_id,
            "lat_deg": _nan_none(self.lat_deg), "lon_deg": _nan_none(self.lon_deg),
            "geometric_height_m": _nan_none(self.geometric_height_m),
            "pressure_altitude_m": _nan_none(self.pressure_altitude_m),
            "icao_address": self.icao_address, "address_type": self.address_type,
            "identity": self.identity, "callsign": self.callsign, "category": self.category,
            "nucp_nic": self.nucp_nic, "nacp": self.nacp, "gva": self.gva, "sil": self.sil,
            "mops_version": self.mops_version, "std_h_m": self.std_h_m,
            "std_v_m": self.std_v_m,
            "velocity_enu_mps": [_nan_none(v) for v in self.velocity_enu_mps],
            "simulated": self.simulated, "test": self.test, "on_ground": self.on_ground,
        }


# --------------------------------------------------------------------------- records


def _plot(rec: _Rec048, t_ref: float) -> RadarPlot:
    i010 = rec.get_item("010")
    if i010 is None:
        raise _BadRecord("no data source (I048/010)")
    sac = i010.variation.get_item("SAC").as_uint()
    sic = i010.variation.get_item("SIC").as_uint()
    i140 = rec.get_item("140")
    tod = i140.variation.content.as_quantity("s") if i140 is not None else math.nan
    t = resolve_time_of_day(tod, t_ref) if math.isfinite(tod) else t_ref
    rng = az = math.nan
    i040 = rec.get_item("040")
    if i040 is not None:
        rng = i040.variation.get_item("RHO").variation.content.as_quantity("NM") * NM_M
        az = math.radians(i040.variation.get_item("THETA").variation.content.as_quantity("°"))
    typ, sim, test, rab, spi = 0, False, False, False, False
    i020 = rec.get_item("020")
    if i020 is not None:
        v020 = i020.variation
        typ = v020.get_item("TYP").as_uint()
        sim = v020.get_item("SIM").as_uint() == 1
        rab = v020.get_item("RAB").as_uint() == 1
        spi = v020.get_item("SPI").as_uint() == 1
        test = _sub(v020, "TST") == 1
    mode3a, m3_ok = "", False
    i070 = rec.get_item("070")
    if i070 is not None:
        v070 = i070.variation
        mode3a = v070.get_item("MODE3A").variation.content.as_string()
        m3_ok = v070.get_item("V").as_uint() == 0 and v070.get_item("G").as_uint() == 0
    alt, alt_ok = math.nan, False
    i090 = rec.get_item("090")
    if i090 is not None:
        v090 = i090.variation
        alt = v090.get_item("FL").variation.content.as_quantity("FL") * FL_M
        alt_ok = v090.get_item("V").as_uint() == 0 and v090.get_item("G").as_uint() == 0
    i220 = rec.get_item("220")
    i240 = rec.get_item("240")
    i161 = rec.get_item("161")
    gs = hdg = math.nan
    i200 = rec.get_item("200")
    if i200 is not None:
        gs = i200.variation.get_item("GSP").variation.content.as_quantity("NM/s") * NM_M
        hdg = math.radians(i200.variation.get_item("HDG").variation.content.as_quantity("°"))
    return RadarPlot(
        t=t, sac=sac, sic=sic, time_of_day_s=tod, range_m=rng, azimuth_rad=az,
        report_type=typ, simulated=sim, test=test, fixed_transponder=rab, spi=spi,
        mode3a=mode3a, mode3a_valid=m3_ok, pressure_altitude_m=alt,
        pressure_altitude_valid=alt_ok,
        icao_address=f"{i220.variation.as_uint():06X}" if i220 is not None else "",
        callsign=i240.variation.content.as_string().strip() if i240 is not None else "",
        track_number=i161.variation.get_item("TRN").as_uint() if i161 is not None else -1,
        ground_speed_mps=gs, heading_rad=hdg)


def _sub(variation: Any, name: str) -> int:
    """A subitem of an extended item as an integer, −1 when its extension is absent."""
    sub = variation.get_item(name)
    return -1 if sub is None else int(sub.as_uint())


def _vertical_rate(rec: _Rec021) -> float:
    """Geometric (I021/157) else barometric (155) vertical rate, m/s; NaN if neither is
    present within range."""
    i157 = rec.get_item("157")
    if i157 is not None and i157.variation.get_item("RE").as_uint() == 0:
        return i157.variation.get_item("GVR").variation.content.as_quantity("ft/min") \
            * FT_PER_MIN_MPS
    i155 = rec.get_item("155")
    if i155 is not None and i155.variation.get_item("RE").as_uint() == 0:
        return i155.variation.get_item("BVR").variation.content.as_quantity("ft/min") \
            * FT_PER_MIN_MPS
    return math.nan


def _adsb(rec: _Rec021, t_ref: float) -> AdsbReport:
    i010 = rec.get_item("010")
    if i010 is None:
        raise _BadRecord("no data source (I021/010)")
    sac = i010.variation.get_item("SAC").as_uint()
    sic = i010.variation.get_item("SIC").as_uint()
    t = t_ref
    for item in ("071", "073", "075", "077"):  # best first
        ti = rec.get_item(item)
        if ti is not None:
            t = resolve_time_of_day(ti.variation.content.as_quantity("s"), t_ref)
            break
    lat = lon = math.nan
    i131, i130 = rec.get_item("131"), rec.get_item("130")
    if i131 is not None:
        lat = i131.variation.get_item("LAT").variation.content.as_quantity("°")
        lon = i131.variation.get_item("LON").variation.content.as_quantity("°")
    elif i130 is not None:
        lat = i130.variation.get_item("LAT").variation.content.as_quantity("°")
        lon = i130.variation.get_item("LON").variation.content.as_quantity("°")
    h_geo = math.nan
    i140 = rec.get_item("140")
    # 0x7FFF is the "greater than 150 000 ft" indication, not a height.
    if i140 is not None and i140.variation.as_uint() != 0x7FFF:
        h_geo = i140.variation.content.as_quantity("ft") * FT_M
    i145 = rec.get_item("145")
    p_alt = i145.variation.content.as_quantity("FL") * FL_M if i145 is not None else math.nan
    atp, sim, test, gbs = -1, False, False, False
    i040 = rec.get_item("040")
    if i040 is not None:
        v040 = i040.variation
        atp = v040.get_item("ATP").as_uint()
        sim, test = _sub(v040, "SIM") == 1, _sub(v040, "TST") == 1
        gbs = _sub(v040, "GBS") == 1
    nucp_nic = nacp = gva = sil = -1
    i090 = rec.get_item("090")
    if i090 is not None:
        v090 = i090.variation
        nucp_nic = v090.get_item("NUCPNIC").as_uint()
        nacp, gva, sil = _sub(v090, "NACP"), _sub(v090, "GVA"), _sub(v090, "SIL")
    i210 = rec.get_item("210")
    version = i210.variation.get_item("VN").as_uint() if i210 is not None else -1
    std_h, std_v = _accuracy(nucp_nic, nacp, gva, version)
    ve = vn = math.nan
    i160 = rec.get_item("160")
    if i160 is not None and i160.variation.get_item("RE").as_uint() == 0:
        gs = i160.variation.get_item("GS").variation.content.as_quantity("NM/s") * NM_M
        ta = math.radians(i160.variation.get_item("TA").variation.content.as_quantity("°"))
        ve, vn = gs * math.sin(ta), gs * math.cos(ta)
    vu = _vertical_rate(rec)
    i080 = rec.get_item("080")
    i170 = rec.get_item("170")
    i020 = rec.get_item("020")
    return AdsbReport(
        t=t, sac=sac, sic=sic, lat_deg=lat, lon_deg=lon, geometric_height_m=h_geo,
        pressure_altitude_m=p_alt,
        icao_address=f"{i080.variation.as_uint():06X}" if i080 is not None else "",
        address_type=atp,
        callsign=i170.variation.content.as_string().strip() if i170 is not None else "",
        ecat=i020.variation.as_uint() if i020 is not None else 0,
        nucp_nic=nucp_nic, nacp=nacp, gva=gva, sil=sil, mops_version=version,
        std_h_m=std_h, std_v_m=std_v, velocity_enu_mps=(ve, vn, vu), simulated=sim,
        test=test, on_ground=gbs)


def _accuracy(nucp_nic: int, nacp: int, gva: int, version: int) -> tuple[float, float]:
    """1σ horizontal and vertical (geometric height) from the quality indicators.

    The first field of I021/090 is NUCp for DO-260 (version 0) and NIC after it; NACp
    exists from version 1. With no version (I021/210 absent), a present NACp decides.
    """
    bound = None
    if nacp >= 0 and version != 0:
        bound = NACP_EPU_M.get(nacp)
    elif version == 0 or (version < 0 and nacp < 0):
        bound = NUCP_95_M.get(nucp_nic)
    std_h = bound / R95_2D if bound is not None else UNKNOWN_STD_H_M
    vbound = GVA_95_M.get(gva) or NACP_VEPU_M.get(nacp)
    std_v = vbound / R95_1D if vbound is not None else max(std_h, GVA_95_M[1] / R95_1D)
    return std_h, std_v


class _BadRecord(Exception):
    """A record the codec parsed but that skyfence cannot use: never seen outside."""


def decode_block(block: bytes, *, t: float, offset: int = 0
                 ) -> list[RadarPlot | AdsbReport | Rejected]:
    """One data block (``CAT``, ``LEN``, records; ``LEN == len(block)``) → its messages.

    ``t``: receive time (Unix seconds) that resolves the day of the time-of-day items;
    ``offset``: the block's place in the stream, for rejections. Records up to a bad one
    come out; the bad one and the rest of the block become one ``Rejected``. Blocks of
    categories other than 21 and 48 become one ``Rejected`` each.
    """
    cat = block[0]
    if cat not in DECODED_CATEGORIES:
        return [Rejected(offset, f"unsupported category: CAT{cat:03d} block of {len(block)} "
                         "bytes (read: CAT021, CAT048)", block[:SHOWN_BYTES])]
    spec: Any = _Cat048 if cat == 48 else _Cat021
    convert = _plot if cat == 48 else _adsb
    out: list[RadarPlot | AdsbReport | Rejected] = []
    body = block[3:]
    bits = Bits.from_bytes(body)
    n_bits = len(bits)
    k = 0
    while len(bits):
        at = (n_bits - len(bits)) // 8
        try:
            result = spec.cv_record.parse(ParsingMode.StrictParsing, bits)
            if isinstance(result, ValueError):
                raise _BadRecord(str(result))
            rec, bits = result
            out.append(convert(rec, t))
        # The codec and the record meaning both fail by raising in rare paths; one bad
        # record must not stop the stream.
        except Exception as err:
            out.append(Rejected(offset + 3 + at, f"bad record: CAT{cat:03d} record {k} at "
                                f"byte {3 + at} of the block: {err}",
                                body[at:at + SHOWN_BYTES]))
            break
        k += 1
    return out


# --------------------------------------------------------------------------- stream


class AsterixDecoder:
    """A StreamDecoder over a byte stream (TCP, file) or datagrams (UDP) of ASTERIX data
    blocks: ``RadarPlot`` and ``AdsbReport`` messages out, and ``Rejected`` for bad
    length, truncated blocks, unsupported categories, garbage and records that do not
    parse, each with its stream offset; decoding resynchronises on the next plausible
    block.

    ``clock``: receive time when ``feed`` is given none (Unix seconds; replace it for
    replays that have no capture times). ``skip_categories``: blocks passed over
    without a rejection (counted in ``skipped``), by default the service messages of
    the ADS-B ground station (CAT023) and of the radar (CAT034).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 skip_categories: Collection[int] = SERVICE_CATEGORIES) -> None:
        self.clock = clock
        self.skip_categories = frozenset(skip_categories)
        self.counters = Counters()
        #: Blocks passed over, by category.
        self.skipped: Counter[int] = Counter()
        self._buf = b""
        self._offset = 0  # stream offset of self._buf[0]
        # In step: the buffer starts where a block ended (or the stream began).
        self._synced = True
        self._garbage: _Garbage | None = None
        self._t: float | None = None  # the last receive time given

    def feed(self, data: bytes, *, t: float | None = None) -> list[Message | Rejected]:
        """Bytes in any chunking; ``t`` their receive time (Unix seconds, default now)."""
        self.counters.bytes_in += len(data)
        self._buf += data
        self._t = self.clock() if t is None else t
        return self._drain(self._t, final=False)

    def feed_datagram(self, data: bytes, *, t: float | None = None
                      ) -> list[Message | Rejected]:
        """One UDP datagram: whole blocks; a block cut short at its end is rejected
        rather than completed from the next datagram."""
        if not self._buf:
            self._synced = True  # a datagram starts with a block
        out = self.feed(data, t=t)
        out += self._drain(self._receive_time(), final=True)
        return out

    def close(self) -> list[Message | Rejected]:
        return self._drain(self._receive_time(), final=True)

    def _receive_time(self) -> float:
        return self.clock() if self._t is None else self._t

    def _reject(self, offset: int, reason: str, data: bytes) -> Rejected:
        self.counters.reject(reason)
        return Rejected(offset, reason, data[:SHOWN_BYTES])

    def _flush_garbage(self, end: int) -> list[Message | Rejected]:
        g, self._garbage = self._garbage, None
        if g is None:
            return []
        return [self._reject(g.start, f"{g.reason} ({end - g.start} bytes skipped)",
                             bytes(g.head))]

    def _confirmed(self, p: int, final: bool) -> bool | None:
        """Is the header at ``p`` the start of a run of ``RESYNC_LINKS`` + 1 plausible
        block headers, each where the one before ends (or does the run end exactly at
        the end of the data)? None: not enough data to tell yet."""
        buf, q = self._buf, p
        for link in range(RESYNC_LINKS + 1):
            if link and q == len(buf) and final:
                return True
            if q + 3 > len(buf):
                return False if final else None
            n = (buf[q + 1] << 8) | buf[q + 2]
            if not (buf[q] in KNOWN_CATEGORIES and MIN_BLOCK_BYTES <= n
                    <= MAX_RESYNC_BLOCK_BYTES):
                return False
            q += n
        return True

    def _drain(self, t: float, *, final: bool) -> list[Message | Rejected]:
        out: list[Message | Rejected] = []
        buf = self._buf
        p = 0
        while len(buf) - p >= 3:
            cat, n = buf[p], (buf[p + 1] << 8) | buf[p + 2]
            ok = cat in KNOWN_CATEGORIES and n >= MIN_BLOCK_BYTES
            if ok and not self._synced:
                confirmed = self._confirmed(p, final)
                if confirmed is None:
                    break
                ok = confirmed
            if ok and p + n > len(buf):
                if not final:
                    break
                ok = False  # cut short by the end of the data
            if not ok:
                self._skip(p, _garbage_reason(cat, n, len(buf) - p, final))
                p += 1
                continue
            out += self._flush_garbage(self._offset + p)
            out += self._block(buf[p:p + n], t, self._offset + p)
            p += n
            self._synced = True
        if final:
            for q in range(p, len(buf)):
                self._skip(q, f"truncated block: {len(buf) - p} bytes, less than a header")
            p = len(buf)
            out += self._flush_garbage(self._offset + p)
        self._buf = buf[p:]
        self._offset += p
        return out

    def _skip(self, p: int, reason: str) -> None:
        """Byte ``p`` of the buffer is not the start of a block."""
        if self._garbage is None:
            self._garbage = _Garbage(self._offset + p, reason, bytearray())
        if len(self._garbage.head) < SHOWN_BYTES:
            self._garbage.head.append(self._buf[p])
        self._synced = False

    def _block(self, block: bytes, t: float, offset: int) -> list[Message | Rejected]:
        cat = block[0]
        if cat in self.skip_categories:
            self.skipped[cat] += 1
            return []
        out: list[Message | Rejected] = []
        for m in decode_block(block, t=t, offset=offset):
            if isinstance(m, Rejected):
                self.counters.reject(m.reason)
            else:
                self.counters.accepted += 1
            out.append(m)
        return out


@dataclass(slots=True)
class _Garbage:
    """A run of bytes being skipped: where it started, why, and its first bytes."""

    start: int
    reason: str
    head: bytearray


def _garbage_reason(cat: int, n: int, left: int, final: bool) -> str:
    if cat in KNOWN_CATEGORIES:
        if n < MIN_BLOCK_BYTES:
            return f"bad length: CAT{cat:03d} block declares LEN {n}"
        if final and n > left:
            return f"truncated block: CAT{cat:03d} LEN {n}, {left} bytes left"
        if n > MAX_RESYNC_BLOCK_BYTES:
            return (f"bad length: CAT{cat:03d} block declares LEN {n}, more than "
                    f"{MAX_RESYNC_BLOCK_BYTES} while resynchronising")
        return (f"bad length: CAT{cat:03d} block of LEN {n} is not followed by "
                "plausible blocks")
    return f"garbage: {cat} is not an ASTERIX category"


async def listen_udp(host: str, port: int, decoder: AsterixDecoder,
                     on_output: Callable[[list[Message | Rejected]], None], *,
                     interface: str = "0.0.0.0",
                     on_ready: Callable[[tuple[str, int]], None] | None = None) -> None:
    """Receive ASTERIX datagrams on ``host:port`` until cancelled; each one's messages
    and rejections go to ``on_output``, stamped with the time they arrived.

    A multicast ``host`` (224.0.0.0/4) is joined on ``interface``; ``on_ready`` is told
    the bound address (useful with port 0).
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            multicast = ipaddress.ip_address(host).is_multicast
        except ValueError:  # a host name
            multicast = False
        sock.bind(("" if multicast else host, port))
        if multicast:
            mreq = struct.pack("4s4s", socket.inet_aton(host), socket.inet_aton(interface))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise

    class _Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
            out = decoder.feed_datagram(data, t=time.time())
            if out:
                on_output(out)

    transport, _ = await loop.create_datagram_endpoint(_Protocol, sock=sock)
    try:
        if on_ready is not None:
            on_ready(sock.getsockname())
        await asyncio.Future()  # until cancelled
    finally:
        transport.close()


# --------------------------------------------------------------------------- into skyfence


def plot_detections(plots: Iterable[RadarPlot], scenario: Scenario) -> Detections:
    """CAT048 plots as ``radar2d`` detections: z = (range_m, azimuth_rad, 0), R from the
    sensor's noise. The sensor is the scenario's sensor whose id is the radar's
    ``data_source_id`` (``asterix:25/201``); plots of other radars, and ones that are no
    measurement (simulated, test, no detection, no position), are left out.

    Raises ``InputError`` when that sensor is not declared ``radar2d``.
    """
    index = scenario.sensor_index()
    t: list[float] = []
    sensor: list[int] = []
    z: list[tuple[float, float, float]] = []
    for p in plots:
        k = index.get(p.sensor_id)
        if k is None or not p.is_measurement:
            continue
        t.append(p.t)
        sensor.append(k)
        z.append((p.range_m, p.azimuth_rad, 0.0))
    if not t:
        return Detections.empty()
    for k in set(sensor):
        spec = scenario.sensors[k]
        if spec.kind != "radar2d":
            raise InputError(
                f"sensor {spec.id!r} is a {spec.kind} sensor, but CAT048 measures range and "
                "azimuth only", field=f"sensors[{k}].kind",
                fix="declare it radar2d (the Mode C height is barometric, not an elevation)")
    sensor_arr = np.asarray(sensor, dtype=np.int32)
    R = np.stack([scenario.sensors[k].R for k in range(len(scenario.sensors))])[sensor_arr]
    return Detections(t=np.asarray(t, dtype=np.float64), sensor=sensor_arr,
                      z=np.asarray(z, dtype=np.float64), R=R)


def position_reports(messages: Iterable[object], *, pressure_altitude_std_m: float = 100.0,
                     pressure_altitude_std_fraction: float = 0.04) -> list[PositionReport]:
    """The ``PositionReport`` of every ``AdsbReport`` among ``messages`` that has one
    (see ``AdsbReport.to_position``); feed them to ``position_detections``."""
    out = []
    for m in messages:
        if isinstance(m, AdsbReport):
            r = m.to_position(pressure_altitude_std_m=pressure_altitude_std_m,
                              pressure_altitude_std_fraction=pressure_altitude_std_fraction)
            if r is not None:
                out.append(r)
    return out


# --------------------------------------------------------------------------- CAT062 out

#: WGS84 semi-major axis and first eccentricity squared, for metres → degrees.
_A_M = 6378137.0
_E2 = 6.69437999014e-3
#: Vertical speeds within this count as level flight in I062/200.
LEVEL_RATE_MPS = 1.0


def _clip(x: float, lo: int, hi: int) -> int:
    return int(min(max(round(x), lo), hi))


def _ceil_u(x: float, bits: int) -> int:
    """An accuracy to an unsigned field, rounded up and saturated (never understated)."""
    hi = (1 << bits) - 1
    return hi if not math.isfinite(x) else int(min(max(math.ceil(x - 1e-9), 0), hi))


def _icao_chars(s: str) -> str | None:
    s = s.upper()
    if len(s) > 8 or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 " for c in s):
        return None
    return s.ljust(8)


def encode_cat062(tracks: Tracks, *, t: float, origin: Origin, sac: int, sic: int,
                  service_id: int | None = None,
                  callsigns: Mapping[str, str] | None = None,
                  sensor_kinds: Sequence[str] | None = None,
                  max_block_bytes: int = 1472) -> list[bytes]:
    """Tracks as CAT062 (edition 1.20) system track data blocks, each at most
    ``max_block_bytes`` long (one UDP datagram each).

    ``t``: the time the states hold for (Unix seconds) → I062/070. Per track: data
    source ``sac``/``sic`` (010), service ``service_id`` (015, when given), WGS84
    position (105) and the ENU east/north of ``origin`` as the cartesian position (100:
    the system reference point is ``origin``, the plane its local tangent plane, not a
    stereographic projection — within a metre inside 50 km; use 105 for exact
    positions), velocity (185), track number = id mod 2¹⁶ (040), status (080: mono/multi-
    sensor, tentative, coasting, spoof suspect as "ADS-B inconsistent", cooperative/non-
    cooperative), mode of movement (200: vertical from the climb rate against its σ;
    transversal constant course when the motion model is not manoeuvring, otherwise
    undetermined), WGS84 ellipsoidal height (130), rate of climb (220), target address,
    identification from ``callsigns`` (by identity) and emitter category (380) for ICAO
    identities, and 1σ accuracies from ``P`` (500), rounded up and saturated.
    ``sensor_kinds`` (the scenario's sensor kinds by index) gives the source of the
    height in 080; without it a track with an identity is said to have a GNSS height.
    Tracks with a non-finite state are left out.
    """
    if not (0 <= sac <= 255 and 0 <= sic <= 255):
        raise SkyfenceError(f"SAC/SIC {sac}/{sic} outside 0..255")
    if service_id is not None and not 0 <= service_id <= 255:
        raise SkyfenceError(f"service id {service_id} outside 0..255")
    if not 256 <= max_block_bytes <= 65535:
        raise SkyfenceError(f"max_block_bytes {max_block_bytes} outside 256..65535 (a "
                            "record takes up to ~100 bytes, LEN is 16 bits)")
    if len(tracks) == 0:
        return []
    ok = np.all(np.isfinite(tracks.x), axis=1)
    x, P = tracks.x, tracks.P
    lat, lon, h = origin.enu_to_geodetic(x[:, :3])
    tod_raw = round((t % DAY_S) * 128) % round(DAY_S * 128)
    records: list[bytes] = []
    for i in np.flatnonzero(ok):
        records.append(_track_record(tracks, int(i), float(lat[i]), float(lon[i]),
                                     float(h[i]), x[i], P[i], sac=sac, sic=sic,
                                     service_id=service_id, tod_raw=tod_raw,
                                     callsigns=callsigns or {}, sensor_kinds=sensor_kinds))
    blocks: list[bytes] = []
    body = b""
    for r in records:
        if body and 3 + len(body) + len(r) > max_block_bytes:
            blocks.append(bytes([62]) + (3 + len(body)).to_bytes(2, "big") + body)
            body = b""
        body += r
    if body:
        blocks.append(bytes([62]) + (3 + len(body)).to_bytes(2, "big") + body)
    return blocks


def _altitude_source(sources: int, identity: str, kinds: Sequence[str] | None) -> int:
    """I062/080 SRC: 1 GNSS, 2 3D radar, 3 triangulation, 6 default height, 0 none."""
    if kinds is None:
        return 1 if identity else 0
    used = {kinds[b] for b in range(min(len(kinds), 64)) if sources >> b & 1}
    if used & {"cooperative", "track"}:
        return 1
    if used & {"radar", "position"}:
        return 2
    if "bearing" in used:
        return 3
    return 6 if "radar2d" in used else 0


def _track_record(tr: Tracks, i: int, lat: float, lon: float, h: float, x: Any, P: Any, *,
                  sac: int, sic: int, service_id: int | None, tod_raw: int,
                  callsigns: Mapping[str, str], sensor_kinds: Sequence[str] | None) -> bytes:
    identity = str(tr.identity[i])
    flags = int(tr.flags[i])
    status = int(tr.status[i])
    sources = int(tr.sources[i])
    sds = 2 if not identity else (1 if flags & TrackFlag.COOPERATIVE_ONLY else 0)
    i080 = (
        (("MON", 1 if sources.bit_count() == 1 else 0), ("SPI", 0), ("MRH", 1),
         ("SRC", _altitude_source(sources, identity, sensor_kinds)),
         ("CNF", 1 if status == TrackStatus.TENTATIVE else 0), None),
        (("SIM", 0), ("TSE", 0), ("TSB", 0), ("FPC", 0),
         ("AFF", 1 if flags & TrackFlag.SPOOF_SUSPECT else 0), ("STP", 0), ("KOS", 0), None),
        (("AMA", 0), ("MD4", 0), ("ME", 0), ("MI", 0), ("MD5", 0), None),
        (("CST", 1 if status == TrackStatus.COASTING else 0), ("PSR", 0), ("SSR", 0),
         ("MDS", 0), ("ADS", 0), ("SUC", 0), ("AAC", 0), None),
        (("SDS", sds), ("EMS", 0), ("PFT", 0), ("FPLT", 0), None),
    )
    var = np.diag(P)
    sd = np.sqrt(np.maximum(var, 0.0))
    vz, sd_vz = float(x[5]), float(sd[5])
    if abs(vz) >= LEVEL_RATE_MPS and abs(vz) >= 2.0 * sd_vz:
        vert = 1 if vz > 0 else 2
    else:
        vert = 0 if 2.0 * sd_vz <= LEVEL_RATE_MPS and abs(vz) < LEVEL_RATE_MPS else 3
    trans = 0 if float(tr.manoeuvre_p[i]) < 0.5 else 3
    items: dict[str, Any] = {
        "010": (("SAC", sac), ("SIC", sic)),
        "070": tod_raw,
        "105": (("LAT", _clip(lat * 2**25 / 180.0, -(2**31), 2**31 - 1)),
                ("LON", _clip(lon * 2**25 / 180.0, -(2**31), 2**31 - 1))),
        "100": (("X", _clip(x[0] / 0.5, -(2**23), 2**23 - 1)),
                ("Y", _clip(x[1] / 0.5, -(2**23), 2**23 - 1))),
        "185": (("VX", _clip(x[3] / 0.25, -(2**15), 2**15 - 1)),
                ("VY", _clip(x[4] / 0.25, -(2**15), 2**15 - 1))),
        "040": int(tr.id[i]) % 65536,
        "080": i080,
        "200": (("TRANS", trans), ("LONG", 3), ("VERT", vert), ("ADF", 0), 0),
        # The specified range, −1 500 … 150 000 ft.
        "130": _clip(h / FT_M / 6.25, -240, 24000),
        "220": _clip(vz / FT_PER_MIN_MPS / 6.25, -(2**15), 2**15 - 1),
    }
    if service_id is not None:
        items["015"] = service_id
    i380: dict[str, Any] = {}
    address = identity[5:] if identity.startswith("icao:") else ""
    if len(address) == 6 and all(c in "0123456789abcdefABCDEF" for c in address):
        i380["ADR"] = int(address, 16)
        callsign = _icao_chars(callsigns.get(identity, ""))
        if callsign is not None and callsign.strip():
            i380["ID"] = callsign
        ecat = CATEGORY_ECAT.get(str(tr.category[i]))
        if ecat is not None:
            i380["EMC"] = ecat
    if i380:
        items["380"] = i380
    if np.all(np.isfinite(P)):
        cov = float(P[0, 1])
        s_lat = math.sin(math.radians(lat))
        w = math.sqrt(1.0 - _E2 * s_lat * s_lat)
        # Metres per radian of latitude and of longitude, at the track's height.
        m_rad = _A_M * (1.0 - _E2) / w**3 + h
        n_rad = (_A_M / w + h) * max(math.cos(math.radians(lat)), 1e-9)
        to_apw = math.degrees(1.0) * 2**25 / 180.0
        items["500"] = {
            "APC": (("X", _ceil_u(sd[0] / 0.5, 16)), ("Y", _ceil_u(sd[1] / 0.5, 16))),
            # The spec's covariance component: sign(cov)·√|cov|, in metres.
            "COV": _clip(math.copysign(math.sqrt(abs(cov)), cov) / 0.5, -(2**15), 2**15 - 1),
            "APW": (("LAT", _ceil_u(sd[1] / m_rad * to_apw, 16)),
                    ("LON", _ceil_u(sd[0] / n_rad * to_apw, 16))),
            "AGA": _ceil_u(sd[2] / FT_M / 6.25, 8),
            "ATV": (("X", _ceil_u(sd[3] / 0.25, 8)), ("Y", _ceil_u(sd[4] / 0.25, 8))),
            "ARC": _ceil_u(sd_vz / FT_PER_MIN_MPS / 6.25, 8),
        }
    # The codec's per-item argument types are exact literals; the layout is checked when
    # the record is built (and by the round-trip tests through an independent decoder).
    rec = _Cat062.cv_record.create(cast(Any, items))
    return bytes(rec.unparse().to_bytes())
