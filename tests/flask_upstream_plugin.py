"""A pytest plugin for running Flask's own session tests with lembro: every Flask app that would use
Flask's default cookie session gets a fresh LembroSessionInterface (see tests/test_flask_upstream.py)."""

import flask
from _pytest import monkeypatch
from flask.sessions import SecureCookieSessionInterface

import lembro_wsgi.flask as lembro_flask
from lembro_wsgi.flask import LembroSessionInterface

_original_init = flask.Flask.__init__


def _init_with_lembro(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    if type(self.session_interface) is SecureCookieSessionInterface:  # a test's own interface stays
        self.session_interface = LembroSessionInterface(interval=None)
        swapped.append(self.name)


flask.Flask.__init__ = _init_with_lembro
lembro_flask.FLASK_MIN_SECRET = 1  # Flask's tests use short keys ("test key"); lembro refuses them by default

if not hasattr(monkeypatch, "notset"):  # pytest 9.1 renamed it NOTSET; Flask 3.1's conftest uses the old name
    from _pytest.compat import NOTSET

    monkeypatch.notset = NOTSET

#: How many apps got a lembro interface: the run reports it, so a run that never swapped is visible.
swapped = []


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"lembro: {len(swapped)} Flask apps ran with LembroSessionInterface")
