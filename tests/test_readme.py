"""Every ```python block of the README runs, with the names it needs supplied by the preamble shown here."""

import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)]

#: Names a block takes from the app around it, keyed by a line that identifies the block.
PREAMBLES = {
    'config = Configurator(settings=settings)': 'settings = {"lembro.max_size": "4M", "lembro.secret": "x" * 32}',
    "LembroSession(app)": "import flask\napp = flask.Flask(__name__)",
    "wsgi_app = LembroMiddleware(wsgi_app": (
        "import bottle, flask\nfrom pyramid.config import Configurator\n"
        "def wsgi_app(environ, start_response): return []\n"
        "config = Configurator()\nbottle_app = bottle.Bottle()\nflask_app = flask.Flask(__name__)"
    ),
    "@app.errorhandler(BackendUnavailable)": "import flask\napp = flask.Flask(__name__)",
    'SessionMiddleware(app, {"session.type": "lembro"': "def app(environ, start_response): return []",
    "sessions = LembroMiddleware(site,": "def site(environ, start_response): return []",
    "REGISTRY.register(LembroCollector(sessions.store": (
        "from prometheus_client import CollectorRegistry\nimport prometheus_client\n"
        "prometheus_client.REGISTRY = CollectorRegistry()  # a private registry for the test\n"
        "from lembro_wsgi import LembroMiddleware\n"
        "sessions = LembroMiddleware(lambda environ, start_response: [])"
    ),
}


def preamble(block):
    found = [text for marker, text in PREAMBLES.items() if marker in block]
    assert len(found) <= 1
    return found[0] if found else ""


def test_the_readme_has_its_snippets_and_every_preamble_is_used():
    assert len(BLOCKS) >= 12
    for marker in PREAMBLES:
        assert any(marker in block for block in BLOCKS), f"no README block for the preamble {marker!r}"


@pytest.mark.parametrize("block", BLOCKS, ids=[block.strip().splitlines()[0][:40] for block in BLOCKS])
def test_readme_python_block_runs(block, monkeypatch):
    from lembro_wsgi import reset_stores

    monkeypatch.setenv("SESSION_SECRET", "a README secret, long enough")
    monkeypatch.setenv("SECRET_KEY", "a flask secret key")
    module = types.ModuleType("readme_block")  # Pyramid's Configurator looks its caller up in sys.modules
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        exec(compile(preamble(block) + "\n" + block, str(README), "exec"), module.__dict__)  # noqa: S102
    finally:
        reset_stores()
