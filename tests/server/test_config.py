"""Server settings from arguments and from SKYFENCE_API_* variables."""

from __future__ import annotations

import pytest

from skyfence.errors import InputError
from skyfence.server.config import ServerConfig


def test_defaults_and_the_environment() -> None:
    assert ServerConfig.from_env({}) == ServerConfig()
    assert ServerConfig().max_body_bytes == 16 * 1024 * 1024
    got = ServerConfig.from_env({"SKYFENCE_API_RATE_PER_S": "2.5", "SKYFENCE_API_BURST": "7",
                                 "SKYFENCE_API_MAX_BODY_BYTES": "1000",
                                 "SKYFENCE_API_DOCS": "0", "OTHER": "x"})
    assert got == ServerConfig(rate_per_s=2.5, burst=7, max_body_bytes=1000, docs=False)


@pytest.mark.parametrize(("name", "value"), [("SKYFENCE_API_BURST", "many"),
                                             ("SKYFENCE_API_DOCS", "perhaps"),
                                             ("SKYFENCE_API_RATE_PER_S", "-1"),
                                             ("SKYFENCE_API_MAX_BODY_BYTES", "0")])
def test_bad_values_name_the_variable_or_field(name: str, value: str) -> None:
    with pytest.raises(InputError) as err:
        ServerConfig.from_env({name: value})
    assert err.value.fix
    assert name.removeprefix("SKYFENCE_API_").lower() in str(err.value).lower()
