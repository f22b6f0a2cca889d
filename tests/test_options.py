import pytest

from lembro_wsgi import LembroStore, parse_size
from lembro_wsgi.options import parse_bool, parse_count, parse_seconds


@pytest.mark.parametrize(
    "value, expected",
    [
        (1, 1),
        (1048576, 1048576),
        ("1048576", 1048576),
        ("512K", 512 * 1024),
        ("512k", 512 * 1024),
        ("4M", 4 * 1024**2),
        ("4mb", 4 * 1024**2),
        ("4MiB", 4 * 1024**2),
        ("1g", 1024**3),
        ("1.5M", int(1.5 * 1024**2)),
        (" 2 K ", 2048),
        ("100b", 100),
    ],
)
def test_parse_size_accepts(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", [0, -1, "0", "-1K", "abc", "4T", "4 MBs", "", "1.2.3M", None, True, 1.5, [1]])
def test_parse_size_rejects_naming_the_value(value):
    with pytest.raises(ValueError) as info:
        parse_size(value, "max_size")
    assert "max_size" in str(info.value)
    assert repr(value) in str(info.value)


def test_parse_seconds_and_count():
    assert parse_seconds("60", "interval") == 60.0
    assert parse_seconds(0.5, "interval") == 0.5
    assert parse_seconds("none", "timeout", allow_none=True) is None
    assert parse_count("10000", "max_sessions") == 10000
    assert parse_count("None", "max_sessions") is None
    assert parse_bool("yes", "secure") is True
    assert parse_bool("off", "secure") is False
    for bad in (0, -5, "soon", float("inf"), float("nan"), True, None):
        with pytest.raises(ValueError, match="interval"):
            parse_seconds(bad, "interval")
    for bad in (0, -1, "1.5", "many", 2.0, False):
        with pytest.raises(ValueError, match="max_sessions"):
            parse_count(bad, "max_sessions")
    with pytest.raises(ValueError, match="secure"):
        parse_bool("maybe", "secure")


@pytest.mark.parametrize(
    "option, value",
    [
        ("interval", 0),
        ("interval", "often"),
        ("max_size", "lots"),
        ("max_size", 0),
        ("max_sessions", -3),
        ("max_sessions", "x"),
        ("timeout", -1),
        ("timeout", "forever"),
        ("clock", 5),
        ("on_evict", "print"),
    ],
)
def test_store_rejects_bad_options_at_construction(option, value):
    with pytest.raises(ValueError) as info:
        LembroStore(**{option: value})
    assert option in str(info.value)
    assert repr(value) in str(info.value)


def test_store_accepts_ini_strings():
    store = LembroStore(interval="30", max_size="4M", max_sessions="10000", timeout="none")
    try:
        assert (store.interval, store.max_size, store.max_sessions, store.timeout) == (30.0, 4 * 1024**2, 10000, None)
    finally:
        store.close()


def test_every_bad_option_is_a_value_error_naming_it():
    from lembro_wsgi import LembroMiddleware

    def app(environ, start_response):
        return []

    cases = [
        (lambda: LembroMiddleware(app, type="file"), "data_dir"),
        (lambda: LembroStore(foo=1), "foo"),
        (lambda: LembroMiddleware(app, secret=["a long enough secret", "short"]), r"secret\[1\]"),
        (lambda: LembroMiddleware(app, secret=["short", "a long enough secret"]), r"secret\[0\]"),
        (lambda: LembroMiddleware(app, secret="short"), "secret"),
        (lambda: LembroMiddleware(app, secure=2), "secure"),
        (lambda: LembroMiddleware(app, type="ext:redis"), "url"),
    ]
    for build, name in cases:
        with pytest.raises(ValueError, match=f"^{name}: "):
            build()
    with pytest.raises(ValueError) as refused:
        LembroMiddleware(app, secret=["a long enough secret", "tiny-secret"])
    assert "tiny-secret" not in str(refused.value)


@pytest.mark.parametrize("value, expected", [(1, True), (0, False), ("1", True), ("off", False), (True, True)])
def test_booleans_accept_one_and_zero(value, expected):
    from lembro_wsgi import LembroMiddleware

    middleware = LembroMiddleware(lambda environ, start_response: [], secure=value, samesite="Lax")
    assert middleware.sessions.cookie.secure is expected


@pytest.mark.parametrize("option, value", [
    ("timeout", 10**400), ("interval", 10**400), ("interval", 1e10), ("max_size", 10**400),
    ("max_size", "9" * 400 + "K"), ("samesite", ["Lax"]), ("max_age", 10**20), ("domain", "exa mple.com"),
    ("domain", "example.com,evil.com"),
])
def test_huge_or_malformed_values_are_refused_when_built(option, value):
    from lembro_wsgi import LembroMiddleware

    with pytest.raises(ValueError, match=f"^{option}: "):
        LembroMiddleware(lambda environ, start_response: [], **{option: value})


def test_registry_tells_true_from_one():
    from lembro_wsgi import get_store, reset_stores, store_for

    store_for(interval=1)
    with pytest.raises(ValueError, match="^interval: "):
        store_for(interval=True)
    with pytest.raises(ValueError, match="^interval: "):
        get_store(interval=True)
    reset_stores()


@pytest.mark.parametrize("given, expected", [("none", None), (None, None), ("60", 60.0), (60, 60.0)])
def test_namespace_manager_timeout_takes_ini_spellings(given, expected):
    from lembro_wsgi import LembroNamespaceManager

    assert LembroNamespaceManager("ns", timeout=given, store=LembroStore(interval=None)).timeout == expected


@pytest.mark.parametrize("given", [-5.0, 0.0, float("nan"), float("inf"), "soon", "", "  "])
def test_namespace_manager_refuses_a_bad_timeout_naming_it(given):
    from lembro_wsgi import LembroNamespaceManager

    with pytest.raises(ValueError, match="timeout"):
        LembroNamespaceManager("ns", timeout=given, store=LembroStore(interval=None))


@pytest.mark.parametrize("given", [-5, 0, "soon", float("nan"), True])
def test_session_backend_refuses_a_bad_timeout_when_built(given, tmp_path):
    from lembro_wsgi.backend import SessionBackend

    with pytest.raises(ValueError, match="^timeout: "):
        SessionBackend(store=LembroStore(interval=None), timeout=given)
    with pytest.raises(ValueError, match="^timeout: "):
        SessionBackend(type="file", data_dir=str(tmp_path), timeout=given)


def test_session_backend_takes_ini_spellings_of_its_timeout(tmp_path):
    from lembro_wsgi.backend import SessionBackend

    backend = SessionBackend(store=LembroStore(interval=None), timeout="60")
    backend.save("sid", {"created": 0.0, "accessed": 0.0, "data": {"n": 1}})
    assert backend.timeout == 60.0 and backend.load("sid")["data"] == {"n": 1}
    assert SessionBackend(type="file", data_dir=str(tmp_path), timeout="none").timeout is None


@pytest.mark.parametrize("option", ["timeout", "interval"])
def test_an_empty_timeout_or_interval_is_refused_not_read_as_none(option):
    """An unset variable in an ini (``lembro.timeout =``) must not mean "never expire" or "never purge"."""
    from lembro_wsgi import LembroMiddleware

    with pytest.raises(ValueError, match=f"^{option}: .*spelt 'none'.*got ''"):
        LembroMiddleware(lambda environ, start_response: [], **{option: ""})
