"""xiaomanlv_nav: the robot's runtime stack, one subpackage per subsystem.

Each subsystem (``health`` today; localisation, fusion, perception, planning, safety and the
mission follow) has one shape: pure-Python cores (no rclpy), its ``config.py`` (one frozen
dataclass per node, defaults only there), and its rclpy adapters in ``nodes/`` (executables)
and ``ros/`` (message conversions). Subsystems share only ``xiaomanlv_core`` and published
interfaces, never each other's modules.
"""
