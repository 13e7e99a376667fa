"""Shared fixtures: the repository root and the integration-test harness.

The harness is the launch_testing pattern in pytest: ``ros_graph`` brings up a declared profile
(or some of its nodes) as real processes on a ``ROS_DOMAIN_ID`` reserved for this test, hands
the test a :class:`~xiaomanlv_bringup.ros.session.GraphSession` with a client node on that domain,
and always tears the processes down, also when the test fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def map_rig() -> ModuleType:
    """tests/xiaomanlv_mapping/map_rig.py (a synthetic prior map), for tests in any folder."""
    path = REPO / "tests" / "xiaomanlv_mapping" / "map_rig.py"
    spec = importlib.util.spec_from_file_location("map_rig", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ros_domain() -> Iterator[int]:
    """A ROS_DOMAIN_ID no other test or run on this machine holds while this test runs."""
    from xiaomanlv_bringup.ros.session import reserved_domain_id

    with reserved_domain_id() as domain:
        yield domain


GraphFactory = Callable[..., Any]


@pytest.fixture
def ros_graph(
    ros_domain: int, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[GraphFactory]:
    """Factory: ``ros_graph(profile="sim", nodes=None, parameters=None, topics=())``.

    Starts the profile's nodes (or the named subset) with extra parameters per node written to
    a file on ``tmp_path``, waits until ``topics`` have publishers and returns the running
    :class:`GraphSession`. Node output is attached to the test report when the test fails.
    """
    from xiaomanlv_bringup.graph import load_profile, read_executables
    from xiaomanlv_bringup.ros.session import GraphSession
    from xiaomanlv_core.paths import executables_file, graph_file

    stack = contextlib.ExitStack()
    logs = io.StringIO()

    def start(
        profile: str = "sim",
        nodes: Sequence[str] | None = None,
        parameters: Mapping[str, Mapping[str, Any]] | None = None,
        topics: Sequence[str] = (),
        timeout: float = 30.0,
    ) -> GraphSession:
        spec = load_profile(graph_file(), profile, executables=read_executables(executables_file()))
        chosen = [spec.node(n) for n in nodes] if nodes else list(spec.nodes)
        for name, values in (parameters or {}).items():
            path = tmp_path / f"{name}.params.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": dict(values)}}))
            chosen = [
                dataclasses.replace(n, parameters=(*n.parameters, path)) if n.name == name else n
                for n in chosen
            ]
        session = stack.enter_context(GraphSession(chosen, ros_domain, output=logs, grace=3.0))
        if topics:
            session.wait_for_topics(topics, timeout=timeout)
        return session

    try:
        yield start
    finally:
        stack.close()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print("---- node output ----\n" + logs.getvalue())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
