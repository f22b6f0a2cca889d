"""The look shared by the example apps: one small stylesheet, a heading and the links between pages."""

from __future__ import annotations

import html

CSS = """body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:40rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;border-radius:10px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}h1{font-size:1.35rem;margin:0 0 1rem}nav{margin-top:1.5rem;color:#5a6372}
nav a{color:#3b6fd0;text-decoration:none;margin-right:.8rem}em{color:#2f7a55}
input{font:inherit;padding:.3rem .5rem}button{font:inherit;padding:.3rem .8rem}"""


def page(title: str, body: str, notes: list[str] | None = None) -> str:
    """A whole HTML page: heading, flash notes (escaped), the body (HTML), and the navigation."""
    flashes = "".join(f"<p><em>{html.escape(note)}</em></p>" for note in notes or [])
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body><main><h1>{html.escape(title)}</h1>{flashes}{body}"
        '<nav><a href="/">count</a><a href="/login">log in</a><a href="/logout">log out</a>'
        '<a href="/stats">stats</a></nav></main></body></html>'
    )
