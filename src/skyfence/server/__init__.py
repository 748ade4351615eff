"""The node's HTTP + WebSocket API (``docs/API.md``) and the web map's files."""

from skyfence.server.app import create_app
from skyfence.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
