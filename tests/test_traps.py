"""The mistakes users make get a clear word, not silence: misspelt options, the unbounded backend lembro
replaces, a framework or client that is not installed."""

import logging
import subprocess
import sys

import pytest
import webtest
from beaker.middleware import SessionMiddleware

from lembro_wsgi import LembroMiddleware, LembroStore, reset_stores


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.mark.parametrize("spelling", ["maxSize", "max-size", "maxsize", "MaxSize", "max_szie"])
def test_a_misspelt_option_suggests_the_right_one(spelling):
    with pytest.raises(ValueError, match=f"^{spelling}: not an option; did you mean 'max_size'\\?$"):
        LembroMiddleware(app, **{spelling: "1M"})


def test_a_misspelt_option_beside_another_backend_is_caught_too(tmp_path):
    """A backend ignores options it does not know: a lembro option misspelt there would vanish."""
    with pytest.raises(ValueError, match="^keyPrefix: not an option; did you mean 'key_prefix'"):
        LembroMiddleware(app, type="file", data_dir=str(tmp_path), keyPrefix="shop:")
    LembroMiddleware(app, type="file", data_dir=str(tmp_path), lock_dir=str(tmp_path))  # its own options pass


def test_an_unknown_option_with_no_close_match_says_what_it_is():
    with pytest.raises(ValueError, match="^bogus: not a lembro option \\(backend options need type="):
        LembroMiddleware(app, bogus=1)
    with pytest.raises(ValueError, match="^intervall: not an option; did you mean 'interval'"):
        LembroStore(intervall=5)


def test_the_unbounded_memory_backend_is_named_as_the_risk_it_is(caplog):
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        LembroMiddleware(app, type="memory")
    (record,) = [r for r in caplog.records if r.name == "lembro_wsgi"]
    assert "type='memory' is Beaker's unbounded backend" in record.getMessage() and "ext:redis" in record.getMessage()


def test_a_beaker_option_that_looks_like_lembros_is_warned_about_once(caplog):
    reset_stores()
    def counter(environ, start_response):
        session = environ["beaker.session"]
        session["n"] = session.get("n", 0) + 1
        session.save()
        return app(environ, start_response)

    beaker = webtest.TestApp(SessionMiddleware(
        counter, {"session.type": "lembro", "session.maxsize": "4M", "session.lock_dir": "/tmp/unused"},
    ))
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        for _ in range(3):
            assert beaker.get("/").text == "ok"
    warned = [r.getMessage() for r in caplog.records if r.name == "lembro_wsgi"]
    assert warned == ["Beaker session option 'maxsize' is not a lembro option and is ignored; did you mean 'max_size'?"]
    reset_stores()


@pytest.mark.parametrize("module, blocked, extra", [
    ("lembro_wsgi.flask", "flask", "flask"),
    ("lembro_wsgi.bottle", "bottle", "bottle"),
])
def test_a_missing_framework_names_the_extra_to_install(module, blocked, extra):
    code = f"import sys; sys.modules[{blocked!r}] = None\nimport {module}"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"ModuleNotFoundError: {module} needs" in result.stderr
    assert f"pip install 'lembro_wsgi[{extra}]'" in result.stderr


def test_a_missing_redis_client_names_the_extra_to_install():
    code = ("import sys; sys.modules['redis'] = None\n"
            "from lembro_wsgi import LembroMiddleware\n"
            "LembroMiddleware(lambda e, s: [], type='ext:redis', url='redis://127.0.0.1:1/0')")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert "ValueError: type: 'ext:redis' needs the redis client, which is not installed: " \
           "pip install 'lembro_wsgi[redis]'" in result.stderr


def test_a_suggestion_is_never_the_option_refused_nor_one_refused_next():
    from lembro_wsgi.bottle import LembroPlugin

    with pytest.raises(ValueError, match="^environ_key: not a lembro option"):
        LembroPlugin(environ_key="x")  # only the middleware takes it: no "did you mean 'environ_key'"


def test_a_store_name_is_one_store_whoever_asks_first_and_the_default_names_are_reserved():
    from lembro_wsgi import get_store, store_for

    reset_stores()
    early = store_for(max_size="4M", name="shared")  # a stats page built before the first request
    beaker = webtest.TestApp(SessionMiddleware(
        lambda environ, start_response: (environ["beaker.session"].__setitem__("n", 1),
                                         environ["beaker.session"].save(), app(environ, start_response))[2],
        {"session.type": "lembro", "session.store_name": "shared", "session.max_size": "4M"},
    ))
    beaker.get("/")
    assert get_store(name="shared") is early and len(early) == 1
    with pytest.raises(ValueError, match="store_name: 'sessions' is the name of the default store"):
        webtest.TestApp(SessionMiddleware(beaker.app.wrap_app, {"session.type": "lembro",
                                                                "session.store_name": "sessions"})).get("/")
    reset_stores()


def test_beaker_sessions_and_caches_are_each_warned_about_their_own_misspelling(caplog):
    from beaker.cache import CacheManager

    reset_stores()
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        CacheManager(type="lembro", maxsize="4M").get_cache("c").put("k", "v")
    assert any("Beaker cache option 'maxsize'" in r.getMessage() for r in caplog.records)
    reset_stores()


def test_the_pyramid_factory_refuses_a_session_class_of_its_own():
    from lembro_wsgi.pyramid import LembroSessionFactory

    with pytest.raises(ValueError, match="^session_class: the Pyramid integration sets it"):
        LembroSessionFactory(session_class=object)
