"""A lifetime given to ``set``/``replace``/``move``/``touch``: floats, ini strings, ``math.inf`` (no expiry) and bad
values refused with the option named."""

import math

import pytest

BAD_TIMEOUT = r"^timeout: expected a positive number of seconds up to 1,000,000,000, got "


@pytest.mark.parametrize("timeout", [2.5, "2.5"])
def test_a_per_call_lifetime_as_a_float_or_an_ini_string(make_store, clock, timeout):
    store = make_store(timeout=100)
    store.set("a", 1, timeout=timeout)
    clock.advance(2.4)
    assert store.get("a") == 1
    clock.advance(0.1)
    assert store.get("a") is None


def test_the_longest_lifetime_is_accepted(make_store, clock):
    store = make_store(timeout=1)
    store.set("a", 1, timeout=1e9)
    clock.advance(1e9 - 1)
    assert store.get("a") == 1
    clock.advance(1)
    assert store.get("a") is None


def test_math_inf_is_no_expiry_but_the_caps_still_apply(make_store, clock):
    store = make_store(timeout=10, max_sessions=4)
    store.set("forever", 1, timeout=math.inf)
    store.get("forever")
    clock.advance(10**9)
    assert store.purge() == 0 and store.get("forever") == 1
    for n in range(4):
        store.set(n, n, timeout=math.inf)
        store.get(n)
    assert "forever" not in store  # the oldest used goes first among sessions that never expire
    assert store.stats()["evictions"] == 2


@pytest.mark.parametrize("timeout", [0.0, -1.0, 0, "0", "soon", float("nan"), 2e9])
def test_a_bad_per_call_lifetime_is_refused_and_nothing_is_written(make_store, timeout):
    store = make_store()
    store.set("a", 1)
    for write in (lambda: store.set("a", 2, timeout=timeout), lambda: store.set("b", 2, timeout=timeout),
                  lambda: store.replace("a", 2, timeout=timeout), lambda: store.move("a", "c", 2, timeout=timeout),
                  lambda: store.touch("a", timeout=timeout)):
        with pytest.raises(ValueError, match=BAD_TIMEOUT):
            write()
    assert store.all() == {"a": 1}


def test_replace_and_move_take_a_lifetime_of_their_own(make_store, clock):
    store = make_store(timeout=100)
    store.set("a", 1)
    store.set("b", 1)
    assert store.replace("a", 2, timeout="5") is True
    assert store.move("b", "c", 3, timeout=7.0) is True
    clock.advance(5)
    assert store.all() == {"c": 3}
    clock.advance(2)
    assert store.all() == {}
