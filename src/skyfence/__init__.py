"""skyfence: a shared airspace picture for drone-defence awareness."""

__version__ = "0.1.0"
