"""``node.toml``: what a node runs — its origin and sensors, its sources, zones, sites,
storage, outputs — validated at start with errors that name the key and the fix.

    [node]
    name = "hq"
    origin = { lat_deg = 47.45, lon_deg = 8.56, alt_m = 420.0 }
    window_s = 1.0                 # reorder window

    [http]
    host = "127.0.0.1"
    port = 8000
    certfile = "node.pem"          # optional: serve HTTPS/WSS (PEM certificate chain)
    keyfile = "node.key"           #   and its private key

    [storage]
    path = "skyfence.db"           # SQLite (WAL); the embedded default
    journal = "skyfence.journal"   # optional: every input, for replay
    retention_days = 7
    max_mib = 1024

    [[partners]]                   # optional: the organisations sharing this node
    id = "police"                  # the first is the home partner (or [node] home)
    name = "Cantonal police"

    [[partners]]
    id = "army"
    round_m = 1000.0               # optional field policy (skyfence.release): positions
    round_mps = 5.0                # to a 1 km grid, velocities to 5 m/s, no identities,
    identity = false               # in everything army receives from this node

    [[sensors]]                    # as in scenario.json
    id = "radar1"
    owner = "police"               # with partners: who owns it (default the home one)
    release = ["army"]             # and who else may receive what it contributes
    kind = "radar"
    position_enu_m = [0.0, 0.0, 12.0]
    pd = 0.9
    noise_std = { range_m = 8.0, azimuth_rad = 0.003, elevation_rad = 0.005 }

    [[sensors]]                    # a SAPIENT sensor node, declared before it connects
    id = "mast-radar"
    owner = "police"
    kind = "radar"                 # radar | radar2d | bearing | position
    sapient_node_id = "a8654cdf-4328-47de-81fa-c495589e30c9"
    position_enu_m = [1390.0, 555.0, 30.0]
    pd = 0.9
    noise_std = { range_m = 5.0, azimuth_rad = 0.0035, elevation_rad = 0.005 }

    [[sources]]
    id = "radar1-feed"
    format = "jsonl"               # jsonl | beast | avr | sbs | remoteid-pcap | asterix
    sensor = "radar1"              #   | sapient (below)
    transport = "tcp-listen"       # tcp-listen | tcp-connect | file | http (the sensor
    host = "0.0.0.0"               #   pushes to POST /api/v1/ingest/<id>, with a sensor
    port = 7001                    #   token bound to this source)
    [sources.tls]                  # optional, tcp-listen: TLS, and the sensor's own
    certfile = "node.pem"          # certificate required (mutual TLS)
    keyfile = "node.key"
    client_cafile = "sensors-ca.pem"
    client_names = ["radar1.police.example"]

    [[sources]]                    # the sensor pushes its feed to the API
    id = "radar1-push"
    format = "jsonl"
    sensor = "radar1"
    transport = "http"

    [[sources]]                    # SAPIENT (BSI Flex 335 v2.0) sensor nodes connect here
    id = "sapient"
    format = "sapient"
    transport = "tcp-listen"       # (and the optional [sources.tls], as above)
    port = 5020
    partner = "police"             # optional: only this partner's nodes may register
    sensors = ["mast-radar"]       # optional: default every sensor with a sapient_node_id
    options = { max_offset_m = 50.0 }  # how far from position_enu_m a node may report
                                       # itself (metres)

    [zones]
    files = ["zones.geojson"]
    sites = "sites.geojson"
    dem = "terrain.tif"

    [[tokens]]                     # API tokens (none: the API is open; see
    partner = "police"             # skyfence.node.access)
    role = "operator"
    sha256 = "…"                   # 'skyfence token new' prints a token and its hash

    [[tokens]]
    partner = "police"
    role = "sensor"                # pushes to one source of transport "http", whose
    source = "radar1-push"         # sensor the partner owns, and reads nothing
    sha256 = "…"

    [[outputs.webhooks]]           # alert events, signed (HMAC) when a secret is set
    url = "https://ops.example/hook"
    secret_env = "SKYFENCE_WEBHOOK_SECRET"

    [[outputs.cot]]                # the picture to TAK (see skyfence.node.outputs)
    transport = "udp"              # udp | tcp | tls
    host = "239.2.3.1"
    port = 6969

    [[outputs.geojson]]            # the picture as a GeoJSON file, rewritten each second
    path = "picture.geojson"

Relative paths are taken from the folder of the config file.
"""

from __future__ import annotations

import math
import tomllib
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from skyfence.adapters.journal import Source
from skyfence.errors import InputError
from skyfence.federation.codec import _area
from skyfence.federation.nats import FederationConfig, Receive, Send, check_partner_id
from skyfence.ingest import FORMATS
from skyfence.node.access import Role, Token
from skyfence.node.outputs import (
    CotOutputConfig,
    GeoJsonOutputConfig,
    parse_cot_output,
    parse_geojson_output,
)
from skyfence.node.partners import LOCAL, Partner, Releasability
from skyfence.release import FieldPolicy
from skyfence.scenario import Scenario, SensorSpec, parse_scenario

#: And "nats", for federation feeds. "http": the sensor pushes its feed to the API,
#: ``POST /api/v1/ingest/{source}``, with a sensor token bound to the source.
TRANSPORTS = ("tcp-listen", "tcp-connect", "file", "http")


@dataclass(frozen=True, slots=True)
class SourceTls:
    """A TCP source over TLS. ``client_cafile``: a sensor must present a certificate
    signed by this CA (mutual TLS: the sensor's identity), and, with ``client_names``,
    one whose common name or DNS name is one of them."""

    certfile: Path
    keyfile: Path | None = None
    client_cafile: Path | None = None
    client_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceConfig:
    source: Source
    transport: str
    host: str = "127.0.0.1"
    port: int = 0
    path: Path | None = None
    tls: SourceTls | None = None


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str
    scenario: Scenario
    sources: tuple[SourceConfig, ...]
    window_s: float = 1.0
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    store_path: Path | None = None
    journal_path: Path | None = None
    retention_days: float = 7.0
    max_mib: float = 1024.0
    zone_files: tuple[Path, ...] = ()
    sites_file: Path | None = None
    dem_file: Path | None = None
    webhooks: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    cot_outputs: tuple[CotOutputConfig, ...] = ()
    geojson_outputs: tuple[GeoJsonOutputConfig, ...] = ()
    http_certfile: Path | None = None
    http_keyfile: Path | None = None
    release: Releasability | None = None
    home: str = LOCAL
    tokens: tuple[Token, ...] = ()
    federation: FederationConfig | None = None


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, problem: str, fix: str) -> InputError:
        return InputError(problem, file=self.file, field=key, fix=fix)

    def table(self, doc: dict[str, Any], key: str, *, required: bool = False
              ) -> dict[str, Any]:
        v = doc.get(key.rsplit(".", 1)[-1])
        if v is None:
            if required:
                raise self.fail(key, "missing", f"add a [{key}] table")
            return {}
        if not isinstance(v, dict):
            raise self.fail(key, f"is a {type(v).__name__}, not a table", f"write [{key}]")
        return v

    def get(self, t: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str,
            default: Any = None, *, required: bool = False) -> Any:
        if key not in t:
            if required:
                raise self.fail(f"{path}.{key}", "missing", f"set {key}")
            return default
        v = t[key]
        ok = isinstance(v, kind) and not (isinstance(v, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,)))
        if not ok:
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple)
                                                     else (kind,)))
            raise self.fail(f"{path}.{key}", f"{v!r} is not a {names}", f"give a {names}")
        return v


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a node.toml (raises InputError naming the key and the fix)."""
    p = Path(path)
    name = str(p)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"cannot read the configuration: {err.strerror}", file=name,
                         fix="check the path") from err
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"not valid TOML: {err}", file=name,
                         fix="correct the TOML syntax") from err
    return parse_config(doc, file=name, base=p.parent)


def parse_config(doc: dict[str, Any], *, file: str = "node.toml",
                 base: Path = Path(".")) -> NodeConfig:
    r = _Reader(file)
    known = {"node", "http", "storage", "sensors", "sources", "zones", "outputs",
             "partners", "tokens", "federation"}
    unknown = set(doc) - known
    if unknown:
        raise r.fail(sorted(unknown)[0], "unknown table", f"use {', '.join(sorted(known))}")
    node = r.table(doc, "node", required=True)
    origin = r.get(node, "origin", dict, "node", required=True)
    for key in ("lat_deg", "lon_deg", "alt_m"):
        v = r.get(origin, key, (int, float), "node.origin", required=True)
        if not math.isfinite(v):
            raise r.fail(f"node.origin.{key}", f"{v} is not finite", "give a number")
    sensors = doc.get("sensors")
    if not isinstance(sensors, list) or not sensors:
        raise r.fail("sensors", "no [[sensors]]", "declare each sensor as in scenario.json")
    if not all(isinstance(s, dict) for s in sensors):
        raise r.fail("sensors", "is not a list of tables", "write [[sensors]]")
    release, home = _release(r, doc, node, sensors)
    raw_sensors = sensors
    sensors = [{k: v for k, v in s.items() if k not in ("owner", "release")} for s in sensors]
    scenario = parse_scenario({"name": r.get(node, "name", str, "node", "node"),
                               "origin": origin, "sensors": sensors},
                              file=f"{file} ([[sensors]])")
    sensor_ids = scenario.sensor_index()
    sapient = _sapient_nodes(r, raw_sensors, scenario)
    sources = []
    seen: set[str] = set()
    for k, s in enumerate(doc.get("sources", [])):
        where = f"sources[{k}]"
        if not isinstance(s, dict):
            raise r.fail(where, "is not a table", "write [[sources]]")
        sid = r.get(s, "id", str, where, required=True)
        if sid in seen:
            raise r.fail(f"{where}.id", f"{sid!r} is used twice", "give each source its own id")
        seen.add(sid)
        fmt = r.get(s, "format", str, where, required=True)
        if fmt not in FORMATS or fmt == "skyfence-picture":
            usable = sorted(f for f in FORMATS if f != "skyfence-picture")
            raise r.fail(f"{where}.format", f"{fmt!r} is not a format a source can have",
                         f"use one of {', '.join(usable)}")
        transport = r.get(s, "transport", str, where, required=True)
        if transport not in TRANSPORTS:
            raise r.fail(f"{where}.transport", f"{transport!r} is not a transport",
                         f"use one of {', '.join(TRANSPORTS)}")
        if fmt == "sapient":
            sensor, options = _sapient_source(r, s, where, transport, sapient, release)
        else:
            sensor = r.get(s, "sensor", str, where, required=True)
            if sensor not in sensor_ids:
                raise r.fail(f"{where}.sensor", f"{sensor!r} is not a declared sensor",
                             f"use one of {', '.join(sorted(sensor_ids))}")
            options = r.get(s, "options", dict, where, {})
        port = r.get(s, "port", int, where, 0)
        if transport.startswith("tcp") and not 0 < port < 65536:
            raise r.fail(f"{where}.port", f"{port} is not a TCP port", "give 1–65535")
        fpath = r.get(s, "path", str, where)
        if transport == "file" and fpath is None:
            raise r.fail(f"{where}.path", "missing", "a file source needs path = \"…\"")
        tls = _source_tls(r, s, where, transport, base)
        sources.append(SourceConfig(
            source=Source(id=sid, format=fmt, sensor=sensor, options=dict(options)),
            transport=transport, host=r.get(s, "host", str, where, "127.0.0.1"), port=port,
            path=None if fpath is None else base / fpath, tls=tls))
    def opt_path(t: dict[str, Any], key: str, where: str) -> Path | None:
        v = r.get(t, key, str, where)
        return None if v is None else base / v

    def opt_file(t: dict[str, Any], key: str, where: str) -> Path | None:
        p = opt_path(t, key, where)
        if p is not None and not p.is_file():
            raise r.fail(f"{where}.{key}", f"{p} does not exist", "give the path of a file")
        return p

    http = r.table(doc, "http")
    port = r.get(http, "port", int, "http", 8000)
    if not 0 <= port < 65536:
        raise r.fail("http.port", f"{port} is not a TCP port", "give 1–65535 (0: any free)")
    storage = r.table(doc, "storage")
    zones = r.table(doc, "zones")
    files = r.get(zones, "files", list, "zones", [])
    if not all(isinstance(f, str) for f in files):
        raise r.fail("zones.files", "is not a list of paths", 'give files = ["zones.geojson"]')
    certfile, keyfile = (opt_file(http, key, "http") for key in ("certfile", "keyfile"))
    if (certfile is None) != (keyfile is None):
        missing = "keyfile" if keyfile is None else "certfile"
        raise r.fail(f"http.{missing}", "missing",
                     "HTTPS needs both certfile (the certificate chain) and keyfile (PEM)")
    outputs = r.table(doc, "outputs")
    unknown_outputs = sorted(set(outputs) - {"webhooks", "cot", "geojson"})
    if unknown_outputs:
        raise r.fail(f"outputs.{unknown_outputs[0]}", "unknown output",
                     "use webhooks, cot, geojson")
    hooks = r.get(outputs, "webhooks", list, "outputs", [])
    for k, h in enumerate(hooks):
        if not isinstance(h, dict) or not isinstance(h.get("url"), str):
            raise r.fail(f"outputs.webhooks[{k}].url", "missing", "give url = \"https://…\"")
    node_name = r.get(node, "name", str, "node", "node")

    def tables(kind: str) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for k, t in enumerate(r.get(outputs, kind, list, "outputs", [])):
            if not isinstance(t, dict):
                raise r.fail(f"outputs.{kind}[{k}]", "is not a table",
                             f"write [[outputs.{kind}]]")
            out.append((f"outputs.{kind}[{k}]", t))
        return out

    cots = [parse_cot_output(t, where, node_name, base, r.fail) for where, t in tables("cot")]
    geojsons = [parse_geojson_output(t, where, base, r.fail) for where, t in tables("geojson")]
    window = r.get(node, "window_s", (int, float), "node", 1.0)
    if not 0.0 <= window <= 60.0:
        raise r.fail("node.window_s", f"{window} s is not a reorder window",
                     "give 0–60 seconds")

    federation = None
    if "federation" in doc:
        federation = _federation(r, r.table(doc, "federation"), release, home, scenario.name,
                                 base)
        # Each partner heard is a sensor of kind track, owned by this node's home
        # partner and released to nobody else: what a partner sent us is not ours to
        # pass on.
        fed = tuple(SensorSpec(id=rec.sensor, kind="track", position_enu_m=(0.0, 0.0, 0.0),
                               pd=1.0, noise_std=(math.nan, math.nan, math.nan))
                    for rec in federation.receive)
        clash = sorted({s.id for s in fed} & set(sensor_ids))
        if clash:
            raise r.fail("sensors", f"{clash[0]!r} is the name of a federation feed",
                         "rename the sensor")
        scenario = replace(scenario, sensors=(*scenario.sensors, *fed))
        sources += [SourceConfig(source=rec.source(federation.partner, float(window)),
                                 transport="nats")
                    for rec in federation.receive]
        if release is not None:
            release = Releasability(release.partners,
                                    {**release.owner, **{s.id: home for s in fed}},
                                    dict(release.release))

    return NodeConfig(
        name=scenario.name, scenario=scenario, sources=tuple(sources), window_s=float(window),
        http_host=r.get(http, "host", str, "http", "127.0.0.1"), http_port=port,
        store_path=opt_path(storage, "path", "storage"),
        journal_path=opt_path(storage, "journal", "storage"),
        retention_days=float(r.get(storage, "retention_days", (int, float), "storage", 7.0)),
        max_mib=float(r.get(storage, "max_mib", (int, float), "storage", 1024.0)),
        zone_files=tuple(base / f for f in files), sites_file=opt_path(zones, "sites", "zones"),
        dem_file=opt_path(zones, "dem", "zones"), webhooks=tuple(hooks),
        cot_outputs=tuple(cots), geojson_outputs=tuple(geojsons), http_certfile=certfile,
        http_keyfile=keyfile, release=release, home=home,
        tokens=_tokens(r, doc, release, sources),
        federation=federation)


def _federation(r: _Reader, t: dict[str, Any], release: Releasability | None, home: str,
                node: str, base: Path) -> FederationConfig:
    """[federation]: the broker, who this node speaks as, [[federation.send]] and
    [[federation.receive]]."""
    import os

    known = {"url", "partner", "user", "password_env", "cafile", "certfile", "keyfile",
             "send", "receive", "node"}
    unknown = sorted(set(t) - known)
    if unknown:
        raise r.fail(f"federation.{unknown[0]}", "unknown key", f"use {', '.join(sorted(known))}")
    url = r.get(t, "url", str, "federation", required=True)
    if not url.startswith(("nats://", "tls://")):
        raise r.fail("federation.url", f"{url!r} is not a NATS address",
                     "give nats://host:4222 (or tls://host:4222)")
    partners = [p.id for p in release.partners] if release is not None else []
    me = r.get(t, "partner", str, "federation", home if release is not None else None)
    if me is None:
        raise r.fail("federation.partner", "missing",
                     "say which partner this node speaks for on the broker")
    try:
        check_partner_id(me, "federation.partner")
    except InputError as err:
        raise r.fail("federation.partner", err.problem, err.fix or "") from None
    password = None
    env = r.get(t, "password_env", str, "federation")
    if env is not None:
        password = os.environ.get(env)
        if password is None:
            raise r.fail("federation.password_env", f"${env} is not set",
                         f"export {env}=… (the broker password of {me!r})")
    files = {}
    for key in ("cafile", "certfile", "keyfile"):
        v = r.get(t, key, str, "federation")
        if v is not None and not (base / v).is_file():
            raise r.fail(f"federation.{key}", f"{base / v} does not exist",
                         "give the path of a PEM file")
        files[key] = None if v is None else str(base / v)
    sends = []
    for k, s in enumerate(r.get(t, "send", list, "federation", [])):
        where = f"federation.send[{k}]"
        if not isinstance(s, dict):
            raise r.fail(where, "is not a table", "write [[federation.send]]")
        to = r.get(s, "to", str, where, required=True)
        if to not in partners or to == me:
            raise r.fail(f"{where}.to", f"{to!r} is not another declared partner",
                         "declare it in [[partners]] (what it may receive comes from "
                         "the sensors' release lists)")
        period = r.get(s, "period_s", (int, float), where, 1.0)
        round_m = r.get(s, "round_m", (int, float), where, 0.0)
        if not (0 < period <= 3600 and 0 <= round_m <= 100_000):
            raise r.fail(f"{where}.period_s" if not 0 < period <= 3600 else f"{where}.round_m",
                         "out of range", "give period_s in (0, 3600] and round_m in "
                         "[0, 100000] metres")
        identity = r.get(s, "identity", bool, where, True)
        # The partner's own policy is applied already (to everything it receives); a
        # send may make it coarser, not finer.
        floor = release.policy(to) if release is not None else FieldPolicy()
        if "round_m" in s and 0 < round_m < floor.round_m:
            raise r.fail(f"{where}.round_m", f"{round_m} m is finer than {to!r} may have "
                         f"({floor.round_m:g} m, [[partners]] round_m)",
                         f"give round_m ≥ {floor.round_m:g}, or leave it out")
        if "identity" in s and identity and not floor.identity:
            raise r.fail(f"{where}.identity", f"{to!r} may not have identities "
                         "([[partners]] identity = false)", "leave it out")
        sends.append(Send(to=to, period_s=float(period), policy=FieldPolicy(
            round_m=0.0 if round_m == floor.round_m else float(round_m),
            identity=identity)))
    receives = []
    for k, s in enumerate(r.get(t, "receive", list, "federation", [])):
        where = f"federation.receive[{k}]"
        if not isinstance(s, dict):
            raise r.fail(where, "is not a table", "write [[federation.receive]]")
        sender = r.get(s, "from", str, where, required=True)
        try:
            check_partner_id(sender, f"{where}.from")
        except InputError as err:
            raise r.fail(f"{where}.from", err.problem, err.fix or "") from None
        if sender == me:
            raise r.fail(f"{where}.from", "is this node's own partner",
                         "a node does not hear itself")
        area = r.get(s, "area", dict, where)
        if area is not None:
            try:
                _area(area)
            except InputError as err:
                raise r.fail(f"{where}.area", err.problem, err.fix or "") from None
        receives.append(Receive(sender=sender, area=area))
    return FederationConfig(url=url, partner=me, node=r.get(t, "node", str, "federation", node),
                            user=r.get(t, "user", str, "federation", me), password=password,
                            send=tuple(sends), receive=tuple(receives), **files)


def _source_tls(r: _Reader, s: dict[str, Any], where: str, transport: str, base: Path
                ) -> SourceTls | None:
    t = r.get(s, "tls", dict, where)
    if t is None:
        return None
    where = f"{where}.tls"
    if transport != "tcp-listen":
        raise r.fail(where, f"a {transport} source has no TLS",
                     "TLS is for tcp-listen sources (sensors connect to the node)")
    unknown = sorted(set(t) - {"certfile", "keyfile", "client_cafile", "client_names"})
    if unknown:
        raise r.fail(f"{where}.{unknown[0]}", "unknown key",
                     "use certfile, keyfile, client_cafile, client_names")
    files: dict[str, Path | None] = {}
    for key in ("certfile", "keyfile", "client_cafile"):
        v = r.get(t, key, str, where, required=key == "certfile")
        files[key] = None if v is None else base / v
        if files[key] is not None and not files[key].is_file():  # type: ignore[union-attr]
            raise r.fail(f"{where}.{key}", f"{files[key]} does not exist",
                         "give the path of a PEM file")
    names = r.get(t, "client_names", list, where, [])
    if names and files["client_cafile"] is None:
        raise r.fail(f"{where}.client_cafile", "missing",
                     "client_names need client_cafile: the CA of the sensors' certificates")
    if not all(isinstance(n, str) and n for n in names):
        raise r.fail(f"{where}.client_names", "is not a list of names",
                     'give e.g. client_names = ["radar1.police.example"]')
    certfile = files["certfile"]
    assert certfile is not None
    return SourceTls(certfile=certfile, keyfile=files["keyfile"],
                     client_cafile=files["client_cafile"], client_names=tuple(names))


def _sapient_nodes(r: _Reader, sensors: list[dict[str, Any]], scenario: Scenario
                   ) -> dict[str, str]:
    """The sensors declared as SAPIENT nodes: sensor id → its node id (a UUID)."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for k, s in enumerate(sensors):
        if "sapient_node_id" not in s:
            continue
        where = f"sensors[{k}].sapient_node_id"
        v = s["sapient_node_id"]
        try:
            if not isinstance(v, str):
                raise ValueError
            key = str(uuid.UUID(v))
        except ValueError:
            raise r.fail(where, f"{v!r} is not a UUID",
                         'give the node id the sensor node sends, e.g. '
                         '"0b6d3c9e-2f41-4c11-9d3e-5a2b7c4d8e1f"') from None
        from skyfence.adapters.sapient.source import SAPIENT_KINDS

        spec = scenario.sensors[k]
        if key in seen:
            raise r.fail(where, f"{v} is also the node id of sensor {seen[key]!r}",
                         "give each SAPIENT sensor node its own node id")
        if spec.kind not in SAPIENT_KINDS:
            raise r.fail(f"sensors[{k}].kind", f"a SAPIENT node cannot be a {spec.kind} sensor",
                         f"declare what it measures: one of {', '.join(SAPIENT_KINDS)}")
        seen[key] = spec.id
        out[spec.id] = key
    return out


def _sapient_source(r: _Reader, s: dict[str, Any], where: str, transport: str,
                    nodes: dict[str, str], release: Releasability | None
                    ) -> tuple[str, dict[str, Any]]:
    """A ``format = "sapient"`` source: the sensor it is listed under (its first) and
    the options of its decoder (``skyfence.adapters.sapient.source.SourceRules``)."""
    if transport != "tcp-listen":
        raise r.fail(f"{where}.transport", f"a SAPIENT source cannot be {transport!r}",
                     'use transport = "tcp-listen": SAPIENT sensor nodes connect to the node')
    if "sensor" in s:
        raise r.fail(f"{where}.sensor", "a SAPIENT source has no single sensor",
                     'list them as sensors = ["…"], or leave it out to serve every sensor '
                     "with a sapient_node_id")
    if not nodes:
        raise r.fail(f"{where}.format", "no [[sensors]] entry has a sapient_node_id",
                     "declare each SAPIENT node that may connect as a [[sensors]] entry with "
                     'sapient_node_id = "<its UUID>"')
    owner = {sid: release.owner[sid] if release is not None else LOCAL for sid in nodes}
    partner = r.get(s, "partner", str, where)
    if partner is not None:
        ids = [p.id for p in release.partners] if release is not None else []
        if partner not in ids:
            raise r.fail(f"{where}.partner", f"{partner!r} is not a declared partner",
                         "give the [[partners]] id whose sensor nodes connect here"
                         if ids else "declare [[partners]], or leave partner out")
    listed = r.get(s, "sensors", list, where)
    if listed is None:
        serves = list(nodes)
    else:
        if not listed:
            raise r.fail(f"{where}.sensors", "is empty",
                         "list the SAPIENT sensors it serves, or leave it out for all")
        for k, sid in enumerate(listed):
            if sid not in nodes:
                raise r.fail(f"{where}.sensors[{k}]",
                             f"{sid!r} is not a sensor with a sapient_node_id",
                             f"use one of {', '.join(sorted(nodes))}")
            if partner is not None and owner[sid] != partner:
                raise r.fail(f"{where}.sensors[{k}]", f"{sid!r} is owned by {owner[sid]!r}, "
                             f"not by {partner!r}, this source's partner",
                             "list only the partner's sensors, or change the sensor's owner")
        serves = list(dict.fromkeys(listed))
    options = r.get(s, "options", dict, where, {})
    unknown = sorted(set(options) - {"max_offset_m", "fusion_node_id"})
    if unknown:
        raise r.fail(f"{where}.options.{unknown[0]}", "unknown SAPIENT option",
                     "use max_offset_m (how far from its declared position a node may "
                     "report itself, metres) or fusion_node_id (this node's UUID)")
    offset = r.get(options, "max_offset_m", (int, float), f"{where}.options", 50.0)
    if not 0 < offset < math.inf:
        raise r.fail(f"{where}.options.max_offset_m", f"{offset} is not > 0",
                     "give metres, e.g. 50")
    return serves[0], {"nodes": {n: sid for sid, n in nodes.items()}, "serves": serves,
                       "owners": {n: owner[sid] for sid, n in nodes.items()},
                       "partner": partner, **options}


def _release(r: _Reader, doc: dict[str, Any], node: dict[str, Any],
             sensors: list[dict[str, Any]]) -> tuple[Releasability | None, str]:
    """[[partners]], each sensor's owner and release list, and the home partner."""
    raw = doc.get("partners", [])
    if not isinstance(raw, list):
        raise r.fail("partners", "is not a list of tables", "write [[partners]]")
    partners = []
    for k, p in enumerate(raw):
        if not isinstance(p, dict):
            raise r.fail(f"partners[{k}]", "is not a table", "write [[partners]]")
        partners.append(Partner(r.get(p, "id", str, f"partners[{k}]", required=True),
                                r.get(p, "name", str, f"partners[{k}]", ""),
                                _field_policy(r, p, f"partners[{k}]")))
    if not partners:
        for k, s in enumerate(sensors):
            for key in ("owner", "release"):
                if key in s:
                    raise r.fail(f"sensors[{k}].{key}", "there are no [[partners]]",
                                 "declare the partners, or leave the key out")
        return None, r.get(node, "home", str, "node", LOCAL)
    ids = [p.id for p in partners]
    home = r.get(node, "home", str, "node", ids[0])
    if home not in ids:
        raise r.fail("node.home", f"{home!r} is not a partner", f"use one of {', '.join(ids)}")
    k = ids.index(home)
    if not partners[k].policy.full:
        key = next(key for key in ("round_m", "round_mps", "identity") if key in raw[k])
        raise r.fail(f"partners[{k}].{key}", f"{home!r} is the home partner",
                     "the node's own partner receives everything: give round_m, "
                     "round_mps and identity to other partners only")
    owner, to = {}, {}
    for k, s in enumerate(sensors):
        sid = str(s.get("id", f"#{k}"))
        owner[sid] = r.get(s, "owner", str, f"sensors[{k}]", home)
        rel = r.get(s, "release", list, f"sensors[{k}]", [])
        if not all(isinstance(x, str) for x in rel):
            raise r.fail(f"sensors[{k}].release", "is not a list of partner ids",
                         'give e.g. release = ["army"]')
        to[sid] = frozenset(rel)
    try:
        return Releasability(tuple(partners), owner, to), home
    except InputError as err:
        raise r.fail(err.field or "partners", err.problem, err.fix or "") from None


def _field_policy(r: _Reader, p: dict[str, Any], where: str) -> FieldPolicy:
    """A partner's field policy: ``round_m``, ``round_mps``, ``identity``."""
    known = {"id", "name", "round_m", "round_mps", "identity"}
    unknown = sorted(set(p) - known)
    if unknown:
        raise r.fail(f"{where}.{unknown[0]}", "unknown key", f"use {', '.join(sorted(known))}")
    grid = {}
    for key in ("round_m", "round_mps"):
        v = r.get(p, key, (int, float), where, 0.0)
        if not 0 <= v <= 100_000:
            raise r.fail(f"{where}.{key}", f"{v} is out of range",
                         f"give {key} in [0, 100000] (0: as they are)")
        grid[key] = float(v)
    return FieldPolicy(**grid, identity=r.get(p, "identity", bool, where, True))


def _tokens(r: _Reader, doc: dict[str, Any], release: Releasability | None,
            sources: list[SourceConfig]) -> tuple[Token, ...]:
    raw = doc.get("tokens", [])
    if not isinstance(raw, list):
        raise r.fail("tokens", "is not a list of tables", "write [[tokens]]")
    ids = [p.id for p in release.partners] if release is not None else [LOCAL]
    out = []
    for k, t in enumerate(raw):
        where = f"tokens[{k}]"
        if not isinstance(t, dict):
            raise r.fail(where, "is not a table", "write [[tokens]]")
        partner = r.get(t, "partner", str, where, ids[0])
        if partner not in ids:
            raise r.fail(f"{where}.partner", f"{partner!r} is not a partner",
                         f"use one of {', '.join(ids)}")
        try:
            role = Role.parse(r.get(t, "role", str, where, required=True), f"{where}.role")
        except InputError as err:
            raise r.fail(f"{where}.role", err.problem, err.fix or "") from None
        digest = r.get(t, "sha256", str, where, required=True).lower()
        source = _token_source(r, t, where, role, partner, release, sources)
        out.append(Token(partner, role, digest, r.get(t, "name", str, where, ""), source))
    return tuple(out)


def _token_source(r: _Reader, t: dict[str, Any], where: str, role: Role, partner: str,
                  release: Releasability | None, sources: list[SourceConfig]) -> str:
    """The source a sensor token pushes to: one of ``transport = "http"``, whose sensor
    the token's partner owns."""
    source = r.get(t, "source", str, where)
    pushed = {sc.source.id: sc for sc in sources if sc.transport == "http"}
    if role != Role.SENSOR:
        if source is not None:
            raise r.fail(f"{where}.source", f"a {role.name.lower()} token has no source",
                         'only a role = "sensor" token is bound to a source')
        return ""
    if source is None:
        raise r.fail(f"{where}.source", "missing",
                     'a sensor token pushes to one source: give source = "<the id of a '
                     '[[sources]] entry with transport = \"http\">"')
    if source not in pushed:
        raise r.fail(f"{where}.source", f"{source!r} is not a source of transport \"http\"",
                     f"use one of {', '.join(sorted(pushed))}" if pushed else
                     'declare the source with transport = "http" (the sensor pushes to '
                     "POST /api/v1/ingest/<source id>)")
    sensor = pushed[source].source.sensor
    owner = release.owner.get(sensor, LOCAL) if release is not None else LOCAL
    if release is not None and owner != partner:
        raise r.fail(f"{where}.partner", f"source {source!r} feeds sensor {sensor!r}, which "
                     f"{owner!r} owns", f'give partner = "{owner}"')
    return str(source)
