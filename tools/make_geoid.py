"""Build ``src/skyfence/data/egm96.npz``, the EGM96 geoid grid skyfence ships.

Source: ``/usr/share/proj/egm96_15.gtx`` from the Debian package ``proj-data``
(built and checked with version 9.1.1-1, Debian bookworm). It is EGM96, the
Earth Gravitational Model 1996 of the US National Geospatial-Intelligence
Agency (NGA), sampled on a 15-arc-minute grid; EGM96 is NGA public-domain data.
Fetch it without installing anything::

    cd /tmp && apt-get download proj-data && dpkg -x proj-data_*.deb /tmp/projdata
    python tools/make_geoid.py /tmp/projdata/usr/share/proj/egm96_15.gtx

GTX layout: a 40-byte big-endian header of four float64 (lower-left latitude,
lower-left longitude, latitude step, longitude step; degrees) and two int32
(rows, columns), then rows × columns big-endian float32 geoid heights in metres,
row 0 at the southern edge.

Output: a zip of ``.npy`` members, readable by ``numpy.load``:

- ``n_cm``: (rows, cols) int16, geoid height N in centimetres, row 0 south;
- ``lat0_deg``, ``lon0_deg``, ``dlat_deg``, ``dlon_deg``: float64 scalars, the
  grid origin (south-west node) and steps;
- ``source``: provenance text.

Centimetres in int16 because EGM96 spans about −107…+86 m (well inside ±327 m)
and 5 mm of rounding is far below the grid's own interpolation error; the
native 15' resolution is kept since the result is about 1.7 MB.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_REPO = Path(__file__).resolve().parents[1]
DEFAULT_GTX = Path("/usr/share/proj/egm96_15.gtx")
DEFAULT_OUT = _REPO / "src" / "skyfence" / "data" / "egm96.npz"
SOURCE = (
    "EGM96 geoid heights (NGA, public domain), 15-arc-minute grid, from egm96_15.gtx "
    "in Debian proj-data 9.1.1-1; centimetres, int16; built by tools/make_geoid.py"
)
# A fixed member timestamp so that rebuilding from the same .gtx gives identical bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def read_gtx(path: Path) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
    """Read a GTX grid: (header (4,) float64 degrees, heights (rows, cols) float32 metres)."""
    raw = path.read_bytes()
    if len(raw) < 40:
        raise SystemExit(f"{path}: {len(raw)} bytes is too short for a GTX header")
    header = np.frombuffer(raw[:32], dtype=">f8").astype(np.float64)
    rows, cols = (int(v) for v in np.frombuffer(raw[32:40], dtype=">i4"))
    if len(raw) != 40 + 4 * rows * cols:
        raise SystemExit(
            f"{path}: {len(raw)} bytes, but a {rows}×{cols} float32 GTX grid needs "
            f"{40 + 4 * rows * cols}"
        )
    heights = np.frombuffer(raw[40:], dtype=">f4").reshape(rows, cols).astype(np.float32)
    return header, heights


def check_global(header: NDArray[np.float64], heights: NDArray[np.float32]) -> None:
    """Refuse a grid that is not pole-to-pole and once round the globe with no repeat column.

    skyfence.geoid relies on exactly this layout when it wraps longitudes.
    """
    lat0, _, dlat, dlon = (float(v) for v in header)
    rows, cols = heights.shape
    if lat0 != -90.0 or not np.isclose(lat0 + (rows - 1) * dlat, 90.0):
        raise SystemExit(f"grid rows span {lat0}..{lat0 + (rows - 1) * dlat}°, not -90..90°")
    if not np.isclose(cols * dlon, 360.0):
        raise SystemExit(f"grid columns span {cols * dlon}°, not one turn of 360°")
    if not np.all(np.isfinite(heights)):
        raise SystemExit("grid holds non-finite heights")
    if np.abs(heights).max() > 300.0:
        raise SystemExit(f"grid heights reach {np.abs(heights).max():.1f} m: not a geoid in m")


def write_npz(path: Path, arrays: dict[str, NDArray[np.generic]]) -> None:
    """Write ``arrays`` as a deflated ``.npz`` with fixed timestamps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gtx", nargs="?", type=Path, default=DEFAULT_GTX, help="egm96_15.gtx")
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help="npz to write")
    args = parser.parse_args(argv)

    header, heights = read_gtx(args.gtx)
    check_global(header, heights)
    n_cm = np.round(heights.astype(np.float64) * 100.0).astype(np.int16)
    write_npz(
        args.out,
        {
            "n_cm": n_cm,
            "lat0_deg": np.array(header[0], dtype=np.float64),
            "lon0_deg": np.array(header[1], dtype=np.float64),
            "dlat_deg": np.array(header[2], dtype=np.float64),
            "dlon_deg": np.array(header[3], dtype=np.float64),
            "source": np.array(SOURCE),
        },
    )
    rounding_m = np.abs(n_cm / 100.0 - heights.astype(np.float64)).max()
    print(
        f"{args.out}: {args.out.stat().st_size} bytes, {n_cm.shape[0]}×{n_cm.shape[1]} nodes, "
        f"N {heights.min():.3f}..{heights.max():.3f} m, rounding ≤ {rounding_m * 1000:.1f} mm"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
