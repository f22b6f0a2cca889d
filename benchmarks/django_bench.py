"""Django's session engines side by side: lembro against the cache engine on LocMem, signed cookies and the database.

    pip install -e '.[bench]'
    python benchmarks/django_bench.py

1. Per request: a counter view behind Django's SessionMiddleware (session read +
   write), 200 returning clients, interleaved rounds, medians; each engine's
   own cost over the same app without sessions.
2. Flood: one signed-in user (who came back once), then one-shot clients that each store ~500
   bytes; is the user still signed in after 300, 1,000 and 3,000 of them?
   lembro with a 64 KiB cap (about 100 such sessions) against the cache
   engine on Django's default LocMemCache (MAX_ENTRIES = 300).
"""

from __future__ import annotations

import asyncio
import io

import django
from django.conf import settings

settings.configure(
    DEBUG=False, SECRET_KEY="benchmark secret of some length, long enough for Django",
    ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, USE_TZ=True,
    INSTALLED_APPS=["django.contrib.sessions"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    SESSION_ENGINE="lembro_wsgi.django", LEMBRO_SESSIONS={"max_size": "64M", "interval": None},
)
django.setup()

from _common import interleaved  # after settings.configure: Django reads them on import
from django.core.cache import caches
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path

import lembro_wsgi.django

ENGINES = {
    "lembro (lembro_wsgi.django)": "lembro_wsgi.django",
    "cache engine, LocMemCache": "django.contrib.sessions.backends.cache",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
    "db, sqlite in memory": "django.contrib.sessions.backends.db",
}
CLIENTS, ROUNDS, REPEATS = 200, 5, 9


def count(request: object) -> HttpResponse:
    session = request.session  # type: ignore[attr-defined]
    session["n"] = session.get("n", 0) + 1
    return HttpResponse(str(session["n"]))


def fill(request: object) -> HttpResponse:
    request.session["pad"] = "x" * 500  # type: ignore[attr-defined]
    return HttpResponse("ok")


urlpatterns = [path("", count), path("fill", fill)]


def handler(engine: str | None) -> WSGIHandler:
    """A WSGI app for ``engine`` (its SessionMiddleware picks the engine when built); None: no middleware."""
    if engine is None:
        with override_settings(MIDDLEWARE=[]):
            return WSGIHandler()
    with override_settings(SESSION_ENGINE=engine):
        return WSGIHandler()


def per_request() -> None:
    apps = {name: handler(engine) for name, engine in ENGINES.items()}
    apps["Django without sessions"] = handler(None)
    cookies = {name: [request(app, "/", None)[1] for _ in range(CLIENTS)] for name, app in apps.items()}
    contenders = {name: (lambda app=app, c=cookies[name]: drive(app, c)) for name, app in apps.items()}
    cost = {name: 1e6 / rate for name, rate in interleaved(contenders, REPEATS).items()}
    base = cost["Django without sessions"]
    lembro = cost["lembro (lembro_wsgi.django)"] - base
    print(f"1. Per request, session read + write, {CLIENTS} returning clients, median of {REPEATS} interleaved rounds")
    print(f"  {'engine':<30} {'us/req':>8} {'engine alone':>13}   against lembro's")
    for name, us in cost.items():
        own = us - base
        print(f"  {name:<30} {us:>8.1f} {own:>10.1f} us   {own / lembro:5.2f}x" if name in ENGINES else
              f"  {name:<30} {us:>8.1f}")


def drive(app: WSGIHandler, cookies: list[str | None]) -> int:
    for _ in range(ROUNDS):
        for cookie in cookies:
            request(app, "/", cookie)
    return ROUNDS * len(cookies)


def flood() -> None:
    print("\n2. Flood: one signed-in user (who came back once), then one-shot clients storing ~500 bytes each; the user still signed in?")
    print(f"  {'engine':<42} {'after 300':>10} {'1,000':>7} {'3,000':>7}")
    for name, engine, options in (
        ("lembro, max_size 64K (~100 sessions)", "lembro_wsgi.django", {"max_size": "64K", "interval": None}),
        ("cache engine, LocMemCache (300 entries)", "django.contrib.sessions.backends.cache", {}),
    ):
        kept = []
        with override_settings(LEMBRO_SESSIONS=options):
            lembro_wsgi.django._reset()
            caches["default"].clear()
            app = handler(engine)
            _, user = request(app, "/", None)
            request(app, "/", user)  # the user came back once: {"n": 2}
            sent = 0
            for target in (300, 1_000, 3_000):
                while sent < target:
                    request(app, "/fill", None)
                    sent += 1
                body, _ = request(app, "/", user)
                kept.append(body != b"1")  # a lost session starts again at 1
        print(f"  {name:<42} " + " ".join(f"{'yes' if k else 'no':>7}" for k in kept))
    lembro_wsgi.django._reset()


def request(app: WSGIHandler, path_info: str, cookie: str | None) -> tuple[bytes, str | None]:
    """One GET: the body, and the cookie sent back (the one it came with, if none was set)."""
    captured: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        captured.extend(v for k, v in headers if k.lower() == "set-cookie")

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path_info, "wsgi.url_scheme": "http", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(), **({"HTTP_COOKIE": cookie} if cookie else {})}
    body = b"".join(app(environ, start_response))
    return body, captured[0].split(";")[0] if captured else cookie


def async_cycle() -> None:
    """An async view's load + save of a session: lembro's native async methods against Django's own, which run
    the sync calls in a thread (what an engine that does I/O needs)."""
    from django.contrib.sessions.backends.base import SessionBase

    from lembro_wsgi.django import SessionStore

    class ViaThread(SessionStore):
        aload, asave, aexists = SessionBase.aload, SessionBase.asave, SessionBase.aexists

    async def cycle(cls: type[SessionStore], key: str, count: int) -> int:
        for _ in range(count):
            session = cls(key)
            await session.aset("n", await session.aget("n", 0) + 1)
            await session.asave()
        return count

    first = SessionStore()
    first["n"] = 0
    first.save()
    rates = interleaved({name: (lambda cls=cls: asyncio.run(cycle(cls, first.session_key, 1_000)))
                         for name, cls in (("native (lembro's)", SessionStore), ("via a thread (Django's)", ViaThread))},
                        REPEATS)
    print("\n3. Async: aget + aset + asave of a stored session, median of interleaved rounds")
    native = rates["native (lembro's)"]
    for name, rate in rates.items():
        print(f"  {name:<30} {1e6 / rate:>8.1f} us   {native / rate:5.1f}x native")


def main() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0)
    per_request()
    flood()
    async_cycle()


if __name__ == "__main__":
    main()
