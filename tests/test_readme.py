"""Every ```python block of the README runs, with the names it needs supplied by the preamble shown here; the
scripts and extras its commands name exist; and it is written for its readers (one secret variable, no notes
from development)."""

import ast
import re
import subprocess
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


def promised(line):
    """``(expression, value)`` when ``line`` is ``expression  # value...`` and the comment opens with a Python
    literal (``store.get("sid")  # {'user': 42}: a copy``), else ``None``: the value the README promises."""
    code, hash_, comment = line.partition("  # ")
    if not hash_ or not code.strip():
        return None
    try:
        ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return None
    for end in range(len(comment), 0, -1):  # the longest opening of the comment that is a literal
        try:
            return code.strip(), ast.literal_eval(comment[:end].strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
    return None


def with_promises_checked(block):
    """``block`` with each line whose comment promises a value turned into an assertion of that value."""
    lines = []
    for line in block.splitlines():
        found = promised(line)
        indent = line[: len(line) - len(line.lstrip())]
        lines.append(f"{indent}assert ({found[0]}) == {found[1]!r}, {line.strip()!r}" if found else line)
    return "\n".join(lines)


def test_the_readme_promises_values_in_its_comments_and_they_are_checked():
    checked = [promised(line) for block in BLOCKS for line in block.splitlines() if promised(line)]
    assert ('store.get("sid")', {"user": 42}) in checked


@pytest.mark.parametrize("block", BLOCKS, ids=[block.strip().splitlines()[0][:40] for block in BLOCKS])
def test_readme_python_block_runs(block, monkeypatch):
    from lembro_wsgi import reset_stores

    monkeypatch.setenv("SESSION_SECRET", "a README secret, long enough")
    module = types.ModuleType("readme_block")  # Pyramid's Configurator looks its caller up in sys.modules
    monkeypatch.setitem(sys.modules, module.__name__, module)
    source = preamble(block) + "\n" + with_promises_checked(block)
    try:
        exec(compile(source, str(README), "exec"), module.__dict__)  # noqa: S102
    finally:
        reset_stores()


# The README's commands, and the README written for its readers.

ROOT = README.parent
TEXT = README.read_text()
SECRET_COMMAND = "export SESSION_SECRET=\"$(python -c 'import secrets; print(secrets.token_urlsafe(32))')\""


def setup_requirements():
    """``install_requires`` and ``extras_require`` of setup.py, read without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup")
    keywords = {keyword.arg: keyword.value for keyword in call.keywords}
    return ast.literal_eval(keywords["install_requires"]), ast.literal_eval(keywords["extras_require"])


def distribution(requirement):
    """The normalised distribution name of a requirement or an import name (PEP 503: case and -_. alike)."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()


def test_the_readme_speaks_to_its_readers():
    """No development notes: internal goals marked missed, design references, the project's seed, run labels."""
    for pattern in (r"\(missed\b", r"\bDESIGN\b", r"\bthe seed\b", r"\bseed's\b", r"\brun [A-Z]\b", r"\bgoal\b"):
        assert not re.search(pattern, TEXT), pattern


def test_one_variable_for_the_secret_and_the_command_that_sets_it():
    """SESSION_SECRET in the README, the examples, their ini files and the package's docstrings; no other name."""
    assert TEXT.count(SECRET_COMMAND) == 1
    assert TEXT.index(SECRET_COMMAND) < TEXT.index("\n## ")  # near the top, before the first section
    looked_up = re.findall(r"os\.environ(?:\.get\()?\[?[\"']([A-Z_]*SECRET[A-Z_]*)", TEXT)
    assert looked_up and set(looked_up) == {"SESSION_SECRET"}, looked_up
    assert 'app.secret_key = os.environ["SESSION_SECRET"]' in TEXT
    texts = {path: path.read_text() for pattern in ("examples/*.py", "examples/*.ini") for path in ROOT.glob(pattern)}
    texts.update({path: ast.get_docstring(ast.parse(path.read_text())) or "" for path in ROOT.glob("lembro_wsgi/*.py")})
    texts[README] = TEXT
    for path, text in texts.items():
        assert "LEMBRO_SECRET" not in text and not re.search(r"environ\S*SECRET_KEY\b", text), path
    guard = (ROOT / "examples" / "example_guard.py").read_text()
    assert 'os.environ.get("SESSION_SECRET")' in guard


def test_the_secret_command_makes_a_secret_the_examples_take():
    inner = re.search(r"python -c '([^']*)'", SECRET_COMMAND).group(1)
    made = subprocess.run([sys.executable, "-c", inner], check=True, capture_output=True, text=True).stdout.strip()
    assert len(made) == 43 and re.fullmatch(r"[A-Za-z0-9_-]+", made)


def test_every_script_the_readme_runs_exists():
    scripts = set(re.findall(r"python ((?:examples|benchmarks)/\w+\.py)", TEXT))
    assert {"examples/wsgi_app.py", "benchmarks/run_all.py", "benchmarks/flask_flood.py"} <= scripts
    for script in scripts:
        assert (ROOT / script).is_file(), script


def test_every_extra_the_readme_installs_exists():
    _, extras = setup_requirements()
    named = re.findall(r"pip install (?:-e )?'(?:\.|lembro_wsgi)\[([\w,]+)\]'", TEXT)
    assert "bench" in named and "test" in named
    for group in named:
        for extra in group.split(","):
            assert extra in extras, extra


def test_the_bench_extra_brings_everything_the_benchmarks_import():
    """`pip install -e '.[bench]'` then any benchmark: Flask-Session was missing, so its row could not be redone."""
    install, extras = setup_requirements()
    declared = {distribution(requirement) for requirement in install + extras["bench"]}
    local = {path.stem for path in (ROOT / "benchmarks").glob("*.py")} | {"lembro_wsgi"}
    imported = set()
    for path in (ROOT / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported - local if name not in sys.stdlib_module_names and name != "__future__"}
    assert "flask_session" in third_party
    for name in third_party:
        assert distribution(name) in declared, name


def test_run_all_runs_every_benchmark_script():
    """Every script with a main, run by run_all.py as a subprocess, or its contenders in run_all's own table."""
    run_all = (ROOT / "benchmarks" / "run_all.py").read_text()
    for path in (ROOT / "benchmarks").glob("*.py"):
        if path.name != "run_all.py" and '__name__ == "__main__"' in path.read_text():
            assert f'run("{path.name}"' in run_all or f"from {path.stem} import" in run_all, path.name
    assert 'run("flask_flood.py")' in run_all
