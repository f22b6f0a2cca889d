"""Render lembro's stats page in a real browser: headless Chromium takes PNGs of it, empty and after floods.

    apt-get install -y chromium                      # Debian's package
    python examples/stats_screenshot.py [OUT_DIR]    # writes the PNGs below into OUT_DIR

Two floods of one-shot clients, each with the same returning users coming
back between waves: under a cap large enough for them (returning users
safe) and under one too small (returning sessions evicted: the page warns).

- ``stats-empty.png``, ``stats-safe.png``, ``stats-too-small.png``: 1100x900, the page as a laptop shows it;
- ``stats-phone.png``: the too-small page 390 px wide, as long as the page.

For each it checks that the page holds the store's exact figures (per tier
too) and the warning exactly when returning sessions were evicted, that
the page has no scrollbar at 1100x900 and none sideways at 390 px, and the
PNG's size; and it prints the figures, so the pictures can be compared with
what the store says.
"""

from __future__ import annotations

import html
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webob import Request

from lembro_wsgi import LembroMiddleware, LembroStore, StatsApp
from lembro_wsgi.stats import ADVICE

WIDTH, HEIGHT = 1100, 900
PHONE = 390
CAP = 256 * 1024
FIGURES = ("bytes", "max_size", "sessions", "evictions", "returning_sessions", "returning_bytes",
           "returning_evictions", "one_shot_sessions", "one_shot_bytes", "one_shot_evictions")


def visit(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A page that keeps a visit count and ~900 bytes in the session."""
    session = environ["lembro.session"]
    session["visits"] = session.get("visits", 0) + 1
    session["page"] = "x" * 900
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def flood(store: LembroStore, returning: int, target: float | None, waves: int = 200) -> None:
    """``returning`` users who come back every wave (two pages a visit), and waves of one-shot clients (one
    page each), a purge after each wave, until usage is near ``target`` (or for ``waves`` waves)."""
    app = LembroMiddleware(visit, store=store)
    cookies: list[str | None] = [None] * returning
    for wave in range(waves):  # bounded
        for user in range(returning):
            for _ in range(2):
                request = Request.blank("/")
                if cookies[user]:
                    request.headers["Cookie"] = cookies[user]
                response = request.get_response(app)
                if "Set-Cookie" in response.headers:  # a first visit, or a new session after an eviction
                    cookies[user] = response.headers["Set-Cookie"].split(";")[0]
        for _ in range(40 + wave % 7 * 10):
            Request.blank("/").get_response(app)
        store.purge()
        share = store.stats()["bytes"] / CAP
        if target is not None and wave > 12 and abs(share - target) < 0.01:
            return


def chromium(browser: str, work: str, width: int, height: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars=false",
         f"--user-data-dir={work}/profile", f"--window-size={width},{height}", *args],
        check=True, capture_output=True, text=True, timeout=120,
    )


def measure(browser: str, page: str, width: int, height: int) -> tuple[int, int, int, int]:
    """How ``page`` lays out in a ``width`` x ``height`` viewport: its scroll width and height, the width
    and height it has (a scrollbar takes its share), and its content's height.

    The page goes into an iframe of that size (headless Chromium keeps its own window at least 500 px
    wide), in a probe page whose one line of script reports the figures; the page itself has no script.
    """
    probe = (f'<!doctype html><body style="margin:0"><iframe id="page" style="border:0;width:{width}px;'
             f'height:{height}px" srcdoc="{html.escape(page, quote=True)}"></iframe><script>'
             "onload=()=>{const d=page.contentDocument.documentElement;document.body.dataset.size="
             "[d.scrollWidth,d.scrollHeight,d.clientWidth,d.clientHeight,Math.ceil(d.getBoundingClientRect().height)]"
             ".join('x')}</script></body>")
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "probe.html"
        path.write_text(probe, encoding="utf-8")
        dom = chromium(browser, work, max(width, 500) + 40, height + 200, "--dump-dom", path.as_uri()).stdout
    found = re.search(r'data-size="(\d+)x(\d+)x(\d+)x(\d+)x(\d+)"', dom)
    if found is None:
        raise RuntimeError("Chromium did not report the page's size")
    return int(found[1]), int(found[2]), int(found[3]), int(found[4]), int(found[5])


def screenshot(browser: str, page: str, png: Path, width: int, height: int) -> None:
    """``page`` rendered by headless Chromium into a ``width`` x ``height`` ``png``."""
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "stats.html"
        path.write_text(page, encoding="utf-8")
        chromium(browser, work, width, height, f"--screenshot={png}", path.as_uri())
    header = png.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"{png} is not a PNG")
    if struct.unpack(">II", header[16:24]) != (width, height) or png.stat().st_size < 10_000:
        raise RuntimeError(f"{png}: {struct.unpack('>II', header[16:24])}, {png.stat().st_size} bytes: not the page")


def check(store: LembroStore) -> str:
    """The page, after checking that it shows every figure of ``store.stats()`` and warns exactly when
    returning sessions were evicted."""
    page = Request.blank("/").get_response(StatsApp(store)).text
    stats = store.stats()
    for figure in FIGURES:
        if f"{stats[figure]:,}" not in page:
            raise RuntimeError(f"the page does not show {figure} = {stats[figure]:,}")
    if stats["returning_sessions"] + stats["one_shot_sessions"] != stats["sessions"]:
        raise RuntimeError(f"the tiers do not add up: {stats}")
    warned = f"returning session{'' if stats['returning_evictions'] == 1 else 's'} evicted.</strong> {ADVICE}"
    if (warned in page) != (stats["returning_evictions"] > 0):
        raise RuntimeError(f"warning shown: {warned in page}, returning evictions: {stats['returning_evictions']}")
    return page


def capture(browser: str, store: LembroStore, png: Path, phone: bool = False) -> None:
    page = check(store)
    if phone:  # as tall as the page, so the picture shows all of it
        scroll_width, _, room, _, page_height = measure(browser, page, PHONE, 4000)
        if scroll_width > room:
            raise RuntimeError(f"{png}: the page is {scroll_width} px wide at {PHONE} px: it scrolls sideways")
        screenshot(browser, page, png, PHONE, page_height)
        size = f"{PHONE}x{page_height}"
    else:
        scroll_width, scroll_height, room, room_height, page_height = measure(browser, page, WIDTH, HEIGHT)
        if scroll_width > room or scroll_height > room_height:
            raise RuntimeError(f"{png}: the page is {scroll_width}x{scroll_height}: it scrolls at {WIDTH}x{HEIGHT}")
        screenshot(browser, page, png, WIDTH, HEIGHT)
        size = f"{WIDTH}x{HEIGHT} (the page {scroll_width}x{page_height}, no scrollbar)"
    s = store.stats()
    print(f"{png}: {size}, {png.stat().st_size:,} bytes; {s['bytes']:,} of {s['max_size']:,} bytes "
          f"({s['bytes'] / s['max_size']:.0%}); sessions {s['sessions']:,} (returning {s['returning_sessions']:,}, "
          f"one-shot {s['one_shot_sessions']:,}); evictions {s['evictions']:,} (returning "
          f"{s['returning_evictions']:,}, one-shot {s['one_shot_evictions']:,}); purges {s['purges']:,}")


def main() -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("no Chromium found: apt-get install -y chromium")
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "stats-screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with LembroStore(interval=None, max_size=CAP) as store:
        capture(browser, store, out / "stats-empty.png")
        flood(store, returning=60, target=0.86)  # ~80 KiB of returning users: the cap holds them
        if store.stats()["returning_evictions"]:
            raise RuntimeError("returning sessions were evicted under a cap large enough for them")
        capture(browser, store, out / "stats-safe.png")
    with LembroStore(interval=None, max_size=CAP) as store:
        flood(store, returning=260, target=None, waves=24)  # ~340 KiB of returning users: more than the cap
        if not store.stats()["returning_evictions"]:
            raise RuntimeError("no returning session was evicted under a cap too small for them")
        capture(browser, store, out / "stats-too-small.png")
        capture(browser, store, out / "stats-phone.png", phone=True)


if __name__ == "__main__":
    main()
