"""Message conversions of the localisation subsystem (rclpy side)."""
