"""Cursor-on-Target out of a real picture: the schema, TAK's own converter, the parser,
and the transports against real local sockets (UDP multicast, TCP, TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import socket
import ssl
import struct
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import takproto
import xmlschema
from takproto.proto import TakMessage

from skyfence import sim
from skyfence.adapters import cot
from skyfence.adapters.base import Message, Rejected, StreamDecoder
from skyfence.adapters.cot import (
    AffiliationPolicy,
    CotConfig,
    CotError,
    CotEvent,
    CotXmlDecoder,
    TcpSender,
    UdpSender,
    encode_proto,
    encode_xml,
    frame_events,
    parse_xml,
)
from skyfence.classify import CLASSES
from skyfence.errors import SkyfenceError
from skyfence.geo import Origin
from skyfence.picture import Frame, Picture
from skyfence.pipeline import batch_bounds
from skyfence.track import Tracker
from skyfence.types import TrackFlag, TrackStatus

DATA = Path(__file__).resolve().parent.parent / "data" / "cot"
XSD = DATA / "CoT_Event_v2.xsd"
EXAMPLE = DATA / "cot_example.xml"


# --------------------------------------------------------------------------- a real picture


@pytest.fixture(scope="module")
def run() -> tuple[Origin, list[Frame]]:
    """20 s of the mixed scenario through the tracker and the picture."""
    result = sim.build("mixed", seed=0, duration_s=20.0)
    tracker = Tracker.from_scenario(result.scenario)
    picture = Picture.for_scenario(result.scenario)
    det = result.detections
    frames = []
    for a, b in zip(*batch_bounds(det.t), strict=True):
        frames.append(picture.update(tracker.step(det.take(slice(a, b)))))
    return result.scenario.origin, frames


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def _last(run: tuple[Origin, list[Frame]]) -> tuple[Origin, Frame]:
    origin, frames = run
    return origin, frames[-1]


# --------------------------------------------------------------------------- the schema


def test_the_reference_example_validates_and_parses(schema: xmlschema.XMLSchema) -> None:
    raw = EXAMPLE.read_bytes()
    schema.validate(str(EXAMPLE))
    # The schema has teeth: a point without its error fields is refused.
    assert not schema.is_valid(raw.decode().replace(' le="20"', ""))
    ev = parse_xml(raw)
    assert (ev.uid, ev.type, ev.how, ev.opex, ev.qos) == (
        "GLOBALHAWK.30", "a-f-A-M-F-R-X", "m-s", "s-", "2-r-d")
    t = round(dt.datetime(2008, 12, 11, 18, 45, 34, tzinfo=dt.UTC).timestamp() * 1000)
    assert (ev.time_ms, ev.start_ms, ev.stale_ms) == (t, t, t + (33 * 60 + 28) * 1000 + 120)
    assert (ev.lat_deg, ev.lon_deg, ev.hae_m, ev.ce_m, ev.le_m) == (
        8.796735, -15.365738, 19397.6, 20.0, 20.0)
    assert (ev.callsign, ev.course_deg, ev.speed_mps) == ("LONGLOOK94", 124.8777771,
                                                          216.466522217)
    # Details we do not model are kept, as TAK's converter keeps them.
    assert ev.extra.startswith('<_flow-tags_ xplane="2008-12-11T18:45:34.00Z" />')
    assert '<attitude pitch="1.480173" roll="0.07213" />' in ev.extra


def test_every_event_of_every_frame_validates_against_the_schema(
        run: tuple[Origin, list[Frame]], schema: xmlschema.XMLSchema) -> None:
    origin, frames = run
    n_tracks = n_groups = 0
    for frame in frames:
        for ev in frame_events(frame, origin):
            schema.validate(encode_xml(ev).decode())  # raises, saying where, if invalid
            n_tracks += ".track." in ev.uid
            n_groups += ".group." in ev.uid
    assert n_tracks > 500 and n_groups > 0


# --------------------------------------------------------------------------- the mapping

_CREWED = {11: "A-C-F", 12: "A-C-F", 13: "A-C-F", 14: "A-C-F", 15: "A-C-F", 16: "A-C-F",
           17: "A-C-H", 21: "A-C-F", 22: "A-C-L", 24: "A-C-F"}


def test_type_strings_follow_the_class(run: tuple[Origin, list[Frame]]) -> None:
    origin, frames = run
    seen = set()
    for frame in frames[-10:]:
        events = frame_events(frame, origin)
        n = len(frame.tracks)
        for i, name in enumerate(frame.class_names().tolist()):
            ev = events[i]
            assert ev.uid.endswith(f".track.{frame.tracks.id[i]}")
            category = int(frame.classes.adsb_category[i])
            expected = {"drone_multirotor": "a-u-A-C-H-q", "drone_fixed_wing": "a-u-A-C-F-q",
                        "crewed_aircraft": f"a-u-{_CREWED.get(category, 'A-C')}",
                        "fast_low_flyer": "a-u-A-M-F", "bird": "a-u-A",
                        "unknown": "a-u-A"}[name]
            assert ev.type == expected, (name, category)
            seen.add(ev.type)
        for ev in events[n:]:
            assert ev.type == "a-u-A-C-H-q" and ev.how == "m-f"  # the multirotor swarm
    # The mixed scenario has drones of both kinds, crewed aircraft with their ADS-B
    # categories (a helicopter among them), a bird and a fast low flyer.
    assert {"a-u-A-C-H-q", "a-u-A-C-F-q", "a-u-A-C-H", "a-u-A-M-F", "a-u-A"} <= seen
    military = frame_events(frames[-1], origin, CotConfig(drone_symbols="military"))
    assert {"a-u-A-M-H-Q", "a-u-A-M-F-Q"} <= {e.type for e in military}
    birds_out = frame_events(frames[-1], origin, CotConfig(omit_classes=("bird",),
                                                           functions={"unknown": "A-C"}))
    names = frames[-1].class_names().tolist()
    assert len(birds_out) == len(frame_events(frames[-1], origin)) - names.count("bird")


def test_how_says_where_the_position_comes_from(run: tuple[Origin, list[Frame]]) -> None:
    origin, frames = run
    hows = set()
    for frame in frames[-10:]:
        tr = frame.tracks
        for i, ev in enumerate(frame_events(frame, origin)[:len(tr)]):
            n_sources = bin(int(tr.sources[i])).count("1")
            if tr.status[i] == TrackStatus.COASTING:
                expected = "m-p"
            elif tr.flags[i] & TrackFlag.COOPERATIVE_ONLY:
                expected = "m-g"
            else:
                expected = "m-f" if n_sources >= 2 else "m-a"
            assert ev.how == expected
            hows.add(ev.how)
    assert {"m-p", "m-f", "m-a"} <= hows


def test_affiliation_is_unknown_unless_the_user_lists_it(
        run: tuple[Origin, list[Frame]]) -> None:
    origin, frame = _last(run)
    tr = frame.tracks
    icao = [i for i, s in enumerate(tr.identity.tolist()) if s.startswith("icao:")]
    assert len(icao) >= 3
    a, b, c = (str(tr.identity[i]) for i in icao[:3])
    dark = np.flatnonzero((tr.flags & TrackFlag.DARK) != 0)
    swarm = np.flatnonzero(frame.group >= 0)
    loner = int(next(i for i in dark if frame.group[i] < 0))
    policy = AffiliationPolicy(friendly=(a,), neutral=(b,), hostile=(c,))
    # Default: nothing known, nothing hostile.
    assert {e.type.split("-")[1] for e in frame_events(frame, origin)} == {"u"}
    events = frame_events(frame, origin, CotConfig(affiliation=policy),
                          breaching=[int(tr.id[loner]), int(tr.id[swarm[0]])])
    letters = [e.type.split("-")[1] for e in events]
    assert [letters[i] for i in icao[:3]] == ["f", "n", "h"]
    # A dark drone inside a prohibited zone is suspect; so is the swarm it belongs to.
    assert letters[loner] == "s" and letters[int(swarm[0])] == "s"
    assert letters[len(tr):] == ["s"] * len(frame.groups)
    others = set(range(len(tr))) - {*icao[:3], loner, int(swarm[0])}
    assert {letters[i] for i in others} == {"u"}
    # A spoof suspect does not get its claimed identity's affiliation.
    flags = tr.flags.copy()
    flags[icao[0]] |= TrackFlag.SPOOF_SUSPECT
    flags[icao[2]] |= TrackFlag.SPOOF_SUSPECT
    spoofed = replace(frame, tracks=replace(tr, flags=flags))
    letters = [e.type.split("-")[1] for e in frame_events(
        spoofed, origin, CotConfig(affiliation=policy))]
    assert [letters[i] for i in icao[:3]] == ["s", "n", "s"]
    off = AffiliationPolicy(friendly=(a,), suspect_spoof=False, suspect_dark_breach=False)
    letters = [e.type.split("-")[1] for e in frame_events(
        spoofed, origin, CotConfig(affiliation=off), breaching=[int(tr.id[loner])])]
    assert letters[icao[0]] == "u" and letters[loner] == "u"


def test_a_group_is_friendly_only_when_every_member_is(
        run: tuple[Origin, list[Frame]]) -> None:
    origin, frame = _last(run)
    tr = frame.tracks
    members = np.flatnonzero(frame.group == frame.groups.id[0])
    identity = tr.identity.astype("<U32")
    identity[members] = [f"rid:TEST{k:04d}" for k in range(members.size)]
    listed = replace(frame, tracks=replace(tr, identity=identity))
    everyone = AffiliationPolicy(friendly=tuple(identity[members].tolist()))
    group = frame_events(listed, origin, CotConfig(affiliation=everyone))[len(tr)]
    assert group.type.startswith("a-f-")
    all_but_one = AffiliationPolicy(friendly=tuple(identity[members[1:]].tolist()))
    group = frame_events(listed, origin, CotConfig(affiliation=all_but_one))[len(tr)]
    assert group.type.startswith("a-u-")


def test_uids_are_stable_across_frames_and_unique(run: tuple[Origin, list[Frame]]) -> None:
    origin, frames = run
    by_track: dict[int, str] = {}
    for frame in frames:
        events = frame_events(frame, origin, CotConfig(node="site-a"))
        uids = [e.uid for e in events]
        assert len(set(uids)) == len(uids)
        for ident, ev in zip(frame.tracks.id.tolist(), events, strict=False):
            assert by_track.setdefault(ident, ev.uid) == ev.uid == f"skyfence.site-a.track.{ident}"
        for gid, ev in zip(frame.groups.id.tolist(), events[len(frame.tracks):], strict=True):
            assert ev.uid == f"skyfence.site-a.group.{gid}"
            assert ev.callsign == f"skyfence-swarm-{gid}"
    assert len(by_track) > 40


def test_times_stale_and_callsigns(run: tuple[Origin, list[Frame]]) -> None:
    origin, frame = _last(run)
    t_ms = round(frame.t * 1000)
    events = frame_events(frame, origin, CotConfig(stale_s=7.5))
    for ev in events:
        assert ev.time_ms == ev.start_ms == t_ms and ev.stale_ms == t_ms + 7500
        root = ET.fromstring(encode_xml(ev))
        assert root.get("time") == root.get("start") == (
            dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            + "Z")
        assert root.get("stale", "") > root.get("time", "")
    for ident, identity, ev in zip(frame.tracks.id.tolist(), frame.tracks.identity.tolist(),
                                   events, strict=False):
        assert ev.callsign == (identity or f"skyfence-{ident}")


def test_positions_keep_full_precision_and_errors_are_one_sigma(
        run: tuple[Origin, list[Frame]]) -> None:
    origin, frame = _last(run)
    tr = frame.tracks
    lat, lon, hae = origin.enu_to_geodetic(tr.x[:, :3])
    events = frame_events(frame, origin)
    for i, ev in enumerate(events[:len(tr)]):
        point = ET.fromstring(encode_xml(ev)).find("point")
        assert point is not None
        # Exactly the same float, through the XML text and through protobuf.
        assert float(point.attrib["lat"]) == lat[i] and float(point.attrib["lon"]) == lon[i]
        assert float(point.attrib["hae"]) == hae[i]
        msg = takproto.parse_proto(bytearray(encode_proto(ev)))
        assert (msg.cotEvent.lat, msg.cotEvent.lon) == (lat[i], lon[i])
        sigma_h = math.sqrt(np.linalg.eigvalsh(tr.P[i, :2, :2]).max())
        assert math.isclose(float(point.attrib["ce"]), sigma_h, rel_tol=1e-9)
        assert float(point.attrib["le"]) == math.sqrt(tr.P[i, 2, 2])
        speed = math.hypot(tr.x[i, 3], tr.x[i, 4])
        assert math.isclose(ev.speed_mps or 0.0, speed, rel_tol=1e-3)  # local north ≈ origin's
    group = events[len(tr)]
    assert group.ce_m == group.le_m == frame.groups.extent_m[0]


def test_course_is_true_at_the_track_not_at_the_origin() -> None:
    origin = Origin(lat_deg=60.0, lon_deg=10.0, alt_m=0.0)
    frame = _synthetic_frame(np.array([[20_000.0, 0.0, 100.0, 0.0, 10.0, 0.0]]))
    (ev,) = frame_events(frame, origin)
    _, lon, _ = origin.enu_to_geodetic(np.array([20_000.0, 0.0, 100.0]))
    # Meridians converge towards the pole: 20 km east of the origin, true north leans
    # west of the origin's north, so the origin's north is a course east of true north.
    convergence = (float(lon) - origin.lon_deg) * math.sin(math.radians(origin.lat_deg))
    assert ev.course_deg is not None and convergence > 0.3
    assert math.isclose(ev.course_deg, convergence, abs_tol=0.001)
    assert math.isclose(ev.speed_mps or 0.0, 10.0, rel_tol=1e-6)


def _synthetic_frame(x: np.ndarray, *, identity: str = "") -> Frame:
    """A picture of confirmed tracks with states ``x`` (n, 6), all unknown."""
    from skyfence.classify import Classification
    from skyfence.groups import GroupTable
    from skyfence.types import Tracks

    n = x.shape[0]
    base = Tracks.empty()
    tracks = replace(
        base, id=np.arange(1, n + 1, dtype=np.int64), x=x,
        P=np.tile(np.diag([4.0, 4.0, 9.0, 1.0, 1.0, 1.0]), (n, 1, 1)),
        status=np.full(n, TrackStatus.CONFIRMED, dtype=np.int8), t_first=np.zeros(n),
        t_last=np.zeros(n), hits=np.ones(n, dtype=np.int32), misses=np.zeros(n, np.int32),
        identity=np.full(n, identity, dtype="<U64"), category=np.full(n, "", dtype="<U4"),
        sources=np.ones(n, dtype=np.uint64), flags=np.zeros(n, dtype=np.uint16),
        manoeuvre_p=np.zeros(n))
    empty = Classification.empty(0.0)
    arrays = {name: np.zeros((n, *getattr(empty, name).shape[1:]),
                             dtype=getattr(empty, name).dtype)
              for name in empty.__dataclass_fields__ if name != "t"}
    arrays["track_id"] = tracks.id
    arrays["label"][:] = CLASSES.index("unknown")
    arrays["probs"][:, CLASSES.index("bird")] = 1.0
    classes = Classification(t=1.7e9, **arrays)
    return Frame(t=1.7e9, tracks=tracks, classes=classes, group=np.full(n, -1),
                 groups=GroupTable.empty(), events=())


# --------------------------------------------------------------------------- TAK's converter


def test_takproto_reads_our_xml_and_our_protobuf_alike(
        run: tuple[Origin, list[Frame]]) -> None:
    origin, frames = run
    n = 0
    for frame in frames[::4]:
        for ev in frame_events(frame, origin):
            ours = TakMessage()
            ours.ParseFromString(encode_proto(ev, framing="none"))
            from_xml = takproto.parse_proto(bytearray(encode_xml(ev)))
            mesh = takproto.parse_proto(bytearray(encode_proto(ev)))
            stream = takproto.parse_proto(bytearray(encode_proto(ev, framing="stream")))
            assert from_xml == ours == mesh == stream, ev.uid
            e = ours.cotEvent
            assert (e.uid, e.type, e.how) == (ev.uid, ev.type, ev.how)
            assert (e.sendTime, e.startTime, e.staleTime) == (ev.time_ms, ev.start_ms,
                                                              ev.stale_ms)
            assert (e.lat, e.lon, e.hae, e.ce, e.le) == (ev.lat_deg, ev.lon_deg, ev.hae_m,
                                                         ev.ce_m, ev.le_m)
            assert (e.detail.track.course, e.detail.track.speed) == (ev.course_deg,
                                                                     ev.speed_mps)
            assert e.detail.contact.callsign == ev.callsign
            assert e.detail.xmlDetail == f"<remarks>{ev.remarks}</remarks>{ev.extra}"
            n += 1
    assert n > 100


def test_our_parser_gives_back_every_event(run: tuple[Origin, list[Frame]]) -> None:
    origin, frames = run
    for frame in frames[::3]:
        for ev in frame_events(frame, origin, CotConfig(qos="1-r-c", opex="s")):
            assert parse_xml(encode_xml(ev)) == ev


def test_hostile_text_is_escaped_and_still_round_trips(schema: xmlschema.XMLSchema) -> None:
    nasty = 'rid:<a&b>"q\'\n\t\x01é€😀\ud800'
    frame = _synthetic_frame(np.array([[100.0, 200.0, 50.0, 3.0, 4.0, 0.0]]), identity=nasty)
    origin = Origin(lat_deg=0.00001, lon_deg=-0.00002, alt_m=0.0)
    (ev,) = frame_events(frame, origin)
    raw = encode_xml(ev)
    assert raw.isascii()
    schema.validate(raw.decode())
    back = parse_xml(raw)
    clean = nasty.replace("\x01", "\ufffd").replace("\ud800", "\ufffd")
    assert back.callsign == clean
    assert back == replace(ev, callsign=clean, remarks=ev.remarks.replace(nasty, clean))
    ours = TakMessage()
    ours.ParseFromString(encode_proto(ev, framing="none"))
    assert takproto.parse_proto(bytearray(raw)) == ours


def test_numbers_are_decimals_never_exponents() -> None:
    ev = CotEvent(uid="x", type="a-u-A", how="m-a", time_ms=0, start_ms=0, stale_ms=1000,
                  lat_deg=1e-05, lon_deg=-3.2e-07, hae_m=1e16, ce_m=0.0, le_m=5e-324)
    point = ET.fromstring(encode_xml(ev)).find("point")
    assert point is not None
    assert (point.get("lat"), point.get("lon")) == ("0.00001", "-0.00000032")
    assert float(point.attrib["hae"]) == 1e16 and float(point.attrib["le"]) == 5e-324
    assert ET.fromstring(encode_xml(ev)).get("time") == "1970-01-01T00:00:00.000Z"
    with pytest.raises(CotError, match="lat_deg"):
        encode_xml(replace(ev, lat_deg=math.nan))
    with pytest.raises(CotError, match="ce_m"):
        encode_proto(replace(ev, ce_m=math.inf))


# --------------------------------------------------------------------------- parsing


def test_the_parser_tolerates_namespaces_whitespace_and_offsets() -> None:
    raw = (b"\xef\xbb\xbf \n <?xml version='1.0'?>\n"
           b'<c:event xmlns:c="urn:cot" version="2.0" uid=" a.1 " type="a-f-G" how="h-e"\n'
           b'   time="2024-06-01T14:00:00+02:00" start="2024-06-01T12:00:00.1239Z"\n'
           b'   stale="2024-06-01T12:00:05">\n'
           b'  <c:detail>\n    <c:contact callsign="ALPHA"/>\n'
           b'    <c:remarks>hello &amp; bye</c:remarks>\n    <c:link uid="b" />\n'
           b"  </c:detail>\n"
           b'  <c:point lat=" 47.5 " lon="8.5" hae="" ce="3" le="4"/>\n</c:event>\n')
    ev = parse_xml(raw)
    t = round(dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC).timestamp() * 1000)
    assert (ev.uid, ev.type, ev.how) == ("a.1", "a-f-G", "h-e")
    assert (ev.time_ms, ev.start_ms, ev.stale_ms) == (t, t + 123, t + 5000)
    assert (ev.lat_deg, ev.lon_deg, ev.hae_m, ev.ce_m, ev.le_m) == (
        47.5, 8.5, cot.UNKNOWN_M, 3.0, 4.0)
    assert (ev.callsign, ev.remarks, ev.extra) == ("ALPHA", "hello & bye", '<link uid="b" />')
    assert ev.course_deg is None and ev.speed_mps is None


@pytest.mark.parametrize(("raw", "where"), [
    (b"<event", "event"),
    (b"<point/>", "event"),
    (b'<event uid="a" type="a-u-A" how="m-g" time="t" start="t" stale="t">'
     b'<point lat="1" lon="2"/></event>', "event/@time"),
    (b'<event uid="a" type="a-u-A" how="m-g" time="2024-01-01T00:00:00Z" '
     b'start="2024-01-01T00:00:00Z" stale="2024-01-01T00:00:00Z"/>', "event/point"),
    (b'<event type="a-u-A" how="m-g" time="2024-01-01T00:00:00Z" '
     b'start="2024-01-01T00:00:00Z" stale="2024-01-01T00:00:00Z"><point lat="1" lon="2"/>'
     b"</event>", "event/@uid"),
    (b'<event uid="a" type="a-u-A" how="m-g" time="2024-01-01T00:00:00Z" '
     b'start="2024-01-01T00:00:00Z" stale="2024-01-01T00:00:00Z"><point lat="91" lon="2"/>'
     b"</event>", "point"),
    (b'<event uid="a" type="a-u-A" how="m-g" time="2024-01-01T00:00:00Z" '
     b'start="2024-01-01T00:00:00Z" stale="2024-01-01T00:00:00Z"><point lat="1" lon="x"/>'
     b"</event>", "point/@lon"),
    (b'<!DOCTYPE event [<!ENTITY a "aaaa">]><event uid="&a;"/>', "event"),
])
def test_the_parser_says_what_is_wrong_and_where(raw: bytes, where: str) -> None:
    with pytest.raises(CotError) as err:
        parse_xml(raw)
    assert err.value.field == where
    assert isinstance(err.value, SkyfenceError) and err.value.fix


def test_the_stream_decoder_splits_resyncs_and_reports_offsets(
        run: tuple[Origin, list[Frame]]) -> None:
    origin, frame = _last(run)
    events = frame_events(frame, origin)[:6]
    docs = [encode_xml(ev) for ev in events]
    garbage = b"\n<not-cot/>\n"
    stream = docs[0] + b"\r\n" + docs[1] + garbage + docs[2] + docs[3] + b"  " + docs[4]
    bad_at = len(docs[0]) + 2 + len(docs[1]) + 1
    truncated = docs[5][:-20]
    stream += truncated
    decoder: StreamDecoder = CotXmlDecoder()
    out: list[Message | Rejected] = []
    for k in range(0, len(stream), 7):
        out.extend(decoder.feed(stream[k:k + 7]))
    out.extend(decoder.close())
    got = [o for o in out if isinstance(o, CotEvent)]
    rejected = [o for o in out if isinstance(o, Rejected)]
    assert got == events[:5]
    assert [r.offset for r in rejected] == [bad_at, len(stream) - len(truncated)]
    assert rejected[0].data.startswith(b"<not-cot/>")
    assert rejected[1].reason.startswith("truncated event")
    assert decoder.counters.accepted == 5 and decoder.counters.n_rejected == 2
    assert decoder.counters.bytes_in == len(stream)
    # An event whose end does not come within max_event_bytes is dropped whole, and
    # the decoder finds the next one after its end tag.
    small = CotXmlDecoder(max_event_bytes=len(docs[0]))
    out = small.feed(b"<event uid='x'>" + b"y" * 2 * len(docs[0]))
    assert len(out) == 1 and isinstance(out[0], Rejected)
    assert out[0].reason.startswith("event too long") and out[0].offset == 0
    assert small.feed(b"y" * 3 * len(docs[0])) == []
    assert small.feed(b"</event>" + docs[0]) == [events[0]]
    assert small.close() == [] and small.counters.n_rejected == 1


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(("kwargs", "where"), [
    ({"node": "a.b"}, "node"),
    ({"node": ""}, "node"),
    ({"stale_s": 0.0}, "stale_s"),
    ({"stale_s": math.nan}, "stale_s"),
    ({"qos": "high"}, "qos"),
    ({"opex": "x"}, "opex"),
    ({"drone_symbols": "toy"}, "drone_symbols"),
    ({"functions": {"plane": "A"}}, "functions"),
    ({"functions": {"bird": "G-U"}}, "functions"),
    ({"omit_classes": ("birds",)}, "omit_classes"),
])
def test_bad_configuration_is_refused_with_a_fix(kwargs: dict[str, object], where: str) -> None:
    with pytest.raises(CotError) as err:
        CotConfig(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == where and err.value.fix


def test_an_identity_cannot_be_both_friend_and_hostile() -> None:
    with pytest.raises(CotError, match="listed both"):
        AffiliationPolicy(friendly=("icao:4840D6",), hostile=("icao:4840D6",))
    with pytest.raises(CotError, match="list of identities"):
        AffiliationPolicy(friendly="icao:4840D6")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- transports


def _payloads(run: tuple[Origin, list[Frame]]) -> tuple[list[CotEvent], list[bytes]]:
    origin, frame = _last(run)
    events = frame_events(frame, origin)
    return events, [encode_xml(ev) for ev in events]


async def _receive_datagrams(sock: socket.socket, n: int, timeout_s: float = 5.0
                             ) -> list[bytes]:
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    async with asyncio.timeout(timeout_s):
        while len(got) < n:
            got.append(await loop.sock_recv(sock, 65536))
    return got


def test_udp_multicast_reaches_a_listener_on_loopback(run: tuple[Origin, list[Frame]]) -> None:
    events, payloads = _payloads(run)
    group = cot.DEFAULT_MULTICAST_GROUP

    async def main() -> list[bytes]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind((group, 0))
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack(
                "4s4s", socket.inet_aton(group), socket.inet_aton("127.0.0.1")))
            rx.setblocking(False)
            async with UdpSender(group, rx.getsockname()[1], ttl=1,
                                 interface="127.0.0.1") as tx:
                tx.send_many(payloads)
                tx.send(encode_proto(events[0]))
                got = await _receive_datagrams(rx, len(payloads) + 1)
                assert tx.stats.sent == len(payloads) + 1 and tx.stats.dropped == 0
            return got

    got = asyncio.run(main())
    assert got[:-1] == payloads
    assert takproto.parse_proto(bytearray(got[-1])).cotEvent.uid == events[0].uid


def test_udp_unicast_uses_the_same_sender(run: tuple[Origin, list[Frame]]) -> None:
    _, payloads = _payloads(run)

    async def main() -> list[bytes]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind(("127.0.0.1", 0))
            rx.setblocking(False)
            async with UdpSender("127.0.0.1", rx.getsockname()[1]) as tx:
                tx.send_many(payloads[:5])
                tx.send(b"x" * 70_000)  # no datagram holds it: counted, not sent
                got = await _receive_datagrams(rx, 5)
                assert await tx.flush()
                assert tx.stats.failed == 1 and "exceeds" in tx.last_error
            return got

    assert asyncio.run(main()) == payloads[:5]


class _TakServer:
    """A TAK-server stand-in: accepts streaming clients and decodes what they send."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, greeting: bytes = b"",
                 hang_up_after_bytes: int | None = None) -> None:
        self.ssl = ssl_context
        self.greeting = greeting
        self.hang_up_after_bytes = hang_up_after_bytes
        self.decoder = CotXmlDecoder()
        self.events: list[CotEvent] = []
        self.connections = 0
        self.peer_names: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", port, ssl=self.ssl)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        cert = writer.get_extra_info("peercert")
        if cert:
            self.peer_names.append(dict(x[0] for x in cert["subject"])["commonName"])
        if self.greeting:
            writer.write(self.greeting)
        n = 0
        try:
            while data := await reader.read(65536):
                n += len(data)
                self.events.extend(o for o in self.decoder.feed(data)
                                   if isinstance(o, CotEvent))
                if self.hang_up_after_bytes is not None and n >= self.hang_up_after_bytes:
                    self.hang_up_after_bytes = None
                    break
        except (ConnectionError, ssl.SSLError):
            pass
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()

    async def wait_for(self, n: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.events) < n:
                await asyncio.sleep(0.005)


def test_tcp_streams_events_back_to_back_and_reads_the_server(
        run: tuple[Origin, list[Frame]]) -> None:
    events, payloads = _payloads(run)
    greeting = encode_xml(events[0])

    async def main() -> None:
        server = _TakServer(greeting=greeting)
        await server.start()
        heard = CotXmlDecoder()
        try:
            async with TcpSender("127.0.0.1", server.port, on_receive=heard.feed) as tx:
                tx.send_many(payloads)
                await server.wait_for(len(payloads))
                assert tx.stats.connects == 1 and tx.stats.sent == len(payloads)
                async with asyncio.timeout(5):
                    while heard.counters.accepted < 1:
                        await asyncio.sleep(0.005)
        finally:
            await server.stop()
        assert server.events == events

    asyncio.run(main())


def test_a_failing_reader_callback_does_not_stop_the_sender(
        run: tuple[Origin, list[Frame]], caplog: pytest.LogCaptureFixture) -> None:
    _, payloads = _payloads(run)

    def broken(data: bytes) -> None:
        raise RuntimeError("reader bug")

    async def main() -> None:
        server = _TakServer(greeting=b"<event/>" * 3)
        await server.start()
        try:
            async with TcpSender("127.0.0.1", server.port, on_receive=broken) as tx:
                async with asyncio.timeout(5):
                    while tx.stats.receive_errors < 1:
                        await asyncio.sleep(0.005)
                tx.send_many(payloads)
                await server.wait_for(len(payloads))
                assert tx.stats.connects == 1
        finally:
            await server.stop()

    asyncio.run(main())
    assert "on_receive failed" in caplog.text


def test_tcp_reconnects_after_the_server_hangs_up(run: tuple[Origin, list[Frame]]) -> None:
    events, payloads = _payloads(run)

    async def main() -> None:
        server = _TakServer(hang_up_after_bytes=1)
        await server.start()
        try:
            async with TcpSender("127.0.0.1", server.port, backoff_s=0.01) as tx:
                tx.send(payloads[0])
                await server.wait_for(1)
                async with asyncio.timeout(5):
                    while tx.stats.connects < 2:  # hung up, came back
                        tx.send(payloads[1])
                        await asyncio.sleep(0.01)
                tx.send_many(payloads[2:])
                await server.wait_for(len(payloads) - 2)
                assert server.connections == 2
                assert server.events[-(len(payloads) - 2):] == events[2:]
        finally:
            await server.stop()

    asyncio.run(main())


def test_a_full_queue_drops_the_oldest_and_counts_them() -> None:
    async def main() -> None:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        tx = TcpSender("127.0.0.1", port, queue_size=3, backoff_s=0.01)
        async with tx:
            for k in range(10):
                tx.send(b"%d" % k)
            assert (tx.pending, tx.stats.queued, tx.stats.dropped) == (3, 10, 7)
            assert not await tx.flush(timeout_s=0.05)
            async with asyncio.timeout(5):
                while not tx.last_error:
                    await asyncio.sleep(0.005)
        assert "Connect" in tx.last_error or "refused" in tx.last_error
        assert list(tx._queue) == [b"7", b"8", b"9"]

    asyncio.run(main())


def test_tls_with_a_client_certificate(run: tuple[Origin, list[Frame]],
                                      certificates: dict[str, Path]) -> None:
    events, payloads = _payloads(run)
    files = certificates
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                            cafile=str(files["ca.pem"]))
    server_ctx.load_cert_chain(files["server.pem"], files["server.key"])
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = cot.tls_context(certfile=files["client.pem"], keyfile=files["client.key"],
                                 cafile=files["ca.pem"])

    async def main() -> None:
        server = _TakServer(server_ctx)
        await server.start()
        try:
            async with TcpSender("127.0.0.1", server.port, ssl=client_ctx) as tx:
                tx.send_many(payloads)
                await server.wait_for(len(payloads))
        finally:
            await server.stop()
        assert server.events == events
        assert server.peer_names == ["skyfence-node"]

    asyncio.run(main())


def test_tls_context_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CotError) as err:
        cot.tls_context(certfile=tmp_path / "client.pem", cafile=tmp_path / "ca.pem")
    assert err.value.field == "certfile" and "PEM" in (err.value.fix or "")
    (tmp_path / "client.pem").write_text("not a certificate")
    (tmp_path / "ca.pem").write_text("not a certificate either")
    with pytest.raises(CotError, match="certificates"):
        cot.tls_context(certfile=tmp_path / "client.pem", cafile=tmp_path / "ca.pem")


def test_tracks_without_a_finite_state_are_left_out_or_lose_their_course(
        schema: xmlschema.XMLSchema) -> None:
    x = np.array([[0.0, 0.0, 10.0, 1.0, 1.0, 0.0], [np.nan, 0.0, 10.0, 1.0, 1.0, 0.0],
                  [5.0, 5.0, 10.0, np.inf, 1.0, 0.0]])
    frame = _synthetic_frame(x)
    P = frame.tracks.P.copy()
    P[0, 2, 2] = -1.0  # a broken covariance: the error is unknown, not imaginary
    frame = replace(frame, tracks=replace(frame.tracks, P=P))
    origin = Origin(lat_deg=47.0, lon_deg=8.0, alt_m=400.0)
    first, third = frame_events(frame, origin)
    assert (first.uid, third.uid) == ("skyfence.local.track.1", "skyfence.local.track.3")
    assert first.le_m == cot.UNKNOWN_M and first.course_deg is not None
    assert third.course_deg is None and third.speed_mps is None
    schema.validate(encode_xml(third).decode())
    assert ET.fromstring(encode_xml(third)).find("detail/track") is None
    assert parse_xml(encode_xml(third)) == third
