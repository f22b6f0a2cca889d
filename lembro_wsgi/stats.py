"""StatsApp: a read-only WSGI page showing how full a LembroStore is, for the people who run it.

Mount it wherever you like, behind your own auth::

    from lembro_wsgi import StatsApp
    stats = StatsApp(middleware.store)     # GET: HTML (default) or JSON (Accept or ?format=json)

The page is self-contained (inline CSS and SVG, no JavaScript, no external
assets): the store against its caps, recent history sampled at each purge,
evictions and expirations. It never shows session ids or data.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any, Callable
from urllib.parse import parse_qs

from webob import Request

from .store import LembroStore

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:60rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.4rem;margin:0 0 .2rem}p.sub{margin:0 0 1.2rem;color:#5a6372}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(17rem,1fr));gap:1rem}
.card{background:#fff;border-radius:10px;padding:1rem 1.2rem;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card h2{font-size:.95rem;margin:0 0 .4rem;color:#5a6372;font-weight:600}
.big{font-size:1.6rem;font-weight:700;font-variant-numeric:tabular-nums}
.why{color:#5a6372;font-size:.85rem;margin:.3rem 0 0}
.num{font-variant-numeric:tabular-nums}
svg text{font:12px system-ui,sans-serif;fill:#5a6372}
"""


def humanize(count: int) -> str:
    """``count`` bytes in KiB/MiB/GiB, to stand beside the exact figure."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _gauge(used: int, cap: int, label: str) -> str:
    """A half-circle gauge of ``used`` against ``cap``, as inline SVG."""
    share = min(used / cap, 1.0) if cap else 0.0
    color = "#2f9e6e" if share < 0.75 else "#d99a1e" if share < 0.95 else "#d0453b"
    return (
        f'<svg width="220" height="124" viewBox="0 0 220 124" role="img" aria-label="{html.escape(label)}">'
        '<path d="M20 110 A90 90 0 0 1 200 110" fill="none" stroke="#e4e7ec" stroke-width="18"/>'
        f'<path d="M20 110 A90 90 0 0 1 200 110" fill="none" stroke="{color}" stroke-width="18" '
        f'pathLength="100" stroke-dasharray="{share * 100:.2f} 100"/>'
        f'<text x="110" y="104" text-anchor="middle" style="font-size:22px;font-weight:700;fill:#1d2330">'
        f"{share * 100:.1f}%</text></svg>"
    )


def _chart(history: list[dict[str, Any]], cap: int) -> str:
    """Bytes (line, against the cap) and evictions per interval (bars) over the sampled history, as SVG."""
    width, height, pad = 560, 160, 28
    if len(history) < 2:
        return '<p class="why">History appears after two purges (one sample per purge).</p>'
    step = (width - 2 * pad) / (len(history) - 1)
    top = max([cap] + [int(s["bytes"]) for s in history]) or 1
    most = max(int(s["evictions"]) for s in history) or 1
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - (height - 2 * pad) * int(s['bytes']) / top:.1f}"
        for i, s in enumerate(history)
    )
    bars = "".join(
        f'<rect x="{pad + i * step - 3:.1f}" y="{height - pad - 40 * int(s["evictions"]) / most:.1f}" width="6" '
        f'height="{40 * int(s["evictions"]) / most:.1f}" fill="#d99a1e" opacity=".7"/>'
        for i, s in enumerate(history) if s["evictions"]
    )
    cap_y = height - pad - (height - 2 * pad) * cap / top
    return (
        f'<svg width="100%" viewBox="0 0 {width} {height}" role="img" aria-label="bytes and evictions over time">'
        f'<line x1="{pad}" y1="{cap_y:.1f}" x2="{width - pad}" y2="{cap_y:.1f}" stroke="#d0453b" '
        f'stroke-dasharray="4 4"/><text x="{width - pad}" y="{cap_y - 4:.1f}" text-anchor="end">cap</text>'
        f'{bars}<polyline points="{points}" fill="none" stroke="#3b6fd0" stroke-width="2"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#c8ccd4"/>'
        f'<text x="{pad}" y="{height - 8}">{len(history) - 1} purges ago</text>'
        f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">now</text></svg>'
    )


def _card(title: str, figure: str, why: str, extra: str = "") -> str:
    return (f'<section class="card"><h2>{html.escape(title)}</h2>{extra}<div class="big">{figure}</div>'
            f'<p class="why">{html.escape(why)}</p></section>')


_BEAKER_STORES = (" Beaker sessions and Beaker caches are kept in a store of their own each (a cache never "
                  "evicts a signed-in user), unless both name one store with <code>store_name</code>.")
#: Shown while the store's ``multiprocess`` is set (by SessionFactory, when the server said ``wsgi.multiprocess``).
_MULTIPROCESS = ('<p class="alert" role="alert"><strong>Several worker processes.</strong> Each keeps its own '
                 "store (this page shows one): a client whose request reaches another worker is signed out. Run "
                 "one process with threads (<code>gunicorn -w 1 --threads 8</code>) or use "
                 "<code>type='ext:redis'</code>.</p>")


def render_html(stats: dict[str, Any], history: list[dict[str, Any]], name: str | None = None) -> str:
    """The page for ``stats`` and ``history`` of the store called ``name``: figures as exact integers,
    humanised sizes beside them."""
    used, cap = int(stats["bytes"]), int(stats["max_size"])
    cards = [
        _card("Memory", f'<span class="num">{used:,}</span> of {cap:,} bytes',
              f"{humanize(used)} of {humanize(cap)}. Over the cap, one batch of evictions brings it to 75%.",
              _gauge(used, cap, "bytes used against the cap")),
    ]
    if stats["max_sessions"]:
        count, limit = int(stats["sessions"]), int(stats["max_sessions"])
        cards.append(_card("Sessions", f"{count:,} of {limit:,}", "Live sessions against the count cap.",
                           _gauge(count, limit, "sessions against the count cap")))
    else:
        cards.append(_card("Sessions", f"{int(stats['sessions']):,}", "Live sessions; no count cap is set."))
    cards += [
        _card("Evictions (size)", f"{int(stats['evictions']):,}",
              "Sessions removed to stay under a cap, one-shot clients first. Steady growth: raise the cap."),
        _card("Expirations (idle)", f"{int(stats['expirations']):,}",
              "Sessions removed after their idle timeout, by the purge or when met."),
        _card("Purges", f"{int(stats['purges']):,}", "Runs of the periodic purge; each adds a history sample."),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>lembro session store</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{'Session store' if name is None else html.escape(f'Store {name!r}')}</h1>"
        '<p class="sub">lembro_wsgi: in-memory sessions, purged and capped.'
        f"{'' if name is None else _BEAKER_STORES}</p>{_MULTIPROCESS if stats.get('multiprocess') else ''}"
        f'<div class="cards">{"".join(cards)}</div>'
        '<section class="card" style="margin-top:1rem"><h2>Recent history</h2>'
        f"{_chart(history, cap)}"
        '<p class="why">Blue: bytes used at each purge, against the cap (dashed). Amber: evictions since the '
        "sample before.</p></section></main></body></html>"
    )


#: What the page can be; JSON is offered with and without a charset, since WebOb matches parameters exactly.
_OFFERS = ["text/html", "application/json", "application/json; charset=utf-8"]


class StatsApp:
    """Read-only WSGI app for a store's figures: HTML by default, JSON on ``Accept`` or ``?format=json``."""

    def __init__(self, store: LembroStore) -> None:
        if not isinstance(store, LembroStore):
            raise ValueError(f"store: expected a LembroStore, got {store!r}")
        self.store = store

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")])
            return [b"405 Method Not Allowed: this page is read-only\n"]
        stats, history = self.store.stats(), self.store.history()
        if getattr(self.store, "multiprocess", False):  # see SessionFactory: a field only once it is true
            stats = {**stats, "multiprocess": True}
        if self._wants_json(environ):
            body = json.dumps({**stats, "name": self.store.name, "history": history}).encode()
            content_type = "application/json"
        else:
            body = render_html(stats, history, self.store.name).encode()
            content_type = "text/html; charset=utf-8"
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store"), ("Vary", "Accept")])
        return [] if method == "HEAD" else [body]

    @staticmethod
    def _wants_json(environ: dict[str, Any]) -> bool:
        fmt = parse_qs(environ.get("QUERY_STRING", "")).get("format", [""])[-1]
        if fmt:
            return bool(fmt == "json")
        if not environ.get("HTTP_ACCEPT"):
            return False
        offers = Request(environ).accept.acceptable_offers(_OFFERS)
        return bool(offers) and offers[0][0].startswith("application/json")
