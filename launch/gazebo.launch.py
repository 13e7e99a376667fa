"""`ros2 launch xiaomanlv gazebo.launch.py [world:=university] [gui:=false] [x:=.. y:=.. yaw:=..]`.

The stack against Gazebo Harmonic instead of the headless simulator, on a machine with Gazebo
Harmonic and ros_gz (ros-jazzy-ros-gz) installed:

1. ``gz sim -r [-s] worlds/<world>.sdf`` (``gui:=false``, the default, runs the server only);
   GZ_SIM_RESOURCE_PATH gets models/ so ``model://`` URIs resolve.
2. ``ros_gz_sim create`` spawns models/xiaomanlv/model.sdf as ``xiaomanlv`` at the station's
   charging pose from worlds/<world>.site.yaml (or at x, y, yaw when given).
3. ``ros_gz_bridge parameter_bridge`` with config/gz_bridge.yaml: /clock, /lidar/points,
   /imu/data, /wheel/odom, /gnss/fix, /joint_states, /ultrasonic/<where>/scan, DiffDrive's
   odom -> base_link as /tf out, /cmd_vel in.
4. ``robot_state_publisher`` with urdf/xiaomanlv.urdf (converted from models/xiaomanlv/model.sdf
   by the world generator): base_link -> every sensor frame on /tf_static, the wheels from
   /joint_states on /tf (docs/frames.md).
5. The 'gazebo' profile of config/graph.yaml (use_sim_time): the stack without the headless
   simulator, plus ``ultrasonic_range``. The ultrasonic rangers are gpu_lidars in Gazebo (it has
   no range sensor); they arrive as LaserScan on /ultrasonic/<where>/scan and that node reduces
   them to sensor_msgs/Range on /ultrasonic/<where>, as the headless simulator publishes them.
"""

import math
import os

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    OpaqueFunction,
    SetEnvironmentVariable,
)
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from xiaomanlv_bringup.ros.launch import generate_for_profile
from xiaomanlv_core.robot import model_file
from xiaomanlv_core.site import load_site
from xiaomanlv_sim.assets import models_dir, site_file, world_file


def _spawn_pose(context, site):
    """(x, y, yaw) from the launch arguments, else the station's charging pose."""
    values = {name: LaunchConfiguration(name).perform(context) for name in ("x", "y", "yaw")}
    if all(values.values()):
        return tuple(float(values[name]) for name in ("x", "y", "yaw"))
    if any(values.values()):
        raise ValueError("gazebo.launch.py: give all of x, y and yaw, or none of them")
    pose = site.station.charging
    return pose.x, pose.y, pose.yaw


def _robot_state_publisher():
    """robot_state_publisher on the installed URDF: the robot's fixed frames and its wheels."""
    urdf = models_dir().parent / "urdf/xiaomanlv.urdf"
    return Node(
        package="robot_state_publisher",
        executable="robot_state_publisher",
        name="robot_state_publisher",
        output="screen",
        parameters=[{"robot_description": urdf.read_text(encoding="utf-8"), "use_sim_time": True}],
    )


def _launch_setup(context, *args, **kwargs):
    world = world_file(LaunchConfiguration("world").perform(context))
    site = load_site(site_file(world))
    gui = LaunchConfiguration("gui").perform(context).lower() in ("1", "true", "yes")
    x, y, yaw = _spawn_pose(context, site)
    models = str(models_dir())
    resource_path = os.pathsep.join(
        p for p in (models, os.environ.get("GZ_SIM_RESOURCE_PATH", "")) if p
    )
    bridge_config = models_dir().parent / "config" / "gz_bridge.yaml"
    gz_flags = ["-r", "-v", "3"] if gui else ["-r", "-s", "-v", "3"]
    gz_sim = ExecuteProcess(cmd=["gz", "sim", *gz_flags, str(world)], output="screen")
    spawn_options = {
        "-world": site.name,
        "-file": str(model_file()),
        "-name": "xiaomanlv",
        "-x": f"{x:.3f}",
        "-y": f"{y:.3f}",
        "-z": "0.02",
        "-Y": f"{math.remainder(yaw, 2 * math.pi):.6f}",
    }
    spawn = Node(
        package="ros_gz_sim",
        executable="create",
        name="spawn_xiaomanlv",
        output="screen",
        arguments=[item for option in spawn_options.items() for item in option],
    )
    bridge = Node(
        package="ros_gz_bridge",
        executable="parameter_bridge",
        name="gz_bridge",
        output="screen",
        parameters=[{"config_file": str(bridge_config)}],
    )
    return [
        SetEnvironmentVariable("GZ_SIM_RESOURCE_PATH", resource_path),
        gz_sim,
        spawn,
        bridge,
        _robot_state_publisher(),
        generate_for_profile("gazebo"),
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "world", default_value="university", description="shipped world name or SDF path"
            ),
            DeclareLaunchArgument(
                "gui", default_value="false", description="true: also open the Gazebo GUI"
            ),
            DeclareLaunchArgument("x", default_value="", description="[m] spawn x (world)"),
            DeclareLaunchArgument("y", default_value="", description="[m] spawn y (world)"),
            DeclareLaunchArgument("yaw", default_value="", description="[rad] spawn heading"),
            OpaqueFunction(function=_launch_setup),
        ]
    )
