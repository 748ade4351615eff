"""API tokens: who is calling, for which partner, in which role.

A token is 32 random bytes, written as ``sf_`` and 43 URL-safe base64 characters;
the node keeps only its SHA-256 (a random token of that length needs no slow
password hash: there is nothing to guess). ``skyfence token new`` prints a token
and the hash to put in ``node.toml``:

    [[tokens]]
    partner = "police"
    role = "operator"      # admin | operator | viewer | sensor
    sha256 = "3a7bd3e2…"   # 64 hexadecimal digits
    name = "watch desk 1"  # optional: who holds it, for the audit log

    [[tokens]]
    partner = "police"
    role = "sensor"
    source = "radar1-push"  # a sensor token: bound to one source of transport "http"
    sha256 = "…"

Roles, each with what the one before it may do: ``viewer`` reads its partner's
picture, history, alerts, zones and sensors; ``operator`` also acknowledges alerts;
``admin`` also changes zones and reads the audit log and the metrics. ``sensor``
may only send detections, to its own source (``POST /api/v1/ingest/{source}``), and
reads nothing.

A node without ``[[tokens]]`` asks for none: every caller is the home partner's
admin (the embedded demo, a node on a closed network).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from skyfence.errors import InputError


class Role(IntEnum):
    """Ordered: each role may do what the roles below it may (``sensor`` apart)."""

    SENSOR = 0
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str, where: str = "role") -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            raise InputError(f"{name!r} is not a role", field=where,
                             fix="use admin, operator, viewer or sensor") from None

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may: a sensor token only sensor
        work, any other role what the roles at or below it may (not sensor work)."""
        if needed == Role.SENSOR or self == Role.SENSOR:
            return self == needed
        return self >= needed


@dataclass(frozen=True, slots=True)
class Token:
    partner: str
    role: Role
    sha256: str
    name: str = ""
    #: A sensor token's source: the one it may push to ("" for other roles).
    source: str = ""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a partner, a role, and the token's name (for the audit log)."""

    partner: str
    role: Role
    name: str = ""
    source: str = ""


_HEX64 = re.compile(r"[0-9a-f]{64}")


def new_token() -> str:
    """A fresh random token."""
    return "sf_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Access:
    """The node's tokens; ``check`` tells who a presented token belongs to."""

    def __init__(self, tokens: Sequence[Token], *, home: str) -> None:
        self.home = home
        self.tokens = tuple(tokens)
        for k, t in enumerate(self.tokens):
            if not _HEX64.fullmatch(t.sha256):
                raise InputError("is not a SHA-256 in hexadecimal", field=f"tokens[{k}].sha256",
                                 fix="give the 64 lower-case hex digits 'skyfence token new' "
                                     "prints")
        hashes = [t.sha256 for t in self.tokens]
        if len(set(hashes)) != len(hashes):
            raise InputError("the same token is listed twice", field="tokens",
                             fix="give each holder a token of its own")

    @property
    def open(self) -> bool:
        """No tokens: every caller is the home partner's admin."""
        return not self.tokens

    def check(self, token: str | None) -> Caller | None:
        """The caller a token belongs to; None for no token or an unknown one."""
        if self.open:
            return Caller(self.home, Role.ADMIN, "")
        if not token:
            return None
        digest = hash_token(token)
        found = None
        for t in self.tokens:  # compare every one, in constant time each
            if hmac.compare_digest(t.sha256, digest):
                found = t
        return None if found is None else Caller(found.partner, found.role, found.name,
                                              found.source)
