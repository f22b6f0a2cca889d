"""The background thread that purges a store every ``interval`` seconds.

The thread holds only a weak reference to its store, so a store that is
dropped is not kept alive by it, and it is a daemon, so it never keeps the
process alive::

    purger = Purger(store, interval=60)   # starts at once
    purger.wake()                         # purge now, not at the end of the interval
    purger.stop()                         # idempotent
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

log = logging.getLogger("lembro_wsgi")


class Purger:
    """Calls ``store.purge()`` every ``interval`` seconds, or at once when woken, until stopped or the store is
    gone."""

    def __init__(self, store: Any, interval: float) -> None:
        self.interval = interval
        self._store = weakref.ref(store)
        self._stopped = threading.Event()
        self._woken = threading.Event()
        weakref.finalize(store, self.stop)
        self.thread = threading.Thread(target=self._run, name="lembro-purge", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._woken.set()

    def wake(self) -> None:
        """Purge now (the store has work to finish, such as coming down to its low-water mark)."""
        self._woken.set()

    def _run(self) -> None:
        due = time.monotonic() + self.interval
        while True:
            self._woken.wait(max(due - time.monotonic(), 0))
            self._woken.clear()
            if self._stopped.is_set():
                return
            store = self._store()
            if store is None:
                return
            scheduled = time.monotonic() >= due  # else woken: finish the work a write left, off the schedule
            if scheduled:
                due = time.monotonic() + self.interval
            try:
                store.purge() if scheduled else store._finish_draining()
            except Exception:  # keep purging: one bad run must not end the schedule
                log.exception("background purge failed")
            del store
