"""Scenario presets and :func:`build`.

Every preset is placed near Zurich (where one of the recorded crewed flights was
flown), starts at 2024-06-01T12:00:00Z, and puts its radar 20 m above the ground at
the ENU origin. ``n_targets`` scales each preset's main population.

Per-target traits the sensors need, written into the ``simulator`` block of
``scenario.json`` when a sensor uses them: ``rf_emitters`` (ids of the targets an RF
direction finder can locate, from their kind: see ``bearing.EMITS_RF``) when there is
an RF sensor; ``transmitters`` (see :mod:`skyfence.sim.cooperative`) and
``spoofers`` (ids of the targets whose transmitter lies) when there is a cooperative
sensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from skyfence.errors import InputError
from skyfence.geo import EARTH_RADIUS_M, Origin
from skyfence.scenario import Region, Scenario, SensorSpec, StateTable
from skyfence.sim import bearing, position, radar
from skyfence.sim.cooperative import (
    RID_UA_TYPE,
    Transmitter,
    Transmitters,
    icao_identity,
    remote_id_identity,
)
from skyfence.sim.crewed import RECORDINGS, load_recording, replay
from skyfence.sim.motion import TargetStates
from skyfence.sim.result import SimResult
from skyfence.sim.seeding import stream
from skyfence.sim.sensors import observe, scan_times
from skyfence.sim.swarm import swarm
from skyfence.sim.targets import (
    AIRLINER,
    FAST_LOW_FLYER,
    FIXED_WING,
    AircraftClass,
    aircraft,
    multirotors,
    on_ring,
    uniform_in_box,
)
from skyfence.types import F64, I64

#: 2024-06-01T12:00:00Z, the start of every preset.
START_S = 1717243200.0
START_ISO = "2024-06-01T12:00:00Z"
#: Near Zurich airport; the ground there is ~430 m above sea level, ~480 m above the
#: WGS84 ellipsoid.
ZURICH = Origin(lat_deg=47.45, lon_deg=8.56, alt_m=480.0)
RADAR_HEIGHT_M = 20.0
#: The longest scenario ``build`` accepts (s): memory grows with duration × targets.
MAX_DURATION_S = 3600.0
DEG = math.pi / 180.0

PRESETS: dict[str, str] = {
    "spread": "N drones (60% multirotor, 40% fixed-wing) over N km² (at least 16), "
              "one 3-D radar, 1 s scans, pd 0.9, 10 clutter/scan; N=20, 60 s",
    "swarm": "one swarm of N drones 10-50 m apart approaching a radar and splitting in two "
             "halfway, 1 s scans, pd 0.9, 10 clutter/scan; N=30, 90 s",
    "crewed": "N replayed crewed flights (rescue helicopters, border patrol) with ADS-B and a "
              "fast low flyer rising over the radar horizon, radar 4 s scans, 5 clutter/scan, "
              "ADS-B receiver; N=3, 120 s",
    "long_range": "N airliners at 230-260 m/s, 60-80 km from a radar, 4 s scans, "
                  "10 clutter/scan; N=20, 120 s",
    "mixed": "demo: a swarm of N approaching, a fast low flyer, 5 multirotors, 3 fixed-wings, "
             "3 crewed replays with ADS-B; radar 1 s, position sensor 1.5 s, ADS-B receiver; "
             "N=30, 120 s",
    "low_flyer": "N fixed-wing drones at 30-60 m flying in from ~8 km and a fast low flyer "
                 "at 40-60 m from 10 km, under the lowest beam of a radar on a 20 m mast "
                 "(0.4° up) until close in, but inside the cover of 3 RF direction finders "
                 "(azimuth, 1.5°, 9 km: drones only) and 2 EO cameras (azimuth and "
                 "elevation, 0.2°, 5.5 km); clutter on every sensor; N=6, 180 s",
    "spoofing": "N Remote ID multirotors reporting honestly and one whose Remote ID lies "
                "by 500 m, 2 crewed replays with ADS-B, all in cover of a radar (1 s), a "
                "Remote ID receiver and an ADS-B receiver; N=8, 120 s",
    "fusion": "N drones spread as in 'spread', seen by a 3-D radar (1 s), a 2-D radar (2 s), "
              "an RF direction finder (1 s) and a Remote ID receiver hearing half the "
              "drones (1 s); N=20, 60 s",
    "demo": "the built-in demo over Zurich: a swarm of N approaching a defended stadium, a "
            "fast low flyer under the radar beam, a Remote ID drone flying legally in an "
            "authorisation zone, a dark drone entering a prohibited zone, the REGA flight "
            "recorded over Zurich replayed with ADS-B; a radar, 3 RF direction finders, 2 EO "
            "cameras, Remote ID and ADS-B receivers (zones and site: "
            "skyfence.sim.demo.demo_files()); N=30, 300 s",
}

_DEFAULTS: dict[str, tuple[int, float]] = {
    "spread": (20, 60.0),
    "swarm": (30, 90.0),
    "crewed": (3, 120.0),
    "long_range": (20, 120.0),
    "mixed": (30, 120.0),
    "low_flyer": (6, 180.0),
    "spoofing": (8, 120.0),
    "fusion": (20, 60.0),
    "demo": (30, 300.0),
}

#: Fixed-wing drones in a hurry, low: 40-60 m/s, heights held within 10 m.
LOW_FIXED_WING = AircraftClass(
    speed_mps=(40.0, 60.0), height_m=(30.0, 60.0), height_amp_m=(0.0, 10.0),
    height_period_s=(40.0, 120.0), policy=FIXED_WING.policy,
)

Notes = list[dict[str, Any]]
Make = Callable[[F64, np.random.Generator], tuple[TargetStates, Notes]]
#: (the group's target ids, its notes, rng) → the transmitters some of them carry.
Transmit = Callable[[I64, Notes, np.random.Generator], Transmitters]


@dataclass(frozen=True, slots=True)
class _Group:
    kind: str
    stream: str
    make: Make  # (seconds since the start, rng) → states, per-target notes
    #: Which targets carry a transmitter (none when None); draws from the stream
    #: ``<preset>/<stream>/transmitters``.
    transmit: Transmit | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    scenario: Scenario
    groups: tuple[_Group, ...]


def _plain(states: TargetStates) -> tuple[TargetStates, Notes]:
    return states, []


def _drone_radar(max_range_m: float) -> SensorSpec:
    return SensorSpec(
        id="radar", kind="radar", position_enu_m=(0.0, 0.0, RADAR_HEIGHT_M), pd=0.9,
        noise_std=(5.0, 0.005, 0.008), clutter_per_scan=10.0, max_range_m=max_range_m,
        min_elevation_rad=-0.05, scan_period_s=1.0,
    )


def _surveillance_radar(clutter_per_scan: float) -> SensorSpec:
    return SensorSpec(
        id="radar", kind="radar", position_enu_m=(0.0, 0.0, RADAR_HEIGHT_M), pd=0.9,
        noise_std=(25.0, 0.0035, 0.005), clutter_per_scan=clutter_per_scan,
        max_range_m=120_000.0, min_elevation_rad=-0.02, scan_period_s=4.0,
    )


def _square_region(half_m: float, top_m: float) -> Region:
    # The ground drops below the ENU plane away from the origin: d²/2R at the corners.
    drop = (half_m * math.sqrt(2.0)) ** 2 / (2.0 * EARTH_RADIUS_M)
    return Region(east_m=(-half_m, half_m), north_m=(-half_m, half_m),
                  up_m=(-float(math.ceil(drop + 20.0)), top_m))


# --------------------------------------------------------------------------- group makers


def _multirotor_group(n: int, lo: tuple[float, float, float],
                      hi: tuple[float, float, float], *,
                      transmit: Transmit | None = None) -> _Group:
    def make(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
        start = uniform_in_box(rng, n, lo, hi)
        return _plain(multirotors(ZURICH, times, rng, start=start, box_lo=np.array(lo),
                                  box_hi=np.array(hi)))
    return _Group("multirotor", "multirotor", make, transmit)


def _fixed_wing_group(n: int, half_m: float, keep_in_m: float, *,
                      transmit: Transmit | None = None) -> _Group:
    def make(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
        start = uniform_in_box(rng, n, (-half_m, -half_m), (half_m, half_m))
        policy = replace(FIXED_WING.policy, keep_in_radius_m=keep_in_m)
        return _plain(aircraft(ZURICH, times, rng, FIXED_WING, start_en_m=start, policy=policy))
    return _Group("fixed_wing", "fixed_wing", make, transmit)


def _inbound_fixed_wing_group(n: int, range_m: tuple[float, float],
                              height_m: tuple[float, float]) -> _Group:
    """Fixed-wing drones starting on a ring around the origin and flying in towards it,
    weaving within 15° of the inbound course."""
    def make(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
        start, bearing_rad = on_ring(rng, n, range_m)
        policy = replace(FIXED_WING.policy, course_spread_rad=15 * DEG)
        return _plain(aircraft(ZURICH, times, rng, LOW_FIXED_WING, start_en_m=start,
                               course_rad=bearing_rad + math.pi, policy=policy,
                               height_m=height_m))
    return _Group("fixed_wing", "inbound_fixed_wing", make)


def _swarm_group(n: int, range_m: float, split_s: float) -> _Group:
    def make(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
        centre, bearing = on_ring(rng, 1, (range_m, range_m))
        truth = swarm(ZURICH, times, rng, n_drones=n, center_en_m=(centre[0, 0], centre[0, 1]),
                      course_rad=float(bearing[0]) + math.pi, split_s=split_s)
        return _plain(truth.states)
    return _Group("swarm", "swarm", make)


def _fast_flyer_group(range_m: tuple[float, float], *, inbound: bool,
                      height_m: tuple[float, float] | None = None) -> _Group:
    """One fast low flyer: flying towards the origin, or across its line of sight."""
    def make(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
        start, bearing = on_ring(rng, 1, range_m)
        side = 1.0 if rng.random() < 0.5 else -1.0
        course = bearing + (math.pi if inbound else side * math.pi / 2)
        return _plain(aircraft(ZURICH, times, rng, FAST_LOW_FLYER, start_en_m=start,
                               course_rad=course, height_m=height_m))
    return _Group("fast_low_flyer", "fast_low_flyer", make)


def _airliner_group(n: int, duration_s: float) -> _Group:
    def make(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
        mid, bearing = on_ring(rng, n, (62_000.0, 78_000.0))
        side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        course = bearing + side * math.pi / 2 + rng.normal(0.0, 10 * DEG, n)
        # Centred on the ring mid-way through the scenario, at a typical speed.
        half_leg = 0.5 * duration_s * float(np.mean(AIRLINER.speed_mps))
        start = mid - half_leg * np.stack([np.sin(course), np.cos(course)], axis=-1)
        policy = replace(AIRLINER.policy, course_spread_rad=10 * DEG)
        return _plain(aircraft(ZURICH, times, rng, AIRLINER, start_en_m=start,
                               course_rad=course, policy=policy))
    return _Group("crewed", "airliner", make)


def _crewed_group(names: tuple[str, ...], duration_s: float,
                  moved_range_m: tuple[float, float], *,
                  transmit: Transmit | None = None) -> _Group:
    def make(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
        truth = replay(ZURICH, START_S + times, rng, names=names, t_start=START_S,
                       duration_s=duration_s, moved_range_m=moved_range_m)
        notes = [
            {"recording": name, "callsign": load_recording(name).callsign, "moved": moved}
            for name, moved in truth.sources
        ]
        return truth.states, notes
    return _Group("crewed", "crewed", make, transmit)


def _recordings(n: int) -> tuple[str, ...]:
    names = tuple(RECORDINGS)
    return tuple(names[i % len(names)] for i in range(n))


# --------------------------------------------------------------------------- transmitters

#: Reported accuracy (1σ, m) of a Remote ID drone: ASTM F3411 horizontal accuracy
#: "< 10 m" and vertical "< 10 m" at 95 %.
RID_STD_H_M, RID_STD_V_M = 4.0, 5.0
#: Reported accuracy (1σ, m) of an ADS-B aircraft: NACp 9 (EPU < 30 m at 95 %) and a
#: geometric altitude good to ~30 m at 95 %.
ADSB_STD_H_M, ADSB_STD_V_M = 12.0, 15.0
#: How far the lying Remote ID of the spoofing preset puts itself from the truth (m).
SPOOF_OFFSET_M = 500.0


def _remote_id(kind: str, *, every: int = 1, liars: int = 0,
               lie_m: float = SPOOF_OFFSET_M) -> Transmit:
    """Remote ID on every ``every``-th target of a drone group; the last ``liars`` of
    those report a position ``lie_m`` away horizontally, in a random direction,
    from their first report on. Serials are numbered by target id."""
    def transmit(ids: I64, notes: Notes, rng: np.random.Generator) -> Transmitters:
        carriers = ids[::every]
        direction = rng.uniform(0.0, 2 * math.pi, size=carriers.size)
        lies = np.arange(carriers.size) >= carriers.size - liars
        offset = np.where(lies[:, None], lie_m * np.stack(
            [np.sin(direction), np.cos(direction), np.zeros(carriers.size)], axis=-1), 0.0)
        return Transmitters.of([
            Transmitter(target=int(t), identity=remote_id_identity(int(t)),
                        category=RID_UA_TYPE[kind], std_h_m=RID_STD_H_M, std_v_m=RID_STD_V_M,
                        offset_m=(float(o[0]), float(o[1]), float(o[2])))
            for t, o in zip(carriers, offset, strict=True)
        ])
    return transmit


def _adsb_crewed(ids: I64, notes: Notes, rng: np.random.Generator) -> Transmitters:
    """ADS-B on every crewed replay, with its recording's ICAO address and the emitter
    category of its type. A recording replayed again is another aircraft: its k-th
    repeat gets the address with k added to its top four bits."""
    rows: list[Transmitter] = []
    seen: dict[str, int] = {}
    for t, note in zip(ids, notes, strict=True):
        name = str(note["recording"])
        repeat = seen.get(name, 0)
        seen[name] = repeat + 1
        address = int(load_recording(name).icao24 or "0", 16)
        address = (address + (repeat << 20)) % (1 << 24)
        rows.append(Transmitter(target=int(t), identity=icao_identity(f"{address:06x}"),
                                category=RECORDINGS[name].adsb_category,
                                std_h_m=ADSB_STD_H_M, std_v_m=ADSB_STD_V_M))
    return Transmitters.of(rows)


# --------------------------------------------------------------------------- sensors


def _direction_finder(sid: str, at: tuple[float, float, float], *, max_range_m: float,
                      pd: float = 0.8, clutter_per_scan: float = 1.0,
                      scan_offset_s: float = 0.0) -> SensorSpec:
    """An RF direction finder: azimuth only, 1.5° (1σ), 1 s."""
    return SensorSpec(
        id=sid, kind="bearing", position_enu_m=at, pd=pd, noise_std=(1.5 * DEG, 0.0, 0.0),
        clutter_per_scan=clutter_per_scan, max_range_m=max_range_m, scan_period_s=1.0,
        bearing_dim=1, modality="rf",
        extra={"scan_offset_s": scan_offset_s} if scan_offset_s else {},
    )


def _camera(sid: str, at: tuple[float, float, float]) -> SensorSpec:
    """A daylight EO camera with a tracker: azimuth and elevation, 0.2° (1σ), 5.5 km, 1 s."""
    return SensorSpec(
        id=sid, kind="bearing", position_enu_m=at, pd=0.85,
        noise_std=(0.2 * DEG, 0.2 * DEG, 0.0), clutter_per_scan=1.0, max_range_m=5_500.0,
        min_elevation_rad=-0.05, scan_period_s=1.0, bearing_dim=2, modality="eo",
        extra={"scan_offset_s": 0.5},
    )


def _receiver(sid: str, protocol: str, *, max_range_m: float, pd: float = 0.95,
              scan_offset_s: float = 0.0) -> SensorSpec:
    """A cooperative receiver at the origin (10 m mast), 1 s; its reports carry their
    own accuracy."""
    return SensorSpec(
        id=sid, kind="cooperative", position_enu_m=(0.0, 0.0, 10.0), pd=pd,
        noise_std=(math.nan, math.nan, math.nan), max_range_m=max_range_m, scan_period_s=1.0,
        extra={"protocol": protocol, **({"scan_offset_s": scan_offset_s} if scan_offset_s else {})},
    )


# --------------------------------------------------------------------------- presets


def _spread(n: int, duration_s: float) -> _Plan:
    # About one drone per km², so density stays realistic as n grows.
    half = 0.5 * max(4_000.0, 1_000.0 * math.sqrt(n))
    region = _square_region(half, 600.0)
    n_mr = round(0.6 * n)
    lo, hi = (-half, -half, 30.0), (half, half, 150.0)
    scenario = Scenario(
        name="spread", origin=ZURICH, region=region, scan_period_s=1.0,
        sensors=(_drone_radar(half * math.sqrt(2.0) + 1_000.0),),
    )
    groups = (_multirotor_group(n_mr, lo, hi), _fixed_wing_group(n - n_mr, 0.9 * half, 0.9 * half))
    return _Plan(scenario, tuple(g for g, k in zip(groups, (n_mr, n - n_mr), strict=True) if k))


def _swarm(n: int, duration_s: float) -> _Plan:
    scenario = Scenario(
        name="swarm", origin=ZURICH, region=_square_region(4_000.0, 500.0), scan_period_s=1.0,
        sensors=(_drone_radar(7_000.0),),
    )
    return _Plan(scenario, (_swarm_group(n, 3_000.0, 0.5 * duration_s),))


def _crewed(n: int, duration_s: float) -> _Plan:
    # The crewed flights transmit ADS-B, as they did when they were recorded.
    scenario = Scenario(name="crewed", origin=ZURICH, scan_period_s=4.0,
                        sensors=(_surveillance_radar(5.0),
                                 _receiver("adsb", "adsb", max_range_m=150_000.0)))
    # At 40-60 m a flyer is under the horizon of a 20 m radar beyond ~45 km: flying in
    # from 65 km at 200-280 m/s it rises over the horizon after a minute or so.
    return _Plan(scenario, (
        _crewed_group(_recordings(n), duration_s, (5_000.0, 20_000.0), transmit=_adsb_crewed),
        _fast_flyer_group((65_000.0, 65_000.0), inbound=True, height_m=(40.0, 60.0)),
    ))


def _long_range(n: int, duration_s: float) -> _Plan:
    scenario = Scenario(name="long_range", origin=ZURICH, scan_period_s=4.0,
                        sensors=(_surveillance_radar(10.0),))
    return _Plan(scenario, (_airliner_group(n, duration_s),))


def _mixed(n: int, duration_s: float) -> _Plan:
    half = 15_000.0
    locator = SensorSpec(
        id="locator", kind="position", position_enu_m=(1_500.0, -800.0, 10.0), pd=0.8,
        noise_std=(15.0, 15.0, 25.0), clutter_per_scan=2.0, max_range_m=10_000.0,
        scan_period_s=1.5, extra={"scan_offset_s": 0.5},
    )
    scenario = Scenario(
        name="mixed", origin=ZURICH, region=_square_region(half, 3_000.0), scan_period_s=1.0,
        # The crewed traffic transmits ADS-B, as it does where it was recorded.
        sensors=(_drone_radar(25_000.0), locator,
                 _receiver("adsb", "adsb", max_range_m=150_000.0, scan_offset_s=0.5)),
    )
    return _Plan(scenario, (
        _swarm_group(n, 4_000.0, 0.6 * duration_s),
        _fast_flyer_group((12_000.0, 16_000.0), inbound=False),
        _multirotor_group(5, (-2_000.0, -2_000.0, 30.0), (2_000.0, 2_000.0, 150.0)),
        _fixed_wing_group(3, 4_000.0, 5_000.0),
        _crewed_group(_recordings(3), duration_s, (5_000.0, 15_000.0), transmit=_adsb_crewed),
    ))


#: Lowest beam of the low_flyer radar: 0.4° up, over the clutter of the ground around
#: it (buildings, trees). A target 30-60 m above the ground (10-40 m above the radar)
#: is under it beyond 1.4-5.7 km; at these ranges the 4/3-earth horizon (over 40 km)
#: hides nothing.
LOW_FLYER_RADAR_MIN_ELEVATION_RAD = 0.4 * DEG


def _low_flyer(n: int, duration_s: float) -> _Plan:
    radar_spec = replace(_drone_radar(12_000.0), clutter_per_scan=5.0,
                         min_elevation_rad=LOW_FLYER_RADAR_MIN_ELEVATION_RAD)
    # Direction finders on a 2.5 km ring, 120° apart; cameras 1.5 km out, 120° apart.
    dfs = tuple(
        _direction_finder(f"rf{k + 1}", (2_500.0 * math.sin(b), 2_500.0 * math.cos(b), 10.0),
                          max_range_m=9_000.0)
        for k, b in enumerate((0.0, 2 * math.pi / 3, 4 * math.pi / 3))
    )
    cams = tuple(
        _camera(f"eo{k + 1}", (1_500.0 * math.sin(b), 1_500.0 * math.cos(b), 15.0))
        for k, b in enumerate((math.pi / 3, 5 * math.pi / 3))
    )
    scenario = Scenario(
        name="low_flyer", origin=ZURICH, region=_square_region(12_000.0, 600.0),
        scan_period_s=1.0, sensors=(radar_spec, *dfs, *cams),
    )
    return _Plan(scenario, (
        _inbound_fixed_wing_group(n, (7_500.0, 8_500.0), (30.0, 60.0)),
        _fast_flyer_group((10_000.0, 10_000.0), inbound=True, height_m=(40.0, 60.0)),
    ))


def _spoofing(n: int, duration_s: float) -> _Plan:
    scenario = Scenario(
        name="spoofing", origin=ZURICH, region=_square_region(12_000.0, 3_000.0),
        scan_period_s=1.0,
        sensors=(
            replace(_drone_radar(15_000.0), clutter_per_scan=5.0),
            _receiver("remote_id", "remote_id", max_range_m=6_000.0, scan_offset_s=0.25),
            _receiver("adsb", "adsb", max_range_m=150_000.0, scan_offset_s=0.5),
        ),
    )
    box = ((-3_000.0, -3_000.0, 30.0), (3_000.0, 3_000.0, 120.0))
    return _Plan(scenario, (
        # The last of the n + 1 multirotors is the liar.
        _multirotor_group(n + 1, *box, transmit=_remote_id("multirotor", liars=1)),
        # Both recordings are flown far from here, so both are moved into cover.
        _crewed_group(("samu31", "border_control"), duration_s, (3_000.0, 6_000.0),
                      transmit=_adsb_crewed),
    ))


def _fusion(n: int, duration_s: float) -> _Plan:
    half = 0.5 * max(4_000.0, 1_000.0 * math.sqrt(n))
    reach = 2.0 * half * math.sqrt(2.0)  # from any sensor to the farthest corner
    radar2d = SensorSpec(
        id="radar2d", kind="radar2d", position_enu_m=(0.4 * half, -0.4 * half, 15.0), pd=0.85,
        noise_std=(10.0, 0.01, 0.0), clutter_per_scan=5.0, max_range_m=reach,
        min_elevation_rad=-0.05, scan_period_s=2.0, extra={"scan_offset_s": 0.25},
    )
    scenario = Scenario(
        name="fusion", origin=ZURICH, region=_square_region(half, 600.0), scan_period_s=1.0,
        sensors=(
            _drone_radar(half * math.sqrt(2.0) + 1_000.0),
            radar2d,
            _direction_finder("rf", (-0.4 * half, 0.4 * half, 10.0), max_range_m=reach,
                              pd=0.7, clutter_per_scan=2.0, scan_offset_s=0.5),
            # A network of Remote ID receivers, fed as one, hearing the whole region.
            _receiver("remote_id", "remote_id", max_range_m=reach, pd=0.9, scan_offset_s=0.75),
        ),
    )
    n_mr = round(0.6 * n)
    lo, hi = (-half, -half, 30.0), (half, half, 150.0)
    groups = (
        _multirotor_group(n_mr, lo, hi, transmit=_remote_id("multirotor", every=2)),
        _fixed_wing_group(n - n_mr, 0.9 * half, 0.9 * half,
                          transmit=_remote_id("fixed_wing", every=2)),
    )
    return _Plan(scenario, tuple(g for g, k in zip(groups, (n_mr, n - n_mr), strict=True) if k))


def _demo(n: int, duration_s: float) -> _Plan:
    from skyfence.sim.demo import plan  # it builds on this module's makers

    return plan(n, duration_s)


_PLANS: dict[str, Callable[[int, float], _Plan]] = {
    "spread": _spread,
    "swarm": _swarm,
    "crewed": _crewed,
    "long_range": _long_range,
    "mixed": _mixed,
    "low_flyer": _low_flyer,
    "spoofing": _spoofing,
    "fusion": _fusion,
    "demo": _demo,
}


# --------------------------------------------------------------------------- build


def _check(preset: str, n_targets: int | None, seed: int, duration_s: float | None,
           clutter_per_scan: float | None, pd: float | None) -> None:
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}", field="preset",
                         fix=f"use one of {', '.join(PRESETS)}")
    if n_targets is not None and (isinstance(n_targets, bool) or not isinstance(n_targets, int)
                                  or n_targets < 1):
        raise InputError(f"n_targets {n_targets!r} is not a positive integer",
                         field="n_targets", fix="give 1 or more")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed {seed!r} is not a non-negative integer", field="seed",
                         fix="give 0 or more")
    if duration_s is not None and not 0 < duration_s <= MAX_DURATION_S:
        raise InputError(f"duration {duration_s!r} s is out of range", field="duration_s",
                         fix=f"give a duration in (0, {MAX_DURATION_S:g}] seconds")
    if clutter_per_scan is not None and not 0 <= clutter_per_scan < math.inf:
        raise InputError(f"clutter {clutter_per_scan!r} per scan is out of range",
                         field="clutter_per_scan", fix="give a finite number ≥ 0")
    if pd is not None and not 0 <= pd <= 1:
        raise InputError(f"pd {pd!r} is not a probability", field="pd",
                         fix="give a number in [0, 1]")


def _coverage(sensor: SensorSpec) -> dict[str, list[float]]:
    if sensor.kind in ("radar", "radar2d"):
        return radar.coverage(sensor)
    if sensor.kind == "bearing":
        return bearing.coverage(sensor)
    return position.coverage(sensor)


def _finish_sensor(sensor: SensorSpec, region: Region | None, clutter_per_scan: float | None,
                   pd: float | None) -> SensorSpec:
    """Apply overrides (a cooperative sensor keeps its zero clutter), and say in the
    file where clutter comes from: a bearing sensor's is always in angle space."""
    extra = dict(sensor.extra)
    clutter = sensor.clutter_per_scan
    if clutter_per_scan is not None and sensor.kind != "cooperative":
        clutter = float(clutter_per_scan)
    s = replace(sensor, pd=sensor.pd if pd is None else float(pd), clutter_per_scan=clutter)
    if s.clutter_per_scan > 0:
        if region is not None and s.kind != "bearing":
            extra["clutter_over"] = "region"
        else:
            extra["clutter_over"] = "coverage"
            extra["clutter_coverage"] = _coverage(s)
    return replace(s, extra=extra)


def build(
    preset: str,
    *,
    n_targets: int | None = None,
    seed: int = 0,
    duration_s: float | None = None,
    clutter_per_scan: float | None = None,
    pd: float | None = None,
) -> SimResult:
    """Simulate preset ``preset`` (a key of ``PRESETS``).

    ``n_targets`` scales the main population (default per preset); ``duration_s``
    defaults per preset (60-180 s); ``clutter_per_scan`` and ``pd``, when given,
    replace every sensor's (except that a cooperative sensor never has clutter).
    The same arguments always give the same result.
    """
    _check(preset, n_targets, seed, duration_s, clutter_per_scan, pd)
    default_n, default_duration = _DEFAULTS[preset]
    n = default_n if n_targets is None else int(n_targets)
    duration = default_duration if duration_s is None else float(duration_s)
    plan = _PLANS[preset](n, duration)
    base = plan.scenario
    sensors = tuple(_finish_sensor(s, base.region, clutter_per_scan, pd) for s in base.sensors)
    scenario = replace(base, sensors=sensors)
    scans = tuple(scan_times(scenario, s, start_s=START_S, duration_s=duration) for s in sensors)
    times = np.unique(np.concatenate(scans))
    if times.size == 0:
        raise InputError(f"duration {duration:g} s holds no scan", field="duration_s",
                         fix="give a longer duration")

    parts: list[TargetStates] = []
    kinds: list[str] = []
    groups_doc: list[dict[str, Any]] = []
    notes_doc: dict[str, dict[str, Any]] = {}
    tx_parts: list[Transmitters] = []
    next_id = 1
    for group in plan.groups:
        states, notes = group.make(times - START_S, stream(seed, f"{preset}/{group.stream}"))
        parts.append(states)
        kinds += [group.kind] * states.n_targets
        groups_doc.append({"kind": group.kind, "first_id": next_id, "count": states.n_targets})
        for k, note in enumerate(notes):
            notes_doc[str(next_id + k)] = note
        if group.transmit is not None:
            group_ids = np.arange(next_id, next_id + states.n_targets, dtype=np.int64)
            tx_parts.append(group.transmit(
                group_ids, notes, stream(seed, f"{preset}/{group.stream}/transmitters")))
        next_id += states.n_targets
    states = TargetStates.concat(parts, times.size)
    ids = np.arange(1, states.n_targets + 1, dtype=np.int64)
    emits = bearing.emits_rf(kinds)
    transmitters = Transmitters.concatenate(tx_parts)

    traits: dict[str, Any] = {}
    if any(s.kind == "bearing" and s.modality == "rf" for s in sensors):
        traits["rf_emitters"] = ids[emits].tolist()
    if any(s.kind == "cooperative" for s in sensors):
        traits["transmitters"] = transmitters.to_json()
        traits["spoofers"] = transmitters.target[transmitters.lies].tolist()
    scenario = replace(scenario, extra={
        **scenario.extra,
        "simulator": {
            "preset": preset, "seed": int(seed), "n_targets": n, "duration_s": duration,
            "start_time_s": START_S, "start_time": START_ISO,
            "targets": groups_doc, "target_notes": notes_doc, **traits,
        },
    })
    detections, detection_target = observe(scenario, times, states, ids, scans, int(seed),
                                           emits_rf=emits, transmitters=transmitters)
    ti, ni = np.nonzero(states.alive)
    truth = StateTable(
        t=times[ti], id=ids[ni],
        x=np.concatenate([states.pos[ti, ni], states.vel[ti, ni]], axis=-1),
    )
    return SimResult(
        scenario=scenario, detections=detections, truth=truth,
        target_kind={int(i): k for i, k in zip(ids, kinds, strict=True)},
        detection_target=detection_target, scan_times=scans,
    )
