"""Regenerate the SAPIENT (BSI Flex 335 v2.0) protobuf modules skyfence ships.

Input: the ``.proto`` files in ``src/skyfence/adapters/sapient/proto/`` (see
``PROVENANCE.md`` there). Output, beside them: ``*_pb2.py`` and ``*_pb2.pyi``, which
are committed, so nothing is compiled on a user's machine.

The compiler is the one inside ``grpcio-tools``; its version must match the pinned
``protobuf`` runtime (``grpcio-tools==1.85.1`` carries protoc 35.1, whose Python
code is stamped 7.35.1 and imports under ``protobuf==7.35.1``), because the
generated modules refuse an older runtime and warn on an older major::

    pip install grpcio-tools==1.85.1 protobuf==7.35.1
    python tools/gen_sapient.py          # rewrite the modules
    python tools/gen_sapient.py --check  # exit 1 if the committed ones differ
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
SRC = _REPO / "src"
PROTO_DIR = SRC / "skyfence" / "adapters" / "sapient" / "proto"
#: The compiler package and the runtime it matches (protoc 35.1 writes 7.35.1 code).
GRPCIO_TOOLS_VERSION = "1.85.1"
PROTOBUF_VERSION = "7.35.1"
#: First lines of every generated file: our linters skip generated code.
GENERATED_HEADER = "# ruff: noqa\n# mypy: ignore-errors\n"


def generate(out_dir: Path) -> list[Path]:
    """Compile every .proto into ``out_dir`` (laid out like ``src``); the files made."""
    import grpc_tools  # type: ignore[import-untyped]  # a build tool only
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    protos = sorted(PROTO_DIR.glob("*.proto"))
    args = ["protoc", f"-I{SRC}", f"-I{include}", f"--python_out={out_dir}",
            f"--pyi_out={out_dir}", *(str(p.relative_to(SRC)) for p in protos)]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    made = sorted((out_dir / PROTO_DIR.relative_to(SRC)).glob("*_pb2.py*"))
    for path in made:
        path.write_text(GENERATED_HEADER + path.read_text(encoding="utf-8"),
                        encoding="utf-8")
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed modules instead of writing them")
    args = parser.parse_args(argv)
    found = {name: metadata.version(name) for name in ("grpcio-tools", "protobuf")}
    wanted = {"grpcio-tools": GRPCIO_TOOLS_VERSION, "protobuf": PROTOBUF_VERSION}
    if found != wanted:
        print(f"found {found}; install exactly {wanted}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        made = generate(Path(tmp))
        stale = []
        for path in made:
            target = PROTO_DIR / path.name
            if args.check:
                if not target.exists() or target.read_bytes() != path.read_bytes():
                    stale.append(target.name)
            else:
                shutil.copyfile(path, target)
        if args.check and stale:
            print(f"out of date: {', '.join(stale)}; run tools/gen_sapient.py",
                  file=sys.stderr)
            return 1
    print(f"{'checked' if args.check else 'wrote'} {len(made)} files in {PROTO_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
