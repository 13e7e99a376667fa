"""rclpy nodes of xiaomanlv_mapping: thin adapters over the cores."""
