"""rclpy adapters of the kiosk: the locker's services and topics as a LockerClient."""
