"""Zone checks at scale: N tracks × M zones, inside now and predicted breach.

``python bench/zones.py [--tracks 10000] [--zones 1000] [--scans 20] [--out FILE]``

The corpus (seeded): M star-shaped polygons of 10–200 vertices and 150 m–2 km radius
scattered over a 200 km square (1,000 zones there: about the density of a national
geozone set such as Switzerland's), with limits in all three references; N tracks
over the same square at 20–400 m, 5–60 m/s on random headings, with a typical
covariance (10 m, 1 m/s). Each scan moves the tracks on by 1 s and checks them all.

Timed: ``ZoneMonitor.check`` (inside now + predicted breach with time and probability,
zones in force, exemptions), against the peer one would write with shapely 2
(vectorised GEOS): an STRtree of the zones queried with the points (``contains``) and
with the 120 s path segments (``intersects``) — fewer answers (no time to breach,
no probability, no heights), but the same geometry work. One core; the first scan
(numba compilation, tree build) is left out of the mean.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import shapely

from skyfence.geo import Origin
from skyfence.zones import Limit, Polygon, Restriction, Volume, Zone
from skyfence.zones.model import HeightReference
from skyfence.zones.monitor import ZoneMonitor

ORIGIN = Origin(lat_deg=47.0, lon_deg=8.0, alt_m=500.0)
HALF_M = 100_000.0


def make_zones(m: int, rng: np.random.Generator) -> list[Zone]:
    zones = []
    refs = (HeightReference.AGL, HeightReference.AMSL, HeightReference.WGS84)
    for k in range(m):
        n = int(rng.integers(10, 201))
        centre = rng.uniform(-HALF_M, HALF_M, 2)
        radius = rng.uniform(150.0, 2000.0)
        ang = np.sort(rng.uniform(0.0, 2 * np.pi, n))
        r = radius * rng.uniform(0.6, 1.0, n)
        e = centre[0] + r * np.sin(ang)
        nn = centre[1] + r * np.cos(ang)
        lat, lon, _ = ORIGIN.enu_to_geodetic(np.stack([e, nn, np.zeros(n)], axis=1))
        ring = [*zip(lon.tolist(), lat.tolist(), strict=True)]
        ring.append(ring[0])
        ref = refs[k % 3]
        base = 0.0 if ref == HeightReference.AGL else 500.0
        zones.append(Zone(id=f"Z{k}", name=f"zone {k}", restriction=Restriction.PROHIBITED,
                          volumes=(Volume(Polygon((tuple(ring),)), Limit(base, ref),
                                          Limit(base + rng.uniform(120.0, 500.0), ref)),)))
    return zones


def make_tracks(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((n, 6))
    x[:, :2] = rng.uniform(-HALF_M, HALF_M, (n, 2))
    x[:, 2] = rng.uniform(20.0, 400.0, n)
    speed = rng.uniform(5.0, 60.0, n)
    heading = rng.uniform(0.0, 2 * np.pi, n)
    x[:, 3], x[:, 4] = speed * np.sin(heading), speed * np.cos(heading)
    P = np.tile(np.diag([100.0, 100.0, 100.0, 1.0, 1.0, 0.25]), (n, 1, 1))
    return x, P


def peer(zones: list[Zone], x: np.ndarray, horizon_s: float, scans: int) -> list[float]:
    """shapely 2: inside now and path intersection, over lon/lat-free plane coordinates
    (the zones' ENU vertices), vectorised in GEOS."""
    polys = []
    for z in zones:
        ring = np.asarray(z.volumes[0].shape.rings[0])  # type: ignore[union-attr]
        enu = ORIGIN.geodetic_to_enu(ring[:, 1], ring[:, 0], np.zeros(len(ring)))
        polys.append(shapely.Polygon(enu[:, :2]))
    tree = shapely.STRtree(polys)
    times = []
    for s in range(scans + 1):
        p = x[:, :3] + s * x[:, 3:6]
        t0 = time.perf_counter()
        pts = shapely.points(p[:, 0], p[:, 1])
        lines = shapely.linestrings(np.stack([p[:, :2], p[:, :2] + horizon_s * x[:, 3:5]],
                                             axis=1))
        tree.query(pts, predicate="within")
        tree.query(lines, predicate="intersects")
        times.append(time.perf_counter() - t0)
    return times[1:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--zones", type=int, default=1000)
    ap.add_argument("--scans", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--side-km", type=float, default=200.0,
                    help="side of the square the zones and tracks are scattered over")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    global HALF_M
    HALF_M = 500.0 * args.side_km
    rng = np.random.default_rng(args.seed)
    zones = make_zones(args.zones, rng)
    x, P = make_tracks(args.tracks, rng)
    t0 = time.perf_counter()
    monitor = ZoneMonitor(zones, ORIGIN)
    build_s = time.perf_counter() - t0
    ours, found = [], []
    for s in range(args.scans + 1):
        xs = x.copy()
        xs[:, :3] += s * x[:, 3:6]
        t0 = time.perf_counter()
        hits = monitor.check(float(s), xs, P)
        ours.append(time.perf_counter() - t0)
        found.append((int(hits.inside.sum()),
                      int(np.count_nonzero(~hits.inside & (hits.probability >= 0.5)))))
    print("scan ms:", " ".join(f"{1e3 * v:.0f}" for v in ours), file=sys.stderr)
    ours = ours[1:]
    theirs = peer(zones, x, monitor.config.horizon_s, args.scans)
    vertices = sum(len(z.volumes[0].shape.rings[0]) - 1 for z in zones)  # type: ignore[union-attr]
    inside = np.mean([f[0] for f in found[1:]])
    predicted = np.mean([f[1] for f in found[1:]])
    rows = [
        "| measure | value |",
        "|---|---:|",
        f"| tracks × zones (vertices) | {args.tracks:,} × {args.zones:,} ({vertices:,}) |",
        f"| area | {args.side_km:g} km × {args.side_km:g} km |",
        f"| skyfence check, mean per scan | {1e3 * np.mean(ours):.1f} ms |",
        f"| skyfence check, worst scan | {1e3 * np.max(ours):.1f} ms |",
        f"| shapely 2 STRtree within + intersects, mean | {1e3 * np.mean(theirs):.1f} ms |",
        f"| ratio skyfence / shapely | {np.mean(ours) / np.mean(theirs):.2f} |",
        f"| pairs inside / predicted (P ≥ 0.5), mean | {inside:.0f} / {predicted:.0f} |",
        f"| monitor set-up (once) | {1e3 * build_s:.0f} ms |",
    ]
    table = "\n".join(rows)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(f"`python bench/zones.py --tracks {args.tracks} --zones {args.zones} "
                    f"--scans {args.scans} --seed {args.seed} --side-km {args.side_km:g}`"
                    f"\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
