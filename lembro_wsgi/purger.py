"""The background thread that purges a store every ``interval`` seconds.

The thread holds only a weak reference to its store, so a store that is
dropped is not kept alive by it, and it is a daemon, so it never keeps the
process alive::

    purger = Purger(store, interval=60)   # starts at once
    purger.stop()                         # idempotent
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

log = logging.getLogger("lembro_wsgi")


class Purger:
    """Calls ``store.purge()`` every ``interval`` seconds until stopped or the store is gone."""

    def __init__(self, store: Any, interval: float) -> None:
        self.interval = interval
        self._store = weakref.ref(store)
        self._stopped = threading.Event()
        weakref.finalize(store, self._stopped.set)
        self.thread = threading.Thread(target=self._run, name="lembro-purge", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            store = self._store()
            if store is None:
                return
            try:
                store.purge()
            except Exception:  # keep purging: one bad run must not end the schedule
                log.exception("background purge failed")
            del store
