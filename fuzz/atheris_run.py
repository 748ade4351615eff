"""Coverage-guided fuzzing of every input parser with atheris (libFuzzer).

``python fuzz/atheris_run.py TARGET [libFuzzer flags]``, e.g.
``python fuzz/atheris_run.py beast -max_total_time=300`` for five minutes of one
parser; ``tests/test_fuzz_atheris.py`` runs each target for a few seconds in CI.
Each input is split into chunks at the positions its first byte chooses and fed
through a fresh stream decoder, then closed; any exception is a crash (a
``SkyfenceError`` too: a decoder reports bad input as rejections, it never raises).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports():
    from skyfence.geo import Origin
    from skyfence.ingest import FORMATS, make_decoder
    from skyfence.scenario import Scenario, SensorSpec

SCENARIO = Scenario(name="fuzz", origin=Origin(47.0, 8.0, 500.0), sensors=(
    SensorSpec(id="pos", kind="position", position_enu_m=(0.0, 0.0, 0.0), pd=0.9,
               noise_std=(3.0, 3.0, 5.0)),
    SensorSpec(id="r3", kind="radar", position_enu_m=(0.0, 0.0, 10.0), pd=0.9,
               noise_std=(5.0, 0.003, 0.004)),
))


#: Options a format's decoder needs (a partner's picture names its sender).
OPTIONS = {"skyfence-picture": {"partner": "fuzz", "recipient": "node"}}
#: Formats whose every ``feed`` is one whole message (NATS delivers messages, not a
#: byte stream): fed whole, as well as in pieces.
WHOLE = {"skyfence-picture"}


def target(fmt: str) -> Callable[[bytes], None]:
    def one(data: bytes) -> None:
        decoder = make_decoder(fmt, SCENARIO, OPTIONS.get(fmt))
        if fmt in WHOLE:
            decoder.feed(data)
        step = (data[0] % 61 + 1) if data else 1
        for k in range(1, len(data), step):
            decoder.feed(data[k:k + step])
        decoder.close()

    return one


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in FORMATS:
        sys.exit(f"usage: atheris_run.py TARGET [libFuzzer flags]; targets: {', '.join(FORMATS)}")
    fmt = sys.argv.pop(1)
    atheris.Setup(sys.argv, target(fmt))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
