"""A private nats-server for the federation tests: the partners' users and
permissions as ``broker_config`` writes them, JetStream in a temporary folder."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skyfence.federation.nats import broker_config

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
PASSWORDS = {"police": "pw-police", "army": "pw-army", "airport": "pw-airport"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Broker:
    url: str
    passwords: dict[str, str]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A nats-server of our own (the partners' users and permissions), on a free port."""
    assert Path(NATS_SERVER).exists(), "nats-server is missing: apt-get install nats-server"
    port = _free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(broker_config(PASSWORDS, port=port, store_dir=str(tmp_path / "js")))
    proc = subprocess.Popen([NATS_SERVER, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10.0
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                raise RuntimeError(f"nats-server did not start: {err!r}") from None
            time.sleep(0.05)
    yield Broker(f"nats://127.0.0.1:{port}", dict(PASSWORDS))
    proc.terminate()
    proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()
