"""Backend URLs: shown with any password masked, and bounded by socket timeouts unless they set their own.

``mask_url`` is what every ``BackendUnavailable`` message shows; ``bounded_redis_url`` is why a Redis that stops
answering costs a request seconds, not forever (README, "Outgrowing one process").
"""

import pytest
import redis

from lembro_wsgi import BackendUnavailable, LembroMiddleware
from lembro_wsgi.backend import SessionBackend, bounded_redis_url, mask_url
from tests.redis_server import free_port
from tests.wsgi_apps import session_app

BOUND = "socket_timeout=2&socket_connect_timeout=2"


@pytest.mark.parametrize("url, shown", [
    ("redis://user:p@ss@127.0.0.1/0", "redis://user:***@127.0.0.1/0"),  # an "@" in the password
    ("redis://user:pa:ss@h/0", "redis://user:***@h/0"),  # a ":" in the password
    ("redis://user@h/0", "redis://user@h/0"),  # a user name alone is no secret
    ("redis://h/0?password=pw&ssl=&db=1", "redis://h/0?password=***&ssl=&db=1"),  # blank values kept as they were
    ("redis://u:pw@h/0?db=1&name=a%20b", "redis://u:***@h/0?db=1&name=a%20b"),  # a query with no secret, untouched
])
def test_only_the_password_of_a_url_is_masked(url, shown):
    assert mask_url(url) == shown


@pytest.mark.parametrize("value, shown", [(5, "<int>"), (None, "<NoneType>"), (["redis://:pw@h/0"], "<list>")])
def test_a_url_that_is_no_string_is_shown_by_its_type_only(value, shown):
    assert mask_url(value) == shown


@pytest.mark.parametrize("url, bounded", [
    ("redis://h/0", f"redis://h/0?{BOUND}"),
    ("redis://h/0?db=1", f"redis://h/0?db=1&{BOUND}"),
    ("redis://h/0#frag", f"redis://h/0?{BOUND}#frag"),
    ("redis://h/0?db=1#frag", f"redis://h/0?db=1&{BOUND}#frag"),
    ("redis://h/0?socket_timeout=5", "redis://h/0?socket_timeout=5&socket_connect_timeout=2"),
    ("redis://h/0?socket_connect_timeout=1", "redis://h/0?socket_connect_timeout=1&socket_timeout=2"),
    ("redis://h/0?socket_timeout=5&socket_connect_timeout=1", "redis://h/0?socket_timeout=5&socket_connect_timeout=1"),
])
def test_redis_urls_get_the_timeouts_they_do_not_set_themselves(url, bounded):
    assert bounded_redis_url(url) == bounded


def test_the_redis_client_of_a_backend_gives_up_after_two_seconds_unless_the_url_says_otherwise():
    """What the bounded URL is for: the socket timeouts redis-py reads from the URL the backend hands Beaker."""
    port = free_port()
    bounded = SessionBackend(type="ext:redis", url=f"redis://127.0.0.1:{port}/0")
    assert bounded.options["url"] == f"redis://127.0.0.1:{port}/0?{BOUND}"
    own = SessionBackend(type="ext:redis", url=f"redis://127.0.0.1:{port}/0?socket_timeout=0.3")
    blank = SessionBackend(type="ext:redis", url=f"redis://127.0.0.1:{port}/0?socket_timeout=")  # redis-py: unset
    for backend, timeout in ((bounded, 2.0), (own, 0.3), (blank, 2.0)):
        kwargs = redis.Redis.from_url(backend.options["url"]).connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (timeout, 2.0)


def test_redis_down_names_the_backend_its_masked_url_and_the_clients_error():
    """Nothing listens on the port: the whole message, as an operator reads it."""
    port = free_port()
    app = LembroMiddleware(session_app, type="ext:redis", url=f"redis://:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(BackendUnavailable) as caught:
        app.sessions.backend.load("sid")
    assert str(caught.value) == (f"session backend 'ext:redis' at redis://:***@127.0.0.1:{port}/0?{BOUND} "
                                 "is unavailable (redis.exceptions.ConnectionError)")
