"""Mutation testing of the core modules with mutmut 3: what the tests let through.

Run from the repository root, outside CI (one to two hours on two cores; results are kept in mutants/, so
an interrupted run goes on where it stopped)::

    pip install -e '.[test,mutation]'
    python tools/mutation.py            # mutate, test, then report
    python tools/mutation.py --report   # report the last run again

mutmut's settings (modules, tests, deselected tests) are in pyproject.toml,
``[tool.mutmut]``. Every surviving mutant must be killed by a test or listed,
with the reason it changes no promise, in ``tools/mutation_survivors.txt``
(one ``mutant-name  reason`` per line). The run fails when a module's score
(killed / mutants) is under 90% or a survivor is neither killed nor listed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SURVIVORS = Path(__file__).with_name("mutation_survivors.txt")
TARGET = 0.90
# A failing test, a timeout (an endless loop: SIGXCPU), a type error. Not 255: mutmut's word for its own
# harness failing (pytest could not run the tests it was given), which kills nothing; such mutants are "not run".
KILLED = {1, 3, 36, 37, 24, -24, 152}
SURVIVED = 0
NO_TESTS = {5, 33}


def listed_survivors(path: Path = SURVIVORS) -> dict[str, str]:
    """The survivors accepted as changing no promise: mutant name to reason."""
    listed = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            listed[name] = reason.strip()
    return listed


def results(root: Path = ROOT) -> dict[str, dict[str, int | None]]:
    """Module name to {mutant name: exit code} from mutmut's last run (None: not run)."""
    found = {}
    package = root / "mutants" / "lembro_wsgi"
    for meta in sorted(package.rglob("*.py.meta")):  # backends/ too
        found[meta.relative_to(package).as_posix().removesuffix(".py.meta")] = json.loads(meta.read_text())[
            "exit_code_by_key"]
    return found


def report(found: dict[str, dict[str, int | None]], listed: dict[str, str]) -> bool:
    """Print the score per module and every unexplained survivor; whether every module passes."""
    passed = True
    print(f"{'module':<16} {'mutants':>8} {'killed':>7} {'listed':>7} {'unexplained':>12} {'no tests':>9} {'score':>7}")
    unexplained_names = []
    for module, codes in found.items():
        counts = Counter("killed" if code in KILLED else "survived" if code == SURVIVED else
                         "no tests" if code in NO_TESTS else "not run" for code in codes.values())
        survivors = [name for name, code in codes.items() if code == SURVIVED or code in NO_TESTS]
        unexplained = [name for name in survivors if name not in listed]
        unexplained_names += unexplained
        score = counts["killed"] / len(codes) if codes else 1.0
        passed &= score >= TARGET and not unexplained and not counts["not run"]
        print(f"{module:<16} {len(codes):>8} {counts['killed']:>7} {len(survivors) - len(unexplained):>7} "
              f"{len(unexplained):>12} {counts['no tests']:>9} {score:>7.1%}"
              + (f"  ({counts['not run']} not run)" if counts["not run"] else ""))
    alive = {name for codes in found.values() for name, code in codes.items() if code not in KILLED}
    stale = sorted(set(listed) - alive)
    for name in unexplained_names:
        print(f"unexplained survivor: {name}   (mutmut show '{name}')")
    for name in stale:
        print(f"listed but killed or gone: {name}")
    return passed and not stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report", action="store_true", help="report the last run, do not run mutmut")
    parser.add_argument("--max-children", default="2", help="mutants tested at once (default: 2)")
    options = parser.parse_args()
    if not options.report:
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", options.max_children], cwd=ROOT,
                       check=False)
    found = results()
    if not found:
        print("no results: run without --report first", file=sys.stderr)
        return 2
    return 0 if report(found, listed_survivors()) else 1


if __name__ == "__main__":
    sys.exit(main())
