"""The owners' index of LembroStore: owned_by, revoke, and the index kept exact on every way in and out."""

import os
import pickle
import sys

import pytest

from lembro_wsgi.store import ENTRY_OVERHEAD, OWNER_OVERHEAD


def owned(store, owner):
    """The ids ``owned_by`` lists, in its order."""
    return [sid for sid, _, _ in store.owned_by(owner)]


def counts(store):
    stats = store.stats()
    return stats["owners"], stats["owned_sessions"]


def size(sid, data, owner=None):
    """What the store counts for a session: data, id, entry, and its owner's text and index slot."""
    plain = type(data) is bytes or (type(data) is str and data.isascii())  # kept as it is, not pickled
    blob = data if plain else pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
    held = sys.getsizeof(blob) + sys.getsizeof(sid) + ENTRY_OVERHEAD
    return held if owner is None else held + sys.getsizeof(str(owner)) + OWNER_OVERHEAD


def test_set_lists_sessions_most_recently_used_first(make_store, clock):
    store = make_store()
    store.set("a", 1, owner="alice")
    clock.advance(1)
    store.set("b", 2, owner="alice")
    clock.advance(1)
    store.set("c", 3, owner="bob")
    store.set("d", 4)
    assert store.owned_by("alice") == [("b", 1001.0, 2), ("a", 1000.0, 1)]
    assert owned(store, "bob") == ["c"]
    clock.advance(1)
    store.get("a", touch=True)  # a read that refreshes it is a use
    assert store.owned_by("alice") == [("a", 1003.0, 1), ("b", 1001.0, 2)]
    clock.advance(1)
    store.get("b")  # a read that does not refresh it is not
    assert owned(store, "alice") == ["a", "b"]
    store.touch("b")
    assert owned(store, "alice") == ["b", "a"]
    store.set("a", 5, owner="alice")  # a write is a use, even in the same tick
    assert owned(store, "alice") == ["a", "b"]
    assert counts(store) == (2, 3)


def test_int_and_text_are_one_owner(make_store):
    store = make_store()
    store.set("a", 1, owner=42)
    store.set("b", 2, owner="42")
    assert owned(store, 42) == owned(store, "42") == ["b", "a"]
    assert counts(store) == (1, 2)
    assert store.revoke(42) == ["a", "b"]
    assert owned(store, "42") == [] and counts(store) == (0, 0)


def test_none_and_unknown_owners_have_no_sessions(make_store):
    store = make_store()
    store.set("a", 1)
    assert store.owned_by(None) == [] and store.owned_by("nobody") == [] and store.owned_by(7) == []
    assert store.revoke(None) == [] and store.revoke("nobody") == []
    assert store.get("a") == 1 and counts(store) == (0, 0)


@pytest.mark.parametrize("bad", [4.2, b"42", True, ("a",), object()])
@pytest.mark.parametrize("method", ["set", "replace", "move"])
def test_an_owner_of_another_type_is_refused_and_nothing_changes(make_store, bad, method):
    store = make_store()
    store.set("a", {"v": 1}, owner="alice")
    before = (store.all(), store.stats(), store.owned_by("alice"))
    call = {"set": lambda: store.set("a", {"v": 2}, owner=bad),
            "replace": lambda: store.replace("a", {"v": 2}, owner=bad),
            "move": lambda: store.move("a", "b", {"v": 2}, owner=bad)}[method]
    with pytest.raises(ValueError, match="owner"):
        call()
    assert (store.all(), store.stats(), store.owned_by("alice")) == before
    with pytest.raises(ValueError, match="owner"):
        store.owned_by(bad)
    with pytest.raises(ValueError, match="owner"):
        store.revoke(bad)


def test_an_int_subclass_or_str_subclass_is_indexed_by_its_value(make_store):
    import enum

    class Level(enum.IntEnum):
        ADMIN = 7

    class Name(str):
        def __str__(self):
            return "not-this"

    store = make_store()
    store.set("a", 1, owner=Level.ADMIN)
    store.set("b", 2, owner=Name("eve"))
    assert owned(store, 7) == ["a"] and owned(store, "eve") == ["b"]


def test_a_rewrite_changes_or_removes_the_owner(make_store):
    store = make_store()
    store.set("a", 1, owner="alice")
    store.set("a", 2, owner="bob")
    assert owned(store, "alice") == [] and owned(store, "bob") == ["a"] and counts(store) == (1, 1)
    assert store.replace("a", 3) is True  # without an owner: no longer owned (sign-out)
    assert owned(store, "bob") == [] and counts(store) == (0, 0)
    assert store.replace("a", 4, owner="carol") is True
    assert owned(store, "carol") == ["a"]
    store.destroy("a")
    assert store.replace("a", 5, owner="carol") is False  # not brought back, not listed
    assert owned(store, "carol") == [] and counts(store) == (0, 0)


def test_move_carries_the_given_owner_to_the_new_id(make_store):
    store = make_store()
    store.set("anon", 1)
    assert store.move("anon", "signed-in", 2, owner="alice") is True  # sign-in: regenerate
    assert owned(store, "alice") == ["signed-in"]
    assert store.move("signed-in", "again", 3, owner="alice") is True
    assert owned(store, "alice") == ["again"] and counts(store) == (1, 1)
    assert store.move("again", "out", 4) is True  # without an owner: the new id is not owned
    assert owned(store, "alice") == [] and counts(store) == (0, 0)
    assert store.move("gone", "x", 5, owner="alice") is False  # nothing changes
    assert owned(store, "alice") == [] and "x" not in store
    store.set("p", 1, owner="alice")
    store.set("q", 1, owner="bob")
    assert store.move("p", "q", 6, owner="alice") is True  # onto an owned id: it takes the given owner
    assert owned(store, "alice") == ["q"] and owned(store, "bob") == [] and counts(store) == (1, 1)


def test_destroy_and_clear_leave_the_index(make_store):
    store = make_store()
    for i in range(5):
        store.set(f"s{i}", i, owner=i % 2)
    assert store.destroy("s0") is True
    assert owned(store, 0) == ["s4", "s2"] and counts(store) == (2, 4)
    store.clear()
    assert owned(store, 0) == owned(store, 1) == [] and counts(store) == (0, 0)
    store.set("s0", 0, owner=0)
    assert owned(store, 0) == ["s0"] and store.stats()["bytes"] == size("s0", 0, 0)


def test_expired_sessions_are_never_listed_and_leave_the_index(make_store, clock, monkeypatch):
    from lembro_wsgi import store as store_module

    monkeypatch.setattr(store_module, "CHUNK", 2)  # expiry goes two sessions per hold of the lock
    heard = []
    store = make_store(timeout=10, on_evict=lambda sid, reason: heard.append((sid, reason)))
    for i in range(6):
        store.set(f"short{i}", i, owner="alice")
    store.set("long", 1, timeout=100, owner="alice")
    store.set("bob", 1, owner="bob")
    clock.advance(10)
    store.set("other", 1)  # a write takes one chunk (two) of the expired sessions
    assert len(heard) == 2  # the others are due, not yet removed (stats() would catch up)
    assert owned(store, "alice") == ["long"]  # never listed: removed now, as expired
    assert sorted(heard) == [(f"short{i}", "expired") for i in range(6)]
    assert store.revoke("bob") == []  # expired meanwhile: removed as expired, not revoked
    assert heard[-1] == ("bob", "expired") and len(heard) == 7
    assert counts(store) == (1, 1)
    assert store.stats()["bytes"] == size("long", 1, "alice") + size("other", 1)


def test_expiry_in_chunks_keeps_the_index_exact(make_store, clock, monkeypatch):
    from lembro_wsgi import store as store_module

    monkeypatch.setattr(store_module, "CHUNK", 3)
    store = make_store(timeout=10)
    for i in range(10):
        store.set(f"s{i}", i, owner=f"user{i % 4}")
    clock.advance(10)
    store.set("fresh", 1, owner="user0")  # one chunk of 3 goes
    assert store.stats()["sessions"] == 1  # stats() catches up, chunk by chunk
    assert owned(store, "user0") == ["fresh"] and counts(store) == (1, 1)
    for user in ("user1", "user2", "user3"):
        assert owned(store, user) == []


def test_eviction_leaves_the_index_and_the_cap_holds(make_store):
    evicted = []
    data = "x" * 200
    one = size("s0", data, "user0")
    store = make_store(max_size=one * 10, timeout=None, on_evict=lambda sid, reason: evicted.append(sid))
    for i in range(40):
        store.set(f"s{i:02}", data, owner=f"user{i % 3}")
        stats = store.stats()
        assert stats["bytes"] <= store.max_size
    live = set(store.ids())
    assert evicted and not live & set(evicted)
    for user in ("user0", "user1", "user2"):
        listed = owned(store, user)
        assert set(listed) == {sid for sid in live if int(sid[1:]) % 3 == int(user[-1])}
    assert store.stats()["owned_sessions"] == len(live)
    assert store.stats()["bytes"] == sum(size(sid, data, f"user{int(sid[1:]) % 3}") for sid in live)


def test_bytes_count_the_owner_exactly(make_store):
    store = make_store()
    store.set("a", {"n": 1})
    assert store.stats()["bytes"] == size("a", {"n": 1})
    store.set("a", {"n": 1}, owner="alice")
    assert store.stats()["bytes"] == size("a", {"n": 1}, "alice")
    store.set("a", {"n": 1}, owner=123456)
    assert store.stats()["bytes"] == size("a", {"n": 1}, "123456")
    store.move("a", "b", {"n": 2}, owner="somebody-else")
    assert store.stats()["bytes"] == size("b", {"n": 2}, "somebody-else")
    store.set("b", {"n": 2})
    assert store.stats()["bytes"] == size("b", {"n": 2})
    store.set("b", {"n": 2}, owner="alice")
    store.destroy("b")
    assert store.stats()["bytes"] == 0 and counts(store) == (0, 0)


def test_a_session_too_large_with_its_owner_is_refused(make_store):
    from lembro_wsgi import SessionTooLarge

    data = "x" * 100
    cap = size("a", data)
    store = make_store(max_size=cap)
    store.set("a", data)  # fits without an owner
    with pytest.raises(SessionTooLarge):
        store.set("a", data, owner="alice")
    assert store.get("a") == data and owned(store, "alice") == [] and store.stats()["bytes"] == cap


def test_revoke_destroys_all_but_the_kept_one(make_store, clock):
    heard = []
    store = make_store(on_evict=lambda sid, reason: heard.append(sid))
    for sid in ("phone", "laptop", "tablet"):
        store.set(sid, sid, owner="alice")
        clock.advance(1)
    store.set("bob's", 1, owner="bob")
    assert sorted(store.revoke("alice", keep="laptop")) == ["phone", "tablet"]
    assert owned(store, "alice") == ["laptop"] and store.get("phone") is None and store.get("laptop") == "laptop"
    assert store.replace("phone", "again", owner="alice") is False  # a request still running cannot bring it back
    assert owned(store, "bob") == ["bob's"] and heard == []  # destroyed, like destroy(): not evictions
    assert store.revoke("alice") == ["laptop"] and counts(store) == (1, 1)


def test_owned_by_looks_only_at_the_owners_sessions(make_store):
    """10,000 anonymous sessions, untouched: owned_by reads none of them (none warms, none is removed)."""
    store = make_store(max_size="100M")
    for i in range(10_000):
        store.set(f"anon{i}", i)
    store.set("mine", 1, owner="alice")
    store.set("also-mine", 2, owner="alice")
    before = store.stats()
    assert owned(store, "alice") == ["also-mine", "mine"]
    assert sorted(store.revoke("alice", keep="mine")) == ["also-mine"]
    after = store.stats()
    assert after["one_shot_sessions"] == before["one_shot_sessions"] - 1 and after["returning_sessions"] == 0
    assert after["sessions"] == 10_001 and counts(store) == (1, 1)


def test_owned_by_reads_only_the_owners_entries(make_store, monkeypatch):
    """The index is the only way in: owned_by and revoke never walk the store's mapping."""
    store = make_store()
    for i in range(1_000):
        store.set(f"anon{i}", i)
    store.set("mine", 1, owner="alice")

    class Watched(dict):
        looked = 0

        def __getitem__(self, key):
            Watched.looked += 1
            return super().__getitem__(key)

        def get(self, key, default=None):
            Watched.looked += 1
            return super().get(key, default)

        def __iter__(self):
            raise AssertionError("walked the whole store")

        def values(self):
            raise AssertionError("walked the whole store")

        def items(self):
            raise AssertionError("walked the whole store")

    watched = Watched(store._entries)
    monkeypatch.setattr(store, "_entries", watched)
    assert owned(store, "alice") == ["mine"]
    assert store.revoke("alice") == ["mine"]
    assert Watched.looked == 2


def test_a_write_without_an_owner_never_creates_the_index(make_store):
    store = make_store()
    store.set("a", 1)
    store.replace("a", 2)
    store.move("a", "b", 3)
    assert store._owners == {} and counts(store) == (0, 0)


def test_an_undecodable_session_leaves_the_index(make_store, caplog):
    store = make_store()
    store.set("a", 1, owner="alice")
    store._entries["a"].blob = b"not a pickle"
    assert store.get("a") is None
    assert owned(store, "alice") == [] and counts(store) == (0, 0) and store.stats()["bytes"] == 0



@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_forked_child_has_its_own_copy_of_the_index(make_store):
    from tests.test_store_fork import in_child

    store = make_store()
    store.set("a", 1, owner="alice")
    store.set("b", 2, owner="alice")

    def child():
        listed = owned(store, "alice") == ["b", "a"]
        revoked = store.revoke("alice") == ["a", "b"]
        return listed and revoked and counts(store) == (0, 0)

    assert in_child(child)
    assert owned(store, "alice") == ["b", "a"] and counts(store) == (1, 2)  # the parent's is untouched


class CountingLock:
    """The store's lock, recording how many sessions each hold of it removed (through ``_drop``)."""

    def __init__(self, store):
        self.lock, self.store, self.holds, self.dropped = store._lock, store, [], 0
        drop = store._drop

        def counted(entry):
            self.dropped += 1
            drop(entry)

        store._drop = counted

    def acquire(self, *args):
        got = self.lock.acquire(*args)
        self.start = self.dropped
        return got

    def release(self):
        self.holds.append(self.dropped - self.start)
        self.lock.release()

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()


def test_revoking_a_huge_owner_goes_a_chunk_per_hold_of_the_lock(make_store):
    """A shared account with 3,000 sessions: revoke never holds the lock for more than a chunk of them."""
    from lembro_wsgi.store import CHUNK

    store = make_store(max_size="100M")
    for i in range(3_000):
        store.set(f"s{i}", i, owner="guest")
    store.set("anon", 1)
    lock = store._lock = CountingLock(store)
    assert len(store.revoke("guest", keep="s5")) == 2_999
    assert max(lock.holds) <= CHUNK and sum(lock.holds) == 2_999
    assert owned(store, "guest") == ["s5"] and len(store) == 2


def test_a_session_cannot_move_away_while_a_revoke_goes_through_its_owner(make_store, monkeypatch):
    """A sign-in (regenerate: a move) of one of the owner's sessions between two chunks, after 200 newcomers:
    the move fails as a logged-out session's write does, and the revoke reaches the session."""
    import lembro_wsgi.store as store_module

    store = make_store(max_size="100M")
    for i in range(1_000):
        store.set(f"s{i}", i, owner="ana")
    tried = []

    def sign_ins_meanwhile():
        if not tried:
            for i in range(200):
                store.set(f"new{i}", i, owner="ana")  # signed in while the revoke runs: they stay
            tried.append(store.move("s999", "fresh", 999, owner="ana"))
            tried.append(store.move("new0", "new0-moved", 0, owner="ana"))  # not one the revoke goes through

    monkeypatch.setattr(store_module, "_pause", sign_ins_meanwhile)
    revoked = store.revoke("ana", keep="s3")
    assert tried == [False, True]
    assert len(revoked) == 999 and "s999" in revoked and "fresh" not in store
    assert len(owned(store, "ana")) == 1 + 200 and "s3" in owned(store, "ana")
    monkeypatch.setattr(store_module, "_pause", lambda: None)
    assert store.move("s3", "s3-moved", 3, owner="ana")  # done: moves work again
    assert store._revoking == []


def test_owned_by_lists_a_huge_owner_a_chunk_at_a_time_and_never_anothers_data(make_store, monkeypatch):
    """Between two chunks a session changes owner: it is not listed, and its new owner's data is never shown."""
    import lembro_wsgi.store as store_module

    store = make_store(max_size="100M")
    for i in range(600):
        store.set(f"s{i}", {"user": "u", "i": i}, owner="u")
    store.set("anon", 1)

    def taken_over():
        store.replace("s599", {"user": "v", "secret": "v's"}, owner="v")

    monkeypatch.setattr(store_module, "_pause", taken_over)
    lock = store._lock = CountingLock(store)
    found = store.owned_by("u")
    assert len(found) == 599 and all(data["user"] == "u" for _, _, data in found)
    assert [sid for sid, _, _ in store.owned_by("v")] == ["s599"]
    assert len(lock.holds) >= 600 // 128  # a chunk per hold, however many the owner has
