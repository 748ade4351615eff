"""A private nats-server for the federation tests: the partners' users and
permissions as ``broker_config`` writes them, JetStream in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skyfence.federation.broker import local_broker

PASSWORDS = {"police": "pw-police", "army": "pw-army", "airport": "pw-airport"}


@dataclass(frozen=True)
class Broker:
    url: str
    passwords: dict[str, str]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A nats-server of our own (the partners' users and permissions), on a free port."""
    with local_broker(PASSWORDS, tmp_path / "broker") as url:
        yield Broker(url, dict(PASSWORDS))
