"""xiaomanlv_core: the foundation every package of xiaomanlv builds on; it imports none of them.

Configuration and parameter validation, file reading, geodesy, poses and rotations, the types
subsystems exchange, the robot description, and in ``ros/`` the foundation's only rclpy: node
entry, parameters, the callback guard, QoS profiles, time and PointCloud2 conversions.
"""
