"""Runs Django's own session tests on lembro (see tests/test_django_upstream.py), in a process of its own.

    python -m tests.django_upstream_runner .../sessions_tests/tests.py [Class.test_name ...]

From Django's ``tests/sessions_tests/tests.py`` it keeps the imports and two classes:
``SessionTestsMixin`` (what Django's engines inherit) and ``SessionMiddlewareTests``;
the rest (the db, file, cache and cookie engines' tests, and the import of
``.models``, their custom session model) is left out. ``LembroSessionTests``
runs the mixin with ``backend = lembro_wsgi.django.SessionStore``; the
middleware's tests run with ``SESSION_ENGINE = "lembro_wsgi.django"``, and the
two names of the db engine they use are lembro's here: ``DatabaseSession`` (the
session deleted before the response is saved) and ``Session`` (the stored
record read back). The names given as arguments are left out. The last line
printed is ``lembro-upstream: {json}``, the counts.
"""

import ast
import json
import os
import sys
import types
import unittest
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.django_upstream_settings"

import django

django.setup()

from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import SimpleTestCase
from django.test.runner import DiscoverRunner

import lembro_wsgi.django as engine

KEPT = ("SessionTestsMixin", "SessionMiddlewareTests")


def upstream(path: Path) -> types.ModuleType:
    """Django's test module, with its imports (but ``.models``) and the classes in KEPT only."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    kept = [node for node in tree.body
            if (isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0))
            or (isinstance(node, ast.ClassDef) and node.name in KEPT)]
    found = {node.name for node in kept if isinstance(node, ast.ClassDef)}
    if found != set(KEPT):
        raise SystemExit(f"{path}: no class {sorted(set(KEPT) - found)}")
    module = types.ModuleType("sessions_tests_upstream")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    exec(compile(ast.Module(kept, type_ignores=[]), str(path), "exec"), module.__dict__)  # noqa: S102
    return module


class _Record:
    def __init__(self, session_key: str) -> None:
        self.session_key = session_key

    def get_decoded(self) -> dict:
        return engine.SessionStore(self.session_key).load()


class _Records:
    @staticmethod
    def get(session_key: str) -> _Record:
        if not engine.SessionStore().exists(session_key):
            raise Session.DoesNotExist(session_key)
        return _Record(session_key)


class LembroSession:
    """Stands for ``django.contrib.sessions.models.Session``: ``objects.get(session_key=...)`` reads lembro."""

    DoesNotExist = Session.DoesNotExist
    objects = _Records()


def main(source: str, *excluded: str) -> None:
    module = upstream(Path(source))
    module.DatabaseSession = engine.SessionStore
    module.Session = LembroSession

    # SimpleTestCase: the engine makes no database query
    LembroSessionTests = type("LembroSessionTests", (module.SessionTestsMixin, SimpleTestCase),
                              {"backend": engine.SessionStore, "__module__": module.__name__})

    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    left_out = []
    for case in (LembroSessionTests, module.SessionMiddlewareTests):
        for name in loader.getTestCaseNames(case):
            if f"{case.__name__}.{name}" in excluded:
                left_out.append(f"{case.__name__}.{name}")
            else:
                suite.addTest(case(name))
    unknown = set(excluded) - set(left_out)
    if unknown:
        raise SystemExit(f"excluded but not found: {sorted(unknown)}")

    runner = DiscoverRunner(verbosity=1, interactive=False)
    runner.setup_test_environment()
    databases = runner.setup_databases(aliases=runner.get_databases(suite))
    try:
        result = runner.run_suite(suite)
    finally:
        runner.teardown_databases(databases)
        runner.teardown_test_environment()
        engine._reset()
    print("lembro-upstream: " + json.dumps(counts(result, left_out)), flush=True)


def counts(result: unittest.TestResult, left_out: list[str]) -> dict:
    """What ran and how it went, by test id (a failing subTest counts against its test)."""

    def ids(cases) -> list[str]:
        return sorted({getattr(case, "test_case", case).id() for case in cases})

    failed = ids(case for case, _ in result.failures)
    errors = ids(case for case, _ in result.errors)
    skipped = ids(case for case, _ in result.skipped)
    expected = ids(case for case, _ in result.expectedFailures)
    unexpected = ids(result.unexpectedSuccesses)
    return {
        "django": django.get_version(),
        "backend": settings.LEMBRO_SESSIONS.get("type") or "lembro",
        "ran": result.testsRun,
        "passed": result.testsRun - len({*failed, *errors, *skipped, *expected, *unexpected}),
        "failed": failed, "errors": errors, "skipped": skipped,
        "expected_failures": expected, "unexpected_successes": unexpected, "left_out": left_out,
    }


if __name__ == "__main__":
    main(*sys.argv[1:])
