"""The localiser executable: a thin rclpy adapter around its core (localizer.py)."""
