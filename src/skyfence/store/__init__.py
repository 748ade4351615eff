"""The node's embedded storage: SQLite (WAL) behind one writer thread.

Zones, sites, alerts and their events, track history (at most 1 Hz per track), sensor
status and the audit log, in one file. Writes are queued and never make the engine
wait on disk; reads run on a connection of their own per thread.
"""

from skyfence.store.sqlite import (
    ALERT_SCHEMA,
    AUDIT_SCHEMA,
    SCHEMA_VERSION,
    SENSOR_STATUS_SCHEMA,
    TRACK_HISTORY_SCHEMA,
    ZONE_LIST_SCHEMA,
    Retention,
    RetentionResult,
    SqliteStore,
    StoreConfig,
    StoreError,
    StoreStats,
)

__all__ = [
    "ALERT_SCHEMA",
    "AUDIT_SCHEMA",
    "SCHEMA_VERSION",
    "SENSOR_STATUS_SCHEMA",
    "TRACK_HISTORY_SCHEMA",
    "ZONE_LIST_SCHEMA",
    "Retention",
    "RetentionResult",
    "SqliteStore",
    "StoreConfig",
    "StoreError",
    "StoreStats",
]
