"""Render lembro's stats page in a real browser: headless Chromium takes a PNG of it, empty and after a flood.

    apt-get install -y chromium                      # Debian's package
    python examples/stats_screenshot.py [OUT_DIR]    # writes OUT_DIR/stats-empty.png, stats-flood.png

It checks each PNG's size and that the page holds the store's exact figures,
and prints them, so the pictures can be compared with what the store says.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from webob import Request

from lembro_wsgi import LembroMiddleware, LembroStore, StatsApp

WIDTH, HEIGHT = 1100, 900
CAP = 256 * 1024


def flood(store: LembroStore, target: float) -> None:
    """One-shot clients through the middleware, with purges between waves, until usage is near ``target``."""

    def visit(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def]
        environ["lembro.session"]["page"] = "x" * 900
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = LembroMiddleware(visit, store=store)
    for wave in range(200):  # bounded
        for _ in range(40 + wave % 7 * 10):
            Request.blank("/").get_response(app)
        store.purge()
        share = store.stats()["bytes"] / CAP
        if wave > 12 and abs(share - target) < 0.01:
            return


def screenshot(browser: str, html: str, png: Path) -> tuple[int, int]:
    """``html`` rendered by headless Chromium into ``png``; returns the picture's width and height."""
    with tempfile.TemporaryDirectory() as work:
        page = Path(work) / "stats.html"
        page.write_text(html, encoding="utf-8")
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={work}/profile",
             f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    header = png.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"{png} is not a PNG")
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def capture(browser: str, store: LembroStore, png: Path) -> None:
    response = Request.blank("/").get_response(StatsApp(store))
    stats = store.stats()
    for figure in ("bytes", "max_size", "sessions", "evictions"):
        if f"{stats[figure]:,}" not in response.text:
            raise RuntimeError(f"the page does not show {figure} = {stats[figure]:,}")
    width, height = screenshot(browser, response.text, png)
    if (width, height) != (WIDTH, HEIGHT) or png.stat().st_size < 10_000:
        raise RuntimeError(f"{png}: {width}x{height}, {png.stat().st_size} bytes: not the page")
    print(f"{png}: {width}x{height}, {png.stat().st_size:,} bytes; sessions {stats['sessions']:,}, "
          f"{stats['bytes']:,} of {stats['max_size']:,} bytes ({stats['bytes'] / stats['max_size']:.0%}), "
          f"evictions {stats['evictions']:,}, purges {stats['purges']:,}")


def main() -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("no Chromium found: apt-get install -y chromium")
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "stats-screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with LembroStore(interval=None, max_size=CAP) as store:
        capture(browser, store, out / "stats-empty.png")
        flood(store, target=0.86)
        capture(browser, store, out / "stats-flood.png")


if __name__ == "__main__":
    main()
