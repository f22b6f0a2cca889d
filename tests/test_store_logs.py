"""What the store logs about a session: its id cut to a short id (README: "Session ids are logged only as their
first 6 characters"), a refusal at WARNING once per id, and a record that no longer loads."""

import logging
import re
import sys
import types

import pytest

from lembro_wsgi import SessionTooLarge

TOO_BIG = "x" * 5000


def refusal_ids(caplog, level=logging.WARNING):
    """The ids named by the store's refusal lines at ``level``, as logged."""
    return [re.match(r"refused session (.*?): ", r.getMessage()).group(1)
            for r in caplog.records if r.levelno == level and r.getMessage().startswith("refused session ")]


def refuse(store, sid, caplog):
    with caplog.at_level(logging.DEBUG, logger="lembro_wsgi"), pytest.raises(SessionTooLarge):
        store.set(sid, TOO_BIG)


@pytest.mark.parametrize(
    "sid, logged",
    [
        ("SvKkCtXIUHd8eBsAeYmaXE6CMe2Uj7JsMkYsOLCrhKo", "SvKkCt…"),  # a real id: its first 6 characters
        ("abcdefg", "abcdef…"),
        ("abcdef", "abcdef"),  # nothing cut, so nothing marked as cut
        ("ab", "ab"),  # a two-character str is not a (namespace, key) pair
        (1234567890, "123456…"),  # any hashable id, even one without a len()
        (b"\xffsession-key", "\\xffse…"),  # bytes that are not ASCII are shown escaped, never refused for it
        (("reports", "monthly"), "reports/monthly"),  # Beaker's (namespace, key), short enough to show whole
        (("a-cache-namespace", "a-key-of-a-cache-that-is-long"), "a-cache-name…/a-key-of-a-cache-that-is…"),
        (("SvKkCtXIUHd8eBsAeYmaXE6CMe2Uj7JsMkYsOLCrhKo", "session"), "SvKkCt…/session"),  # a session: 6, as ids
        (("lembro.sid:SvKkCtXIUHd8eBsAeYmaXE6CMe2Uj7JsMkYsOLCrhKo", "session"), "lembro.sid:SvKkCt…/session"),
    ],
)
def test_a_refused_session_is_logged_by_its_short_id(make_store, caplog, sid, logged):
    store = make_store(max_size="4K")
    refuse(store, sid, caplog)
    assert refusal_ids(caplog) == [logged]


def test_a_refused_session_is_warned_about_once_then_at_debug(make_store, caplog):
    store = make_store(max_size="4K")
    for _ in range(3):
        refuse(store, "retrying-client", caplog)
    refuse(store, "another-client", caplog)
    assert refusal_ids(caplog) == ["retryi…", "anothe…"]
    assert refusal_ids(caplog, logging.DEBUG) == ["retryi…", "retryi…"]
    assert all("4096" in r.getMessage() for r in caplog.records)  # the cap it is over


def module_with_class(name):
    """A module holding a class ``Cart``, as an app's models module would; delete it to 'rename' the class."""
    module = types.ModuleType(name)
    cart = type("Cart", (), {"__module__": name})
    module.Cart = cart
    sys.modules[name] = module
    return module


@pytest.fixture
def models():
    module = module_with_class("lembro_test_shop_models")
    yield module
    sys.modules.pop("lembro_test_shop_models", None)


def undecodable_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "no longer loads" in r.getMessage()]


@pytest.mark.parametrize("read", ["get", "all"])
def test_a_record_that_no_longer_loads_is_absent_dropped_and_logged_once(make_store, caplog, models, read):
    store = make_store()
    store.set("renamed-class-session", {"cart": models.Cart()})
    store.set("other", {"n": 1})
    del models.Cart  # the deploy renamed the class
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        if read == "get":
            assert store.get("renamed-class-session") is None
        else:
            assert store.all() == {"other": {"n": 1}}
        assert store.get("renamed-class-session") is None
        assert store.all() == {"other": {"n": 1}}
    (message,) = undecodable_warnings(caplog)  # dropped at once: met only once
    assert "session rename…:" in message and "renamed-class-session" not in message
    assert "AttributeError" in message and "Cart" in message  # what failed, for whoever reads the log
    assert "renamed-class-session" not in store and store.ids() == ["other"]
    assert store.stats()["sessions"] == 1
    alone = make_store()
    alone.set("other", {"n": 1})
    assert store.stats()["bytes"] == alone.stats()["bytes"]  # its bytes went with it


class RewrittenWhileLoading:
    """A record whose loading fails after the session was written again, or destroyed, by another request."""

    def __init__(self, action):
        self.action = action

    def __reduce__(self):
        return (_act_then_fail, (self.action,))


_pending = {}


def _act_then_fail(action):
    _pending[action]()
    raise ModuleNotFoundError("No module named 'old_models'")


@pytest.mark.parametrize("read", ["get", "all"])
def test_a_session_written_again_while_its_old_record_failed_to_load_is_kept(make_store, caplog, read):
    store = make_store()
    store.set("racing-session", RewrittenWhileLoading("rewrite"))
    _pending["rewrite"] = lambda: store.set("racing-session", {"fresh": 1})
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        assert (store.get("racing-session") if read == "get" else store.all()) in (None, {})
    assert len(undecodable_warnings(caplog)) == 1
    assert store.get("racing-session") == {"fresh": 1}


def test_a_session_destroyed_while_its_record_failed_to_load_stays_gone(make_store, caplog):
    store = make_store()
    store.set("logged-out", RewrittenWhileLoading("destroy"))
    _pending["destroy"] = lambda: store.destroy("logged-out")
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        assert store.get("logged-out") is None
    assert len(undecodable_warnings(caplog)) == 1
    assert "logged-out" not in store and store.stats()["bytes"] == 0
