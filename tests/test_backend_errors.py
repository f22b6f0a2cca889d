"""What a backend's errors mean (``backend_error``), what the errors lembro raises say, and how a backend that
cannot be built is refused at construction, naming the option.
"""

import importlib.util

import pytest
import redis
import webtest

from lembro_wsgi import BackendFull, BackendUnavailable, LembroMiddleware
from lembro_wsgi.backend import SessionBackend, backend_error
from tests.redis_server import ScriptedRedis
from tests.wsgi_apps import session_app


def error_from(module):
    """An exception class defined in ``module``, as a client library (that the tests do not install) defines its own."""
    return type("Error", (Exception,), {"__module__": module})


@pytest.mark.parametrize("module", ["memcache", "pylibmc", "pylibmc._pylibmc", "bmemcached.exceptions",
                                    "pymongo.errors", "sqlalchemy.exc", "sqlalchemy.orm.exc"])
def test_any_error_of_a_backends_client_library_is_backend_unavailable(module):
    assert backend_error(error_from(module)("the server went away")) is BackendUnavailable


@pytest.mark.parametrize("module", ["myapp.errors", "memcache_helpers", "builtins"])
def test_an_error_of_no_client_library_is_no_backend_error(module):
    assert backend_error(error_from(module)("a record that does not load")) is None


def test_redis_py_errors_are_told_apart_by_their_class():
    """The classes redis-py raises with the code stripped from the message: found by class alone."""
    errors = redis.exceptions
    assert backend_error(errors.ConnectionError("Error 111 connecting to 127.0.0.1:1.")) is BackendUnavailable
    assert backend_error(errors.TimeoutError("Timeout reading from socket")) is BackendUnavailable
    assert backend_error(errors.MasterDownError("Link with MASTER is down")) is BackendUnavailable
    assert backend_error(errors.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")) is BackendFull


@pytest.mark.parametrize("reply, kind", [("NOREPLICAS Not enough good replicas to write.", BackendUnavailable),
                                         ("OOM command not allowed", BackendFull), ("BUSYKEY Target key exists", None)])
def test_an_error_as_redis_py_6_builds_it_is_told_apart_by_the_code_in_its_message(reply, kind):
    """redis-py 6 and before (setup.py takes redis>=4) have no ``status_code`` attribute at all."""
    error = redis.exceptions.ResponseError(reply)
    if hasattr(error, "status_code"):
        del error.status_code
    assert backend_error(error) is kind


def test_a_refusal_names_the_redis_error_code_redis_py_keeps_beside_its_class():
    """redis-py strips ``READONLY`` from the message of its ReadOnlyError and keeps it in ``status_code``: the
    BackendUnavailable message still says which refusal it was."""
    if not hasattr(redis.exceptions.RedisError(), "status_code"):  # redis-py 6 and before
        pytest.skip(f"redis-py {redis.__version__} keeps no status_code")
    with ScriptedRedis(b"-READONLY You can't write against a read only replica.") as fake:
        app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=fake.url))
        with pytest.raises(BackendUnavailable) as caught:
            app.get("/inc")
    assert str(caught.value).endswith(" is unavailable (redis.exceptions.ReadOnlyError: READONLY)")


def test_a_full_redis_is_backend_full_naming_the_backend():
    with ScriptedRedis(b"-OOM command not allowed when used memory > 'maxmemory'.") as fake:
        backend = SessionBackend(type="ext:redis", url=fake.url)
        with pytest.raises(BackendFull, match=r"^session backend 'ext:redis' is out of memory$"):
            backend.save("sid", {"created": 0.0, "accessed": 0.0, "data": {}})


# -- Refused at construction, naming the option ----------------------------------------------------------------

def test_a_lembro_backend_without_a_store_is_refused_naming_the_option():
    with pytest.raises(ValueError, match=r"^store: a LembroStore is needed for the lembro backend$"):
        SessionBackend()
    with pytest.raises(ValueError, match=r"^store: "):
        SessionBackend(type="lembro")


@pytest.mark.parametrize("kind, clients, needs", [
    ("ext:mongodb", ["pymongo"], "needs pymongo, which is not installed: pip install pymongo"),
    ("ext:memcached", ["pylibmc", "memcache", "bmemcached"],
     "needs a memcached client, which is not installed: pip install pylibmc (or python-memcached)"),
    ("ext:google", ["google"], "needs its client library, which is not installed: see Beaker's documentation"),
])
def test_a_backend_whose_client_is_not_installed_says_what_to_install(kind, clients, needs):
    """Beaker says it two ways: an ImportError, or "pymongo3 is not available"; either is the same answer."""
    if any(importlib.util.find_spec(client) for client in clients):
        pytest.skip(f"{kind}'s client is installed here")
    with pytest.raises(ValueError) as caught:
        SessionBackend(type=kind, url="127.0.0.1:1")
    assert str(caught.value) == f"type: {kind!r} {needs}"


@pytest.mark.parametrize("url", ["notaurl", "redis://127.0.0.1:notaport/0"])
def test_a_url_the_redis_client_refuses_is_a_value_error_naming_an_option_given(url):
    """The client's own words follow; the message opens with an option the caller passed (never a word of the
    client's message)."""
    with pytest.raises(ValueError, match=r"^(type|url): refused by type='ext:redis': ") as caught:
        SessionBackend(type="ext:redis", url=url)
    assert str(caught.value.__cause__) in str(caught.value)


def test_an_option_that_clashes_with_the_backends_own_arguments_is_a_value_error(tmp_path):
    """Beaker's managers take the namespace first: passing it too cannot work, and fails when built, the message
    opening with an option the caller passed."""
    with pytest.raises(ValueError, match=r"^(type|namespace): required by type='file'"):
        SessionBackend(type="file", data_dir=str(tmp_path), namespace="mine")
