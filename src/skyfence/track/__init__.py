"""Multi-target tracking: ``Tracker.step(detections) -> TrackUpdate``."""

from skyfence.track.reorder import ReorderBuffer
from skyfence.track.tracker import OutOfOrderError, Tracker, TrackerConfig

__all__ = ["OutOfOrderError", "ReorderBuffer", "Tracker", "TrackerConfig"]
