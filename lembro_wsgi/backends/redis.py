"""Sessions in Redis through Beaker's ``ext:redis``: conditional writes in one command, and Redis's own expiry.

::

    backend = RedisBackend("ext:redis", url="redis://127.0.0.1:6379/0", timeout=1800)
    backend.replace(sid, record)   # SET XX: written only while the key is there
    backend.touch(sid)             # EXPIRE: the timer alone, the data untouched

Its URL gets ``REDIS_TIMEOUTS`` unless it sets its own; a Redis that will not serve is ``BackendUnavailable``.
"""

from __future__ import annotations

import pickle
from typing import Any

from ..backend import KEY, Record, bounded_redis_url
from .beaker import BeakerBackend


def _redis_key(manager: Any) -> str:
    """The Redis key Beaker's manager keeps the session under (Beaker's own key format)."""
    return str(manager._format_key(KEY))


class RedisBackend(BeakerBackend):
    """Session records in Redis (or a Redis cluster) through Beaker's manager: reads, saves and destroys as
    any Beaker backend, but ``replace``, ``touch`` and ``move``'s test-and-delete are each one atomic Redis
    command, and keys expire by their TTL, so loaded records need no age check here."""

    redis = True

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        given = super()._options(options)
        if isinstance(options.get("url"), str):
            given["url"] = bounded_redis_url(options["url"])
        return given

    def _expired(self, record: Record) -> bool:
        return False  # Redis expires keys itself

    def replace(self, sid: str, record: Record, timeout: float | None = None) -> bool:
        """``SET XX``: one atomic step, so a logout just before it is final."""
        manager = self._manager(sid, timeout)
        with self._reaching():
            return bool(manager.client.set(_redis_key(manager), pickle.dumps(record), ex=manager.timeout, xx=True))

    def _take(self, sid: str) -> bool:
        manager = self._manager(sid)
        with self._reaching():
            return bool(manager.client.delete(_redis_key(manager)) == 1)

    def touch(self, sid: str, timeout: float | None = None) -> bool:
        """``EXPIRE`` refreshes the timer alone (``EXISTS`` without a timeout)."""
        manager = self._manager(sid, timeout)
        with self._reaching():
            key = _redis_key(manager)
            return bool(manager.client.expire(key, manager.timeout) if manager.timeout else manager.client.exists(key))
