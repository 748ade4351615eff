"""Multi-sensor fusion targets: low flyers under radar, swarms as groups, classification,
spoofing, and throughput with four sensor kinds.

``python bench/fusion.py`` runs every measure over a few seeds and prints a markdown
table (``--out FILE`` writes it too); ``--low-flyer-seeds 40`` runs only the low flyer
measure over seeds 0-39 and summarises it. Each measure says what it counts:

- low_flyer: fraction of truth times (every 0.5 s) at which a target inside the cover
  of at least two bearing sensors (so that bearings alone could fix it) is held by a
  confirmed track of the picture shown then (that of the latest tracker step), all
  sensors against the radar alone. "Held": a confirmed track within 100 m,
  or whose own covariance contains the truth (χ²₃ < 16.3, P = 0.999) — a bearing-only
  fix at 8 km is honest at ±500 m, never within 100 m. ``_false``: the share of
  confirmed tracks, over the truth times, farther than 1.5 km from every target.
- swarm: a 50-drone swarm's group member count after 10 s (within 10 % of the drones
  in the group), and how many group ids were shown against the true formations (2).
- classification: share of track-time (after each track's first 10 s) classified as
  the truth's kind, on the ``mixed`` preset; crewed replays never called a drone.
- spoofing: seconds from the lying Remote ID's first report to its spoof_suspect
  flag; honest transmitters flagged in the same run.
- throughput: detections per second of the ``fusion`` preset (3-D radar, 2-D radar,
  RF direction finder, Remote ID receiver) against ``spread`` (one radar), N = 1,000.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from skyfence import sim
from skyfence.classify import CLASSES
from skyfence.picture import Frame, Picture
from skyfence.pipeline import batch_bounds
from skyfence.scenario import Scenario
from skyfence.sim.result import SimResult
from skyfence.sim.sensors import in_cover
from skyfence.track import Tracker
from skyfence.types import Detections, TrackFlag, TrackStatus

CHI2_3_999 = 16.27
HELD_WITHIN_M = 100.0
#: A confirmed track farther than this from every target is a false track.
FALSE_BEYOND_M = 1500.0


def _steps(scenario: Scenario, det: Detections, each: Callable[[float, Any], None], *,
           picture: bool = False) -> float:
    """Run the tracker over ``det`` one time at a time; ``each(t, update or frame)``.
    Returns the tracking time (s), picture excluded."""
    tracker = Tracker.from_scenario(scenario)
    pic = Picture.for_scenario(scenario) if picture else None
    spent = 0.0
    for a, b in zip(*batch_bounds(det.t), strict=True):
        batch = det.take(slice(a, b))
        t0 = time.perf_counter()
        update = tracker.step(batch)
        spent += time.perf_counter() - t0
        each(float(det.t[a]), pic.update(update) if pic is not None else update)
    return spent


def _only(result: SimResult, keep: list[int]) -> tuple[Scenario, Detections]:
    """The scenario and detections of a subset of its sensors."""
    sc, det = result.scenario, result.detections
    idx = np.asarray(keep)
    remap = np.full(len(sc.sensors), -1, dtype=np.int32)
    remap[idx] = np.arange(idx.size, dtype=np.int32)
    sub = det.take(np.isin(det.sensor, idx))
    return (dataclasses.replace(sc, sensors=tuple(sc.sensors[i] for i in idx)),
            dataclasses.replace(sub, sensor=remap[sub.sensor]))


# --------------------------------------------------------------------------- low flyer


def low_flyer(seed: int) -> dict[str, Any]:
    r = sim.build("low_flyer", seed=seed)
    sc, truth = r.scenario, r.truth
    emitters = np.asarray(sc.extra["simulator"].get("rf_emitters", []), dtype=np.int64)
    bearing = [i for i, s in enumerate(sc.sensors) if s.kind == "bearing"]
    radar = [i for i, s in enumerate(sc.sensors) if s.kind == "radar"]
    cover = np.zeros(len(truth), dtype=np.int64)
    for i in bearing:
        cover += in_cover(sc.origin, sc.sensors[i], truth.x[:, :3],
                          emits_rf=np.isin(truth.id, emitters))
    radar_sees = in_cover(sc.origin, sc.sensors[radar[0]], truth.x[:, :3])
    out: dict[str, Any] = {}
    for name, keep in (("all", list(range(len(sc.sensors)))), ("radar", radar)):
        scen, det = _only(r, keep)
        held = np.zeros(len(truth), dtype=bool)
        # Confirmed tracks, and those far from every target, at each truth time.
        shown_far = np.zeros(2, dtype=np.int64)
        # Each truth time is judged by the picture shown then: that of the latest step at
        # or before it. (A time at which no sensor reported still shows the last picture.)
        shown_at: list[tuple[float, Any]] = []

        def judge(rows: np.ndarray, tr: Any, held: np.ndarray = held,
                  shown_far: np.ndarray = shown_far) -> None:
            shown = tr.status != TrackStatus.TENTATIVE
            if not shown.any() or rows.size == 0:
                return
            d = truth.x[rows, None, :3] - tr.x[None, shown, :3]
            m2 = np.einsum("tki,kij,tkj->tk", d, np.linalg.inv(tr.P[shown, :3, :3]), d)
            dist = np.linalg.norm(d, axis=2)
            held[rows] = np.any((m2 < CHI2_3_999) | (dist < HELD_WITHIN_M), axis=1)
            for t in np.unique(truth.t[rows]):  # over truth times, a handful
                at_t = truth.t[rows] == t
                shown_far += (int(shown.sum()),
                              int(np.count_nonzero(dist[at_t].min(axis=0) > FALSE_BEYOND_M)))

        def each(t: float, u: Any, shown_at: list[tuple[float, Any]] = shown_at) -> None:
            if shown_at:
                last_t, last = shown_at[-1]
                judge(np.flatnonzero((truth.t > last_t) & (truth.t < t)), last)
            judge(np.flatnonzero(truth.t == t), u.tracks)
            shown_at[:] = [(t, u.tracks)]

        _steps(scen, det, each)
        if shown_at:
            judge(np.flatnonzero(truth.t > shown_at[-1][0]), shown_at[-1][1])
        sel = cover >= 2
        hidden = sel & ~radar_sees
        out[name] = float(held[sel].mean())
        out[f"{name}_hidden"] = float(held[hidden].mean()) if hidden.any() else float("nan")
        out[f"{name}_false"] = float(shown_far[1] / max(shown_far[0], 1))
    return out


# --------------------------------------------------------------------------- swarm


def swarm(seed: int) -> dict[str, Any]:
    r = sim.build("swarm", n_targets=50, seed=seed, duration_s=50.0, pd=0.9)
    counts: list[tuple[float, int]] = []
    ids: set[int] = set()
    t0 = float(r.detections.t[0])

    def each(t: float, f: Frame) -> None:
        g = f.groups
        ids.update(g.id.tolist())
        counts.append((t - t0, int(g.count.max()) if len(g.id) else 0))

    _steps(r.scenario, r.detections, each, picture=True)
    split_s = 25.0  # the preset splits the swarm at half its duration
    held = [c for s, c in counts if 10.0 <= s < split_s]
    return {"min_count_10s_to_split": min(held), "ids_shown": len(ids),
            "within_10pc": bool(min(held) >= 45)}


# --------------------------------------------------------------------------- classes


def classification(seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for preset in ("mixed", "crewed"):
        right, total, crewed_as_drone = _classify_run(preset, seed)
        out[preset] = right / total if total else float("nan")
        out[f"{preset}_crewed_called_drone"] = crewed_as_drone
    return out


def _classify_run(preset: str, seed: int) -> tuple[int, int, int]:
    """Looks classified right (after a track's first 10 s), all looks counted, and looks
    at a crewed replay that called it a drone."""
    r = sim.build(preset, seed=seed)
    truth = r.truth
    want = {tid: _truth_class(kind) for tid, kind in r.target_kind.items()}
    first_seen: dict[int, float] = {}
    tally = [0, 0, 0]

    def each(t: float, f: Frame) -> None:
        rows = np.flatnonzero(truth.t == t)
        if rows.size == 0 or len(f.tracks) == 0:
            return
        dist, k = cKDTree(truth.x[rows, :3]).query(f.tracks.x[:, :3])
        for i in np.flatnonzero(dist < HELD_WITHIN_M):  # the measure's edge, not the tracker
            tid = int(truth.id[rows[k[i]]])
            tr_id = int(f.tracks.id[i])
            first_seen.setdefault(tr_id, t)
            label = CLASSES[int(f.classes.label[i])]
            if want[tid] == "crewed_aircraft" and label.startswith("drone_"):
                tally[2] += 1
            if t - first_seen[tr_id] >= 10.0:
                tally[1] += 1
                tally[0] += int(label == want[tid])

    _steps(r.scenario, r.detections, each, picture=True)
    return tally[0], tally[1], tally[2]


def _truth_class(kind: str) -> str:
    return {"multirotor": "drone_multirotor", "swarm": "drone_multirotor",
            "fixed_wing": "drone_fixed_wing", "crewed": "crewed_aircraft",
            "airliner": "crewed_aircraft", "fast_low_flyer": "fast_low_flyer",
            "bird": "bird"}.get(kind, "unknown")


# --------------------------------------------------------------------------- spoofing


def spoofing(seed: int) -> dict[str, Any]:
    r = sim.build("spoofing", seed=seed)
    block = r.scenario.extra["simulator"]
    liars = {tx["identity"] for tx in block["transmitters"] if tx["target"] in block["spoofers"]}
    honest = {tx["identity"] for tx in block["transmitters"]} - liars
    first_report: dict[str, float] = {}
    coop = np.array([s.kind == "cooperative" for s in r.scenario.sensors])[r.detections.sensor]
    for ident in liars:
        first_report[ident] = float(r.detections.t[coop & (r.detections.identity == ident)][0])
    flagged_at: dict[str, float] = {}

    def each(t: float, u: Any) -> None:
        tr = u.tracks
        sus = (tr.flags & np.uint16(TrackFlag.SPOOF_SUSPECT)) != 0
        for ident in set(tr.identity[sus].tolist()) - set(flagged_at):
            flagged_at[ident] = t

    _steps(r.scenario, r.detections, each)
    delays = [flagged_at[i] - first_report[i] for i in liars if i in flagged_at]
    return {"liar_flag_delay_s": max(delays) if len(delays) == len(liars) else float("inf"),
            "honest_flagged": len(honest & set(flagged_at))}


# --------------------------------------------------------------------------- throughput


def throughput(seed: int, n: int) -> dict[str, Any]:
    out = {}
    for preset in ("spread", "fusion"):
        r = sim.build(preset, n_targets=n, seed=seed)
        spent = _steps(r.scenario, r.detections, lambda t, u: None)
        out[preset] = len(r.detections) / spent
    out["ratio"] = out["fusion"] / out["spread"]
    return out


def _held_all(seed: int) -> tuple[float, float]:
    res = low_flyer(seed)
    return float(res["all"]), float(res["all_false"])


def low_flyer_sweep(seeds: int, workers: int) -> str:
    """The low flyer measure (all sensors) over seeds 0 … seeds − 1: a line per seed and
    their mean, lowest and count under the 95 % target, and the mean false share."""
    with multiprocessing.Pool(workers) as pool:
        res = np.array(pool.map(_held_all, range(seeds)))
    held, false = res[:, 0], res[:, 1]
    per_seed = " ".join(f"{s}:{v:.3f}" for s, v in enumerate(held))
    return (f"low_flyer, all sensors, seeds 0-{seeds - 1}: held mean {held.mean():.4f}, "
            f"lowest {held.min():.3f}, under 0.95 on {int((held < 0.95).sum())}; "
            f"false tracks {false.mean():.4f} of confirmed tracks\n{per_seed}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=1000, help="targets for the throughput measure")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--low-flyer-seeds", type=int, default=0, metavar="N",
                    help="only the low flyer measure, over seeds 0 … N − 1, summarised")
    ap.add_argument("--workers", type=int, default=2, help="processes for --low-flyer-seeds")
    args = ap.parse_args(argv)
    if args.low_flyer_seeds:
        print(low_flyer_sweep(args.low_flyer_seeds, args.workers))
        return 0
    lines = ["| measure | seed | result |", "|---|---:|---|"]
    Tracker.from_scenario(sim.build("spread", n_targets=5, duration_s=3.0).scenario)  # compile
    for name, fn in (("low_flyer", low_flyer), ("swarm", swarm),
                     ("classification", classification), ("spoofing", spoofing)):
        for seed in args.seeds:
            res = fn(seed)
            text = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in res.items())
            lines.append(f"| {name} | {seed} | {text} |")
            print(lines[-1], flush=True)
    res = throughput(args.seeds[0], args.n)
    lines.append(f"| throughput N={args.n} | {args.seeds[0]} | spread {res['spread']:,.0f} "
                 f"det/s, fusion {res['fusion']:,.0f} det/s, ratio {res['ratio']:.2f} |")
    print(lines[-1], flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
