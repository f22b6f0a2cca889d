"""The public API is typed so that a type checker catches the mistakes users make: a misspelt option, a
stats page on an integration whose store may be missing."""

import inspect
import textwrap

import pytest
from mypy import api

from lembro_wsgi.factory import SessionFactory, SessionOptions, StoreOptions

SNIPPET = """
from typing import Any, Iterable

import flask
from lembro_wsgi import LembroMiddleware, StatsApp
from lembro_wsgi.bottle import LembroPlugin
from lembro_wsgi.flask import LembroSession, LembroSessionInterface
from lembro_wsgi.pyramid import LembroSessionFactory


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    return []


good = LembroMiddleware(app, max_size="4M", secret="a secret, long enough", type=None)
stats = StatsApp(good.store)                                   # the README's stats snippet
LembroMiddleware(app, type="ext:redis", url="redis://127.0.0.1:6379/0", key_prefix="shop:")
LembroMiddleware(app, maxSize="4M")                            # mistake: maxSize
LembroPlugin(keyword="admin", cookie_nme="admin.sid")          # mistake: cookie_nme
LembroSessionFactory(intervall=30)                             # mistake: intervall
LembroSessionInterface(cookie_name="sid")                      # mistake: cookie_name (Flask's config names it)
LembroSession(flask.Flask(__name__), max_sise="4M")            # mistake: max_sise
reveal_type(good.store)                                        # reveal: store
reveal_type(StatsApp(LembroSessionInterface().store).store.stats())  # reveal: stats
"""
LINES = {line.split("# ")[-1].split(" (")[0]: number
         for number, line in enumerate(textwrap.dedent(SNIPPET).lstrip("\n").splitlines(), 1) if "# " in line}


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory):
    path = tmp_path_factory.mktemp("typing") / "snippet.py"
    path.write_text(textwrap.dedent(SNIPPET).lstrip("\n"))
    stdout, stderr, _ = api.run([str(path), "--strict", "--no-error-summary", "--hide-error-context",
                                 "--cache-dir", str(path.parent / ".mypy_cache")])
    assert not stderr, stderr
    found: dict[int, str] = {}
    for line in stdout.splitlines():
        if line.startswith(str(path)):
            number = int(line.split(":")[1])
            found[number] = found.get(number, "") + line + "\n"
    return found


@pytest.mark.parametrize("option", ["maxSize", "cookie_nme", "intervall", "cookie_name", "max_sise"])
def test_a_misspelt_or_misplaced_option_is_a_type_error(mypy_output, option):
    line = LINES[f"mistake: {option}"]
    assert f'Unexpected keyword argument "{option}"' in mypy_output.get(line, ""), mypy_output


def test_correct_use_and_the_stats_snippet_type_check(mypy_output):
    first = min(LINES.values())
    assert all(line >= first for line in mypy_output), mypy_output  # nothing above the mistakes is flagged
    store = mypy_output[LINES["reveal: store"]]
    assert 'Revealed type is "lembro_wsgi.store.LembroStore"' in store
    assert "StoreStats" in mypy_output[LINES["reveal: stats"]]


def test_the_typed_options_are_exactly_the_factorys():
    """SessionOptions lists SessionFactory's keywords (but session_class, which integrations set)."""
    parameters = set(inspect.signature(SessionFactory).parameters) - {"backend_options", "session_class"}
    backend = set(StoreOptions.__optional_keys__) - {"interval", "max_size", "max_sessions", "timeout", "store",
                                                      "type", "key_prefix", "owner_key", "max_per_owner"}
    assert set(SessionOptions.__optional_keys__) - backend == parameters
