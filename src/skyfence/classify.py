"""Track classification: drone (multirotor, fixed wing), crewed aircraft, bird, fast low flyer.

Pure numpy, no I/O. :class:`Classifier` keeps per-track evidence in aligned arrays
keyed by track id and turns it into class probabilities, a label and the reasons.

The model
---------
Each track keeps exponentially weighted statistics of its kinematics (time
constants in seconds; a look's weight is ``1 − exp(−Δt/τ)``, so 1 s and 4 s scans
give the same averages): horizontal speed (mean, and a leaky maximum), height
above ground, |vertical rate|, the fraction of time hovering, the probability the
tracker's IMM puts on its manoeuvre modes, and *straightness*, |mean velocity| /
mean speed over ~40 s (1 flying straight, near 0 meandering or circling) of the
current leg: a stop (the velocity of the last few seconds about nil) ends a leg, since
a flyer that stops can turn on the spot — a multirotor flying waypoints reverses at
each without meandering — while birds and aircraft only turn on the move. Given
the velocity's 1σ, a look's velocity-borne evidence counts by its quality and the
speed is corrected for the bias noise gives |v̂|.

Classes are mixtures of *profiles* (a crewed aircraft is an aeroplane en route or
near an airport, a rotorcraft, a light aircraft or glider, or an aircraft on the
ground). Given a profile the features are taken as independent (naive Bayes) with
simple densities: soft boxes (a plateau with logistic edges) for speeds and height,
a half-Laplace for |vertical rate|, Beta densities (or mixtures) for the fractions.
``PROFILES`` holds every parameter with the reason for it. Features that measure
nearly the same thing get weights below one so they are not counted twice, and
straightness and manoeuvre are tempered until a track has flown their window.

Cooperative identity and RF are likelihoods on the same profiles (each profile's
habits: how often it carries ADS-B and with which emitter category, Remote ID and
which UA type, a drone radio link): an ICAO address with category A1–A7 is a
likelihood ratio of ~10³ for crewed against drone, B6 (UAV) one for drone, Remote
ID one of ~10² for drone with its UA type choosing multirotor or fixed wing. None
is absolute: a spoofer can claim any identity, so every profile keeps a floor
probability (``SPOOF_PROBABILITY``) of any claim. A claim therefore loses against
kinematics its profiles cannot fly — an "airliner" hovering at 80 m, a "drone" at
230 m/s and 3 km — and the track gets the ``identity contradicts kinematics``
reason. A missing identity is evidence only as far as ``adsb_coverage`` and
``remote_id_coverage`` say receivers cover the track; a missing RF detection never.

The label is the Bayes decision under a cost matrix (``ClassifierConfig``):
every confusion costs 1, ``unknown`` costs ``reject_cost`` (Chow's reject
option), and calling a crewed aircraft a drone costs ``crewed_as_drone_cost`` —
so a track is only labelled a drone when a crewed aircraft is unlikely, not
merely less likely. Tracks younger than ``min_age_s`` are ``unknown``.

Limits: kinematics alone cannot tell a helicopter or light aircraft at 20–60 m/s
from a fixed-wing drone (such tracks stay ``unknown`` or, at times, drone), nor a
straight-flying bird from a multirotor in transit; identity, RF and (not yet
modelled) micro-Doppler and RCS are what separate them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from skyfence.errors import SkyfenceError
from skyfence.types import F64, I64

CLASSES: Final = (
    "drone_multirotor",
    "drone_fixed_wing",
    "crewed_aircraft",
    "bird",
    "fast_low_flyer",
    "unknown",
)
MULTIROTOR, FIXED_WING, CREWED, BIRD, FAST_LOW_FLYER, UNKNOWN = range(6)
DRONE_CLASSES: Final = (MULTIROTOR, FIXED_WING)

#: ``identity_kind`` values.
IDENTITY_NONE, IDENTITY_ICAO, IDENTITY_REMOTE_ID = 0, 1, 2

# --------------------------------------------------------------------------- identity codes

#: ADS-B emitter categories (DO-260B §2.2.3.2.5.2) as ``10·set + number``, set A = 1
#: (type code 4), B = 2 (TC 3), C = 3 (TC 2), D = 4 (TC 1): A3 is 13, B6 is 26. 0 is
#: unknown; X0 means "no category information" and counts as unknown too.
ADSB_CATEGORIES: Final[dict[int, str]] = {
    10: "no category information",
    11: "light aircraft",
    12: "small aircraft",
    13: "large aircraft",
    14: "high-vortex large aircraft",
    15: "heavy aircraft",
    16: "high-performance aircraft",
    17: "rotorcraft",
    20: "no category information",
    21: "glider or sailplane",
    22: "lighter than air",
    23: "parachutist or skydiver",
    24: "ultralight, hang glider or paraglider",
    25: "reserved",
    26: "unmanned aerial vehicle",
    27: "space or trans-atmospheric vehicle",
    30: "no category information",
    31: "surface emergency vehicle",
    32: "surface service vehicle",
    33: "point obstacle",
    34: "cluster obstacle",
    35: "line obstacle",
    36: "reserved",
    37: "reserved",
    **{40 + k: "reserved" for k in range(8)},
}

#: ASTM F3411 Remote ID UA types, by value 0–15.
RID_UA_TYPES: Final = (
    "none or not declared",
    "aeroplane",
    "helicopter/multirotor",
    "gyroplane",
    "hybrid lift (VTOL)",
    "ornithopter",
    "glider",
    "kite",
    "free balloon",
    "captive balloon",
    "airship",
    "free fall/parachute",
    "rocket",
    "tethered powered aircraft",
    "ground obstacle",
    "other",
)


def adsb_category_code(text: str) -> int:
    """``"A3"`` → 13 (see ``ADSB_CATEGORIES``); empty, ``"n/a"`` or unknown text → 0."""
    s = text.strip().upper()
    if len(s) == 2 and s[0] in "ABCD" and s[1] in "01234567":
        return 10 * ("ABCD".index(s[0]) + 1) + int(s[1])
    return 0


def adsb_category_name(code: int) -> str:
    """13 → ``"A3"``; 0 (or anything not a category) → ``""``."""
    if int(code) not in ADSB_CATEGORIES:
        return ""
    return f"{'ABCD'[int(code) // 10 - 1]}{int(code) % 10}"


# --------------------------------------------------------------------------- densities


@dataclass(frozen=True, slots=True)
class Box:
    """Soft box density: flat on [lo, hi], logistic edges of scale ``soft_lo``/``soft_hi``.

    ``log p(x) = log σ((x − lo)/soft_lo) + log σ((hi − x)/soft_hi) − log(hi − lo)``;
    a soft scale of 0 drops that edge (a speed cannot go below 0 anyway). The edges
    fall off linearly in log: k soft-scales outside the box cost about k nats.
    """

    lo: float
    hi: float
    soft_lo: float
    soft_hi: float

    def log_pdf(self, x: F64) -> F64:
        out = np.full(x.shape, -math.log(self.hi - self.lo))
        if self.soft_lo > 0:
            out -= np.logaddexp(0.0, (self.lo - x) / self.soft_lo)
        if self.soft_hi > 0:
            out -= np.logaddexp(0.0, (x - self.hi) / self.soft_hi)
        return out


@dataclass(frozen=True, slots=True)
class HalfLaplace:
    """Density of a non-negative value with mean ``scale``: p(x) = exp(−x/scale)/scale."""

    scale: float

    def log_pdf(self, x: F64) -> F64:
        out: F64 = -np.maximum(x, 0.0) / self.scale - math.log(self.scale)
        return out


@dataclass(frozen=True, slots=True)
class Beta:
    """Beta(a, b) density of a fraction in [0, 1] (mean a/(a+b))."""

    a: float
    b: float

    def log_pdf(self, x: F64) -> F64:
        # Clipped so that an exact 0 or 1 (a hover fraction of a new track) stays finite.
        u = np.clip(x, 0.01, 0.99)
        norm = math.lgamma(self.a + self.b) - math.lgamma(self.a) - math.lgamma(self.b)
        out: F64 = (self.a - 1.0) * np.log(u) + (self.b - 1.0) * np.log1p(-u) + norm
        return out


@dataclass(frozen=True, slots=True)
class BetaMixture:
    """A mixture of Beta densities: ``components`` are (weight, Beta) pairs, weights
    summing to 1 — a flyer that sometimes does something and sometimes not at all."""

    components: tuple[tuple[float, Beta], ...]

    def log_pdf(self, x: F64) -> F64:
        parts = np.stack([math.log(w) + b.log_pdf(x) for w, b in self.components])
        top = parts.max(axis=0)
        out: F64 = top + np.log(np.exp(parts - top).sum(axis=0))
        return out


#: ADS-B emitter category groups, in the order of ``Profile.adsb_categories``: unknown
#: (0, X0), aeroplane (A1–A6), rotorcraft (A7), light (B1 glider, B3 parachutist, B4
#: ultralight), UAV (B6), surface vehicle (C1, C2), other (B2, B5, B7, C3–C7, D).
ADSB_GROUPS: Final = ("unknown", "aeroplane", "rotorcraft", "light", "uav", "surface", "other")
#: Remote ID UA type groups, in the order of ``Profile.rid_types``: undeclared (0),
#: aeroplane (1 aeroplane, 6 glider), rotor (2 helicopter/multirotor, 3 gyroplane),
#: hybrid lift (4), other (5, 7–15).
RID_GROUPS: Final = ("undeclared", "aeroplane", "rotor", "hybrid", "other")


@dataclass(frozen=True, slots=True)
class Profile:
    """One kind of flyer: its class, prior, feature densities and cooperative habits.

    ``adsb`` is the probability it broadcasts ADS-B (with an ICAO address), and
    ``adsb_categories`` how its emitter category is spread over ``ADSB_GROUPS``;
    likewise ``remote_id`` and ``rid_types`` over ``RID_GROUPS``; ``rf_link`` the
    probability that a direction finder sees a drone control or video link on it.
    """

    name: str
    cls: int
    prior: float
    speed_mps: Box
    max_speed_mps: Box
    height_agl_m: Box
    vertical_rate_mps: HalfLaplace
    hover: Beta | BetaMixture
    manoeuvre: Beta | BetaMixture
    straightness: Beta | BetaMixture
    adsb: float = 0.0
    adsb_categories: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    remote_id: float = 0.0
    rid_types: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 0.0)
    rf_link: float = 0.0

    def log_likelihoods(self, f: dict[str, F64]) -> F64:
        """(n, features) log-densities of the features ``f`` (see ``FEATURES``)."""
        return np.stack([
            self.speed_mps.log_pdf(f["speed"]), self.max_speed_mps.log_pdf(f["max_speed"]),
            self.height_agl_m.log_pdf(f["height"]),
            self.vertical_rate_mps.log_pdf(f["vertical_rate"]), self.hover.log_pdf(f["hover"]),
            self.manoeuvre.log_pdf(f["manoeuvre"]), self.straightness.log_pdf(f["straightness"]),
        ], axis=1)


#: Names of the kinematic features, in the column order of ``Profile.log_likelihoods``.
FEATURES: Final = ("speed", "max_speed", "height", "vertical_rate", "hover", "manoeuvre",
                   "straightness")
_F_MANOEUVRE, _F_STRAIGHTNESS = 5, 6

#: Hover fraction of a flyer that cannot hover: Beta(1, 30), mean 0.03 (noise).
NEVER_HOVERS: Final = Beta(1.0, 30.0)
# Cooperative habits shared by several profiles.
_DRONE_RID = dict(remote_id=0.3, rf_link=0.5)  # compliant drones broadcast Remote ID
_CREWED_ADSB = (0.27, 0.68, 0.005, 0.04, 0.0, 0.0, 0.005)

#: The profiles and their parameters. Speeds are horizontal, heights above ground.
#: Priors are relative weights (normalised by the classifier): a site near a bird
#: colony or an airfield should raise its own. The shapes follow the flyers' physics;
#: the numbers were then tuned on simulated tracks through the tracker (``mixed``
#: preset, simulated birds, seeds 1–3) and checked on other seeds — see the module
#: tests for the measured accuracy.
PROFILES: Final = (
    # Multirotors fly 0–22 m/s (consumer drones top out near 20; 28 m/s costs ~2 nats),
    # mostly below 150 m (the open category's 120 m ceiling plus margin), on straight
    # legs (turning at the stops between them). They may hover, but one in transit does
    # not: over half a minute, 65 % hover not at all, 22 % some of the time (~20 %), and
    # 13 % mostly (watching a site).
    # ADS-B only on the odd large one (mostly B6); Remote ID type mostly 2.
    Profile("multirotor", MULTIROTOR, 0.30,
            speed_mps=Box(0.0, 22.0, 0.0, 3.0), max_speed_mps=Box(0.0, 28.0, 0.0, 4.0),
            height_agl_m=Box(0.0, 200.0, 0.0, 40.0), vertical_rate_mps=HalfLaplace(1.5),
            hover=BetaMixture(((0.65, NEVER_HOVERS), (0.22, Beta(1.5, 6.0)),
                               (0.13, Beta(2.0, 1.0)))),
            manoeuvre=Beta(4.0, 8.0), straightness=Beta(8.0, 1.0),
            adsb=0.001, adsb_categories=(0.3, 0.1, 0.1, 0.0, 0.5, 0.0, 0.0),
            rid_types=(0.3, 0.02, 0.6, 0.02, 0.06), **_DRONE_RID),
    # Fixed-wing drones cruise at 20–65 m/s, never hover, fly low (below ~450 m), and
    # turn often and hard for their size (banked turns every 5–25 s: straightness
    # spread well below 1). Remote ID type 1 (or 4, hybrid VTOL).
    Profile("fixed_wing", FIXED_WING, 0.18,
            speed_mps=Box(20.0, 65.0, 3.0, 5.0), max_speed_mps=Box(20.0, 75.0, 3.0, 6.0),
            height_agl_m=Box(0.0, 450.0, 0.0, 60.0), vertical_rate_mps=HalfLaplace(1.5),
            hover=NEVER_HOVERS, manoeuvre=Beta(3.5, 7.5), straightness=Beta(2.0, 1.5),
            adsb=0.003, adsb_categories=(0.25, 0.15, 0.0, 0.0, 0.6, 0.0, 0.0),
            rid_types=(0.3, 0.5, 0.02, 0.15, 0.03), **_DRONE_RID),
    # Crewed aeroplanes en route: 35–280 m/s (a light aircraft's approach speed to an
    # airliner's cruise), above 150 m, straight, no hovering; most carry ADS-B.
    Profile("aeroplane_en_route", CREWED, 0.12,
            speed_mps=Box(35.0, 280.0, 6.0, 15.0), max_speed_mps=Box(35.0, 300.0, 6.0, 15.0),
            height_agl_m=Box(150.0, 13000.0, 50.0, 500.0), vertical_rate_mps=HalfLaplace(2.5),
            hover=NEVER_HOVERS, manoeuvre=Beta(2.0, 5.0), straightness=Beta(5.0, 1.0),
            adsb=0.75, adsb_categories=_CREWED_ADSB),
    # Near an airport: low while climbing or descending (3–10 m/s), 30–120 m/s.
    Profile("aeroplane_terminal", CREWED, 0.04,
            speed_mps=Box(30.0, 120.0, 5.0, 10.0), max_speed_mps=Box(30.0, 140.0, 5.0, 10.0),
            height_agl_m=Box(0.0, 900.0, 0.0, 100.0), vertical_rate_mps=HalfLaplace(5.0),
            hover=NEVER_HOVERS, manoeuvre=Beta(2.0, 5.0), straightness=Beta(4.0, 1.0),
            adsb=0.75, adsb_categories=_CREWED_ADSB),
    # Helicopters (rescue, police, military): 0–80 m/s, low, can hover, circle over a
    # scene; they fly purposefully rather than meander. ADS-B category A7.
    Profile("rotorcraft", CREWED, 0.05,
            speed_mps=Box(0.0, 80.0, 0.0, 8.0), max_speed_mps=Box(0.0, 90.0, 0.0, 8.0),
            height_agl_m=Box(0.0, 3000.0, 0.0, 300.0), vertical_rate_mps=HalfLaplace(2.5),
            hover=BetaMixture(((0.6, NEVER_HOVERS), (0.35, Beta(1.5, 6.0)),
                               (0.05, Beta(2.0, 1.0)))),
            manoeuvre=Beta(2.0, 5.0), straightness=Beta(3.0, 1.0),
            adsb=0.7, adsb_categories=(0.3, 0.015, 0.68, 0.0, 0.0, 0.0, 0.005)),
    # Light aircraft, gliders, microlights, gyroplanes: 12–50 m/s over the ground (a
    # headwind makes them slower still), low, and gliders circle in thermals like
    # birds. Many carry ADS-B (A1, or B1/B4), so with an identity they are told from
    # fixed-wing drones; without, the rare prior keeps them from swamping the drones.
    Profile("light_aircraft", CREWED, 0.01,
            speed_mps=Box(12.0, 50.0, 3.0, 6.0), max_speed_mps=Box(12.0, 60.0, 3.0, 6.0),
            height_agl_m=Box(50.0, 3000.0, 30.0, 300.0), vertical_rate_mps=HalfLaplace(2.0),
            hover=NEVER_HOVERS, manoeuvre=Beta(3.0, 5.0), straightness=Beta(1.5, 1.2),
            adsb=0.6, adsb_categories=(0.3, 0.4, 0.0, 0.3, 0.0, 0.0, 0.0)),
    # Aircraft on the ground (taxiing, take-off roll): seen by ADS-B, rarely by radar.
    Profile("surface", CREWED, 0.01,
            speed_mps=Box(0.0, 25.0, 0.0, 4.0), max_speed_mps=Box(0.0, 90.0, 0.0, 8.0),
            height_agl_m=Box(-30.0, 20.0, 5.0, 5.0), vertical_rate_mps=HalfLaplace(1.0),
            hover=Beta(1.0, 2.0), manoeuvre=Beta(2.0, 4.0), straightness=Beta(2.0, 1.0),
            adsb=0.8, adsb_categories=(0.25, 0.45, 0.2, 0.01, 0.0, 0.09, 0.0)),
    # Fast low flyers (a cruise missile, a jet at low level): 180–300 m/s below ~150 m.
    # A military jet may squawk ADS-B (A6, high performance), a missile never.
    Profile("fast_low_flyer", FAST_LOW_FLYER, 0.04,
            speed_mps=Box(180.0, 300.0, 12.0, 15.0), max_speed_mps=Box(180.0, 320.0, 12.0, 15.0),
            height_agl_m=Box(0.0, 150.0, 0.0, 40.0), vertical_rate_mps=HalfLaplace(4.0),
            hover=NEVER_HOVERS, manoeuvre=Beta(3.0, 7.0), straightness=Beta(8.0, 1.0),
            adsb=0.05, adsb_categories=(0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0)),
    # Birds: 3–16 m/s cruising (20 m/s costs ~2 nats: pigeons and ducks are faster),
    # low, no hovering for long, meandering or circling (more manoeuvre, straightness
    # spread around 0.5 over 40 s). No transmitter of any kind.
    Profile("bird", BIRD, 0.40,
            speed_mps=Box(3.0, 16.0, 1.5, 2.0), max_speed_mps=Box(3.0, 20.0, 1.5, 3.0),
            height_agl_m=Box(0.0, 250.0, 0.0, 60.0), vertical_rate_mps=HalfLaplace(1.2),
            hover=NEVER_HOVERS, manoeuvre=Beta(4.0, 6.0), straightness=Beta(2.25, 2.25)),
    # Anything else (balloons, kites, clutter that became a track): broad everywhere,
    # so it wins only where no other profile fits.
    Profile("other", UNKNOWN, 0.10,
            speed_mps=Box(0.0, 350.0, 0.0, 50.0), max_speed_mps=Box(0.0, 400.0, 0.0, 50.0),
            height_agl_m=Box(-100.0, 15000.0, 0.0, 1000.0), vertical_rate_mps=HalfLaplace(5.0),
            hover=Beta(1.0, 1.0), manoeuvre=Beta(1.0, 1.0), straightness=Beta(1.0, 1.0),
            adsb=0.05, adsb_categories=(0.3, 0.05, 0.05, 0.1, 0.1, 0.1, 0.3),
            remote_id=0.05, rid_types=(0.3, 0.1, 0.1, 0.1, 0.4), rf_link=0.05),
)

#: Any flyer can carry any claim with at least this probability: spoofing, or an
#: identity or RF bearing associated with the wrong track.
SPOOF_PROBABILITY: Final = 1e-4


def _claim_groups() -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Lookup tables: ADS-B category code (0–47) → ``ADSB_GROUPS`` index, RID UA type
    (0–15) → ``RID_GROUPS`` index."""
    adsb = np.full(48, 6, dtype=np.intp)
    adsb[[0, 10, 20, 30, 40]] = 0
    adsb[11:17] = 1
    adsb[17] = 2
    adsb[[21, 23, 24]] = 3
    adsb[26] = 4
    adsb[[31, 32]] = 5
    rid = np.full(16, 4, dtype=np.intp)
    rid[0] = 0
    rid[[1, 6]] = 1
    rid[[2, 3]] = 2
    rid[4] = 3
    return adsb, rid


_ADSB_GROUP, _RID_GROUP = _claim_groups()
_N_ADSB, _N_RID = len(ADSB_GROUPS), len(RID_GROUPS)
# Rows of the claim table: ADS-B groups, then Remote ID groups, then the RF link.
_RF_ROW = _N_ADSB + _N_RID


# --------------------------------------------------------------------------- reasons

#: Reason bits: ``reasons & (1 << k)`` means ``REASONS[k]`` applies.
REASONS: Final = (
    "speed",                          # speed (alone) supports the label
    "height",                         # height above ground (alone) supports it
    "speed at height",                # both do
    "hovers",
    "never hovers",
    "manoeuvres or meanders",
    "flies straight",
    "vertical rate",
    "ADS-B identity",
    "ADS-B emitter category",
    "Remote ID",
    "Remote ID UA type",
    "RF drone link",
    "identity contradicts kinematics",
    "could be a crewed aircraft",
    "too young to classify",
    "ambiguous",
    "fits no known class",
)
(R_SPEED, R_HEIGHT, R_SPEED_HEIGHT, R_HOVERS, R_NO_HOVER, R_MANOEUVRES, R_STRAIGHT,
 R_VERTICAL, R_ADSB, R_ADSB_CATEGORY, R_RID, R_RID_TYPE, R_RF, R_CONTRADICTS,
 R_MAY_BE_CREWED, R_YOUNG, R_AMBIGUOUS, R_NO_FIT) = (1 << k for k in range(len(REASONS)))

#: A feature supports the label when its log-likelihood under the label's best
#: profile beats the runner-up class's best profile by this much (nats).
_SUPPORT_NATS = 0.5
#: Hover fraction from which a track "hovers" in the reasons.
_HOVERS_FRACTION = 0.15


def reasons_text(
    mask: int,
    *,
    speed_mps: float | None = None,
    height_agl_m: float | None = None,
    vertical_rate_mps: float | None = None,
    hover_fraction: float | None = None,
    adsb_category: int = 0,
    rid_ua_type: int = -1,
) -> list[str]:
    """Sentences for the reason bits in ``mask`` (see ``REASONS``), with the values
    when given: ``"speed 230 m/s at 60 m AGL"``, ``"ADS-B category A3 (large aircraft)"``."""
    v = "" if speed_mps is None else f" {speed_mps:.0f} m/s"
    h = "" if height_agl_m is None else f" {height_agl_m:.0f} m AGL"
    out: list[str] = []
    for k, name in enumerate(REASONS):
        if not mask & (1 << k):
            continue
        bit = 1 << k
        if bit == R_SPEED:
            out.append(f"speed{v}")
        elif bit == R_HEIGHT:
            out.append(f"height{h}" if h else "height above ground")
        elif bit == R_SPEED_HEIGHT:
            out.append(f"speed{v} at{h}" if h else "speed at its height")
        elif bit == R_HOVERS and hover_fraction is not None:
            out.append(f"hovers ({100 * hover_fraction:.0f} % of the time)")
        elif bit == R_VERTICAL and vertical_rate_mps is not None:
            out.append(f"climbs or descends at {vertical_rate_mps:.1f} m/s")
        elif bit == R_ADSB_CATEGORY and adsb_category in ADSB_CATEGORIES:
            out.append(f"ADS-B category {adsb_category_name(adsb_category)} "
                       f"({ADSB_CATEGORIES[adsb_category]})")
        elif bit == R_RID_TYPE and 0 <= rid_ua_type < len(RID_UA_TYPES):
            out.append(f"Remote ID UA type {RID_UA_TYPES[rid_ua_type]}")
        else:
            out.append(name)
    return out


# --------------------------------------------------------------------------- classifier


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    """Time constants (s), thresholds, coverage and decision costs of a :class:`Classifier`."""

    #: Exponential averaging time constants of the kinematic evidence (s).
    speed_tau_s: float = 15.0
    height_tau_s: float = 10.0
    vertical_rate_tau_s: float = 15.0
    hover_tau_s: float = 30.0
    manoeuvre_tau_s: float = 40.0
    straightness_tau_s: float = 40.0
    #: The maximum speed is a leaky maximum of a short-average speed: it decays
    #: towards the current speed with this time constant.
    max_speed_tau_s: float = 60.0
    max_speed_smoothing_s: float = 10.0
    #: Hover: the horizontal velocity averaged over ``hover_smoothing_s`` is below
    #: ``hover_speed_mps``, with a logistic edge ``hover_soft_mps`` wide.
    hover_speed_mps: float = 2.0
    hover_soft_mps: float = 0.5
    hover_smoothing_s: float = 5.0
    #: A stop ends a leg of the path: the velocity averaged over ``stop_smoothing_s``
    #: (every look alike, whatever its 1σ) is below ``hover_speed_mps`` (the same
    #: logistic edge). A few looks of a 1 s radar: long enough to see through the
    #: filter's lag as a multirotor reverses, short against a circling bird's turn
    #: (≥ 2.5 s a radian), whose 3 s average keeps most of its speed. While stopped,
    #: the straightness window forgets the legs before with time constant
    #: ``stop_forget_s`` (one look at rest forgets them).
    stop_smoothing_s: float = 3.0
    stop_forget_s: float = 0.25
    #: Velocity-borne evidence of a look counts with weight 1/(1 + (σ_v/this)²), σ_v
    #: the 1σ of the track's horizontal velocity (when given).
    velocity_std_ref_mps: float = 2.0
    #: An identity (an RF detection) counts for this long after it was last given (s):
    #: cooperative reports and DF bearings come and go, the flyer stays what it is.
    identity_memory_s: float = 30.0
    rf_memory_s: float = 60.0
    #: Weights of the features (``FEATURES``) in the naive-Bayes sum, 1 if absent:
    #: naive Bayes counts correlated features twice, and mean and maximum speed
    #: measure nearly the same thing, as do manoeuvre and straightness (both see a
    #: curving path); vertical rate is noisy far from a radar.
    weights: Mapping[str, float] = field(default_factory=lambda: {
        "max_speed": 0.25, "vertical_rate": 0.5, "manoeuvre": 0.5, "straightness": 0.75})
    #: Probability that this node receives the ADS-B (Remote ID) of a flyer that
    #: broadcasts it. 0, the default, when unknown: then a track without an identity
    #: is no evidence against a crewed aircraft. With receivers covering the airspace,
    #: a missing identity makes a crewed aircraft less likely.
    adsb_coverage: float = 0.0
    remote_id_coverage: float = 0.0
    #: A track younger than this (s since its first update) is labelled unknown.
    min_age_s: float = 5.0
    #: Decision costs: any confusion costs 1, ``unknown`` ``reject_cost``; calling a
    #: crewed aircraft a drone costs ``crewed_as_drone_cost`` (a response to a crewed
    #: aircraft is the worst outcome), calling a drone a bird ``drone_as_bird_cost``
    #: (raise it where a missed drone matters more than false alarms on birds; at 2,
    #: simulated birds are called drones half the time).
    reject_cost: float = 0.5
    crewed_as_drone_cost: float = 10.0
    drone_as_bird_cost: float = 1.0

    def __post_init__(self) -> None:
        taus = (self.speed_tau_s, self.height_tau_s, self.vertical_rate_tau_s, self.hover_tau_s,
                self.manoeuvre_tau_s, self.straightness_tau_s, self.max_speed_tau_s,
                self.max_speed_smoothing_s, self.hover_smoothing_s, self.velocity_std_ref_mps,
                self.stop_smoothing_s, self.stop_forget_s)
        if not all(t > 0 for t in taus):
            raise SkyfenceError("classifier time constants and scales must be positive")
        if not 0 < self.reject_cost < 1:
            raise SkyfenceError("reject_cost must be in (0, 1)")
        if not (0 <= self.adsb_coverage <= 1 and 0 <= self.remote_id_coverage <= 1):
            raise SkyfenceError("adsb_coverage and remote_id_coverage must be in [0, 1]")
        unknown = set(self.weights) - set(FEATURES)
        if unknown:
            raise SkyfenceError(f"unknown feature weights {sorted(unknown)}; "
                                f"features are {', '.join(FEATURES)}")

    def cost_matrix(self) -> F64:
        """(6, 6) cost of each label (columns) for each true class (rows)."""
        c = 1.0 - np.eye(len(CLASSES))
        c[CREWED, list(DRONE_CLASSES)] = self.crewed_as_drone_cost
        c[list(DRONE_CLASSES), BIRD] = self.drone_as_bird_cost
        c[:, UNKNOWN] = self.reject_cost
        c[UNKNOWN, UNKNOWN] = 0.0
        return c


@dataclass(frozen=True, slots=True)
class Classification:
    """The classes of the tracks of one :meth:`Classifier.update`, in its input order.

    ``probs`` (n, 6) are class probabilities in ``CLASSES`` order (rows sum to 1);
    ``label`` (n,) int8 the decided class (``UNKNOWN`` while evidence is short);
    ``reasons`` (n,) uint32 bits over ``REASONS``. The evidence behind them:
    ``speed_mps``, ``max_speed_mps`` (horizontal, m/s), ``height_agl_m`` (m),
    ``vertical_rate_mps`` (|rate|, m/s), ``hover_fraction``, ``manoeuvre``,
    ``straightness`` (0–1), ``age_s`` (s since the track's first update), and the
    remembered identity ``identity_kind``, ``adsb_category``, ``rid_ua_type``.
    """

    t: float
    track_id: I64
    probs: F64
    label: NDArray[np.int8]
    reasons: NDArray[np.uint32]
    speed_mps: F64
    max_speed_mps: F64
    height_agl_m: F64
    vertical_rate_mps: F64
    hover_fraction: F64
    manoeuvre: F64
    straightness: F64
    age_s: F64
    identity_kind: NDArray[np.int8]
    adsb_category: NDArray[np.int8]
    rid_ua_type: NDArray[np.int8]

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def label_names(self) -> list[str]:
        return [CLASSES[k] for k in self.label.tolist()]

    def reasons_text(self, i: int) -> list[str]:
        """The reasons of row ``i`` as sentences, with its values."""
        return reasons_text(
            int(self.reasons[i]), speed_mps=float(self.speed_mps[i]),
            height_agl_m=float(self.height_agl_m[i]),
            vertical_rate_mps=float(self.vertical_rate_mps[i]),
            hover_fraction=float(self.hover_fraction[i]),
            adsb_category=int(self.adsb_category[i]), rid_ua_type=int(self.rid_ua_type[i]),
        )

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> Classification:
        arrays = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "t"}
        return Classification(t=self.t, **arrays)

    @classmethod
    def empty(cls, t: float) -> Classification:
        f = np.empty(0)
        i8 = np.empty(0, dtype=np.int8)
        return cls(t=t, track_id=np.empty(0, dtype=np.int64), probs=np.empty((0, len(CLASSES))),
                   label=i8, reasons=np.empty(0, dtype=np.uint32), speed_mps=f,
                   max_speed_mps=f, height_agl_m=f, vertical_rate_mps=f, hover_fraction=f,
                   manoeuvre=f, straightness=f, age_s=f, identity_kind=i8, adsb_category=i8,
                   rid_ua_type=i8)


# Columns of the exponentially weighted means (n, _K) and their weights.
# _VE_STOP and _VN_STOP average the velocity over a few seconds (stops); _VE, _VN and
# _SPEED_PATH are the straightness window's mean velocity and speed.
(_SPEED, _SPEED_FAST, _VE_FAST, _VN_FAST, _VE_STOP, _VN_STOP, _HEIGHT, _VRATE, _HOVER,
 _MANOEUVRE, _VE, _VN, _SPEED_PATH) = range(13)
_K = 13
_VELOCITY_BORNE: Final = [_SPEED, _SPEED_FAST, _VE_FAST, _VN_FAST, _HOVER, _MANOEUVRE, _VE, _VN,
                          _SPEED_PATH]
# Updated first: hover and stops are judged on them.
_FAST = slice(_SPEED_FAST, _VN_STOP + 1)
# The straightness window, forgotten at a stop.
_PATH: Final = [_VE, _VN, _SPEED_PATH]


class Classifier:
    """Per-track evidence keyed by track id, updated with each tracker output.

    ``update`` takes the tracks alive at time ``t`` (any order); tracks not in the
    call are forgotten (ids are never reused) unless ``keep_absent=True``. State is
    held sorted by id, one row per track; every step is whole-array.
    ``profiles`` replaces the model (see ``PROFILES``).
    """

    def __init__(self, *, config: ClassifierConfig | None = None,
                 profiles: Sequence[Profile] = PROFILES) -> None:
        self.config = cfg = config or ClassifierConfig()
        self.profiles = tuple(profiles)
        self._tau = np.array([cfg.speed_tau_s, cfg.max_speed_smoothing_s, cfg.hover_smoothing_s,
                              cfg.hover_smoothing_s, cfg.stop_smoothing_s, cfg.stop_smoothing_s,
                              cfg.height_tau_s, cfg.vertical_rate_tau_s, cfg.hover_tau_s,
                              cfg.manoeuvre_tau_s, cfg.straightness_tau_s, cfg.straightness_tau_s,
                              cfg.straightness_tau_s])
        self._weights = np.array([cfg.weights.get(f, 1.0) for f in FEATURES])
        self._cost = cfg.cost_matrix()
        self._profile_class = np.array([p.cls for p in self.profiles], dtype=np.intp)
        self._class_of = np.eye(len(CLASSES))[self._profile_class]  # (profiles, classes)
        prior = np.array([p.prior for p in self.profiles])
        self._log_prior = np.log(prior / prior.sum())
        # Mean straightness of each profile: which of two flies the straighter line.
        self._straightness = np.array([sum(w * c.a / (c.a + c.b) for w, c in
                                           _components(p.straightness)) for p in self.profiles])
        self._densities = _Densities(self.profiles)
        self._claims_table(cfg)
        self.t: float | None = None
        self._alloc(0)

    def _claims_table(self, cfg: ClassifierConfig) -> None:
        """Log P(claim | profile): rows ADS-B groups, Remote ID groups, RF link; and
        log P(no identity | profile) under the configured receiver coverage."""
        adsb = np.array([p.adsb for p in self.profiles])
        rid = np.array([p.remote_id for p in self.profiles])
        table = np.concatenate([
            adsb * np.array([p.adsb_categories for p in self.profiles]).T,
            rid * np.array([p.rid_types for p in self.profiles]).T,
            np.array([[p.rf_link for p in self.profiles]]),
        ])
        self._log_claim = np.log(np.maximum(table, SPOOF_PROBABILITY))
        silent = 1.0 - cfg.adsb_coverage * adsb - cfg.remote_id_coverage * rid
        self._log_silent = np.log(np.maximum(silent, SPOOF_PROBABILITY))
        # The class each claim speaks for: that of the profile most likely to make it.
        self._claim_class = self._profile_class[table.argmax(axis=1)]

    def _alloc(self, n: int) -> None:
        self.id = np.empty(n, dtype=np.int64)
        self.t_first = np.empty(n)
        self.t_last = np.empty(n)
        self.mean = np.empty((n, _K))
        self.weight = np.empty((n, _K))
        self.max_speed = np.empty(n)
        self.identity_kind = np.empty(n, dtype=np.int8)
        self.adsb_category = np.empty(n, dtype=np.int8)
        self.rid_ua_type = np.empty(n, dtype=np.int8)
        self.t_identity = np.empty(n)
        self.t_rf = np.empty(n)
        # Each track's class as decided at its last observation (see ``update``).
        self.c_probs = np.empty((n, len(CLASSES)))
        self.c_label = np.empty(n, dtype=np.int8)
        self.c_reasons = np.empty(n, dtype=np.uint32)

    _ARRAYS = ("id", "t_first", "t_last", "mean", "weight", "max_speed", "identity_kind",
               "adsb_category", "rid_ua_type", "t_identity", "t_rf", "c_probs", "c_label",
               "c_reasons")

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def forget(self, track_id: ArrayLike) -> None:
        """Drop the evidence of ``track_id`` (deleted tracks)."""
        keep = ~np.isin(self.id, np.asarray(track_id, dtype=np.int64))
        for name in self._ARRAYS:
            setattr(self, name, getattr(self, name)[keep])

    def update(
        self,
        t: float,
        *,
        track_id: ArrayLike,
        x: ArrayLike,
        height_agl_m: ArrayLike,
        manoeuvre_p: ArrayLike,
        identity_kind: ArrayLike | None = None,
        adsb_category: ArrayLike | None = None,
        rid_ua_type: ArrayLike | None = None,
        rf_emission: ArrayLike | None = None,
        velocity_std_mps: ArrayLike | None = None,
        observed: ArrayLike | None = None,
        keep_absent: bool = False,
    ) -> Classification:
        """Fold in one observation of each track and classify them.

        ``t`` float64 s (UTC epoch), not before the previous call. Per track, all (n,):
        ``track_id`` int64 (unique); ``x`` (n, 6) ENU state, metres and m/s;
        ``height_agl_m`` height above ground (m); ``manoeuvre_p`` the probability
        the tracker's IMM puts on its non-constant-velocity modes; ``identity_kind``
        int8 (0 none, 1 ICAO/ADS-B, 2 Remote ID); ``adsb_category`` int8 (see
        ``ADSB_CATEGORIES``; 0 unknown); ``rid_ua_type`` int8 (ASTM F3411 0–15, −1
        unknown); ``rf_emission`` bool (a direction finder saw a drone link);
        ``velocity_std_mps`` the 1σ of the horizontal velocity estimate (m/s,
        √((P₃₃ + P₄₄)/2)), optional: given, a look's velocity-borne evidence counts by
        its quality, so a young track's unsettled velocity weighs little. Identity,
        RF and velocity quality default to none; a track's last identity is remembered.

        ``observed`` bool (n,), optional: only these tracks are observed (the ones a
        sensor updated at ``t``; the rest are the tracker's predictions, which are no
        evidence). The others keep the class decided at their last observation, with
        their evidence columns as they stand: on a node whose tracker steps on each
        sensor and partner picture apart, a track is then classified once per update
        of its own, not once per step of anyone's. A track the classifier has not seen
        yet is observed whatever ``observed`` says.
        """
        ids = np.asarray(track_id, dtype=np.int64)
        n = ids.shape[0] if ids.ndim == 1 else -1
        xs = np.asarray(x, dtype=np.float64)
        h = np.asarray(height_agl_m, dtype=np.float64)
        mp = np.asarray(manoeuvre_p, dtype=np.float64)
        v_std = None if velocity_std_mps is None else np.asarray(velocity_std_mps, np.float64)
        if (n < 0 or xs.shape != (n, 6) or h.shape != (n,) or mp.shape != (n,)
                or (v_std is not None and v_std.shape != (n,))):
            raise SkyfenceError(
                f"classifier inputs disagree in shape: track_id {ids.shape}, x {xs.shape}, "
                f"height_agl_m {h.shape}, manoeuvre_p {mp.shape}")
        kind = _int8_column(identity_kind, n, 0)
        cat = _int8_column(adsb_category, n, 0)
        ua = _int8_column(rid_ua_type, n, -1)
        rf = (np.zeros(n, dtype=bool) if rf_emission is None
              else np.asarray(rf_emission, dtype=bool))
        if rf.shape != (n,):
            raise SkyfenceError(f"rf_emission of shape {rf.shape} for {n} tracks")
        if self.t is not None and t < self.t:
            raise SkyfenceError(f"classifier update at t={t!r} is older than the last, "
                                f"{self.t!r}; feed tracker outputs in time order")
        order = np.argsort(ids, kind="stable")
        sid = ids[order]
        if n > 1 and np.any(sid[1:] == sid[:-1]):
            raise SkyfenceError("track_id holds duplicates")
        self._merge(sid, t, keep_absent=keep_absent)
        rows = np.searchsorted(self.id, sid)
        if observed is None:
            look = np.ones(n, dtype=bool)
        else:
            look = np.asarray(observed, dtype=bool)
            if look.shape != (n,):
                raise SkyfenceError(f"observed of shape {look.shape} for {n} tracks")
            look = look[order] | np.isnan(self.t_last[rows])
        r, o = rows[look], order[look]
        self._observe(r, t, xs[o], h[o], np.clip(mp[o], 0.0, 1.0),
                      None if v_std is None else v_std[o])
        self._remember(r, t, kind[o], cat[o], ua[o], rf[o])
        self.t = t
        inverse = np.empty(n, dtype=np.intp)
        inverse[order] = np.arange(n)
        if look.all():
            return self._classify(rows, t).take(inverse)
        self._classify(r, t)  # decides the observed ones (kept in c_probs, …)
        return self._held(rows, t).take(inverse)

    # ------------------------------------------------------------------ state

    def _merge(self, sid: I64, t: float, *, keep_absent: bool) -> None:
        """Make the state's rows the sorted ids ``sid`` (plus the absent ones if kept)."""
        if np.array_equal(sid, self.id):
            return  # the same tracks as last time: the usual case
        new = sid[~np.isin(sid, self.id)]
        keep = np.ones(len(self), dtype=bool) if keep_absent else np.isin(self.id, sid)
        m = new.shape[0]
        fresh = {
            "id": new, "t_first": np.full(m, t), "t_last": np.full(m, np.nan),
            "mean": np.zeros((m, _K)), "weight": np.zeros((m, _K)),
            "max_speed": np.full(m, np.nan), "identity_kind": np.zeros(m, dtype=np.int8),
            "adsb_category": np.zeros(m, dtype=np.int8),
            "rid_ua_type": np.full(m, -1, dtype=np.int8), "t_identity": np.full(m, -np.inf),
            "t_rf": np.full(m, -np.inf), "c_probs": np.zeros((m, len(CLASSES))),
            "c_label": np.full(m, UNKNOWN, dtype=np.int8), "c_reasons": np.zeros(m, np.uint32),
        }
        order = np.argsort(np.concatenate([self.id[keep], new]), kind="stable")
        for name in self._ARRAYS:
            setattr(self, name, np.concatenate([getattr(self, name)[keep], fresh[name]])[order])

    def _observe(self, rows: NDArray[np.intp], t: float, x: F64, h: F64, mp: F64,
                 v_std: F64 | None) -> None:
        cfg = self.config
        speed2 = x[:, 3] ** 2 + x[:, 4] ** 2
        if v_std is not None:
            # |v̂|² overstates |v|² by the estimate's variance, 2σ² over two axes: a
            # young track with σ = 8 m/s would otherwise look 4 m/s faster than it is.
            speed2 = np.maximum(speed2 - 2.0 * v_std**2, 0.0)
        speed = np.sqrt(speed2)
        # A new track's first look stands for one second of flight.
        dt = np.where(np.isnan(self.t_last[rows]), 1.0, t - self.t_last[rows])
        obs = np.stack([speed, speed, x[:, 3], x[:, 4], x[:, 3], x[:, 4], h, np.abs(x[:, 5]),
                        np.zeros_like(speed), mp, x[:, 3], x[:, 4], speed], axis=1)
        decay = np.exp(-dt[:, None] / self._tau)
        w = 1.0 - decay
        if v_std is not None:
            # Velocity-borne evidence counts by the quality of the velocity: a young
            # track's velocity (and its IMM mode probabilities) have not settled yet.
            w[:, _VELOCITY_BORNE] *= 1.0 / (1.0 + (v_std / cfg.velocity_std_ref_mps) ** 2)[:, None]
        mean, weight = self.mean[rows], self.weight[rows] * decay
        # Hover is judged on the velocity averaged over a few seconds, not on one
        # estimate: a filter's velocity noise (~3 m/s) alone would hide a hovering drone.
        weight[:, _FAST] += w[:, _FAST]
        mean[:, _FAST] += _gain(w[:, _FAST], weight[:, _FAST]) * (obs[:, _FAST] - mean[:, _FAST])
        obs[:, _HOVER] = _at_rest(np.hypot(mean[:, _VE_FAST], mean[:, _VN_FAST]), cfg)
        # A stop: the velocity of the last few seconds is about nil. A multirotor
        # flying waypoints brakes to a stop at each and sets off in another direction;
        # a flyer that can stop can turn on the spot, so a change of heading across a
        # stop is no meandering, and the legs before it are forgotten (the window's mean
        # velocity and its mean speed alike, so straightness is that of the new leg).
        # Birds and aircraft never stop in flight. Every look counts alike here: when a
        # track brakes its velocity's 1σ grows, and the quality weighting would hide it.
        stopped = _at_rest(np.hypot(mean[:, _VE_STOP], mean[:, _VN_STOP]), cfg)
        weight[:, _PATH] *= np.exp(-stopped * dt / cfg.stop_forget_s)[:, None]
        slow = np.ones(_K, dtype=bool)
        slow[_FAST] = False
        weight[:, slow] += w[:, slow]
        mean[:, slow] += _gain(w[:, slow], weight[:, slow]) * (obs[:, slow] - mean[:, slow])
        self.mean[rows], self.weight[rows] = mean, weight
        short = mean[:, _SPEED_FAST]
        leak = np.exp(-dt / cfg.max_speed_tau_s)
        prev = self.max_speed[rows]
        self.max_speed[rows] = np.where(np.isnan(prev), short,
                                        np.maximum(short, short + (prev - short) * leak))
        self.t_last[rows] = t

    def _remember(self, rows: NDArray[np.intp], t: float, kind: NDArray[np.int8],
                  cat: NDArray[np.int8], ua: NDArray[np.int8], rf: NDArray[np.bool_]) -> None:
        claim = kind != IDENTITY_NONE
        r, k = rows[claim], kind[claim]
        self.identity_kind[r] = k
        self.adsb_category[r] = np.where(k == IDENTITY_ICAO, cat[claim], 0)
        self.rid_ua_type[r] = np.where(k == IDENTITY_REMOTE_ID, ua[claim], -1)
        self.t_identity[r] = t
        self.t_rf[rows[rf]] = t

    # ------------------------------------------------------------------ classification

    def features(self, rows: NDArray[np.intp]) -> dict[str, F64]:
        """The evidence (n,) of state rows ``rows``, by feature name (``FEATURES``)."""
        m = self.mean[rows]
        path_speed = np.maximum(m[:, _SPEED_PATH], 1e-9)
        straight = np.clip(np.hypot(m[:, _VE], m[:, _VN]) / path_speed, 0.0, 1.0)
        return {"speed": m[:, _SPEED], "max_speed": self.max_speed[rows], "height": m[:, _HEIGHT],
                "vertical_rate": m[:, _VRATE], "hover": m[:, _HOVER],
                "manoeuvre": m[:, _MANOEUVRE], "straightness": straight}

    def _classify(self, rows: NDArray[np.intp], t: float) -> Classification:
        cfg = self.config
        if rows.shape[0] == 0:
            return Classification.empty(t)
        f = self.features(rows)
        ll = self._densities.log_likelihoods(f)  # (n, profiles, features)
        ll *= self._weights
        # Straightness and manoeuvre describe a window of their time constant: until a
        # track has flown that long its values say less (anything looks straight over
        # a few seconds), so their evidence is tempered by the window's fill.
        age = t - self.t_first[rows]
        ll[:, :, _F_STRAIGHTNESS] *= -np.expm1(-age / cfg.straightness_tau_s)[:, None]
        ll[:, :, _F_MANOEUVRE] *= -np.expm1(-age / cfg.manoeuvre_tau_s)[:, None]
        claim, rf = self._claims(rows, t)
        coop = np.where((claim >= 0)[:, None], self._log_claim[np.maximum(claim, 0)],
                        self._log_silent)
        coop += np.where(rf[:, None], self._log_claim[_RF_ROW], 0.0)
        log_post = self._log_prior + ll.sum(axis=2) + coop
        log_post -= log_post.max(axis=1, keepdims=True)
        log_post -= _logsumexp(log_post)[:, None]
        post = np.exp(log_post)
        post /= post.sum(axis=1, keepdims=True)
        probs = post @ self._class_of
        young = age < cfg.min_age_s
        label = np.where(young, UNKNOWN, np.argmin(probs @ self._cost, axis=1)).astype(np.int8)
        reasons = self._reasons(ll, log_post, probs, label, young, claim, rf, rows)
        self.c_probs[rows], self.c_label[rows], self.c_reasons[rows] = probs, label, reasons
        return self._classification(rows, t, f, probs, label, reasons)

    def _held(self, rows: NDArray[np.intp], t: float) -> Classification:
        """The classes of state rows ``rows`` as last decided, with their evidence now."""
        return self._classification(rows, t, self.features(rows), self.c_probs[rows],
                                    self.c_label[rows], self.c_reasons[rows])

    def _classification(self, rows: NDArray[np.intp], t: float, f: dict[str, F64], probs: F64,
                        label: NDArray[np.int8], reasons: NDArray[np.uint32]
                        ) -> Classification:
        """State rows ``rows`` with their features ``f`` and decision, as a result."""
        return Classification(
            t=t, track_id=self.id[rows].copy(), probs=probs, label=label, reasons=reasons,
            speed_mps=f["speed"], max_speed_mps=f["max_speed"], height_agl_m=f["height"],
            vertical_rate_mps=f["vertical_rate"], hover_fraction=f["hover"],
            manoeuvre=f["manoeuvre"], straightness=f["straightness"],
            age_s=t - self.t_first[rows], identity_kind=self.identity_kind[rows].copy(),
            adsb_category=self.adsb_category[rows].copy(),
            rid_ua_type=self.rid_ua_type[rows].copy(),
        )

    def _claims(self, rows: NDArray[np.intp], t: float
                ) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Row of the claim table of each track's identity (−1 for none), and whether
        an RF link seen on it still counts."""
        kind = self.identity_kind[rows]
        adsb = _ADSB_GROUP[np.clip(self.adsb_category[rows], 0, _ADSB_GROUP.size - 1)]
        # A Remote ID without a UA type is an undeclared one.
        rid = _N_ADSB + _RID_GROUP[np.clip(self.rid_ua_type[rows], 0, 15)]
        kind = np.where(t - self.t_identity[rows] <= self.config.identity_memory_s, kind,
                        IDENTITY_NONE)
        claim = np.where(kind == IDENTITY_ICAO, adsb,
                         np.where(kind == IDENTITY_REMOTE_ID, rid, -1))
        rf = t - self.t_rf[rows] <= self.config.rf_memory_s
        return claim, rf

    def _reasons(self, ll: F64, log_post: F64, probs: F64, label: NDArray[np.int8],
                 young: NDArray[np.bool_], claim: NDArray[np.intp], rf: NDArray[np.bool_],
                 rows: NDArray[np.intp]) -> NDArray[np.uint32]:
        """Reason bits: the evidence that favours the explained class (the label, or the
        most probable class when unknown) over its alternatives, and why unknown.

        The alternatives are the profiles of the other classes (not ``unknown``, which
        explains anything) weighted by their posterior: a feature is a reason when its
        log-likelihood under the explained class's best profile beats their mixture by
        ``_SUPPORT_NATS``. Speed and height are also judged together ("230 m/s at
        60 m": neither alone tells a fast low flyer from an airliner).
        """
        n = ll.shape[0]
        r = np.arange(n)
        best = np.argmax(probs, axis=1)
        target = np.where(label == UNKNOWN, best, label)
        mine = self._profile_class == target[:, None]  # (n, profiles)
        own = np.argmax(np.where(mine, log_post, -np.inf), axis=1)
        rival = ~mine & (self._profile_class != UNKNOWN)
        log_w = np.where(rival, log_post, -np.inf)
        log_w -= _logsumexp(log_w)[:, None]
        kind = self.identity_kind[rows]
        has = claim >= 0
        c = np.maximum(claim, 0)
        # Evidence groups (n, profiles, 7): speed, height, both, hover, path, vertical
        # rate, identity; each one's margin: own profile's minus the rivals' mixture's.
        groups = np.stack([
            ll[:, :, 0] + ll[:, :, 1], ll[:, :, 2], ll[:, :, 0] + ll[:, :, 1] + ll[:, :, 2],
            ll[:, :, 4], ll[:, :, 5] + ll[:, :, 6], ll[:, :, 3], self._log_claim[c],
        ], axis=2)
        margin = groups[r, own] - _logsumexp(np.swapaxes(log_w[:, :, None] + groups, 1, 2))
        speed, height, together, hover, path, vertical, favours = (
            margin > _SUPPORT_NATS).T
        hovers = self.mean[rows, _HOVER] >= _HOVERS_FRACTION
        rival_straightness = (np.exp(log_w) * self._straightness).sum(axis=1)
        bent = self._straightness[own] < rival_straightness
        bits = np.zeros(n, dtype=np.uint32)

        def add(cond: NDArray[np.bool_], bit: int | NDArray[np.int64]) -> None:
            nonlocal bits
            bits |= np.where(cond, bit, 0).astype(np.uint32)

        add((speed & height) | (together & ~speed & ~height), R_SPEED_HEIGHT)
        add(speed & ~height, R_SPEED)
        add(height & ~speed, R_HEIGHT)
        add(hover, np.where(hovers, R_HOVERS, R_NO_HOVER))
        add(path, np.where(bent, R_MANOEUVRES, R_STRAIGHT))
        add(vertical, R_VERTICAL)
        # Identity: does the claim favour the explained class over the alternatives?
        favours &= has
        specific = np.where(kind == IDENTITY_ICAO, c != 0, self.rid_ua_type[rows] > 0)
        icao_bit = np.where(specific, R_ADSB_CATEGORY, R_ADSB)
        rid_bit = np.where(specific, R_RID_TYPE, R_RID)
        add(favours, np.where(kind == IDENTITY_ICAO, icao_bit, rid_bit))
        # The claim spoke for another class, and the kinematics won.
        claimed = self._claim_class[c]
        add(has & (claimed != target) & (probs[r, claimed] < 0.5), R_CONTRADICTS)
        add(rf & np.isin(target, DRONE_CLASSES), R_RF)
        # Why unknown.
        unknown = (label == UNKNOWN) & ~young
        blocked = unknown & np.isin(best, DRONE_CLASSES) & (probs[:, CREWED] > 0.01)
        add(young, R_YOUNG)
        add(unknown & (best == UNKNOWN), R_NO_FIT)
        add(blocked, R_MAY_BE_CREWED)
        add(unknown & (best != UNKNOWN) & ~blocked, R_AMBIGUOUS)
        return bits


def _at_rest(drift: F64, cfg: ClassifierConfig) -> F64:
    """How surely an averaged velocity of this size (m/s) is rest: a logistic edge at
    ``hover_speed_mps``, soft over ``hover_soft_mps``; the exponent is clipped (fast
    tracks overflow exp)."""
    z = np.clip((drift - cfg.hover_speed_mps) / cfg.hover_soft_mps, -60.0, 60.0)
    out: F64 = 1.0 / (1.0 + np.exp(z))
    return out


def _gain(w: F64, weight: F64) -> F64:
    """Gain ``w / weight`` of an exponentially weighted mean (0 where nothing was seen)."""
    out: F64 = np.divide(w, weight, out=np.zeros_like(w), where=weight > 0)
    return out


def _logsumexp(a: F64) -> F64:
    """log Σ exp over the last axis; −inf for a row of −inf."""
    top = a.max(axis=-1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out: F64 = safe + np.log(np.exp(a - safe[..., None]).sum(axis=-1))
    return out


class _Densities:
    """Every profile's feature densities as parameter arrays, evaluated for all tracks
    and profiles at once (the same numbers as ``Profile.log_likelihoods``)."""

    def __init__(self, profiles: Sequence[Profile]) -> None:
        def boxes(name: str) -> F64:
            return np.array([[getattr(getattr(p, name), k) for p in profiles]
                             for k in ("lo", "hi", "soft_lo", "soft_hi")])

        def mixtures(name: str) -> F64:
            comps = [_components(getattr(p, name)) for p in profiles]
            k = max(len(c) for c in comps)
            table = np.zeros((4, len(profiles), k))  # log weight, a, b, log norm
            table[0] = -np.inf
            table[1:3] = 1.0
            for i, c in enumerate(comps):
                for j, (w, b) in enumerate(c):
                    norm = math.lgamma(b.a + b.b) - math.lgamma(b.a) - math.lgamma(b.b)
                    table[:, i, j] = (math.log(w), b.a, b.b, norm)
            return table

        self.speed, self.max_speed, self.height = (
            boxes("speed_mps"), boxes("max_speed_mps"), boxes("height_agl_m"))
        self.vertical_scale = np.array([p.vertical_rate_mps.scale for p in profiles])
        self.hover, self.manoeuvre, self.straightness = (
            mixtures("hover"), mixtures("manoeuvre"), mixtures("straightness"))

    def log_likelihoods(self, f: dict[str, F64]) -> F64:
        """(n, profiles, features) log-densities of the features ``f`` (``FEATURES``)."""
        vz = np.maximum(f["vertical_rate"], 0.0)[:, None]
        return np.stack([
            _box(f["speed"], self.speed), _box(f["max_speed"], self.max_speed),
            _box(f["height"], self.height),
            -vz / self.vertical_scale - np.log(self.vertical_scale),
            _mixture(f["hover"], self.hover), _mixture(f["manoeuvre"], self.manoeuvre),
            _mixture(f["straightness"], self.straightness),
        ], axis=2)


def _components(d: Beta | BetaMixture) -> tuple[tuple[float, Beta], ...]:
    return d.components if isinstance(d, BetaMixture) else ((1.0, d),)


def _box(x: F64, table: F64) -> F64:
    """Soft-box log-densities (n, profiles) of ``x`` (n,); ``table`` (4, profiles)."""
    lo, hi, soft_lo, soft_hi = table
    xc = x[:, None]
    out: F64 = -np.log(hi - lo) - np.where(
        soft_lo > 0, np.logaddexp(0.0, (lo - xc) / np.where(soft_lo > 0, soft_lo, 1.0)), 0.0
    ) - np.where(
        soft_hi > 0, np.logaddexp(0.0, (xc - hi) / np.where(soft_hi > 0, soft_hi, 1.0)), 0.0)
    return out


def _mixture(x: F64, table: F64) -> F64:
    """Beta-mixture log-densities (n, profiles) of ``x`` (n,); ``table`` (4, profiles, k)."""
    log_w, a, b, norm = table
    u = np.clip(x, 0.01, 0.99)[:, None, None]
    comps = log_w + (a - 1.0) * np.log(u) + (b - 1.0) * np.log1p(-u) + norm
    return _logsumexp(comps)


def _int8_column(values: ArrayLike | None, n: int, default: int) -> NDArray[np.int8]:
    if values is None:
        return np.full(n, default, dtype=np.int8)
    out = np.asarray(values).astype(np.int8)
    if out.shape != (n,):
        raise SkyfenceError(f"classifier input of shape {out.shape} for {n} tracks")
    return out
