"""A toy site on disk for the site check and `sim site` / `sim render` tests.

World (toy.sdf): ground, and the building `hall` 10 x 10 x 6 m centred on (-12, 17), so its
south facade is y = 12 between x = -17 and -7. Sidecar (toy.site.yaml): a 20 x 10 m loop of
3 m walkways s (0, 0) - a (20, 0) - b (20, 10) - c (0, 10), a spur c - h (-12, 10) to the stop
hall_south at h facing its door (-12, 12), the station at s, a mapping route round the loop.
`toy_site(tmp_path, edit=..., models=...)` writes both, after `edit` changes the sidecar's
dict and with extra static models (SDF text, `box_model`) in the world.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

NS = 'xmlns:xiaomanlv="https://github.com/xiaomanlv/sdf"'
HALF_PI = round(math.pi / 2, 6)

SIDECAR: dict[str, Any] = {
    "name": "toy",
    "world": "toy.sdf",
    "station": {"name": "depot", "loading": [0, 0, -HALF_PI], "charging": [4, 0, -HALF_PI]},
    "stops": [
        {
            "name": "hall_south",
            "pose": [-12, 10, HALF_PI],
            "building": "hall",
            "entrance": [-12, 12],
        }
    ],
    "entrances": {"hall_south": [-12, 12], "gate": [20, -5]},
    "walkways": {
        "nodes": {"s": [0, 0], "a": [20, 0], "b": [20, 10], "c": [0, 10], "h": [-12, 10]},
        "edges": [["s", "a", 3], ["a", "b", 3], ["b", "c", 3], ["c", "s", 3], ["c", "h", 3]],
    },
    "mapping_route": {"waypoints": [[0, 0], [20, 0], [20, 10], [0, 10], [0, 0]]},
}


def box_model(
    name: str, category: str, x: float, y: float, size: tuple[float, float, float]
) -> str:
    """A static box model standing on the ground at (x, y) [m]."""
    geometry = f"<box><size>{size[0]} {size[1]} {size[2]}</size></box>"
    return (
        f'<model name="{name}"><static>true</static><pose>{x} {y} {size[2] / 2} 0 0 0</pose>'
        f"<xiaomanlv:category>{category}</xiaomanlv:category>"
        f'<link name="link"><collision name="c"><geometry>{geometry}</geometry></collision>'
        f'<visual name="v"><geometry>{geometry}</geometry></visual></link></model>'
    )


def write_world(path: Path, models: Sequence[str] = ()) -> Path:
    ground = (
        '<model name="ground_plane"><static>true</static>'
        '<xiaomanlv:category>ground</xiaomanlv:category><link name="link">'
        '<collision name="c"><geometry><plane><normal>0 0 1</normal><size>200 200</size></plane>'
        "</geometry></collision></link></model>"
    )
    body = ground + box_model("hall", "building", -12, 17, (10, 10, 6)) + "".join(models)
    path.write_text(
        f'<?xml version="1.0"?>\n<sdf version="1.9" {NS}>\n<world name="toy">\n'
        f'<physics type="ode"/><light name="sun" type="directional"/>\n{body}\n</world>\n</sdf>\n'
    )
    return path


def toy_site(
    folder: Path,
    edit: Callable[[dict[str, Any]], None] | None = None,
    models: Sequence[str] = (),
    name: str = "toy.site.yaml",
) -> Path:
    """Write toy.sdf and the sidecar `name` into `folder`; returns the sidecar's path."""
    write_world(folder / "toy.sdf", models)
    data = copy.deepcopy(SIDECAR)
    if edit is not None:
        edit(data)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
