"""A nats-server of skyfence's own, for tests, benchmarks and trying federation out on
one machine: the partners' users and permissions as :func:`broker_config` writes them,
JetStream in a folder of the caller's, on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from skyfence.errors import InputError
from skyfence.federation.nats import broker_config

#: Where Debian's ``nats-server`` package puts it, if it is not on the PATH.
NATS_SERVER = "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_broker(passwords: Mapping[str, str], directory: str | Path, *,
                 server: str | None = None, timeout_s: float = 10.0,
                 tls: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start ``nats-server`` with one user per partner (``passwords``: partner →
    password), its configuration, JetStream store and log in ``directory``; yield its
    URL once it takes connections (``tls://`` with ``tls``, see ``broker_config``);
    stop it on leaving."""
    exe = server or shutil.which("nats-server") or NATS_SERVER
    if not Path(exe).exists():
        raise InputError(f"nats-server is not at {exe!r}", field="server",
                         fix="apt-get install nats-server (JetStream included), or give "
                             "its path")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf, log_path = folder / "nats.conf", folder / "nats-server.log"
    conf.write_text(broker_config(passwords, port=port, store_dir=str(folder / "js"),
                                  tls=tls), encoding="utf-8")
    # Its output to a file, not a pipe nobody reads (a full pipe would stall it).
    with log_path.open("wb") as log:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"nats-server did not start within {timeout_s:g} s "
                                       f"(its log, {log_path}: {tail!r})") from None
                time.sleep(0.05)
        yield f"{'tls' if tls else 'nats'}://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
