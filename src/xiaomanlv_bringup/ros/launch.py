"""Turn a profile of config/graph.yaml into launch_ros actions (``launch/*.launch.py``).

Imported only by ``ros2 launch`` on a machine with ROS 2 installed; launch and launch_ros
are on no registry reachable by CI, so this module is exercised there, while the conversion
it relies on (:meth:`NodeSpec.launch_ros_kwargs`) is tested here.
"""

from __future__ import annotations

from typing import Any

from launch import LaunchDescription
from launch.actions import EmitEvent, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch_ros.actions import Node

from xiaomanlv_bringup.graph import load_profile, read_executables
from xiaomanlv_core.paths import executables_file, graph_file


def generate_for_profile(profile: str) -> Any:
    """A LaunchDescription starting every node of ``profile`` with its exit policy."""
    spec = load_profile(graph_file(), profile, executables=read_executables(executables_file()))
    actions: list[Any] = []
    for node_spec in spec.nodes:
        node = Node(**node_spec.launch_ros_kwargs())
        actions.append(node)
        # Only a critical node's exit ends the launch. launch respawns `restart` nodes without
        # a windowed budget (that is `xiaomanlv bringup`'s), so here they always come back.
        if node_spec.on_exit == "shutdown" and node_spec.critical:
            actions.append(
                RegisterEventHandler(
                    OnProcessExit(
                        target_action=node,
                        on_exit=[EmitEvent(event=Shutdown(reason=f"{node_spec.name} exited"))],
                    )
                )
            )
    return LaunchDescription(actions)
