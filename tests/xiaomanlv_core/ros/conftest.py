"""A context of its own for the rclpy nodes these tests make in-process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import rclpy
from rclpy.context import Context


@pytest.fixture
def context(ros_domain: int) -> Iterator[Context]:
    ctx = Context()
    rclpy.init(context=ctx, domain_id=ros_domain)
    yield ctx
    ctx.try_shutdown()
