"""Django's own session tests, run on lembro_wsgi.django: the mixin Django's engines inherit, and its middleware's.

The tests come from the sdist of the installed Django, fetched from PyPI at
test time (never committed) into a cache. A process of their own
(tests/django_upstream_runner.py, settings in tests/django_upstream_settings.py)
runs ``SessionTestsMixin`` with ``backend = lembro_wsgi.django.SessionStore``
and ``SessionMiddlewareTests`` with ``SESSION_ENGINE = "lembro_wsgi.django"``,
on lembro's store and again on Beaker's file backend (``LEMBRO_SESSIONS``
``type``), whose async calls take Django's thread path rather than lembro's
native one. The count of tests is taken from the source, so a run that finds
fewer tests fails.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.upstream import sdist_folder

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("SessionTestsMixin", "SessionMiddlewareTests")

#: Tests left out, "Class.test_name": why. None is: the two db-engine names SessionMiddlewareTests uses are
#: lembro's in the run (DatabaseSession, for a session deleted before the response is saved, and Session, to
#: read the stored record back), so those tests check lembro rather than Django's database table.
EXCLUDED: dict[str, str] = {}


def django_tests():
    """The installed Django's tests/sessions_tests/tests.py (tests/upstream.py fetches it)."""
    return sdist_folder("django", "tests/sessions_tests/") / "tests" / "sessions_tests" / "tests.py"


def upstream_count(tests):
    """How many tests the upstream classes hold (the mixin's run once, in LembroSessionTests)."""
    tree = ast.parse(tests.read_text(encoding="utf-8"))
    return sum(1 for node in tree.body if isinstance(node, ast.ClassDef) and node.name in CLASSES
               for item in node.body
               if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"))


@pytest.mark.parametrize("backend", ["lembro", "file"])
def test_djangos_own_session_tests_pass_on_lembro(backend, tmp_path):
    tests = django_tests()
    sessions = {"max_size": "64M", "interval": None} if backend == "lembro" else {"type": "file",
                                                                                    "data_dir": str(tmp_path)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "DJANGO_SETTINGS_MODULE": "tests.django_upstream_settings",
           "LEMBRO_UPSTREAM_SESSIONS": json.dumps(sessions)}
    run = subprocess.run(
        [sys.executable, "-m", "tests.django_upstream_runner", str(tests), *EXCLUDED],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0 and "lembro-upstream: " in run.stdout, report[-3000:]
    counts = json.loads(run.stdout.split("lembro-upstream: ")[-1])
    expected = upstream_count(tests) - len(EXCLUDED)
    assert counts["backend"] == backend, counts
    assert counts["ran"] == expected >= 70, (expected, counts)  # Django 5.2 and 6.x: 65 of the mixin, 12 more
    assert counts["passed"] == counts["ran"], report[-3000:]
    assert sorted(counts["left_out"]) == sorted(EXCLUDED), counts
