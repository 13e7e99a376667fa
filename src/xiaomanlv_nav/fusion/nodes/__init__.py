"""The fusion's node executables (``ekf``)."""
