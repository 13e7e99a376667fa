"""A transform tree with time: what tf2's BufferCore does, for tests and tools (no rclpy).

tf2 (Foote, "tf: The transform library", TePRA 2013) is on no registry reachable here, so this
is the small part of it the stack needs; on a robot, tf2_ros is the tool. The semantics are
tf2's:

- Every frame has at most one parent; an edge ``parent -> child`` holds ``T_parent_child``.
  A child sent with a new parent is re-parented (the newest sender wins); an edge that would
  close a loop is refused.
- A *static* edge (/tf_static) holds one transform, valid at every time, kept forever.
- A *dynamic* edge (/tf) keeps the samples of the last ``cache_time`` seconds (tf2: 10 s)
  sorted by stamp; between two samples it is interpolated (position linearly, rotation by
  slerp); before the oldest or after the newest sample a lookup fails (no extrapolation).
- :meth:`TransformTree.lookup` chains the edges from the source frame up to the common
  ancestor and down to the target. ``time=None`` means the latest time at which every dynamic
  edge of the chain has data (tf2's ``TimePointZero``: the smallest of their newest stamps);
  an all-static chain is stamped 0.

Errors are :class:`TransformError` (a LookupError) naming the frames, the chain and the times.
Thread-safe: a listener thread may feed the tree while another looks up.
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation, Slerp

F64 = NDArray[np.float64]


class TransformError(LookupError):
    """A lookup the tree cannot answer, or an edge it refuses; the message names the frames."""


@dataclass(frozen=True)
class StampedTransform:
    """``matrix`` (4x4, ``T_parent_child``) maps points of ``child`` into ``parent``."""

    parent: str
    child: str
    stamp: float  # [s]; 0 for a chain of static edges only
    matrix: F64 = field(compare=False)


@dataclass
class _Edge:
    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)  # [s] ascending
    matrices: list[F64] = field(default_factory=list)

    def at(self, t: float, child: str) -> F64:
        if self.static:
            return self.matrices[0]
        i = bisect.bisect_left(self.stamps, t)
        if i < len(self.stamps) and self.stamps[i] == t:
            return self.matrices[i]
        if i == 0 or i == len(self.stamps):
            when = "before the oldest" if i == 0 else "after the newest"
            raise TransformError(
                f"{self.parent} -> {child} at t={t:.9f} s is {when} sample (it holds "
                f"{self.stamps[0]:.9f} .. {self.stamps[-1]:.9f} s); no extrapolation"
            )
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        a, b = self.matrices[i - 1], self.matrices[i]
        u = (t - t0) / (t1 - t0)
        out = np.eye(4)
        out[:3, 3] = (1.0 - u) * a[:3, 3] + u * b[:3, 3]
        slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([a[:3, :3], b[:3, :3]])))
        out[:3, :3] = slerp([u]).as_matrix()[0]
        return out


class TransformTree:
    """Frames and their transforms over time (module docstring)."""

    def __init__(self, cache_time: float = 10.0) -> None:
        """``cache_time`` [s]: how long dynamic samples are kept behind the newest one.

        Raises:
            ValueError: a cache time that is not a positive number.
        """
        if not (math.isfinite(cache_time) and cache_time > 0.0):
            raise ValueError(f"cache_time {cache_time!r} s must be a positive number of seconds")
        self.cache_time = cache_time
        self._edges: dict[str, _Edge] = {}  # child -> edge to its parent
        self._lock = threading.Lock()

    # ---- feeding ------------------------------------------------------------------------
    def clear_dynamic(self) -> None:
        """Forget every dynamic transform and keep the static ones: time went back (a /clock
        jump, a replayed bag), and samples from the old timeline would be taken as newest."""
        with self._lock:
            self._edges = {c: e for c, e in self._edges.items() if e.static}

    def set_transform(
        self, parent: str, child: str, matrix: ArrayLike, stamp: float, *, static: bool = False
    ) -> None:
        """Add ``T_parent_child`` (4x4) at ``stamp`` [s]; ``static``: valid at every time.

        Raises:
            TransformError: an empty frame name, parent == child, a loop, a non-finite or
                non-rigid matrix, or a non-finite stamp.
        """
        if not parent or not child or parent == child:
            raise TransformError(f"edge '{parent}' -> '{child}': needs two different frame names")
        m = np.array(matrix, dtype=np.float64)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise TransformError(f"edge {parent} -> {child}: not a finite 4x4 matrix")
        if not np.allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-6) or not np.allclose(
            m[3], (0.0, 0.0, 0.0, 1.0)
        ):
            raise TransformError(f"edge {parent} -> {child}: not a rigid motion")
        t = float(stamp)
        if not math.isfinite(t):
            raise TransformError(f"edge {parent} -> {child}: stamp {stamp!r} is not finite")
        with self._lock:
            frame: str | None = parent
            while frame is not None:
                if frame == child:
                    raise TransformError(
                        f"edge {parent} -> {child} would close a loop: {child} is an ancestor "
                        f"of {parent}"
                    )
                edge = self._edges.get(frame)
                frame = edge.parent if edge is not None else None
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent or edge.static != static or static:
                edge = _Edge(parent, static)
                self._edges[child] = edge
            i = bisect.bisect_left(edge.stamps, t)
            if i < len(edge.stamps) and edge.stamps[i] == t:
                edge.matrices[i] = m
            else:
                edge.stamps.insert(i, t)
                edge.matrices.insert(i, m)
            if not static:
                keep = bisect.bisect_left(edge.stamps, edge.stamps[-1] - self.cache_time)
                del edge.stamps[:keep], edge.matrices[:keep]

    # ---- asking -------------------------------------------------------------------------
    def frames(self) -> set[str]:
        """Every frame the tree knows (children and their parents)."""
        with self._lock:
            return set(self._edges) | {e.parent for e in self._edges.values()}

    def parent_of(self, frame: str) -> str | None:
        """The frame's parent, or None for a root or an unknown frame."""
        with self._lock:
            edge = self._edges.get(frame)
            return edge.parent if edge is not None else None

    def chain(self, target: str, source: str) -> list[str]:
        """The frames from ``source`` to ``target`` through their common ancestor, both ends
        included.

        Raises:
            TransformError: a frame the tree does not know, or two frames in different trees.
        """
        with self._lock:
            up, _, down = self._chain(target, source)
        return up + down[::-1][1:]

    def lookup(self, target: str, source: str, time: float | None = None) -> StampedTransform:
        """``T_target_source`` (maps points of ``source`` into ``target``) at ``time`` [s],
        or at the latest common time of the chain when ``time`` is None.

        Raises:
            TransformError: an unknown frame, no chain between the two, or a time outside a
                dynamic edge's samples (the message names the edge and its time span).
        """
        with self._lock:
            up, up_edges, down = self._chain(target, source)
            edges = up_edges + [self._edges[f] for f in down[:-1]]
            dynamic = [e for e in edges if not e.static]
            latest = min((e.stamps[-1] for e in dynamic), default=0.0)
            t = latest if time is None else float(time)
            try:
                # T_common_source up the source's side, T_common_target up the target's
                common_source = self._up(up, up_edges, t)
                common_target = self._up(down, [self._edges[f] for f in down[:-1]], t)
            except TransformError as err:
                raise TransformError(
                    f"{source} -> {target} (chain {' -> '.join(up + down[::-1][1:])}): {err}"
                ) from None
        matrix = np.linalg.inv(common_target) @ common_source
        return StampedTransform(target, source, t if dynamic else 0.0, matrix)

    def can_transform(self, target: str, source: str, time: float | None = None) -> bool:
        """True when :meth:`lookup` would answer."""
        try:
            self.lookup(target, source, time)
        except TransformError:
            return False
        return True

    # ---- inside (lock held) -------------------------------------------------------------
    def _ancestors(self, frame: str) -> tuple[list[str], list[_Edge]]:
        frames, edges = [frame], []
        while (edge := self._edges.get(frames[-1])) is not None:
            edges.append(edge)
            frames.append(edge.parent)
        return frames, edges

    def _chain(self, target: str, source: str) -> tuple[list[str], list[_Edge], list[str]]:
        """(source .. common ancestor, their edges, target .. common ancestor)."""
        known = set(self._edges) | {e.parent for e in self._edges.values()}
        for role, frame in (("source", source), ("target", target)):
            if frame not in known:
                listed = ", ".join(sorted(known)) or "none"
                raise TransformError(
                    f"{role} frame '{frame}' is not in the tree (frames: {listed})"
                )
        s_frames, s_edges = self._ancestors(source)
        t_frames, _ = self._ancestors(target)
        t_index = {f: i for i, f in enumerate(t_frames)}
        for i, frame in enumerate(s_frames):
            if frame in t_index:
                return s_frames[: i + 1], s_edges[:i], t_frames[: t_index[frame] + 1]
        raise TransformError(
            f"no chain from '{source}' to '{target}': '{source}' hangs from root "
            f"'{s_frames[-1]}', '{target}' from root '{t_frames[-1]}'"
        )

    @staticmethod
    def _up(frames: list[str], edges: list[_Edge], t: float) -> F64:
        """T_top_bottom of ``frames`` (bottom first) at ``t``."""
        out = np.eye(4)
        for child, edge in zip(frames[:-1], edges, strict=True):
            out = edge.at(t, child) @ out
        return out
