"""rclpy-side helpers of the simulator: message conversions."""
