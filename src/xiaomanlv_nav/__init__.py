"""xiaomanlv_nav: the robot's runtime stack.

Localisation, fusion, perception, planning, safety and mission cores (pure Python, no rclpy),
their thin rclpy adapters in ``nodes/``, shared ROS helpers in ``ros/``, and the graph
declaration plus process supervisor behind ``xiaomanlv bringup``.
"""
