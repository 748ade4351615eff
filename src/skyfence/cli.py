"""The ``skyfence`` command line.

Each subcommand's ``--help`` is its documentation. Nothing is imported for a
subcommand until it runs, so ``skyfence --help`` starts instantly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skyfence.errors import SkyfenceError


def _add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a simulated scenario directory",
        description="Simulate targets and sensors and write scenario.json, detections.csv "
        "and truth.csv into OUT_DIR. Seeded: the same arguments give identical files.",
    )
    from skyfence.sim import cli as sim_cli

    sim_cli.add_arguments(p)
    p.set_defaults(run=sim_cli.run)


def _add_track(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "track",
        help="track a scenario directory's detections into tracks.csv",
        description="Run the tracker over DIR/detections.csv and write one row per confirmed "
        "track after every distinct detection time.",
    )
    p.add_argument("directory", metavar="DIR", help="scenario directory")
    p.add_argument("--out", required=True, metavar="CSV", help="tracks.csv to write")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--association", choices=("gnn", "jpda"), default="gnn",
                   help="for sensors that fix a position (radars, position and cooperative "
                   "reports): gnn: one detection per track, optimal overall (default; "
                   "measured better on swarms); jpda: tracks sharing detections take all of "
                   "them, weighted by joint association probabilities")
    p.add_argument("--bearing-association", choices=("gnn", "jpda"), default="jpda",
                   help="the same for bearing sensors (direction finders, cameras); jpda by "
                   "default: it measured better on close pairs of low flyers")
    _add_watch_options(p)
    p.set_defaults(run=_run_track)


def _add_watch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zones", action="append", default=[], metavar="FILE",
                   help="no-fly zones to watch (skyfence GeoJSON, ED-269 or ED-318; may be "
                   "given more than once); bad zones are listed and skipped")
    p.add_argument("--sites", metavar="FILE",
                   help="defended sites to watch (GeoJSON points with radius_m, ceiling_m)")
    p.add_argument("--dem", metavar="GEOTIFF",
                   help="terrain (WGS84 lon/lat GeoTIFF, heights above mean sea level) for "
                   "zone limits above ground; without it the ground is at the origin's "
                   "height everywhere")
    p.add_argument("--alerts", metavar="JSONL",
                   help="write one JSON line per alert event (raised, updated, cleared) "
                   "with t, event, alert, kind, severity, track, zone, time_to_breach_s, "
                   "probability, reason and the position")
    p.add_argument("--webhook", action="append", default=[], metavar="URL",
                   help="also POST each alert event as JSON to this URL (retried with "
                   "backoff; signed with HMAC-SHA256 in X-Skyfence-Signature when "
                   "SKYFENCE_WEBHOOK_SECRET is set); may be given more than once")
    p.add_argument("--horizon-s", type=float, default=120.0, metavar="S",
                   help="how far ahead zone breaches are predicted (default 120)")


def _add_decode(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from skyfence.ingest import FORMATS

    p = sub.add_parser(
        "decode",
        help="decode a recorded input file into JSON lines",
        description="Print one JSON object per decoded message of FILE, and one "
        '{"error": …, "offset": …, "bytes": …} object for each stretch of input rejected '
        "(its byte offset and the reason); the decoder resynchronises and goes on. A "
        "summary goes to standard error.",
    )
    p.add_argument("format", metavar="FORMAT", choices=sorted(FORMATS),
                   help=f"wire format: {', '.join(sorted(FORMATS))}")
    p.add_argument("file", metavar="FILE", help="the recording")
    p.add_argument("--scenario", metavar="DIR",
                   help="scenario directory whose scenario.json gives the origin and the "
                   "sensors (needed by jsonl, whose lines name sensors)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a decoder option (VALUE read as JSON when it parses, e.g. "
                   "reference_lat_deg=47.45); may be given more than once")
    p.set_defaults(run=_run_decode)


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a journal through the adapters and the tracker",
        description="Feed every record of JOURNAL (written by a node) back through its "
        "source's adapter, the reorder window and the tracker, and write tracks.csv and "
        "groups.csv as 'skyfence track' does; the same journal gives the same tracks, bit "
        "for bit. Damaged records are reported and skipped.",
    )
    p.add_argument("journal", metavar="JOURNAL", help="journal file")
    p.add_argument("--out", required=True, metavar="CSV", help="tracks.csv to write")
    p.add_argument("--window-s", type=float, default=1.0, metavar="S",
                   help="reorder window: detections are held this long to be put in time "
                   "order (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    _add_watch_options(p)
    p.set_defaults(run=_run_replay)


def _add_score(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "score",
        help="score tracks.csv against DIR/truth.csv",
        description="GOSPA (c = 100 m, p = 2, α = 2, mean over scans, with its localisation, "
        "missed and false parts), OSPA, track breaks, identity switches, mean time to "
        "confirm and false tracks.",
    )
    p.add_argument("directory", metavar="DIR", help="scenario directory with truth.csv")
    p.add_argument("tracks", metavar="TRACKS_CSV", help="output of skyfence track")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(run=_run_score)


def _add_coverage(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "coverage",
        help="map the lowest altitude the sensors see over the area",
        description="For each cell of a grid over the scenario's region (else a square around "
        "the sensors), the lowest height above the ground at which at least one sensor sees a "
        "target: range, elevation limit, line of sight over a 4/3 earth, and terrain from a "
        "DEM if given. Writes coverage.geojson (WGS84 bands of that height), coverage.png and "
        "coverage.npz (the grid) into DIR, and prints the share of the area seen at 30 and "
        "100 m, per sensor. Cooperative (ADS-B, Remote ID) and track sources see nothing and "
        "are left out.",
    )
    p.add_argument("directory", metavar="SCENARIO_DIR", help="scenario directory")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the outputs in")
    p.add_argument("--resolution-m", type=float, default=None, metavar="M",
                   help="cell size in metres (default: the area's larger side / 200)")
    p.add_argument("--max-altitude-m", type=float, default=1000.0, metavar="M",
                   help="highest height above the ground looked at; cells not seen up to it "
                   "are 'not covered' (default: 1000)")
    p.add_argument("--dem", metavar="FILE", default=None,
                   help="terrain: a GeoTIFF elevation model in WGS84 lon/lat (SRTM, "
                   "Copernicus DEM); without it the ground is flat at the origin's height")
    p.add_argument("--geoid-height-m", type=float, default=0.0, metavar="N",
                   help="added to the DEM's heights to make them ellipsoidal like "
                   "origin.alt_m: the geoid undulation at the site (about 47 at Zurich) for "
                   "a DEM above mean sea level (default: 0, the DEM is ellipsoidal)")
    p.set_defaults(run=_run_coverage)


def _add_zones(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "zones",
        help="check a no-fly zone file, or convert it to skyfence GeoJSON",
        description="Zone files in skyfence GeoJSON, EUROCAE ED-269 or ED-318 JSON (the "
        "format is detected). 'check FILE' validates and summarises; 'convert FILE --to "
        "geojson [--out OUT]' writes the good zones as skyfence GeoJSON. Every problem is "
        "printed, one per line; the exit code is 1 if there is any.",
    )
    from skyfence.zones import cli as zones_cli

    zones_cli.add_arguments(p)
    p.set_defaults(run=zones_cli.run)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run a node over the built-in demo scenario and serve its map",
        description="Start an embedded node (SQLite, in-process stream; nothing to "
        "install) over the built-in scenario at Zurich: a swarm of 30 drones approaching "
        "a defended site, a fast low flyer under the radar picked up by cameras, a Remote "
        "ID drone flying legally in an authorisation zone, a dark drone entering a "
        "prohibited zone, and a real rescue-helicopter flight replayed from recorded "
        "ADS-B. Its simulated sensors send JSON Lines to the node as real ones would. "
        "Serves the map and the API, prints the address and a live status line, and "
        "runs (the scenario starting over) until interrupted.",
    )
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default: 8000; 0: any "
                   "free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: "
                   "127.0.0.1)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="scenario time runs X times real time (default: 1)")
    p.add_argument("--headless", action="store_true",
                   help="do not open a browser (the map is still served)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--stop-after-s", type=float, default=None, metavar="S",
                   help="stop after S seconds of wall time (default: run until interrupted)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="keep the node's database and journal here (default: a temporary "
                   "folder)")
    p.set_defaults(run=_run_demo)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run a node from its configuration",
        description="Run a node as node.toml says (its sensors, sources, zones, sites, "
        "storage, outputs; see 'skyfence config check'): the sources' listeners and "
        "clients, the engine, the API and the map, until interrupted.",
    )
    p.add_argument("--config", required=True, metavar="TOML", help="node.toml")
    p.add_argument("--quiet", action="store_true", help="no status line")
    p.set_defaults(run=_run_serve)


def _add_config(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config",
        help="check a node configuration without starting it",
        description="'skyfence config check TOML' validates node.toml as 'skyfence serve' "
        "would (keys, sensors, sources, zone and site files, terrain) and prints a "
        "summary, or the first problem with the key and the fix (exit 2).",
    )
    cmd = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = cmd.add_parser("check", help="validate a node.toml")
    check.add_argument("toml", metavar="TOML", help="node.toml")
    p.set_defaults(run=_run_config)


def _add_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "token",
        help="make an API token for node.toml",
        description="'skyfence token new' prints a fresh random API token (give it to its "
        "holder, once) and the [[tokens]] table for node.toml, which keeps only its "
        "SHA-256.",
    )
    cmd = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = cmd.add_parser("new", help="print a new token and its node.toml entry")
    new.add_argument("--partner", default="local", help="the partner it acts for")
    new.add_argument("--role", default="viewer",
                     choices=("admin", "operator", "viewer", "sensor"), help="what it may do")
    new.add_argument("--name", default="", help="who holds it (shown in the audit log)")
    new.add_argument("--source", default="", help="a sensor token's source: the id of the "
                     "[[sources]] entry (transport \"http\") it pushes to")
    p.set_defaults(run=_run_token)


def _run_token(args: argparse.Namespace) -> int:
    from skyfence.node.access import hash_token, new_token

    if (args.role == "sensor") != bool(args.source):
        raise SkyfenceError("a sensor token, and only a sensor token, is bound to a source: "
                            "give --role sensor with --source ID")
    token = new_token()
    print(f"token (give it to its holder; the node does not keep it): {token}")
    print()
    print("[[tokens]]")
    print(f'partner = "{args.partner}"')
    print(f'role = "{args.role}"')
    if args.source:
        print(f"source = {json.dumps(args.source)}")
    print(f'sha256 = "{hash_token(token)}"')
    if args.name:
        print(f"name = {json.dumps(args.name)}")
    return 0


class _ProgressLine:
    """One self-overwriting status line on stderr (plain lines when not a terminal)."""

    def __init__(self, *, enabled: bool = True, speed: float = 0.0) -> None:
        self.enabled = enabled
        self.speed = speed
        self.tty = sys.stderr.isatty()
        self._last_len = 0
        self._t0: float | None = None
        self._wall0 = 0.0

    def __call__(self, p: object) -> None:
        from skyfence.pipeline import ScanProgress

        if not self.enabled or not isinstance(p, ScanProgress):
            return
        if self._t0 is None:
            self._t0, self._wall0 = p.t, time.monotonic()
        if self.speed > 0:  # pace the replay: scenario time runs `speed` times the wall clock
            time.sleep(max(0.0, (p.t - self._t0) / self.speed - (time.monotonic() - self._wall0)))
        last = p.index + 1 == p.n_scans
        text = (f"scan {p.index + 1}/{p.n_scans}  t+{p.t - self._t0:6.1f} s  "
                f"detections {p.n_detections:4d}  "
                f"confirmed tracks {p.n_confirmed:5d}  all tracks {p.n_tracks:5d}  "
                f"wall {p.elapsed_s:6.1f} s")
        if not self.tty and not last and p.index % 50:
            return
        if self.tty:
            sys.stderr.write("\r" + text.ljust(self._last_len))
            self._last_len = len(text)
            if last:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _run_track(args: argparse.Namespace) -> int:
    from skyfence.pipeline import track_directory
    from skyfence.track import TrackerConfig

    watching = bool(args.zones or args.sites or args.alerts or args.webhook)
    make_watch, sinks = _watch(args) if watching else (None, [])

    def on_alert(event: Any) -> None:
        for send, _ in sinks:
            send(event)

    try:
        stats = track_directory(
            args.directory, args.out, config=TrackerConfig(
                association=args.association, bearing_association=args.bearing_association),
            on_scan=_ProgressLine(enabled=not args.quiet), watch=make_watch,
            on_alert=on_alert if sinks else None)
    finally:
        for _, close in sinks:
            close()
    alerts = f", {stats.alerts_raised} alerts raised" if watching else ""
    print(f"{stats.n_scans} scans, {stats.n_detections} detections, "
          f"{stats.tracks_confirmed} tracks confirmed{alerts}; "
          f"{stats.detections_per_s:,.0f} detections/s, mean scan "
          f"{1e3 * stats.mean_scan_s:.2f} ms, worst {1e3 * stats.worst_scan_s:.2f} ms "
          f"→ {args.out}")
    return 0


def _run_decode(args: argparse.Namespace) -> int:
    from skyfence.adapters.base import Rejected, decode_file
    from skyfence.geo import Origin
    from skyfence.ingest import make_decoder
    from skyfence.scenario import Scenario, read_scenario

    if args.scenario:
        scenario = read_scenario(args.scenario)
    elif args.format == "jsonl":
        raise SkyfenceError("jsonl lines name sensors: give --scenario DIR with their "
                            "scenario.json")
    else:
        scenario = Scenario(name="decode", origin=Origin(0.0, 0.0, 0.0), sensors=())
    options: dict[str, Any] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SkyfenceError(f"--option {item!r} is not KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    decoder = make_decoder(args.format, scenario, options)
    n_ok = n_bad = 0
    out = sys.stdout
    for msg in decode_file(decoder, args.file):
        out.write(json.dumps(msg.to_json(), separators=(",", ":"), default=str))
        out.write("\n")
        if isinstance(msg, Rejected):
            n_bad += 1
        else:
            n_ok += 1
    print(f"{args.file}: {n_ok} messages, {n_bad} rejected", file=sys.stderr)
    return 0


def _run_replay(args: argparse.Namespace) -> int:
    from skyfence.ingest import replay_detections
    from skyfence.picture import Picture
    from skyfence.pipeline import run_tracker
    from skyfence.scenario import TracksCsvWriter
    from skyfence.track import Tracker

    scenario, det, stats = replay_detections(args.journal, window_s=args.window_s)
    watching = bool(args.zones or args.sites or args.alerts or args.webhook)
    make_watch, sinks = _watch(args) if watching else (None, [])

    def on_alert(event: Any) -> None:
        for send, _ in sinks:
            send(event)

    out = Path(args.out)
    try:
        with TracksCsvWriter(out, groups_path=out.with_name("groups.csv")) as writer:
            run = run_tracker(Tracker.from_scenario(scenario), det, writer,
                              on_scan=_ProgressLine(enabled=not args.quiet),
                              picture=Picture.for_scenario(scenario),
                              watch=None if make_watch is None else make_watch(scenario),
                              on_alert=on_alert if sinks else None)
    finally:
        for _, close in sinks:
            close()
    alerts = f", {run.alerts_raised} alerts raised" if watching else ""
    print(f"{stats.records} records ({stats.damaged} damaged stretches skipped), "
          f"{stats.rejected} inputs rejected by the adapters, {stats.late} detections "
          f"later than the {args.window_s:g} s window; {run.n_scans} scans, "
          f"{run.tracks_confirmed} tracks confirmed{alerts} → {args.out}")
    return 0


def _watch(args: argparse.Namespace) -> tuple[Any, list[tuple[Any, Any]]]:
    """The zone watch factory and the alert sinks (send, close) of ``skyfence track``."""
    import os

    from skyfence.alerts import AlertEvent, JsonLinesSink, Watch
    from skyfence.coverage import read_dem
    from skyfence.scenario import Scenario
    from skyfence.webhook import WebhookConfig, WebhookSink
    from skyfence.zones.io import load_zones
    from skyfence.zones.monitor import DemGround, MonitorConfig
    from skyfence.zones.sites import load_sites

    zones: list[Any] = []
    for path in args.zones:
        loaded = load_zones(path)
        for problem in loaded.problems:
            print(f"skipped: {problem}", file=sys.stderr)
        zones.extend(loaded.zones)
    sites = load_sites(args.sites) if args.sites else ()
    dem = read_dem(args.dem) if args.dem else None
    monitor = MonitorConfig(horizon_s=args.horizon_s)

    def make(scenario: Scenario) -> Watch:
        ground = None if dem is None else DemGround(dem, fallback_m=scenario.origin.alt_m)
        return Watch(scenario.origin, zones, sites, ground=ground, monitor=monitor)

    sinks: list[tuple[Any, Any]] = []
    if args.alerts:
        jsonl = JsonLinesSink(args.alerts)
        sinks.append((jsonl.send, jsonl.close))
    secret = os.environ.get("SKYFENCE_WEBHOOK_SECRET") or None
    for url in args.webhook:
        hook = WebhookSink(WebhookConfig(url=url, secret=secret))

        def post(e: AlertEvent, hook: WebhookSink = hook) -> None:
            hook.send(e.to_json())

        sinks.append((post, hook.close))
    return make, sinks


def _run_score(args: argparse.Namespace) -> int:
    report = _score(Path(args.directory), Path(args.tracks))
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.format_text())
    return 0


def _score(directory: Path, tracks_csv: Path):  # type: ignore[no-untyped-def]
    from skyfence.errors import InputError
    from skyfence.metrics import score
    from skyfence.scenario import read_tracks_csv, read_truth

    truth = read_truth(directory)
    if truth is None:
        raise InputError("not found", file=str(directory / "truth.csv"),
                         fix="scoring needs the ground truth; simulated scenarios have one")
    est = read_tracks_csv(tracks_csv)
    return score(truth.t, truth.id, truth.x[:, :3], est.t, est.id, est.x[:, :3])


def _run_coverage(args: argparse.Namespace) -> int:
    from skyfence import coverage
    from skyfence.scenario import read_scenario

    scenario = read_scenario(args.directory)
    dem = coverage.read_dem(args.dem) if args.dem is not None else None
    cov = coverage.compute(scenario, resolution_m=args.resolution_m,
                           max_altitude_m=args.max_altitude_m, dem=dem,
                           geoid_height_m=args.geoid_height_m)
    for line in coverage.warnings(cov, geoid_height_m=args.geoid_height_m, dem=dem):
        print(f"skyfence coverage: warning: {line}", file=sys.stderr)
    paths = coverage.write(cov, args.out)
    print(f"skyfence coverage: scenario {scenario.name!r}, {len(cov.sensors)} sensor(s)")
    print("\n".join(coverage.summary_lines(cov)))
    print("→ " + ", ".join(str(p) for p in paths))
    return 0


def _web_dir() -> Path | None:
    from importlib.resources import files

    web = Path(str(files("skyfence.server") / "web"))
    return web if (web / "index.html").is_file() else None


def _run_demo(args: argparse.Namespace) -> int:
    import asyncio
    import webbrowser

    from skyfence import sim
    from skyfence.adapters.journal import Source
    from skyfence.node.run import SimClock, feed_simulation, jsonl_payloads, run_node
    from skyfence.node.service import NodeService
    from skyfence.sim.demo import demo_files
    from skyfence.store.sqlite import SqliteStore
    from skyfence.zones.io import load_zones_strict
    from skyfence.zones.sites import load_sites

    result = sim.build("demo", seed=args.seed)
    scenario = result.scenario
    zones_file, sites_file = demo_files()
    sources = [Source(id=f"sim-{s.id}", format="jsonl", sensor=s.id) for s in scenario.sensors]
    payloads = jsonl_payloads(scenario, result.detections)
    duration = payloads[-1][0] - payloads[0][0] + 20.0
    with tempfile.TemporaryDirectory(prefix="skyfence-demo-") as tmp:
        data = Path(args.data) if args.data else Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        store = SqliteStore(data / "demo.db")
        clock = SimClock(payloads[0][0] - 2.0, max(args.speed, 1e-3))
        service = NodeService(scenario, sources, zones=load_zones_strict(zones_file),
                              sites=load_sites(sites_file), store=store, clock=clock)
        print(f"skyfence demo: {len(result.target_kind)} targets, "
              f"{len(scenario.sensors)} sensors over Zurich, {duration:.0f} s of scenario "
              f"at {args.speed:g}x, starting over at the end")

        def ready(address: str) -> None:
            print(f"map and API at {address}  (Ctrl-C to stop)", flush=True)
            if not args.headless:
                webbrowser.open(address)

        async def main() -> None:
            task = run_node(service, host=args.host, port=args.port, web_dir=_web_dir(),
                            tasks=[feed_simulation(service, payloads, clock, loop_s=duration)],
                            clock=clock, on_ready=ready)
            if args.stop_after_s is None:
                await task
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(task, args.stop_after_s)

        try:
            asyncio.run(main())
        finally:
            service.close()
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    import asyncio

    from skyfence.node.config import load_config
    from skyfence.node.run import run_node, service_from_config, source_task

    cfg = load_config(args.config)
    service = service_from_config(cfg)

    def ready(address: str) -> None:
        print(f"skyfence node {cfg.name!r}: map and API at {address}  (Ctrl-C to stop)",
              flush=True)

    async def main() -> None:
        await run_node(service, host=cfg.http_host, port=cfg.http_port, web_dir=_web_dir(),
                       tasks=[source_task(service, sc) for sc in cfg.sources],
                       status=not args.quiet, on_ready=ready, certfile=cfg.http_certfile,
                       keyfile=cfg.http_keyfile)

    try:
        asyncio.run(main())
    finally:
        service.close()
    return 0


def _run_config(args: argparse.Namespace) -> int:
    from skyfence.node.config import load_config
    from skyfence.zones.io import load_zones_strict
    from skyfence.zones.sites import load_sites

    cfg = load_config(args.toml)
    n_zones = sum(len(load_zones_strict(f)) for f in cfg.zone_files)
    n_sites = len(load_sites(cfg.sites_file)) if cfg.sites_file else 0
    if cfg.dem_file is not None:
        from skyfence.coverage import read_dem

        read_dem(cfg.dem_file)
    print(f"{args.toml}: node {cfg.name!r}, {len(cfg.scenario.sensors)} sensors, "
          f"{len(cfg.sources)} sources, {n_zones} zones, {n_sites} sites; HTTP on "
          f"{cfg.http_host}:{cfg.http_port}{' (TLS)' if cfg.http_certfile else ''}; "
          f"{len(cfg.cot_outputs)} CoT and {len(cfg.geojson_outputs)} GeoJSON outputs; "
          f"store {cfg.store_path or 'none'}, journal "
          f"{cfg.journal_path or 'none'}: ok")
    return 0


def _picture_summary(tracks_csv: Path) -> str:
    """The last scan of tracks.csv and groups.csv as a watch officer would read it."""
    import csv
    from collections import Counter

    with tracks_csv.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return "picture at the end: no tracks"
    last = [r for r in rows if r["t"] == rows[-1]["t"]]
    classes = Counter(r["class"] for r in last)
    flags = Counter(flag for r in last for flag in r["flags"].split("|") if flag)
    groups = Counter(r["group"] for r in last if r["group"])
    text = ", ".join(f"{n} {c}" for c, n in classes.most_common())
    lines = [f"picture at the end: {len(last)} tracks: {text}"]
    if flags:
        lines.append("  flags: " + ", ".join(f"{n} {k}" for k, n in flags.most_common()))
    if groups:
        lines.append("  swarm groups: " + ", ".join(f"#{g} with {n} tracks"
                                                    for g, n in sorted(groups.items())))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skyfence",
        description="skyfence: a shared airspace picture for drone-defence awareness.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_demo, _add_serve, _add_config, _add_simulate, _add_track, _add_score,
                _add_coverage, _add_zones, _add_decode, _add_replay, _add_token):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SkyfenceError as exc:
        print(f"skyfence {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``skyfence decode … | head``): not an error of ours.
        # Point stdout at nothing so the interpreter's final flush does not complain.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
