"""The federation message: the picture round-trips between two frames; every bad
message — forged, replayed, reordered, oversize, outside the sender's area, not a
covariance — is refused whole with its reason; field-level release holds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence import sim
from skyfence.errors import InputError
from skyfence.federation.codec import (
    MAGIC,
    ROW_BYTES,
    FieldPolicy,
    PartnerPicture,
    PictureDecoder,
    encode_picture,
)
from skyfence.geo import Origin
from skyfence.node.config import load_config
from skyfence.picture import Frame, Picture
from skyfence.pipeline import batch_bounds
from skyfence.scenario import SensorSpec
from skyfence.track import Tracker


@pytest.fixture(scope="module")
def frames() -> tuple[Origin, list[Frame]]:
    r = sim.build("spread", n_targets=10, seed=1, duration_s=15.0)
    tracker, picture = Tracker.from_scenario(r.scenario), Picture.for_scenario(r.scenario)
    out = []
    for a, b in zip(*batch_bounds(r.detections.t), strict=True):
        out.append(picture.update(tracker.step(r.detections.take(slice(a, b)))))
    return r.scenario.origin, out


def _decode(payload: bytes, **kw: object) -> PartnerPicture:
    (msg,) = PictureDecoder(partner="police", **kw).feed(payload)  # type: ignore[arg-type]
    assert isinstance(msg, PartnerPicture), msg
    return msg


def test_a_picture_round_trips_into_another_frame(frames: tuple[Origin, list[Frame]]) -> None:
    origin, fr = frames
    frame = fr[-1]
    payload = encode_picture(frame, origin, sender="police", recipient="army", node="hq")
    msg = _decode(payload, recipient="army")
    shown = frame.tracks.status != 0
    assert msg.id.tolist() == frame.tracks.id[shown].tolist() and len(msg.id) >= 8
    # Into a frame 4 km away and 50 m higher: the same places on the earth, the same
    # covariances seen in rotated axes (eigenvalues kept).
    there = Origin(origin.lat_deg + 0.02, origin.lon_deg + 0.03, origin.alt_m + 50.0)
    spec = SensorSpec(id="fed-police", kind="track", position_enu_m=(0.0, 0.0, 0.0), pd=1.0,
                      noise_std=(math.nan, math.nan, math.nan))
    from skyfence.scenario import Scenario

    det = msg.detections(Scenario(name="army", origin=there, sensors=(spec,)), 0)
    back = origin.ecef_to_enu(there.enu_to_ecef(det.z))
    assert np.allclose(back, frame.tracks.x[shown, :3], atol=1e-6)
    v_back = det.reported.x[:, 3:6] @ there.rotation @ origin.rotation.T  # type: ignore[union-attr]
    assert np.allclose(v_back, frame.tracks.x[shown, 3:6], atol=1e-9)
    assert np.allclose(np.linalg.eigvalsh(det.reported.P),  # type: ignore[union-attr]
                       np.linalg.eigvalsh(frame.tracks.P[shown, :6, :6]), rtol=1e-6)
    assert det.reported.ref[0] == f"police:{msg.id[0]}"  # type: ignore[union-attr]


def test_field_policy_snaps_positions_and_drops_identities(
        frames: tuple[Origin, list[Frame]]) -> None:
    origin, fr = frames
    frame = fr[-1]
    plain = _decode(encode_picture(frame, origin, sender="police", recipient="army", node="n"))
    coarse = _decode(encode_picture(frame, origin, sender="police", recipient="army", node="n",
                                    policy=FieldPolicy(round_m=1000.0, identity=False)))
    moved = np.linalg.norm(coarse.x[:, :3] - plain.x[:, :3], axis=1)
    assert moved.max() <= 1000.0 * math.sqrt(3) and moved.mean() > 50.0
    from skyfence.geo import ecef_to_geodetic

    lat, _, _ = ecef_to_geodetic(coarse.x[:, :3])
    cell = math.degrees(1000.0 / 6_371_000.0)
    assert np.allclose(lat / cell, np.round(lat / cell), atol=1e-6)
    assert (coarse.identity == "").all()
    grown = coarse.P[:, 0, 0] - plain.P[:, 0, 0]
    assert np.allclose(grown, 1000.0**2 / 12.0)


def _v1(payload: bytes) -> dict[str, object]:
    """A version 2 message as the version 1 (all JSON) body of the same picture."""
    msg = _decode(payload)
    iu = np.triu_indices(6)
    return {"v": 1, "from": msg.sender, "to": msg.recipient, "node": msg.node, "t": msg.t,
            "tracks": {"id": msg.id.tolist(), "x": msg.x.tolist(),
                       "P": msg.P[:, iu[0], iu[1]].tolist(), "class": msg.klass.tolist(),
                       "identity": msg.identity.tolist()}}


def test_version_1_json_is_still_read(frames: tuple[Origin, list[Frame]]) -> None:
    origin, fr = frames
    payload = encode_picture(fr[-1], origin, sender="police", recipient="army", node="hq")
    assert payload.startswith(MAGIC)
    new, old = _decode(payload), _decode(json.dumps(_v1(payload)).encode())
    assert old.id.tolist() == new.id.tolist() and old.t == new.t and old.node == "hq"
    assert np.array_equal(old.x, new.x) and np.array_equal(old.P, new.P)
    assert old.klass.tolist() == new.klass.tolist()


def test_bad_messages_are_refused_with_their_reason(
        frames: tuple[Origin, list[Frame]]) -> None:
    origin, fr = frames
    good = [encode_picture(f, origin, sender="police", recipient="army", node="n")
            for f in fr[-3:]]
    dec = PictureDecoder(partner="police", recipient="army", max_message_bytes=1 << 20)
    frame = fr[-2]
    forged = encode_picture(frame, origin, sender="airport", recipient="army", node="n")
    wrong_to = encode_picture(frame, origin, sender="police", recipient="navy", node="n")
    # The first covariance's upper triangle zeroed (its 21 numbers follow ids and states).
    n = int((frame.tracks.status != 0).sum())
    p0 = len(good[1]) - n * ROW_BYTES + 56 * n
    notpd = good[1][:p0] + bytes(21 * 8) + good[1][p0 + 21 * 8:]
    nan_x = good[1][:p0 - 48 * n] + np.float64(np.nan).tobytes() + good[1][p0 - 48 * n + 8:]
    body = _v1(good[1])
    v1_forged = json.dumps({**body, "from": "airport"}).encode()
    v1_notpd = json.loads(json.dumps(body))
    v1_notpd["tracks"]["P"][0] = [0.0] * 21
    v1_nan = json.dumps(body).encode().replace(b'"t":', b'"t":NaN,"x":', 1)
    future = good[1][:4] + bytes([9]) + good[1][5:]
    cases = [
        (forged, "forged sender"),
        (wrong_to, "wrong recipient"),
        (notpd, "not positive definite"),
        (nan_x, "not finite"),
        (good[1][:-1], "truncated"),
        (good[1] + b"\x00", "bad size"),
        (good[1][:7], "truncated"),
        (future, "unknown version 9"),
        (v1_forged, "forged sender"),
        (json.dumps(v1_notpd).encode(), "not positive definite"),
        (b"\x00\xff not json", "not a picture message"),
        (b"", "not a picture message"),
        (b"[1, 2]", "not a version 1"),
        (v1_nan, "not JSON"),
        (b" " * (1 << 20) + b"{}", "oversize"),
    ]
    for payload, reason in cases:
        (rej,) = dec.feed(payload)
        assert not isinstance(rej, PartnerPicture) and reason in rej.reason, (reason, rej)
    # The good ones still go through, in order; a replay, and one older, do not.
    assert isinstance(dec.feed(good[1])[0], PartnerPicture)
    assert "replayed or reordered" in dec.feed(good[1])[0].reason  # type: ignore[union-attr]
    assert "replayed or reordered" in dec.feed(good[0])[0].reason  # type: ignore[union-attr]
    assert isinstance(dec.feed(good[2])[0], PartnerPicture)
    assert dec.counters["accepted"] == 2 and dec.counters["forged sender"] == 2


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_damaged_message_is_refused_never_raises(frames: tuple[Origin, list[Frame]],
                                                   data: st.DataObject) -> None:
    """Cut anywhere, bytes overwritten anywhere (headers, lengths, arrays): one
    Rejected with a reason, or (a flip inside a number) a picture; never an exception."""
    origin, fr = frames
    good = encode_picture(fr[-1], origin, sender="police", recipient="army", node="n")
    cut = data.draw(st.integers(0, len(good)))
    payload = bytearray(good[:cut])
    flips = data.draw(st.integers(0, 4))
    for _ in range(flips):
        if payload:
            at = data.draw(st.integers(0, len(payload) - 1))
            payload[at] = data.draw(st.integers(0, 255))
    out = PictureDecoder(partner="police", recipient="army").feed(bytes(payload))
    assert len(out) == 1
    if not isinstance(out[0], PartnerPicture):
        assert out[0].reason
    if cut < len(good) and not flips:
        assert not isinstance(out[0], PartnerPicture)


def test_identities_travel_unless_withheld(frames: tuple[Origin, list[Frame]]) -> None:
    from dataclasses import replace

    origin, fr = frames
    frame = fr[-1]
    ident = np.full(len(frame.tracks), "", dtype="<U12")
    ident[::3] = [f"RID-Ü{k}" for k in range(len(ident[::3]))]
    frame = replace(frame, tracks=replace(frame.tracks, identity=ident))
    shown = frame.tracks.status != 0
    got = _decode(encode_picture(frame, origin, sender="police", recipient="army", node="n"))
    assert got.identity.tolist() == ident[shown].tolist() and (got.identity != "").any()
    hidden = _decode(encode_picture(frame, origin, sender="police", recipient="army",
                                    node="n", policy=FieldPolicy(identity=False)))
    assert (hidden.identity == "").all()


def test_tracks_outside_the_senders_area_are_refused(
        frames: tuple[Origin, list[Frame]]) -> None:
    origin, fr = frames
    payload = encode_picture(fr[-1], origin, sender="police", recipient="army", node="n")
    lat, lon = origin.lat_deg, origin.lon_deg
    inside = {"lat_min": lat - 0.5, "lat_max": lat + 0.5, "lon_min": lon - 0.5,
              "lon_max": lon + 0.5}
    assert isinstance(_decode(payload, area=inside), PartnerPicture)
    north = {**inside, "lat_min": lat + 0.01}
    (rej,) = PictureDecoder(partner="police", area=north).feed(payload)
    assert "outside the sender's area" in rej.reason  # type: ignore[union-attr]
    with pytest.raises(InputError, match="area"):
        PictureDecoder(partner="police", area={"lat_min": 1})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.builds(lambda b: MAGIC + b, st.binary(max_size=200))
       | st.builds(
    lambda d: json.dumps(d).encode(),
    st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(
                     st.sampled_from(["v", "from", "to", "t", "tracks", "id", "x", "P",
                                      "class", "identity"]), c, max_size=6),
                 max_leaves=30)))
def test_the_decoder_never_raises(data: bytes) -> None:
    out = PictureDecoder(partner="police").feed(data)
    assert len(out) == 1


FED = """
[node]
name = "army-hq"
origin = { lat_deg = 47.45, lon_deg = 8.56, alt_m = 420.0 }

[[partners]]
id = "army"

[[partners]]
id = "police"

[[sensors]]
id = "radar1"
kind = "radar"
position_enu_m = [0.0, 0.0, 12.0]
pd = 0.9
noise_std = { range_m = 8.0, azimuth_rad = 0.003, elevation_rad = 0.005 }
release = ["police"]

[federation]
url = "nats://127.0.0.1:4222"
password_env = "SKYFENCE_TEST_NATS_PASSWORD"

[[federation.send]]
to = "police"
round_m = 500.0
identity = false

[[federation.receive]]
from = "police"
area = { lat_min = 47.0, lat_max = 48.0, lon_min = 8.0, lon_max = 9.0 }
"""


def test_federation_in_node_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYFENCE_TEST_NATS_PASSWORD", "s3cret")
    (tmp_path / "node.toml").write_text(FED)
    cfg = load_config(tmp_path / "node.toml")
    fed = cfg.federation
    assert fed is not None and (fed.partner, fed.user, fed.password) == ("army", "army", "s3cret")
    (send,) = fed.send
    assert send.to == "police" and send.policy == FieldPolicy(round_m=500.0, identity=False)
    assert len(fed.receive) == 1
    # police's feed is a track sensor of this node, owned by army, released to nobody.
    fed_sensor = cfg.scenario.sensors[-1]
    assert fed_sensor.id == "fed-police" and fed_sensor.kind == "track"
    assert cfg.release is not None and cfg.release.released_to("fed-police") == {"army"}
    (src,) = [s for s in cfg.sources if s.transport == "nats"]
    assert src.source.format == "skyfence-picture"
    assert src.source.options["partner"] == "police" and "area" in src.source.options


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ('url = "nats://', 'url = "http://', "federation.url", "nats://host:4222"),
    ('to = "police"', 'to = "navy"', "federation.send[0].to", "[[partners]]"),
    ('to = "police"', 'to = "army"', "federation.send[0].to", "[[partners]]"),
    ('from = "police"', 'from = "army"', "federation.receive[0].from", "does not hear"),
    ('from = "police"', 'from = "Police HQ"', "federation.receive[0].from", "a-z"),
    ("lat_min = 47.0, ", "", "federation.receive[0].area", "lat_min"),
    ("round_m = 500.0", "round_m = -1.0", "federation.send[0].round_m", "round_m in"),
    ('password_env = "SKYFENCE_TEST_NATS_PASSWORD"', 'password_env = "NOPE_NOT_SET"',
     "federation.password_env", "export NOPE_NOT_SET"),
])
def test_bad_federation_keys_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       old: str, new: str, key: str, fix: str) -> None:
    monkeypatch.setenv("SKYFENCE_TEST_NATS_PASSWORD", "s3cret")
    assert old in FED
    (tmp_path / "node.toml").write_text(FED.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "node.toml")
    assert key in str(err.value) and fix in str(err.value), str(err.value)
