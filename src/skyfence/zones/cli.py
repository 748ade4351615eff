"""``skyfence zones``: check a zone file, or convert it to skyfence GeoJSON.

Exit codes: 0 when every zone of the file is good, 1 when there is any problem (the
good zones are still summarised or written), 2 for a usage error or an output file
that cannot be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from skyfence.errors import InputError
from skyfence.zones.io import FORMATS, ZoneLoad, load_zones


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="zones_command", required=True, metavar="ACTION")
    check = sub.add_parser(
        "check", help="validate a zone file and summarise it",
        description="Read FILE (skyfence GeoJSON, EUROCAE ED-269 or ED-318 JSON; the "
        "format is detected), print a summary of its good zones (format, zones by "
        "restriction, volumes, height references, time-limited zones) on standard output "
        "and every problem, one per line, on standard error. Exit 0 if every zone is good, "
        "1 if there is any problem.")
    check.add_argument("file", metavar="FILE", help="the zone file")
    check.add_argument("--format", choices=FORMATS, default=None,
                       help="read FILE as this format instead of detecting it")
    convert = sub.add_parser(
        "convert", help="convert a zone file to skyfence GeoJSON",
        description="Read FILE as 'check' does and write its good zones as skyfence GeoJSON "
        "(one feature per volume, limits in metres) to OUT or standard output; problems go "
        "to standard error. Exit 1 if there is any problem, after writing the good zones.")
    convert.add_argument("file", metavar="FILE", help="the zone file")
    convert.add_argument("--to", required=True, choices=("geojson",),
                         help="output format (geojson: skyfence's own GeoJSON)")
    convert.add_argument("--out", metavar="OUT", default=None,
                         help="file to write (default: standard output)")
    convert.add_argument("--format", choices=FORMATS, default=None,
                         help="read FILE as this format instead of detecting it")


def run(args: argparse.Namespace) -> int:
    load = load_zones(args.file, format=args.format)
    for problem in load.problems:
        print(problem, file=sys.stderr)
    if args.zones_command == "convert":
        _write(load, args.out)
    else:
        print("\n".join(summary_lines(load, args.file)))
    return 1 if load.problems else 0


def summary_lines(load: ZoneLoad, file: str) -> list[str]:
    """The summary ``skyfence zones check`` prints."""
    zones = load.zones
    by_restriction = Counter(z.restriction.value for z in zones)
    refs = sorted({lim.reference.value for z in zones for v in z.volumes
                   for lim in (v.lower, v.upper)})
    limited = [z.id for z in zones if z.applicability]
    lines = [f"{file} ({load.format}): {_count(len(zones), 'good zone')}, "
             f"{_count(sum(len(z.volumes) for z in zones), 'volume')}"]
    if zones:
        lines.append("  by restriction: " + ", ".join(f"{r} {n}" for r, n in
                                                      sorted(by_restriction.items())))
        lines.append("  height references: " + ", ".join(refs))
        shown = ", ".join(limited[:5]) + (", …" if len(limited) > 5 else "")
        lines.append(f"  time-limited: {_count(len(limited), 'zone')}"
                     + (f" ({shown})" if limited else ""))
    lines.append(f"  problems: {len(load.problems)}"
                 + (" (listed on standard error)" if load.problems else ""))
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _write(load: ZoneLoad, out: str | None) -> None:
    from skyfence.zones.geojson import to_geojson

    if load.format == "unknown":  # nothing was read: leave OUT as it is
        return
    text = json.dumps(to_geojson(load.zones), indent=2, ensure_ascii=False,
                      allow_nan=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write: {err.strerror or err}", file=out,
                         fix="check that the folder exists and is writable") from None
    print(f"{_count(len(load.zones), 'zone')} ({load.format}) → {out}")
