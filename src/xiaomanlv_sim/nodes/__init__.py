"""Thin rclpy adapters of the simulator: the sim node."""
