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
    #: With TLS: the CA that signed the broker's certificate, and a client certificate.
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A nats-server of our own (the partners' users and permissions), on a free port."""
    with local_broker(PASSWORDS, tmp_path / "broker") as url:
        yield Broker(url, dict(PASSWORDS))


@pytest.fixture
def tls_broker(tmp_path: Path, certificates: dict[str, Path]) -> Iterator[Broker]:
    """The same over TLS, every client required to show a certificate of the test CA."""
    c = {k: str(v) for k, v in certificates.items()}
    with local_broker(PASSWORDS, tmp_path / "broker", tls={
            "certfile": c["server.pem"], "keyfile": c["server.key"],
            "cafile": c["ca.pem"]}) as url:
        yield Broker(url, dict(PASSWORDS), c["ca.pem"], c["client.pem"], c["client.key"])
