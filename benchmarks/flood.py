"""The flood scenario: returning users among one-shot clients writing 10x the cap.

Shared by tests/test_store_flood.py (which asserts lembro keeps >= 99% of the
returning users) and store_bench.py (which runs it against plain
nearest-expiry eviction too). ``store`` needs ``set``, ``get`` and ``touch``;
``advance(seconds)`` moves the store's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lembro_wsgi import LembroStore

BOT = {"ua": "crawler", "pad": "b" * 300}
BOTS_PER_SECOND = 90


def bot_bytes() -> int:
    """What one one-shot session costs in LembroStore's accounting."""
    with LembroStore(interval=None) as scratch:
        scratch.set("bot-00000", BOT)
        return scratch.stats()["bytes"]


def run_flood(store: Any, advance: Callable[[float], None], cap: int,
              revisit_every: int = 30, users: int = 500, factor: int = 10) -> float:
    """Share of ``users`` returning sessions still stored after one-shot writes of ``factor`` x ``cap``.

    The users are established (written, then read back once); each comes back
    every ``revisit_every`` simulated seconds, reads its session and touches it.
    """
    returning = [f"user-{i}" for i in range(users)]
    for sid in returning:
        store.set(sid, {"user": sid, "prefs": "r" * 300})
    for sid in returning:
        store.get(sid)
    per_second = -(-users // revisit_every)
    size = bot_bytes()
    written = visit = 0
    while written * size < factor * cap:
        for _ in range(BOTS_PER_SECOND):
            store.set(f"bot-{written:06d}", BOT)
            written += 1
        for _ in range(per_second):
            sid = returning[visit % users]
            if store.get(sid) is not None:
                store.touch(sid)
            visit += 1
        advance(1)
    return sum(store.get(sid) is not None for sid in returning) / users
