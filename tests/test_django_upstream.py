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
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("SessionTestsMixin", "SessionMiddlewareTests")

#: Tests left out, "Class.test_name": why. None is: the two db-engine names SessionMiddlewareTests uses are
#: lembro's in the run (DatabaseSession, for a session deleted before the response is saved, and Session, to
#: read the stored record back), so those tests check lembro rather than Django's database table.
EXCLUDED: dict[str, str] = {}


def django_tests():
    """The installed Django's sdist, its tests/sessions_tests/ unpacked once per machine; skips (fails under CI)
    when PyPI is out of reach."""
    release = version("django")
    cache = Path(os.environ.get("LEMBRO_TEST_CACHE", Path(tempfile.gettempdir()) / "lembro-test-cache"))
    tests = cache / f"django-{release}" / "tests" / "sessions_tests" / "tests.py"
    if tests.exists():
        return tests
    cache.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
         f"django=={release}", "-d", str(cache)],
        check=False, capture_output=True, text=True, timeout=300,
    )
    archive = next((path for path in cache.glob("*.tar.gz") if path.name.lower() == f"django-{release}.tar.gz"),
                   None)
    if fetched.returncode != 0 or archive is None:
        reason = f"could not fetch Django {release}'s sdist from PyPI: {fetched.stderr.strip()[-300:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with tarfile.open(archive) as sdist:
        members = [m for m in sdist.getmembers()
                   if m.name.lower().startswith(f"django-{release}/tests/sessions_tests/")]
        for member in members:  # one spelling of the top folder, whatever the sdist's
            member.name = f"django-{release}/" + member.name.split("/", 1)[1]
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        sdist.extractall(cache, members=members, **safe)  # PyPI's Django sdist, the session tests only
    return tests


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
