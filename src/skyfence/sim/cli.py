"""``skyfence simulate``: write a simulated scenario directory."""

from __future__ import annotations

import argparse
import sys

from skyfence.errors import SkyfenceError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from skyfence.sim.presets import PRESETS

    # argparse formats help with %: a literal one is written %%.
    presets = "; ".join(f"{name}: {text}" for name, text in PRESETS.items()).replace("%", "%%")
    parser.add_argument(
        "out_dir", metavar="OUT_DIR",
        help="directory to write scenario.json, detections.csv and truth.csv into "
             "(created if missing; existing files are replaced)",
    )
    parser.add_argument("--preset", choices=tuple(PRESETS), default="spread",
                        help=f"scenario to simulate (default: spread). {presets}")
    parser.add_argument("--targets", type=int, default=None, metavar="N",
                        help="size of the preset's main population (default: per preset)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed; the same arguments give byte-identical files "
                             "(default: 0)")
    parser.add_argument("--duration-s", type=float, default=None, metavar="S",
                        help="scenario length in seconds (default: per preset, 60-180)")
    parser.add_argument("--clutter", type=float, default=None, metavar="RATE",
                        help="mean false detections per scan, for every sensor "
                             "(default: per preset)")
    parser.add_argument("--pd", type=float, default=None,
                        help="probability of detection, for every sensor (default: per preset)")


def run(args: argparse.Namespace) -> int:
    from skyfence.sim.presets import build
    from skyfence.sim.result import write

    try:
        result = build(args.preset, n_targets=args.targets, seed=args.seed,
                       duration_s=args.duration_s, clutter_per_scan=args.clutter, pd=args.pd)
    except SkyfenceError as exc:
        print(f"skyfence simulate: {exc}", file=sys.stderr)
        return 2
    write(args.out_dir, result)
    n_scans = sum(len(s) for s in result.scan_times)
    print(f"{args.preset}: {len(result.target_kind)} targets, {n_scans} scans, "
          f"{len(result.detections)} detections ({result.n_clutter} clutter) → {args.out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m skyfence.sim.cli OUT_DIR ...``."""
    parser = argparse.ArgumentParser(prog="skyfence simulate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
