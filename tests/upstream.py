"""A framework's own tests, from the sdist of the installed release on PyPI: fetched at test time into a cache
(``LEMBRO_TEST_CACHE``, else the temp dir), never committed.

    folder = sdist_folder("flask", "tests/")    # <cache>/flask-3.1.3, holding tests/ only
"""

import os
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

import pytest


def sdist_folder(project, wanted):
    """The installed ``project``'s sdist unpacked (only the paths under ``wanted``), once per machine; skips
    (fails under CI) when PyPI is out of reach."""
    release = version(project)
    cache = Path(os.environ.get("LEMBRO_TEST_CACHE", Path(tempfile.gettempdir()) / "lembro-test-cache"))
    folder = cache / f"{project}-{release}"
    if (folder / wanted).exists():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
         f"{project}=={release}", "-d", str(cache)],
        check=False, capture_output=True, text=True, timeout=300,
    )
    archive = next((path for path in cache.glob("*.tar.gz") if path.name.lower() == f"{project}-{release}.tar.gz"),
                   None)
    if fetched.returncode != 0 or archive is None:
        reason = f"could not fetch {project} {release}'s sdist from PyPI: {fetched.stderr.strip()[-300:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with tarfile.open(archive) as sdist:
        members = [m for m in sdist.getmembers() if m.name.lower().startswith(f"{project}-{release}/{wanted}")]
        for member in members:  # one spelling of the top folder, whatever the sdist's
            member.name = f"{project}-{release}/" + member.name.split("/", 1)[1]
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        sdist.extractall(cache, members=members, **safe)  # PyPI's sdist, the wanted files only
    return folder
