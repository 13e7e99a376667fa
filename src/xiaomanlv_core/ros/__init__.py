"""The foundation's rclpy helpers: every node and adapter uses these, none writes its own."""
