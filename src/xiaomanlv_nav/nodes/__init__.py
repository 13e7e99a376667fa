"""Thin rclpy adapters: convert messages, make one core call, publish."""
