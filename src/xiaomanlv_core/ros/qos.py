"""The stack's QoS profiles, one definition each (publishers and the subscribers that must match).

- :data:`SENSOR_QOS`: sensor streams, RELIABLE, VOLATILE, KEEP_LAST 10 - what ros_gz_bridge uses
  by default - so best-effort subscribers (Nav2's SensorDataQoS) and reliable ones both match.
- :data:`LATCHED_QOS`: state that a node joining late must still get (the map, a compartment's
  status): RELIABLE, TRANSIENT_LOCAL, KEEP_LAST 1, what ROS 1 called latched (map_server's QoS).
- :func:`events_qos`: a stream of events a late joiner receives the recent history of:
  RELIABLE, TRANSIENT_LOCAL, KEEP_LAST ``depth``.
- :data:`CLOCK_QOS`: /clock, RELIABLE, VOLATILE, KEEP_LAST 1 (only the newest time matters; a
  reliable publisher also serves rclpy's best-effort time source).
- :data:`TF_QOS`: /tf, RELIABLE, VOLATILE, KEEP_LAST 100 (tf2_ros's dynamic broadcaster and
  listener). /tf_static is published LATCHED (tf2_ros's static broadcaster: one message holding
  every static transform of the node) and read with :data:`TF_STATIC_LISTENER_QOS`, RELIABLE,
  TRANSIENT_LOCAL, KEEP_LAST 100, so the latched message of every static broadcaster arrives.

A TRANSIENT_LOCAL subscriber matches only TRANSIENT_LOCAL publishers, so subscribers of latched
and event topics use the same profile as the publisher.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
CLOCK_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

TF_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
TF_STATIC_LISTENER_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def events_qos(depth: int) -> QoSProfile:
    """RELIABLE, TRANSIENT_LOCAL, KEEP_LAST ``depth``: the last ``depth`` events reach a late
    subscriber (which must ask for TRANSIENT_LOCAL too).

    Raises:
        ValueError: ``depth`` below 1.
    """
    if depth < 1:
        raise ValueError(f"events QoS depth {depth} must be at least 1")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
