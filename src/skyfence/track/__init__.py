"""The tracker: motion models, filters, association and track life."""

from skyfence.track.tracker import OutOfOrderError, Tracker, TrackerConfig

__all__ = ["OutOfOrderError", "Tracker", "TrackerConfig"]
