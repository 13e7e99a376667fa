"""rclpy-side helpers shared by the node adapters: parameters, conversions, entry points."""
