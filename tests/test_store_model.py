"""Random operation sequences against a plain reference model (hypothesis)."""

import contextlib
import itertools
import pickle
import sys

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lembro_wsgi import LembroStore, SessionTooLarge
from lembro_wsgi import store as store_module
from lembro_wsgi.store import ENTRY_OVERHEAD, LOW_WATER, OWNER_OVERHEAD

ALL_IDS = [f"sid{i}" for i in range(12)]
IDS = st.sampled_from(ALL_IDS)
DATA = st.builds(lambda n, tag: {"tag": tag, "pad": "x" * n}, st.integers(0, 900), st.integers(0, 9))
TIMEOUTS = st.sampled_from([None, 1, 5, 30])
ALL_OWNERS = [None, "alice", 42, "42", "bob"]  # 42 and "42" are one owner
OWNERS = st.sampled_from(ALL_OWNERS)
CAP = 4000
WRITES = itertools.count()  # write order: ties go oldest first


class Model:
    """What a session should be, by the DESIGN rules."""

    def __init__(self, sid, data, lifetime, now, owner=None):
        self.data = data
        self.owner = None if owner is None else str(owner)
        self.size = sys.getsizeof(pickle.dumps(data, pickle.HIGHEST_PROTOCOL)) + sys.getsizeof(sid) + ENTRY_OVERHEAD
        if self.owner is not None:
            self.size += sys.getsizeof(self.owner) + OWNER_OVERHEAD
        self.warm = False
        self.renew(lifetime, now)

    def renew(self, lifetime, now):
        self.timeout = lifetime
        self.expires = float("inf") if lifetime is None else now + lifetime
        self.used = now
        self.seq = next(WRITES)

    def order(self):
        """Eviction order: never read back first, expiring before eternal, then nearest rank, then oldest write."""
        eternal = self.timeout is None
        return (self.warm, eternal, self.used if eternal else self.expires, self.seq)


class StoreMachine(RuleBasedStateMachine):
    default_timeout = 10
    max_sessions = None
    chunk = store_module.CHUNK  # sessions removed per hold of the lock beyond what a write needs
    checks_every_step = True

    def __init__(self):
        super().__init__()
        self.now = 0.0
        self.evicted = []
        self.store = LembroStore(
            interval=None, max_size=CAP, timeout=self.default_timeout, max_sessions=self.max_sessions,
            clock=lambda: self.now, on_evict=self.heard,
        )
        self.model = {}
        self.pending = set()  # expired in the model, perhaps not yet removed by the store (it goes in chunks)
        self.draining = False  # above 75% since a write went over a cap: writes and purges evict a chunk more
        self.spared = None  # the session whose write went over (or was written while draining): never evicted

    def heard(self, sid, reason):
        """on_evict: a session is reported expired only once it has expired."""
        self.evicted.append((sid, reason))
        if reason == "expired":
            assert sid in self.pending, sid
            self.pending.discard(sid)

    def expire(self):
        gone = [sid for sid, m in self.model.items() if m.expires <= self.now]
        for sid in gone:
            del self.model[sid]
        self.pending.update(gone)
        return len(gone)

    def write(self, sid, data, timeout, source=None, method="set", owner=None):
        """One write through ``method``; ``source`` is the id it is conditional on (replace, move)."""
        self.expire()
        fresh = Model(sid, data, self.default_timeout if timeout is None else timeout, self.now, owner)
        self.evicted.clear()
        call = {"set": lambda: self.store.set(sid, data, timeout, owner=owner),
                "replace": lambda: self.store.replace(sid, data, timeout, owner=owner),
                "move": lambda: self.store.move(source, sid, data, timeout, owner=owner)}[method]
        unchanged = fresh.size > CAP or (source is not None and source not in self.model)
        before = self.snapshot() if unchanged else None  # (it removes expired sessions: only when needed)
        if fresh.size > CAP:
            try:
                call()
            except SessionTooLarge:
                assert self.snapshot() == before  # a refused write changes nothing
                return
            raise AssertionError("oversized session was accepted")
        written = call()
        if source is not None and source not in self.model:
            assert written is False and self.snapshot() == before
            return
        assert written is (None if method == "set" else True)
        old = self.model.get(sid if source is None else source)
        if old is not None:
            fresh.warm = old.warm
        if source is not None and source != sid:
            del self.model[source]
        self.model[sid] = fresh
        went_over = any(reason == "size" for _, reason in self.evicted)
        if went_over or self.draining:  # the store's write shrank: this session is spared the rest of the way
            self.spared = sid
        self.check_eviction(sid)
        self.draining = (went_over or self.draining) and not self.under_low_water() and len(self.model) > 1

    @rule(sid=IDS, data=DATA, timeout=TIMEOUTS, owner=OWNERS)
    def set(self, sid, data, timeout, owner):
        self.write(sid, data, timeout, owner=owner)

    @rule(sid=IDS, data=DATA, timeout=TIMEOUTS, owner=OWNERS)
    def replace(self, sid, data, timeout, owner):
        self.write(sid, data, timeout, source=sid, method="replace", owner=owner)

    @rule(old=IDS, new=IDS, data=DATA, timeout=TIMEOUTS, owner=OWNERS)
    def move(self, old, new, data, timeout, owner):
        self.write(new, data, timeout, source=old, method="move", owner=owner)

    def owned(self, owner):
        """The model's live sessions of ``owner``, most recently used first (last write or touch)."""
        text = None if owner is None else str(owner)
        mine = [(sid, m) for sid, m in self.model.items() if text is not None and m.owner == text]
        return [sid for sid, m in sorted(mine, key=lambda item: (item[1].used, item[1].seq), reverse=True)]

    @rule(owner=OWNERS)
    def owned_by(self, owner):
        """owned_by(o) is exactly the live sessions written for o, most recently used first (it removes only
        that owner's expired sessions, as expired)."""
        self.expire()
        assert [sid for sid, _, _ in self.store.owned_by(owner)] == self.owned(owner)

    @rule(owner=OWNERS, keep=st.one_of(st.none(), IDS))
    def revoke(self, owner, keep):
        self.expire()
        expected = [sid for sid in self.owned(owner) if sid != keep]
        self.evicted.clear()
        assert sorted(self.store.revoke(owner, keep)) == sorted(expected)
        assert all(reason == "expired" for _, reason in self.evicted)  # revoked ones are not evictions
        for sid in expected:
            del self.model[sid]

    def check_eviction(self, kept):
        """Victims are the coldest sessions; a write frees what the caps need, then goes down to the low-water
        mark, or ``chunk`` sessions more when that is further."""
        victims = [sid for sid, reason in self.evicted if reason == "size"]
        count_cap = self.max_sessions or float("inf")
        if not victims:
            assert sum(m.size for m in self.model.values()) <= CAP and len(self.model) <= count_cap
            return
        assert kept not in victims and not self.pending  # expired sessions go before any live one
        victims.sort(key=lambda sid: self.model[sid].order())
        total, count, needed = sum(m.size for m in self.model.values()), len(self.model), 0
        while total > CAP or count > count_cap:
            total, count, needed = total - self.model[victims[needed]].size, count - 1, needed + 1
        worst_victim = self.model[victims[-1]].order()
        for sid in victims:
            del self.model[sid]
        for sid, m in self.model.items():
            if sid != kept:
                assert m.order() >= worst_victim, (sid, m.order(), worst_victim)
        assert self.under_low_water() or list(self.model) == [kept] or len(victims) - needed == self.chunk

    def under_low_water(self):
        count_cap = self.max_sessions or float("inf")
        total = sum(m.size for m in self.model.values())
        return total <= CAP * LOW_WATER and len(self.model) <= count_cap * LOW_WATER

    @rule(sid=IDS)
    def get(self, sid):
        self.expire()
        m = self.model.get(sid)
        got = self.store.get(sid)
        if m is None:
            assert got is None
        else:
            assert got == m.data
            m.warm = True

    @rule(sid=IDS, timeout=TIMEOUTS)
    def touch(self, sid, timeout):
        self.expire()
        m = self.model.get(sid)
        assert self.store.touch(sid, timeout) is (m is not None)
        if m is not None:
            m.renew(m.timeout if timeout is None else timeout, self.now)
            m.warm = True

    @rule(sid=IDS)
    def destroy(self, sid):
        self.expire()
        assert self.store.destroy(sid) is (self.model.pop(sid, None) is not None)

    @rule(seconds=st.sampled_from([0.5, 1, 3, 9, 31]))
    def advance(self, seconds):
        self.now += seconds

    @rule()
    def purge(self):
        self.expire()
        self.evicted.clear()
        assert self.store.purge() == sum(reason == "expired" for _, reason in self.evicted)
        assert not self.pending  # every expired session is gone
        self.check_eviction(self.spared)
        self.draining = self.draining and not self.under_low_water() and len(self.model) > 1
        assert self.under_low_water() or not any(reason == "size" for _, reason in self.evicted)

    @rule()
    def purge_thread_runs_a_chunk(self):
        """One hold of the lock by the purge thread (it stops at its first pause): a chunk of the expired
        sessions, then, once none is left, a chunk of the way down to 75% after going over a cap."""
        self.expire()
        self.evicted.clear()
        pending = len(self.pending)
        with one_chunk():
            self.store.purge()
        expired = sum(reason == "expired" for _, reason in self.evicted)
        assert expired == min(pending, self.chunk)
        evicted = len(self.evicted) - expired
        assert evicted == 0 or not self.pending
        self.check_eviction(self.spared)
        self.draining = self.draining and not self.under_low_water() and len(self.model) > 1
        assert evicted in (0, self.chunk) or self.under_low_water()

    def snapshot(self):
        """What the store holds; with chunks, which ids it holds, seen without changing any order or removing
        more than the expired sessions asked about (``all()`` would remove them all, ``get`` would warm)."""
        return self.store.all() if self.checks_every_step else {sid: sid in self.store for sid in ALL_IDS}

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def clear(self):
        self.store.clear()
        self.model.clear()
        self.pending.clear()
        self.draining, self.spared = False, None

    @invariant()
    def contents_and_bytes_match(self):
        if self.checks_every_step:
            self.look_at_everything()

    @rule()
    def look_at_everything(self):
        """all() and stats() say what the model holds (they first remove every expired session)."""
        self.expire()
        assert self.store.all() == {sid: m.data for sid, m in self.model.items()}
        assert not self.pending
        stats = self.store.stats()
        assert stats["sessions"] == len(self.model)
        assert stats["bytes"] == sum(m.size for m in self.model.values())
        assert 0 <= stats["bytes"] <= CAP
        owners = {m.owner for m in self.model.values()} - {None}
        assert stats["owners"] == len(owners)
        assert stats["owned_sessions"] == sum(m.owner is not None for m in self.model.values())
        for owner in ALL_OWNERS:
            assert [sid for sid, _, _ in self.store.owned_by(owner)] == self.owned(owner)

    def teardown(self):
        self.store.close()


class EternalStoreMachine(StoreMachine):
    """Same rules with no default timeout: sessions without expiry are evicted least recently used."""

    default_timeout = None


class CountCappedStoreMachine(StoreMachine):
    """Same rules with a cap of 5 sessions: count evictions in the same order, down to 3."""

    max_sessions = 5


class ChunkedStoreMachine(StoreMachine):
    """Same rules with one removal per hold of the lock: expired sessions are never served while they wait,
    each write over the cap frees what it needs and one more, and a purge finishes coming down to 75%."""

    chunk = 1
    checks_every_step = False  # all() would remove what expired: leave it to the chunks, and to get() to refuse

    def __init__(self):
        self.default_chunk, store_module.CHUNK = store_module.CHUNK, self.chunk
        super().__init__()

    def teardown(self):
        store_module.CHUNK = self.default_chunk
        super().teardown()


class _Paused(Exception):
    """Raised at the purge loop's first pause: the purge thread ran one chunk."""


@contextlib.contextmanager
def one_chunk():
    """Stop ``purge()`` at its first pause between chunks, as if the purge thread had been preempted."""
    def pause():
        raise _Paused

    default, store_module._pause = store_module._pause, pause
    try:
        yield
    except _Paused:
        pass
    finally:
        store_module._pause = default


SETTINGS = settings(max_examples=120, stateful_step_count=60, deadline=None)
TestStoreAgainstModel = StoreMachine.TestCase
TestStoreAgainstModel.settings = SETTINGS
TestEternalStoreAgainstModel = EternalStoreMachine.TestCase
TestEternalStoreAgainstModel.settings = SETTINGS
TestCountCappedStoreAgainstModel = CountCappedStoreMachine.TestCase
TestCountCappedStoreAgainstModel.settings = SETTINGS
TestChunkedStoreAgainstModel = ChunkedStoreMachine.TestCase
TestChunkedStoreAgainstModel.settings = SETTINGS
