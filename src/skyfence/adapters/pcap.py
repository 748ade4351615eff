"""pcap and pcapng captures without libpcap: a stream decoder over bytes and writers.

``PcapDecoder`` takes a capture's bytes in any chunking and gives ``Packet`` records
(the captured bytes of one frame, its link type and capture time) and ``Rejected``
records; it reads classic pcap in either byte order with micro- or nanosecond
timestamps, and pcapng sections of either byte order (section header, interface
description with ``if_tsresol``/``if_tsoffset``, enhanced, simple and the obsolete
packet blocks; other blocks and all options skipped). A corrupt record header is
rejected at its offset and the decoder resynchronises on the next header that looks
sound (and is followed by another one); a record cut short by the end of the
stream is rejected by ``close``.

``encode_pcap`` and ``encode_pcapng`` write captures (for tests and for exporting).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from skyfence.adapters.base import Counters, Message, Rejected

LINKTYPE_IEEE802_11 = 105
LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_BLUETOOTH_LE_LL = 251
LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR = 256

#: A record longer than this is taken for a corrupt header (libpcap's own limit).
MAX_RECORD_BYTES = 262_144
#: While resynchronising, a record header whose time is further than this from the last
#: good one is not believed.
RESYNC_WINDOW_S = 86_400.0

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e6), b"\xa1\xb2\xc3\xd4": (">", 1e6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9), b"\xa1\xb2\x3c\x4d": (">", 1e9),
}
_SHB = 0x0A0D0D0A
_SHB_BYTES = b"\x0a\x0d\x0d\x0a"
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_IDB, _PB, _SPB, _NRB, _ISB, _EPB = 1, 2, 3, 4, 5, 6
_MIN_BLOCK_BYTES = {_SHB: 28, _IDB: 20, _PB: 32, _SPB: 16, _EPB: 32}
_KNOWN_BLOCKS = {_SHB, _IDB, _PB, _SPB, _NRB, _ISB, _EPB, 0x7, 0x8, 0x9, 0xA, 0xB,
                 0x80000001, 0x00000BAD, 0x40000BAD}


@dataclass(frozen=True, slots=True)
class Packet:
    """One captured frame: ``offset`` of its first byte in the stream, capture time ``t``
    (s since the Unix epoch; NaN for a pcapng simple packet block), ``linktype``
    (LINKTYPE_* number), the captured ``data`` and the ``orig_len`` on the wire."""

    offset: int
    t: float
    linktype: int
    data: bytes
    orig_len: int
    interface: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"type": "packet", "offset": self.offset,
                "t": None if math.isnan(self.t) else self.t, "linktype": self.linktype,
                "interface": self.interface, "len": len(self.data),
                "orig_len": self.orig_len}


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    ticks_per_s: int = 10**6
    ts_offset_s: float = 0.0


@dataclass(slots=True)
class PcapDecoder:
    """Capture bytes in, ``Packet`` and ``Rejected`` out (a ``StreamDecoder``)."""

    counters: Counters = field(default_factory=Counters)
    _buf: bytearray = field(default_factory=bytearray)
    _base: int = 0  # stream offset of _buf[0]
    _kind: str = ""  # "", "pcap", "pcapng", or "junk" (no header found yet)
    _endian: str = "<"
    _ticks_per_s: float = 1e6
    _linktype: int = 0
    _snaplen: int = MAX_RECORD_BYTES
    _interfaces: list[_Interface] = field(default_factory=list)
    _last_t: float = math.nan
    _resyncing: bool = False

    def feed(self, data: bytes) -> list[Message | Rejected]:
        self.counters.bytes_in += len(data)
        self._buf += data
        return self._run(final=False)

    def close(self) -> list[Message | Rejected]:
        out = self._run(final=True)
        if self._buf:
            if not self._resyncing and self._kind != "junk":  # junk was reported already
                out.append(self._reject(0, f"truncated {self._kind or 'capture'} record: "
                                           f"{len(self._buf)} bytes left at the end"))
            self._base += len(self._buf)
            self._buf.clear()
        return out

    # --- driving ----------------------------------------------------------------

    def _reject(self, pos: int, reason: str) -> Rejected:
        self.counters.reject(reason)
        return Rejected(self._base + pos, reason, bytes(self._buf[pos:pos + 32]))

    def _run(self, *, final: bool) -> list[Message | Rejected]:
        out: list[Message | Rejected] = []
        pos = 0
        while True:
            if self._kind in ("", "junk"):
                step = self._start(pos, final, out)
            elif self._kind == "pcap":
                step = self._pcap_record(pos, final, out)
            else:
                step = self._pcapng_block(pos, final, out)
            if step is None:
                break
            pos = step
        del self._buf[:pos]
        self._base += pos
        return out

    def _start(self, pos: int, final: bool, out: list[Message | Rejected]) -> int | None:
        buf = self._buf
        magic = bytes(buf[pos:pos + 4])
        if len(magic) < 4 or (magic in _PCAP_MAGICS and len(buf) - pos < 24) or (
                magic == _SHB_BYTES and len(buf) - pos < 12):
            return None  # wait for the rest of the header; close() reports a short one
        if magic in _PCAP_MAGICS:
            self._endian, self._ticks_per_s = _PCAP_MAGICS[magic]
            _, _, _, _, snaplen, network = struct.unpack_from(self._endian + "HHiIII", buf,
                                                              pos + 4)
            self._snaplen = snaplen or MAX_RECORD_BYTES
            self._linktype = network & 0xFFFF  # the upper bits carry FCS information
            self._kind, self._resyncing = "pcap", False
            return pos + 24
        if magic == _SHB_BYTES:
            self._kind, self._resyncing = "pcapng", False
            return pos
        if self._kind == "":
            out.append(self._reject(pos, "not a pcap or pcapng capture: unknown magic "
                                         + magic.hex()))
            self._kind = "junk"
        # Look for a header further on; keep the last 3 bytes, a magic may straddle chunks.
        hits = [i for i in (buf.find(m, pos + 1) for m in (*_PCAP_MAGICS, _SHB_BYTES))
                if i >= 0]
        if hits:
            return min(hits)
        if final:
            return len(buf)
        return max(pos, len(buf) - 3) if len(buf) - 3 > pos else None

    # --- classic pcap -----------------------------------------------------------

    def _pcap_header_ok(self, pos: int) -> int | None:
        """End of the record whose header is at ``pos`` if the header is sound."""
        sec, frac, incl, orig = struct.unpack_from(self._endian + "IIII", self._buf, pos)
        if incl > max(self._snaplen, MAX_RECORD_BYTES) or incl > orig + 4 or \
                orig > 0x10000000 or frac >= self._ticks_per_s:
            return None
        if self._resyncing and not math.isnan(self._last_t) and \
                abs(sec - self._last_t) > RESYNC_WINDOW_S:
            return None
        return pos + 16 + int(incl)

    def _pcap_record(self, pos: int, final: bool, out: list[Message | Rejected]
                     ) -> int | None:
        buf = self._buf
        if len(buf) - pos < 16:
            return None
        end = self._pcap_header_ok(pos)
        if end is not None and self._resyncing:
            # A candidate found while resynchronising must be followed by another sound
            # header, or end exactly where the stream does.
            if end + 16 <= len(buf):
                if self._pcap_header_ok(end) is None:
                    end = None
            elif not final:
                return None
            elif end != len(buf):
                end = None
        if end is None:
            if not self._resyncing:
                _, _, incl, orig = struct.unpack_from(self._endian + "IIII", buf, pos)
                out.append(self._reject(pos, f"corrupt pcap record header: captured length "
                                             f"{incl}, original {orig}"))
                self._resyncing = True
            return pos + 1
        if end > len(buf):
            return None
        self._resyncing = False
        sec, frac, _, orig = struct.unpack_from(self._endian + "IIII", buf, pos)
        t = sec + frac / self._ticks_per_s  # one rounding: exact for whole ticks
        self._last_t = t
        self.counters.accepted += 1
        out.append(Packet(self._base + pos + 16, t, self._linktype,
                          bytes(buf[pos + 16:end]), orig))
        return end

    # --- pcapng -----------------------------------------------------------------

    def _block_ok(self, pos: int, endian: str) -> int | None:
        """End of the block at ``pos`` if its header and trailer agree."""
        buf = self._buf
        btype, blen = struct.unpack_from(endian + "II", buf, pos)
        if blen < 12 or blen % 4 or blen > MAX_RECORD_BYTES + 64:
            return None
        if self._resyncing and btype not in _KNOWN_BLOCKS:
            return None
        if pos + blen > len(buf):
            return pos + int(blen)  # cannot check the trailer yet
        (trailer,) = struct.unpack_from(endian + "I", buf, pos + blen - 4)
        return pos + int(blen) if trailer == blen else None

    def _pcapng_block(self, pos: int, final: bool, out: list[Message | Rejected]
                      ) -> int | None:
        buf = self._buf
        if len(buf) - pos < 12:
            return None
        endian = self._endian
        if bytes(buf[pos:pos + 4]) == _SHB_BYTES:
            (bom,) = struct.unpack_from("<I", buf, pos + 8)
            if bom == _BYTE_ORDER_MAGIC:
                endian = "<"
            elif bom == 0x4D3C2B1A:
                endian = ">"
            else:
                return self._ng_corrupt(pos, "pcapng section header with a bad byte-order "
                                             "magic", out)
        end = self._block_ok(pos, endian)
        if end is None:
            return self._ng_corrupt(pos, "corrupt pcapng block header", out)
        if end > len(buf):
            return None
        self._resyncing = False
        btype = struct.unpack_from(endian + "I", buf, pos)[0]
        body = pos + 8
        blen = end - pos
        if blen < _MIN_BLOCK_BYTES.get(btype, 12):
            out.append(self._reject(pos, f"short pcapng block: type {btype:#x} of {blen} bytes"))
            return end
        if btype == _SHB:
            self._endian = endian
            self._interfaces = []
        elif btype == _IDB:
            self._interfaces.append(self._idb(body, end - 4))
        elif btype in (_EPB, _PB, _SPB):
            rec = self._packet_block(btype, pos, body, blen)
            out.append(rec)
            if isinstance(rec, Packet):
                self.counters.accepted += 1
        return end

    def _ng_corrupt(self, pos: int, reason: str, out: list[Message | Rejected]) -> int:
        if not self._resyncing:
            out.append(self._reject(pos, reason))
            self._resyncing = True
        return pos + 4

    def _idb(self, body: int, end: int) -> _Interface:
        e = self._endian
        linktype, _, snaplen = struct.unpack_from(e + "HHI", self._buf, body)
        iface = _Interface(linktype, snaplen or MAX_RECORD_BYTES)
        for code, value in _options(self._buf, body + 8, end, e):
            if code == 9 and value:  # if_tsresol: 10^-n, or 2^-n with the top bit set
                r = value[0]
                iface.ticks_per_s = 2 ** (r & 0x7F) if r & 0x80 else 10**r
            elif code == 14 and len(value) == 8:  # if_tsoffset, seconds
                iface.ts_offset_s = float(struct.unpack(e + "q", value)[0])
        return iface

    def _packet_block(self, btype: int, pos: int, body: int, blen: int) -> Packet | Rejected:
        e, buf = self._endian, self._buf
        if btype == _SPB:
            (orig,) = struct.unpack_from(e + "I", buf, body)
            iface_id, t, start = 0, math.nan, body + 4
            caplen = min(orig, blen - 16)
        else:
            if btype == _EPB:
                iface_id, hi, lo, caplen, orig = struct.unpack_from(e + "IIIII", buf, body)
            else:
                iface_id, _, hi, lo, caplen, orig = struct.unpack_from(e + "HHIIII", buf, body)
            start = body + 20
            t = math.nan
            if caplen > blen - 32:
                return self._reject(pos, f"bad pcapng packet length: {caplen} overruns a "
                                         f"block of {blen} bytes")
        if iface_id >= len(self._interfaces):
            return self._reject(pos, f"unknown pcapng interface: packet names interface "
                                     f"{iface_id}, which no description block declared")
        iface = self._interfaces[iface_id]
        if btype != _SPB:
            sec, frac = divmod((hi << 32) | lo, iface.ticks_per_s)  # exact past 2**53
            t = sec + frac / iface.ticks_per_s + iface.ts_offset_s
            self._last_t = t
        else:
            caplen = min(caplen, iface.snaplen)
        return Packet(self._base + start, t, iface.linktype, bytes(buf[start:start + caplen]),
                      orig, iface_id)


def _options(buf: bytearray, pos: int, end: int, endian: str
             ) -> Iterable[tuple[int, bytes]]:
    while pos + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", buf, pos)
        if code == 0:
            return
        value = bytes(buf[pos + 4:pos + 4 + length])
        pos += 4 + length + (-length % 4)
        if pos > end:
            return
        yield code, value


def parse_capture(data: bytes) -> list[Message | Rejected]:
    """A whole capture in memory → its packets and rejections."""
    d = PcapDecoder()
    return d.feed(data) + d.close()


# --- writers -----------------------------------------------------------------------

def encode_pcap(packets: Iterable[tuple[float, bytes]], *, linktype: int,
                nanosecond: bool = False, big_endian: bool = False,
                snaplen: int = 65535) -> bytes:
    """(time s since the epoch, frame bytes) pairs → a classic pcap file."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    scale = 10**9 if nanosecond else 10**6
    parts = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for t, data in packets:
        ticks = _ticks(t, scale)
        parts.append(struct.pack(e + "IIII", ticks // scale, ticks % scale, len(data),
                                 len(data)))
        parts.append(data)
    return b"".join(parts)


def _ticks(t: float, per_s: int) -> int:
    # Whole seconds apart: t * per_s alone would lose the fraction beyond 2**53.
    sec = math.floor(t)
    return sec * per_s + round((t - sec) * per_s)


def _block(e: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def encode_pcapng(packets: Iterable[tuple[float, bytes]], *, linktype: int,
                  big_endian: bool = False, tsresol: int = 6, simple: bool = False,
                  comment: str = "") -> bytes:
    """(time, frame) pairs → a pcapng section with one interface (``if_tsresol`` 10^-tsresol
    s) of enhanced packet blocks, or simple packet blocks (no time) when ``simple``."""
    e = ">" if big_endian else "<"
    opts = b""
    if comment:  # an opt_comment, so that readers are seen to skip options
        c = comment.encode()
        opts = struct.pack(e + "HH", 1, len(c)) + c + b"\0" * (-len(c) % 4)
        opts += struct.pack(e + "HH", 0, 0)
    shb = struct.pack(e + "IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + opts
    idb = struct.pack(e + "HHI", linktype, 0, 0) + struct.pack(e + "HHB3x", 9, 1, tsresol)
    idb += struct.pack(e + "HH", 0, 0)
    parts = [_block(e, _SHB, shb), _block(e, _IDB, idb)]
    for t, data in packets:
        if simple:
            parts.append(_block(e, _SPB, struct.pack(e + "I", len(data)) + data))
            continue
        ticks = _ticks(t, 10**tsresol)
        body = struct.pack(e + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                           len(data)) + data + b"\0" * (-len(data) % 4) + opts
        parts.append(_block(e, _EPB, body))
    return b"".join(parts)
