"""A re-entrant lock granted in the order it was asked for (a ticket lock).

``threading.RLock`` is not fair: a thread that releases it and asks again at once (the
locker's tick, which takes it once per compartment) usually gets it straight back, because the
waiter still has to be scheduled and to get the GIL. A service call waiting for the lock would
then wait for the whole tick. A ticket lock (Mellor-Crummey and Scott, "Algorithms for scalable
synchronization on shared-memory multiprocessors", ACM TOCS 9(1), 1991, section 2.1) hands the
lock over in arrival order: each acquirer draws the next ticket and waits until that ticket is
served; each final release serves the next one. Here it is built on a
:class:`threading.Condition`, with re-entrancy for the owner (nested calls do not draw a ticket).
"""

from __future__ import annotations

import threading
from types import TracebackType


class FairLock:
    """Re-entrant, first come first served; usable as a context manager."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None  # thread ident
        self._depth = 0  # nested acquisitions by the owner
        self._next_ticket = 0
        self._serving = 0  # the ticket that may take the lock next

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._owner is not None or self._serving != ticket:
                self._cond.wait()
            self._owner, self._depth = me, 1

    def release(self) -> None:
        """Release once; the last release serves the next ticket.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("FairLock released by a thread that does not hold it")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._cond.notify_all()

    def handover(self) -> bool:
        """Let every thread queued now go first, then take the lock back; True if any went.

        Only at the outermost level (held once): a nested holder keeps the lock.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        me = threading.get_ident()
        with self._cond:
            if self._owner != me:
                raise RuntimeError("FairLock handed over by a thread that does not hold it")
            if self._depth != 1 or self._next_ticket - self._serving <= 1:
                return False
            self._owner = None
            self._serving += 1
            ticket = self._next_ticket
            self._next_ticket += 1
            self._cond.notify_all()
            while self._owner is not None or self._serving != ticket:
                self._cond.wait()
            self._owner, self._depth = me, 1
            return True

    def owned(self) -> bool:
        """True when the calling thread holds the lock."""
        with self._cond:
            return self._owner == threading.get_ident()

    def waiting(self) -> int:
        """Threads queued for the lock now (not counting the owner)."""
        with self._cond:
            return self._next_ticket - self._serving - (self._owner is not None)

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
