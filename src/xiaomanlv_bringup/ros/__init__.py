"""Bring-up's rclpy parts: graph sessions, the demo, the fuzzer, launch helpers."""
