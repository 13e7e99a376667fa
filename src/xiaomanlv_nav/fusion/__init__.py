"""Multi-sensor fusion: an error-state EKF over IMU, wheel odometry, GNSS and the localiser."""
