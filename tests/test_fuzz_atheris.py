"""Coverage-guided fuzzing of every wire-format decoder, briefly: each target runs
``SKYFENCE_FUZZ_S`` seconds (default 3) under atheris in its own process and must
finish without a crash. Longer runs: ``python fuzz/atheris_run.py TARGET
-max_total_time=300``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skyfence.ingest import FORMATS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_decoder_survives_coverage_guided_fuzzing(fmt: str, tmp_path: Path) -> None:
    seconds = int(os.environ.get("SKYFENCE_FUZZ_S", "3"))
    run = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "atheris_run.py"), fmt,
         f"-max_total_time={seconds}", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=seconds + 120, cwd=tmp_path)
    tail = "\n".join(run.stderr.splitlines()[-30:])
    assert run.returncode == 0, f"{fmt}: fuzzing found a crash\n{tail}"
    assert "Done" in run.stderr, tail
