"""The pcap/pcapng reader: both byte orders, micro- and nanoseconds, pcapng blocks and
options, any chunking, and bad input turned into rejections with offsets."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.adapters.base import Rejected, StreamDecoder, decode_file
from skyfence.adapters.pcap import (
    LINKTYPE_IEEE802_11_RADIOTAP,
    Packet,
    PcapDecoder,
    encode_pcap,
    encode_pcapng,
    parse_capture,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "remoteid"
FRAMES = [(1_700_000_000.0 + i * 0.25, bytes(range(i, i + 10 + 3 * i))) for i in range(6)]
FUZZ = settings(max_examples=200, deadline=None)


def feed_in_chunks(data: bytes, size: int) -> list[Packet | Rejected]:
    d = PcapDecoder()
    out = []
    for i in range(0, len(data), size):
        out += d.feed(data[i:i + size])
    out += d.close()
    assert all(isinstance(x, Packet | Rejected) for x in out)
    return out  # type: ignore[return-value]


def packets(items: Sequence[object]) -> list[Packet]:
    return [x for x in items if isinstance(x, Packet)]


def rejections(items: Sequence[object]) -> list[Rejected]:
    return [x for x in items if isinstance(x, Rejected)]


def test_is_a_stream_decoder() -> None:
    assert isinstance(PcapDecoder(), StreamDecoder)


def test_reads_the_real_capture() -> None:
    d = PcapDecoder()
    out = list(decode_file(d, DATA / "odid_wifi_bcn_sample.pcap", chunk_bytes=97))
    assert len(out) == 21 and not rejections(out)
    first = out[0]
    assert isinstance(first, Packet)
    assert first.linktype == LINKTYPE_IEEE802_11_RADIOTAP
    assert first.t == pytest.approx(1621633931.161999, abs=1e-6)
    assert first.offset == 40 and len(first.data) == 207
    assert d.counters.accepted == 21 and d.counters.bytes_in == 4707


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
@pytest.mark.parametrize("chunk", [1, 5, 64, 10_000])
def test_classic_pcap_both_byte_orders_and_resolutions(big_endian: bool, nanosecond: bool,
                                                        chunk: int) -> None:
    data = encode_pcap(FRAMES, linktype=105, nanosecond=nanosecond, big_endian=big_endian)
    out = feed_in_chunks(data, chunk)
    assert not rejections(out)
    got = packets(out)
    assert [p.data for p in got] == [f for _, f in FRAMES]
    assert [p.t for p in got] == pytest.approx([t for t, _ in FRAMES], abs=1e-9)
    assert all(p.linktype == 105 for p in got)
    assert all(data[p.offset:p.offset + len(p.data)] == p.data for p in got)


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_pcapng_both_byte_orders_with_options(big_endian: bool, chunk: int) -> None:
    data = encode_pcapng(FRAMES, linktype=127, big_endian=big_endian, tsresol=9,
                         comment="options are skipped")
    out = feed_in_chunks(data, chunk)
    assert not rejections(out)
    got = packets(out)
    assert [p.data for p in got] == [f for _, f in FRAMES]
    assert [p.t for p in got] == pytest.approx([t for t, _ in FRAMES], abs=1e-9)
    assert all(p.linktype == 127 for p in got)
    assert all(data[p.offset:p.offset + len(p.data)] == p.data for p in got)


def test_pcapng_simple_packet_blocks_have_no_time() -> None:
    got = packets(parse_capture(encode_pcapng(FRAMES, linktype=105, simple=True)))
    assert [p.data for p in got] == [f for _, f in FRAMES]
    assert all(math.isnan(p.t) for p in got)


def test_pcapng_with_two_sections() -> None:
    data = encode_pcapng(FRAMES[:2], linktype=105) + encode_pcapng(
        FRAMES[2:], linktype=251, big_endian=True)
    got = packets(parse_capture(data))
    assert [p.linktype for p in got] == [105] * 2 + [251] * 4


def test_pcapng_binary_tsresol_and_tsoffset() -> None:
    e = "<"
    shb = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    idb = struct.pack(e + "HHI", 105, 0, 0) + struct.pack(e + "HHB3x", 9, 1, 0x80 | 10)
    idb += struct.pack(e + "HHq", 14, 8, 1000) + struct.pack(e + "HH", 0, 0)
    epb = struct.pack(e + "IIIII", 0, 0, 3 * 1024, 4, 4) + b"abcd"

    def block(btype: int, body: bytes) -> bytes:
        return struct.pack(e + "II", btype, len(body) + 12) + body + struct.pack(
            e + "I", len(body) + 12)

    data = block(0x0A0D0D0A, shb) + block(1, idb) + block(6, epb)
    [p] = parse_capture(data)
    assert isinstance(p, Packet)
    assert p.t == pytest.approx(1003.0) and p.data == b"abcd"


def test_truncated_record_is_rejected_at_close_with_its_offset() -> None:
    data = encode_pcap(FRAMES, linktype=105)
    cut = data[:-5]
    out = feed_in_chunks(cut, 100)
    assert len(packets(out)) == len(FRAMES) - 1
    [r] = rejections(out)
    last_header = len(data) - 16 - len(FRAMES[-1][1])
    assert r.offset == last_header and "truncated" in r.reason
    ng = encode_pcapng(FRAMES, linktype=105)
    [r] = rejections(parse_capture(ng[:-6]))
    assert "truncated" in r.reason


def test_corrupt_record_header_is_rejected_and_the_reader_resynchronises() -> None:
    data = bytearray(encode_pcap(FRAMES, linktype=105))
    second = 24 + 16 + len(FRAMES[0][1])
    data[second + 8:second + 12] = struct.pack("<I", 0x7FFFFFFF)  # absurd captured length
    for chunk in (1, 13, 100_000):
        out = feed_in_chunks(bytes(data), chunk)
        [r] = rejections(out)
        assert r.offset == second and "corrupt pcap record header" in r.reason
        assert [p.data for p in packets(out)] == [f for i, (_, f) in enumerate(FRAMES)
                                                  if i != 1]


def test_corrupt_pcapng_block_is_rejected_and_the_reader_resynchronises() -> None:
    data = bytearray(encode_pcapng(FRAMES, linktype=105))
    shb_len = struct.unpack_from("<I", data, 4)[0]
    idb_len = struct.unpack_from("<I", data, shb_len + 4)[0]
    first_epb = shb_len + idb_len
    data[first_epb + 4:first_epb + 8] = struct.pack("<I", 13)  # not a multiple of 4
    out = parse_capture(bytes(data))
    [r] = rejections(out)
    assert r.offset == first_epb
    assert [p.data for p in packets(out)] == [f for _, f in FRAMES[1:]]


@pytest.mark.parametrize("btype", [1, 2, 3, 6])
def test_too_short_pcapng_blocks_are_rejected(btype: int) -> None:
    data = encode_pcapng(FRAMES[:1], linktype=105)
    short = struct.pack("<III", btype, 12, 12)
    out = parse_capture(data + short + encode_pcapng(FRAMES[1:2], linktype=105))
    [r] = rejections(out)
    assert r.offset == len(data) and "short pcapng block" in r.reason
    assert len(packets(out)) == 2


def test_packet_of_an_undeclared_interface_is_rejected() -> None:
    data = bytearray(encode_pcapng(FRAMES[:1], linktype=105))
    shb_len = struct.unpack_from("<I", data, 4)[0]
    idb_len = struct.unpack_from("<I", data, shb_len + 4)[0]
    struct.pack_into("<I", data, shb_len + idb_len + 8, 3)
    [r] = parse_capture(bytes(data))
    assert isinstance(r, Rejected) and "interface 3" in r.reason


def test_random_bytes_are_one_rejection() -> None:
    out = parse_capture(b"hello, this is not a capture at all" * 10)
    [r] = out
    assert isinstance(r, Rejected) and r.offset == 0 and "not a pcap" in r.reason


def test_junk_before_a_capture_is_skipped() -> None:
    data = b"junk!" * 3 + encode_pcap(FRAMES, linktype=105)
    out = feed_in_chunks(data, 4)
    [r] = rejections(out)
    assert r.offset == 0
    assert len(packets(out)) == len(FRAMES)
    assert packets(out)[0].offset == 15 + 24 + 16


def test_empty_and_short_input() -> None:
    assert parse_capture(b"") == []
    [r] = parse_capture(b"\xd4\xc3\xb2\xa1\x02\x00")
    assert isinstance(r, Rejected) and "truncated" in r.reason


@FUZZ
@given(st.binary(max_size=400), st.integers(1, 64), st.booleans())
def test_never_raises_and_offsets_stay_in_the_stream(junk: bytes, chunk: int, ng: bool
                                                     ) -> None:
    good = encode_pcapng(FRAMES, linktype=105) if ng else encode_pcap(FRAMES, linktype=105)
    for data in (junk, good[:24] + junk, good[:len(junk) % len(good)] + junk):
        for item in feed_in_chunks(data, chunk):
            assert 0 <= item.offset <= len(data)
            if isinstance(item, Packet):
                assert data[item.offset:item.offset + len(item.data)] == item.data


@FUZZ
@given(st.data())
def test_one_flipped_byte_never_raises(data: st.DataObject) -> None:
    good = bytearray(encode_pcap(FRAMES, linktype=105))
    i = data.draw(st.integers(0, len(good) - 1))
    good[i] ^= data.draw(st.integers(1, 255))
    out = parse_capture(bytes(good))
    assert len(packets(out)) >= len(FRAMES) - 2 or i < 24
