"""QoS of the simulator's topics, shared by every node that publishes sensor data.

Sensor streams are RELIABLE, VOLATILE, KEEP_LAST 10 - what ros_gz_bridge uses by default - so
best-effort subscribers (Nav2's SensorDataQoS) and reliable ones both match.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
