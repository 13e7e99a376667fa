"""Locker kiosk: the touchscreen web app (Flask) recipients and operators use on the robot.

Core (no rclpy): :func:`xiaomanlv_locker.kiosk.app.create_app` around a
:class:`xiaomanlv_locker.kiosk.client.LockerClient`; the ROS adapter is in ``kiosk/ros``.
"""
