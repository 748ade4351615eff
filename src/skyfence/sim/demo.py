"""The built-in demo scenario (preset ``demo``) and its zones and defended site.

A defended stadium in Zurich, Stadion Letzigrund (the ENU origin, where the radar
stands), on 2024-06-01 (a Saturday) from 12:00:00Z, 300 s by default. Positions are
ENU metres from the origin (east, north), times seconds from the start; the times
are those of the default seed's run through the tracker and the alert watch.

- **Swarm** of N (30) multirotors starting 3.8 km north-west of the stadium and
  flying at it at 12.5–14.5 m/s, 60–140 m up: it is a group from the first seconds
  and inside the 500 m defended radius after 230–265 s.
- **Fast low flyer** (a cruise missile: 220–260 m/s, 40–60 m above the ground)
  flying straight in from the north-east and on to the south-west, passing 1.2 km
  south-east of the stadium at 120 s. It is under the radar's lowest beam (0.4° up)
  beyond ~4 km; two EO cameras 6–7 km out along its approach see it first. It
  carries no drone radio link, so the RF direction finders cannot hear it.
- **Remote ID drone** (``RID_DRONE_IDENTITY``) taking off and surveying inside the
  authorisation zone ``DEMO-A1`` 2.5 km south-west, whose exempt identities list
  its serial: heard by the Remote ID receiver, seen by the radar, no alert.
- **Dark drone** (no Remote ID, no ADS-B) flying in from 4.4 km north at 12 m/s and
  entering the prohibited zone ``DEMO-P1`` (2.6 km north-north-east) after ~147 s,
  then loitering inside it. The three RF direction finders (north-east, 4 km range)
  hear its radio link.
- **Crewed traffic**: the REGA rescue helicopter flight recorded over Zurich
  (``rega_zh``), replayed where it was flown, with its ADS-B: from 1.8 km south of
  the stadium east towards Dübendorf at 200–525 m, landing ~10 km east at the end.
  It enters no zone.

Sensors: a 3-D radar on a 20 m mast at the origin (12 km, 1 clutter detection per
scan), three RF direction finders (no clutter), two EO cameras (3.5 km, 1 clutter
detection per scan), a Remote ID receiver (6 km) and an ADS-B receiver at the origin.

The layout keeps clear of weaknesses of the tracker as it is: a bearing gates with
any track along its line (at any range), and one RF bearing makes a track an RF
emitter for life. So the direction finders hear only the dark drone, and no crewed
aircraft or fast low flyer lies along their bearings to it; the cameras see neither
the Remote ID drone nor the swarm.

The zones (``DEMO-P1``; ``DEMO-A1``; ``DEMO-R1``, a building site in force on
weekdays only) and the site are shipped as package data, written by
``tools/make_demo_zones.py`` from the constants here: :func:`demo_files`. They are
fictitious, not Zurich's real geozones.
"""

from __future__ import annotations

import math
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np

from skyfence.geo import Origin
from skyfence.scenario import Scenario
from skyfence.sim.cooperative import RID_UA_TYPE, Transmitter, Transmitters, remote_id_identity
from skyfence.sim.crewed import load_recording, replay
from skyfence.sim.motion import MultirotorLimits, MultirotorModel, TargetStates, lift, sample
from skyfence.sim.presets import (
    DEG,
    LOW_FLYER_RADAR_MIN_ELEVATION_RAD,
    RID_STD_H_M,
    RID_STD_V_M,
    START_S,
    Notes,
    _adsb_crewed,
    _camera,
    _direction_finder,
    _drone_radar,
    _Group,
    _Plan,
    _receiver,
    _square_region,
)
from skyfence.sim.swarm import swarm
from skyfence.sim.targets import FAST_LOW_FLYER, AircraftClass, aircraft, multirotors
from skyfence.types import F64, I64

#: Stadion Letzigrund, Zurich; the ground there is ~408 m above sea level and the
#: geoid ~47 m above the WGS84 ellipsoid.
DEMO_ORIGIN = Origin(lat_deg=47.3825, lon_deg=8.5042, alt_m=456.0)
DEMO_DURATION_S = 300.0
DEMO_SWARM_SIZE = 30

# --------------------------------------------------------------------------- geometry

#: The defended site: the stadium, at the origin.
SITE_ID = "letzigrund"
SITE_NAME = "Stadion Letzigrund"
SITE_EN_M = (0.0, 0.0)
SITE_RADIUS_M = 500.0
SITE_CEILING_M = 300.0

#: The swarm starts this far from the site, on this bearing, and flies at it.
SWARM_RANGE_M = 3_800.0
SWARM_BEARING_RAD = 315 * DEG
SWARM_SPEED_MPS = (12.5, 14.5)

#: The fast low flyer's course, the point of its closest approach to the origin and
#: when it passes there.
FLYER_COURSE_RAD = 225 * DEG
FLYER_CPA_EN_M = (850.0, -850.0)
FLYER_CPA_S = 120.0
FLYER_SPEED_MPS = (220.0, 260.0)
FLYER_HEIGHT_M = (40.0, 60.0)

#: Prohibited zone DEMO-P1: a rectangle 1.0 km × 0.8 km (corners, ENU m), ground to
#: 150 m above it.
PROHIBITED_ID = "DEMO-P1"
PROHIBITED_CORNERS_EN_M = ((800.0, 1_850.0), (1_800.0, 1_850.0), (1_800.0, 2_650.0),
                           (800.0, 2_650.0))
PROHIBITED_UPPER_M = 150.0
#: The dark drone: where it starts, the first point it makes for (inside DEMO-P1),
#: its speed there, then the box it roams (east, north, height above ground).
DARK_START_ENH_M = (1_350.0, 4_400.0, 80.0)
DARK_ENTRY_ENH_M = (1_300.0, 2_300.0, 80.0)
DARK_CRUISE_MPS = 12.0
DARK_BOX_LO_M = (1_050.0, 2_050.0, 60.0)
DARK_BOX_HI_M = (1_550.0, 2_450.0, 110.0)

#: Authorisation zone DEMO-A1: a circle, ground to 120 m, with the Remote ID drone
#: roaming a box well inside it.
AUTHORISATION_ID = "DEMO-A1"
AUTHORISATION_CENTRE_EN_M = (-1_770.0, -1_770.0)
AUTHORISATION_RADIUS_M = 600.0
AUTHORISATION_UPPER_M = 120.0
RID_BOX_HALF_M = 300.0
RID_HEIGHT_M = (50.0, 100.0)
#: It takes off inside the zone (Remote ID is heard from the ground up, so its track
#: carries the serial before the radar sees it) and surveys: short, slow legs and
#: long hovers.
RID_TAKE_OFF_HEIGHT_M = 2.0
RID_LIMITS = MultirotorLimits(max_speed_mps=10.0, max_accel_mps2=2.0, hover_s=(5.0, 20.0),
                              leg_speed_mps=(3.0, 8.0), leg_m=(100.0, 500.0))
#: The Remote ID serial the drone broadcasts, exempt from DEMO-A1.
RID_DRONE_IDENTITY = remote_id_identity(1)

#: A building site (cranes): authorisation required on weekdays 07:00–19:00 local time
#: only, so not in force on the demo's Saturday. A polygon (ENU m), ground to 100 m.
SCHEDULED_ID = "DEMO-R1"
SCHEDULED_CORNERS_EN_M = ((1_500.0, -2_300.0), (2_200.0, -2_100.0), (2_300.0, -1_500.0),
                          (1_700.0, -1_300.0), (1_350.0, -1_700.0))
SCHEDULED_UPPER_M = 100.0

#: Crewed flights: REGA over Zurich, replayed in place. (The other recordings were
#: flown elsewhere: replayed here they would be moved to a random bearing.)
CREWED_RECORDINGS = ("rega_zh",)

#: Sensor layout (east, north): RF direction finders on 10 m masts north-east, by the
#: dark drone's approach and out of earshot of the swarm and the Remote ID drone; EO
#: cameras on 15 m masts out along the fast low flyer's approach.
DF_POSITIONS_EN_M = ((3_000.0, 3_500.0), (4_000.0, 2_500.0), (4_000.0, 4_000.0))
DF_RANGE_M = 4_000.0
CAMERA_POSITIONS_EN_M = ((5_800.0, 3_400.0), (5_800.0, 4_800.0))
CAMERA_RANGE_M = 3_500.0
RADAR_RANGE_M = 12_000.0
RADAR_CLUTTER_PER_SCAN = 1.0
REMOTE_ID_RANGE_M = 6_000.0


def demo_files() -> tuple[Path, Path]:
    """The shipped zone file (skyfence GeoJSON) and sites file of the demo."""
    folder = resources.files("skyfence").joinpath("data").joinpath("demo")
    zones, sites = folder.joinpath("zones.geojson"), folder.joinpath("sites.geojson")
    if not isinstance(zones, Path) or not isinstance(sites, Path):
        raise FileNotFoundError("skyfence's demo files are not on the file system "
                                f"({zones}); install skyfence unzipped")
    return zones, sites


# --------------------------------------------------------------------------- targets


def _unit(bearing_rad: float) -> F64:
    return np.array([math.sin(bearing_rad), math.cos(bearing_rad)])


def _rid_drone(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
    c = np.asarray(AUTHORISATION_CENTRE_EN_M)
    lo = (c[0] - RID_BOX_HALF_M, c[1] - RID_BOX_HALF_M, RID_HEIGHT_M[0])
    hi = (c[0] + RID_BOX_HALF_M, c[1] + RID_BOX_HALF_M, RID_HEIGHT_M[1])
    start = np.array([[c[0], c[1], RID_TAKE_OFF_HEIGHT_M]])
    states = multirotors(DEMO_ORIGIN, times, rng, start=start, box_lo=np.array(lo),
                         box_hi=np.array(hi), limits=RID_LIMITS)
    return states, [{"role": "remote_id_drone", "identity": RID_DRONE_IDENTITY,
                     "zone": AUTHORISATION_ID}]


def _rid_transmitter(ids: I64, notes: Notes, rng: np.random.Generator) -> Transmitters:
    return Transmitters.of([Transmitter(
        target=int(ids[0]), identity=RID_DRONE_IDENTITY, category=RID_UA_TYPE["multirotor"],
        std_h_m=RID_STD_H_M, std_v_m=RID_STD_V_M)])


class _Inbound(MultirotorModel):
    """Multirotors that first fly to ``entry`` at ``cruise_mps``, then roam their box."""

    def __init__(self, rng: np.random.Generator, *, start: F64, entry: F64, cruise_mps: float,
                 box_lo: F64, box_hi: F64) -> None:
        super().__init__(rng, start=start, box_lo=box_lo, box_hi=box_hi)
        self.wp = np.array(entry, dtype=np.float64)
        self.hovering[:] = False
        self.cruise[:] = cruise_mps


def _dark_drone(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
    model = _Inbound(rng, start=np.array([DARK_START_ENH_M]), entry=np.array([DARK_ENTRY_ENH_M]),
                     cruise_mps=DARK_CRUISE_MPS, box_lo=np.array(DARK_BOX_LO_M),
                     box_hi=np.array(DARK_BOX_HI_M))
    ground, rate = sample(model, times)
    pos, vel = lift(DEMO_ORIGIN, ground, rate)
    states = TargetStates(pos=pos, vel=vel, alive=np.ones(pos.shape[:2], dtype=bool))
    return states, [{"role": "dark_drone", "zone": PROHIBITED_ID}]


def _fast_low_flyer(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
    speed = float(rng.uniform(*FLYER_SPEED_MPS))
    start = np.asarray(FLYER_CPA_EN_M) - speed * FLYER_CPA_S * _unit(FLYER_COURSE_RAD)
    # Straight, as a cruise missile flies its leg: course changes of a degree or two.
    cls = AircraftClass(speed_mps=(speed, speed), height_m=FLYER_HEIGHT_M,
                        height_amp_m=FAST_LOW_FLYER.height_amp_m,
                        height_period_s=FAST_LOW_FLYER.height_period_s,
                        policy=replace(FAST_LOW_FLYER.policy, course_spread_rad=2 * DEG))
    states = aircraft(DEMO_ORIGIN, times, rng, cls, start_en_m=start[None, :],
                      course_rad=np.array([FLYER_COURSE_RAD]))
    return states, [{"role": "fast_low_flyer"}]


def _swarm(n: int) -> _Group:
    def make(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
        site = np.asarray(SITE_EN_M)
        centre = site + SWARM_RANGE_M * _unit(SWARM_BEARING_RAD)
        truth = swarm(DEMO_ORIGIN, times, rng, n_drones=n,
                      center_en_m=(float(centre[0]), float(centre[1])),
                      course_rad=SWARM_BEARING_RAD + math.pi, split_s=None,
                      speed_mps=SWARM_SPEED_MPS)
        return truth.states, []
    return _Group("swarm", "swarm", make)


def _crewed(duration_s: float) -> _Group:
    def make(times: F64, rng: np.random.Generator) -> tuple[TargetStates, Notes]:
        truth = replay(DEMO_ORIGIN, START_S + times, rng, names=CREWED_RECORDINGS,
                       t_start=START_S, duration_s=duration_s)
        notes = [
            {"recording": name, "callsign": load_recording(name).callsign, "moved": moved}
            for name, moved in truth.sources
        ]
        return truth.states, notes
    return _Group("crewed", "crewed", make, _adsb_crewed)


# --------------------------------------------------------------------------- the plan


def plan(n: int, duration_s: float) -> _Plan:
    """The demo: a swarm of ``n`` and the rest of the story (see the module docstring).

    The Remote ID drone comes first, so that it is target 1 whatever ``n`` is and its
    serial is the one DEMO-A1 exempts.
    """
    radar = replace(_drone_radar(RADAR_RANGE_M), clutter_per_scan=RADAR_CLUTTER_PER_SCAN,
                    min_elevation_rad=LOW_FLYER_RADAR_MIN_ELEVATION_RAD)
    # No false bearings: one would make whatever track it lands on an RF emitter.
    dfs = tuple(_direction_finder(f"rf{k + 1}", (east, north, 10.0), max_range_m=DF_RANGE_M,
                                  clutter_per_scan=0.0)
                for k, (east, north) in enumerate(DF_POSITIONS_EN_M))
    cams = tuple(replace(_camera(f"eo{k + 1}", (east, north, 15.0)), max_range_m=CAMERA_RANGE_M)
                 for k, (east, north) in enumerate(CAMERA_POSITIONS_EN_M))
    scenario = Scenario(
        name="demo", origin=DEMO_ORIGIN, region=_square_region(RADAR_RANGE_M, 1_500.0),
        scan_period_s=1.0,
        sensors=(
            radar, *dfs, *cams,
            _receiver("remote_id", "remote_id", max_range_m=REMOTE_ID_RANGE_M,
                      scan_offset_s=0.25),
            _receiver("adsb", "adsb", max_range_m=150_000.0, scan_offset_s=0.75),
        ),
    )
    return _Plan(scenario, (
        _Group("multirotor", "remote_id_drone", _rid_drone, _rid_transmitter),
        _Group("multirotor", "dark_drone", _dark_drone),
        _Group("fast_low_flyer", "fast_low_flyer", _fast_low_flyer),
        _swarm(n),
        _crewed(duration_s),
    ))
