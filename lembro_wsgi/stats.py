"""StatsApp: a read-only WSGI page showing how full a LembroStore is, for the people who run it.

Mount it wherever you like, behind your own auth::

    from lembro_wsgi import StatsApp
    stats = StatsApp(middleware.store)     # GET: HTML (default) or JSON (Accept or ?format=json)

The page is self-contained (inline CSS and SVG, no JavaScript, no external
assets): the store against its caps, sessions and bytes of the two eviction
tiers (returning users, one-shot clients), owners (the users signed in, by
``owner_key``) and their sessions, evictions by tier (a returning session
evicted is flagged: the cap is too small), expirations, and recent history
sampled at each purge. It never shows session ids, owners or data.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from webob import Request

from .store import LembroStore

_CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:60rem;margin:0 auto;padding:1.2rem 1.5rem}
h1{font-size:1.4rem;margin:0 0 .1rem}p.sub{margin:0 0 .9rem;color:#5a6372}
.alert{background:#fdecea;border:1px solid #e8a49e;border-left:6px solid #d0453b;border-radius:8px;
 padding:.6rem .9rem;margin:0 0 .9rem;color:#7a1f17}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(17rem,1fr));gap:.9rem}
.card{background:#fff;border-radius:10px;padding:.85rem 1.1rem;box-shadow:0 1px 3px rgba(0,0,0,.08);min-width:0}
.card.bad{box-shadow:0 0 0 2px #d0453b}
.card h2{font-size:.95rem;margin:0 0 .3rem;color:#5a6372;font-weight:600}
.big{font-size:1.5rem;font-weight:700;font-variant-numeric:tabular-nums;line-height:1.25}
.of{font-size:.85rem;font-weight:600;color:#5a6372;white-space:nowrap}
.why{color:#5a6372;font-size:.85rem;margin:.3rem 0 0}
.num{font-variant-numeric:tabular-nums}
.gauge{display:block;width:180px;max-width:100%;height:auto}
.tiers{width:100%;border-collapse:collapse;font-size:.9rem;font-variant-numeric:tabular-nums}
.tiers th{text-align:left;font-weight:600;padding:.15rem .4rem .15rem 0}
.tiers td{text-align:right;padding:.15rem 0 .15rem .4rem;white-space:nowrap}
.tiers .k{font-size:.75rem;color:#5a6372;font-weight:400;text-align:right}
.dot{display:inline-block;width:.7em;height:.7em;border-radius:2px;margin-right:.35em;vertical-align:-.05em}
.split{display:flex;height:.6rem;border-radius:4px;overflow:hidden;background:#e4e7ec;margin:.35rem 0 .45rem}
.ok{color:#1f7a52;font-weight:600}.bad-text{color:#b3261e;font-weight:700}
.chart{display:grid;grid-template-columns:auto 1fr auto;column-gap:.4rem;margin:1.1rem 0 0}
.axis{position:relative;height:8.5rem;font-size:.75rem;color:#5a6372;font-variant-numeric:tabular-nums;
 white-space:nowrap}
.axis span{position:absolute;transform:translateY(-50%);line-height:1}
.axis.left span{right:0}.axis.right span{left:0;color:#a86f00}
.axis .w{visibility:hidden;position:static;transform:none}
.plot{position:relative;height:8.5rem}
.plot svg{position:absolute;inset:0;width:100%;height:100%;overflow:visible}
.plot .cap{position:absolute;right:0;transform:translateY(-115%);font-size:.75rem;color:#b3261e;line-height:1}
.xaxis{grid-column:2;display:flex;justify-content:space-between;font-size:.75rem;color:#5a6372;margin-top:.25rem}
.legend{display:flex;flex-wrap:wrap;gap:.2rem 1rem;font-size:.8rem;color:#5a6372;margin:.5rem 0 0}
.line{display:inline-block;width:1.2em;height:0;border-top:2px solid #3b6fd0;vertical-align:.3em;margin-right:.35em}
.line.cap{border-top:2px dashed #d0453b}
@media (max-width:30rem){main{padding:1rem .75rem}.card{padding:.8rem .9rem}}
"""

#: Colours: returning users (kept) and one-shot clients; one-shot evictions (expected) and returning ones (alarm).
_RETURNING, _ONE_SHOT = "#2f9e6e", "#9aa3b2"
_EVICTED_ONE_SHOT, _EVICTED_RETURNING = "#d99a1e", "#d0453b"

#: What the page says when returning users lose their sessions: the one sign that the cap is too small.
ADVICE = "The cap is too small: raise max_size (or max_sessions) until this stays 0."
_SHORT_ADVICE = "Users who came back lost their session: raise the cap."


def humanize(count: int) -> str:
    """``count`` bytes in KiB/MiB/GiB, to stand beside the exact figure."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _tick_bytes(count: float) -> str:
    """An axis label: ``humanize`` without a trailing ``.0``."""
    return humanize(round(count)).replace(".0 ", " ")


def _percent(used: int, cap: int) -> str:
    """``used`` against ``cap`` to one decimal, never rounded to an empty ``0.0%`` or a full ``100.0%``."""
    share = used / cap * 100
    if 0 < share < 0.05:
        return "&lt;0.1%"
    if 99.95 <= share < 100:
        return "&gt;99.9%"
    return f"{share:.1f}%"


def _gauge(used: int, cap: int, label: str) -> str:
    """A half-circle gauge of ``used`` against ``cap``, as inline SVG (the arc shows a sliver for any use)."""
    share = min(used / cap, 1.0) if cap else 0.0
    color = "#2f9e6e" if share < 0.75 else "#d99a1e" if share < 0.95 else "#d0453b"
    arc = max(share * 100, 0.8) if used > 0 else 0.0
    text = _percent(used, cap) if cap else "0.0%"
    return (
        f'<svg class="gauge" width="180" height="100" viewBox="0 0 220 122" role="img" '
        f'aria-label="{html.escape(label)}: {html.unescape(text)}">'
        '<path d="M20 110 A90 90 0 0 1 200 110" fill="none" stroke="#e4e7ec" stroke-width="18"/>'
        f'<path d="M20 110 A90 90 0 0 1 200 110" fill="none" stroke="{color}" stroke-width="18" '
        f'pathLength="100" stroke-dasharray="{arc:.2f} 100"/>'
        f'<text x="110" y="104" text-anchor="middle" style="font:700 26px system-ui,sans-serif;fill:#1d2330">'
        f"{text}</text></svg>"
    )


def _nice(most: int) -> int:
    """The smallest of 1, 2, 4, 6, 8, 10, 20, 40, ... that is at least ``most``: an axis top with whole halves."""
    scale = 1
    while True:
        for step in (1, 2, 4, 6, 8):
            if step * scale >= most:
                return step * scale
        scale *= 10


def _chart(history: list[dict[str, Any]], cap: int) -> str:
    """Bytes (line, against the cap) and evictions per purge interval (bars, one-shot then returning) over the
    sampled history.

    The SVG holds shapes only and stretches to any width; every label is HTML text, so it keeps its size on
    a phone as on a wide screen. Bytes are read on the left axis, evictions on the right (bars use the lower half).
    """
    if len(history) < 2:
        return '<p class="why">History appears after two purges (one sample per purge).</p>'
    count = len(history)
    top = max([cap] + [int(s["bytes"]) for s in history]) or 1
    returning = [int(s.get("returning_evictions", 0)) for s in history]
    one_shot = [int(s["evictions"]) - r for s, r in zip(history, returning)]
    most = _nice(max(int(s["evictions"]) for s in history))

    def y_bytes(value: float) -> float:
        return 100 - 100 * value / top

    def height(value: int) -> float:
        return 50 * value / most

    points = " ".join(f"{i + 0.5},{y_bytes(int(s['bytes'])):.2f}" for i, s in enumerate(history))
    grid = "".join(
        f'<line x1="0" x2="{count}" y1="{y_bytes(cap * q):.2f}" y2="{y_bytes(cap * q):.2f}" stroke="#e4e7ec" '
        'vector-effect="non-scaling-stroke"/>' for q in (0.25, 0.5, 0.75)
    )
    bars = []
    for i, (cold, warm) in enumerate(zip(one_shot, returning)):
        if cold:
            bars.append(f'<rect x="{i + 0.2}" y="{100 - height(cold):.2f}" width="0.6" height="{height(cold):.2f}" '
                        f'fill="{_EVICTED_ONE_SHOT}" opacity=".75"/>')
        if warm:
            bars.append(f'<rect x="{i + 0.2}" y="{100 - height(cold + warm):.2f}" width="0.6" '
                        f'height="{height(warm):.2f}" fill="{_EVICTED_RETURNING}"/>')
    cap_y = y_bytes(cap)
    svg = (
        f'<svg viewBox="0 0 {count} 100" preserveAspectRatio="none" role="img" '
        f'aria-label="bytes used and evictions at each of the last {count} purges">{grid}'
        f'<line x1="0" x2="{count}" y1="100" y2="100" stroke="#c8ccd4" vector-effect="non-scaling-stroke"/>'
        f'{"".join(bars)}'
        f'<line x1="0" x2="{count}" y1="{cap_y:.2f}" y2="{cap_y:.2f}" stroke="#d0453b" stroke-dasharray="5 4" '
        'vector-effect="non-scaling-stroke"/>'
        f'<polyline points="{points}" fill="none" stroke="#3b6fd0" stroke-width="2" stroke-linejoin="round" '
        'vector-effect="non-scaling-stroke"/></svg>'
    )
    left_ticks = [(cap * q, y_bytes(cap * q)) for q in (0, 0.25, 0.5, 0.75, 1)]
    if top > cap:
        left_ticks.append((top, 0.0))
    widest = max((_tick_bytes(v) for v, _ in left_ticks), key=len)
    left = "".join(f'<span style="top:{y:.2f}%">{_tick_bytes(v)}</span>' for v, y in left_ticks)
    right_ticks = [(most, 50.0), (0, 100.0)] if most == 1 else [(most, 50.0), (most // 2, 75.0), (0, 100.0)]
    right = "".join(f'<span style="top:{y:.2f}%">{v:,}</span>' for v, y in right_ticks)
    return (
        '<div class="chart">'
        f'<div class="axis left" aria-hidden="true"><span class="w">{widest}</span>{left}</div>'
        f'<div class="plot">{svg}<span class="cap" style="top:{cap_y:.2f}%">cap</span></div>'
        f'<div class="axis right" aria-hidden="true"><span class="w">{most:,}</span>{right}</div>'
        f'<div class="xaxis"><span>{count - 1} purges ago</span><span>now</span></div></div>'
        '<p class="legend"><span><i class="line"></i>bytes at each purge (left)</span>'
        '<span><i class="line cap"></i>cap</span>'
        f'<span><i class="dot" style="background:{_EVICTED_ONE_SHOT}"></i>one-shot evicted (right)</span>'
        f'<span><i class="dot" style="background:{_EVICTED_RETURNING}"></i>returning evicted (right)</span></p>'
    )


def _card(title: str, figure: str, why: str, extra: str = "", after: str = "", bad: bool = False) -> str:
    return (f'<section class="card{" bad" if bad else ""}"><h2>{html.escape(title)}</h2>{extra}'
            f'<div class="big">{figure}</div>{after}<p class="why">{why}</p></section>')


def _tiers(stats: Mapping[str, Any]) -> str:
    """Returning users against one-shot clients: their share of the bytes, then sessions and bytes each."""
    warm_bytes, cold_bytes = int(stats.get("returning_bytes", 0)), int(stats.get("one_shot_bytes", 0))
    total = warm_bytes + cold_bytes
    bar = ""
    if total:
        bar = (f'<div class="split" role="img" aria-label="share of the bytes: returning users '
               f'{_percent(warm_bytes, total)}, one-shot clients {_percent(cold_bytes, total)}">'
               f'<span style="width:{100 * warm_bytes / total:.2f}%;background:{_RETURNING}"></span>'
               f'<span style="width:{100 * cold_bytes / total:.2f}%;background:{_ONE_SHOT}"></span></div>')
    rows = "".join(
        f'<tr><th><i class="dot" style="background:{color}"></i>{label}</th>'
        f'<td>{int(stats.get(f"{key}_sessions", 0)):,}</td><td>{int(stats.get(f"{key}_bytes", 0)):,}</td></tr>'
        for key, label, color in (("returning", "Returning", _RETURNING), ("one_shot", "One-shot", _ONE_SHOT))
    )
    return (f'{bar}<table class="tiers"><tr><th></th><th class="k">sessions</th><th class="k">bytes</th></tr>'
            f"{rows}</table>")


def _owners(stats: Mapping[str, Any]) -> str:
    """Owners (the values of ``owner_key``: users signed in) and the live sessions they own."""
    rows = "".join(f"<tr><th>{label}</th><td>{int(stats.get(key, 0)):,}</td></tr>"
                   for key, label in (("owners", "Owners"), ("owned_sessions", "Owned sessions")))
    return f'<table class="tiers">{rows}</table>'


#: Under the sessions' figure: what the owners are.
_OWNERS_WHY = " Owners: users signed in (<code>owner_key</code>); owned sessions: the ones they hold."

_BEAKER_STORES = (" Beaker sessions and Beaker caches are kept in a store of their own each (a cache never "
                  "evicts a signed-in user), unless both name one store with <code>store_name</code>.")
#: Shown while the store's ``multiprocess`` is set (by SessionFactory, when the server said ``wsgi.multiprocess``).
_MULTIPROCESS = ('<p class="alert" role="alert"><strong>Several worker processes.</strong> Each keeps its own '
                 "store (this page shows one): a client whose request reaches another worker is signed out. Run "
                 "one process with threads (<code>gunicorn -w 1 --threads 8</code>) or use "
                 "<code>type='ext:redis'</code>.</p>")


def render_html(stats: Mapping[str, Any], history: list[dict[str, Any]], name: str | None = None) -> str:
    """The page for ``stats`` and ``history`` of the store called ``name``: figures as exact integers,
    humanised sizes beside them, and a warning when returning sessions were evicted."""
    used, cap = int(stats["bytes"]), int(stats["max_size"])
    evicted_returning = int(stats.get("returning_evictions", 0))
    evicted_one_shot = int(stats.get("one_shot_evictions", int(stats["evictions"]) - evicted_returning))
    cards = [
        _card("Memory", f'<span class="num">{used:,}</span> <span class="of">of {cap:,} bytes</span>',
              f"{humanize(used)} of {humanize(cap)}; over the cap, evictions bring it to 75%.",
              _gauge(used, cap, "bytes used against the cap")),
    ]
    if stats["max_sessions"]:
        count, limit = int(stats["sessions"]), int(stats["max_sessions"])
        cards.append(_card("Sessions", f"{count:,} of {limit:,}", f"Live sessions against the count cap.{_OWNERS_WHY}",
                           _gauge(count, limit, "sessions against the count cap"), after=_owners(stats)))
    else:
        cards.append(_card("Sessions", f"{int(stats['sessions']):,}",
                           f"Live sessions; no count cap is set.{_OWNERS_WHY}", after=_owners(stats)))
    cards += [
        _card("Returning and one-shot", "", "Returning: read back since written. One-shot: never read back "
              "(crawlers, floods); evicted first.", _tiers(stats)),
        _card("Evictions (size)", f"{int(stats['evictions']):,}",
              f'<span class="bad-text">{html.escape(_SHORT_ADVICE)}</span>' if evicted_returning else
              "Sessions removed to stay under a cap, one-shot clients first. "
              + ('<span class="ok">Returning users are safe: none evicted.</span>' if evicted_one_shot else
                 "None yet."),
              after=(f'<table class="tiers"><tr><th><i class="dot" style="background:{_EVICTED_ONE_SHOT}"></i>'
                     f"One-shot</th><td>{evicted_one_shot:,}</td></tr>"
                     f'<tr><th><i class="dot" style="background:{_EVICTED_RETURNING}"></i>Returning</th>'
                     f'<td{" class=bad-text" if evicted_returning else ""}>{evicted_returning:,}</td></tr></table>'),
              bad=bool(evicted_returning)),
        _card("Expirations (idle)", f"{int(stats['expirations']):,}",
              "Sessions removed after their idle timeout, by the purge or when met."),
        _card("Purges", f"{int(stats['purges']):,}", "Runs of the periodic purge; each adds a history sample."),
    ]
    alert = ""
    if evicted_returning:
        alert = (f'<p class="alert" role="alert"><strong>{evicted_returning:,} returning '
                 f'session{"" if evicted_returning == 1 else "s"} evicted.</strong> {html.escape(ADVICE)}</p>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>lembro session store</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{'Session store' if name is None else html.escape(f'Store {name!r}')}</h1>"
        '<p class="sub">lembro_wsgi: in-memory sessions, purged and capped.'
        f"{'' if name is None else _BEAKER_STORES}</p>{alert}{_MULTIPROCESS if stats.get('multiprocess') else ''}"
        f'<div class="cards">{"".join(cards)}</div>'
        '<section class="card" style="margin-top:.9rem"><h2>Recent history</h2>'
        f"{_chart(history, cap)}</section></main></body></html>"
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
        stats: dict[str, Any] = dict(self.store.stats())
        history = self.store.history()
        if self.store.multiprocess:  # see SessionFactory: a field only once it is true
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
