"""`ros2 launch xiaomanlv sim.launch.py`: the 'sim' profile of config/graph.yaml."""

from xiaomanlv_bringup.ros.launch import generate_for_profile


def generate_launch_description():
    return generate_for_profile("sim")
