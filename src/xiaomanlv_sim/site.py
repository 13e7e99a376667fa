"""Moved: the site sidecar is the foundation's (`xiaomanlv_core.site`, `xiaomanlv_core.types`).

This module only re-exports those names for importers that have not switched yet (the sim
and ultrasonic nodes, the demo, launch/gazebo.launch.py); new code imports from core.
"""

from __future__ import annotations

from xiaomanlv_core.site import (
    MappingRoute,
    Site,
    SiteError,
    Walkways,
    closes_loop,
    load_site,
    polyline_length,
)
from xiaomanlv_core.types import Pose2D, Station, Stop

__all__ = [
    "MappingRoute",
    "Pose2D",
    "Site",
    "SiteError",
    "Station",
    "Stop",
    "Walkways",
    "closes_loop",
    "load_site",
    "polyline_length",
]
