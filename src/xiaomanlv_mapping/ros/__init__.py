"""ROS conversions and adapters of xiaomanlv_mapping (the only mapping code that imports rclpy)."""
