"""A Django project in one file with lembro sessions: a counter, sign-in and sign-out, and the store's stats.

    python examples/django_app.py              # http://127.0.0.1:8083/
    python examples/django_app.py --port 0     # any free port (the line it prints names it)

One setting makes ``request.session`` live in a bounded lembro store:
``SESSION_ENGINE = "lembro_wsgi.django"`` (its options in ``LEMBRO_SESSIONS``).
Sign-in and sign-out are django.contrib.auth's ``login()`` and ``logout()``,
on sqlite in memory with one demo user made at startup (its password is
random, printed at startup). The cookie is Django's (django_app.sid, a name
of its own, so that examples served side by side do not sign each other
out); SECRET_KEY comes from SESSION_SECRET (random for the run if unset; a
placeholder or a short secret is refused). Forms that POST carry Django's
CSRF token (kept in the session); /stats (lembro's stats_view) answers
requests from this machine only.
"""

from __future__ import annotations

import html
import secrets
from typing import Any

import django
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, login, logout
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.urls import path
from example_guard import cookie_secret, from_this_machine
from example_page import page
from example_server import serve

from lembro_wsgi.django import stats_view

TITLE = "lembro_wsgi: a Django project"
PORT, COOKIE = 8083, "django_app.sid"  # each example has its own port and cookie name
DEMO_USER = "demo"
#: The demo user's password: random for the run, printed at startup.
DEMO_PASSWORD = secrets.token_urlsafe(12)


def csrf_field(request: HttpRequest) -> str:
    return f'<input type="hidden" name="csrfmiddlewaretoken" value="{get_token(request)}">'


def count(request: HttpRequest) -> HttpResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    who = html.escape(request.user.get_username() if request.user.is_authenticated else "anonymous")
    return HttpResponse(page(TITLE, f"<p>Hello {who}. Visits in this session: {request.session['visits']}</p>"))


def sign_in(request: HttpRequest) -> HttpResponse:
    notes = []
    if request.method == "POST":  # CsrfViewMiddleware has checked the token
        user = authenticate(request, username=request.POST.get("username", ""),
                            password=request.POST.get("password", ""))
        if user is not None:
            login(request, user)  # a new session key, the visits kept
            return HttpResponseRedirect("/", status=303)
        notes.append("Wrong name or password.")
    form = (f'<form method="post">{csrf_field(request)}<input name="username" placeholder="name" value="{DEMO_USER}"> '
            '<input name="password" type="password" placeholder="password"> <button>log in</button></form>'
            "<p>The demo user's password is printed where the app was started.</p>")
    return HttpResponse(page(TITLE, form, notes))


def sign_out(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":  # a link may not sign you out: a POST with the token does
        return HttpResponse(page(TITLE, f'<form method="post">{csrf_field(request)}<button>log out</button></form>'))
    logout(request)  # the session is destroyed: a request still running cannot bring it back
    return HttpResponse(page(TITLE, "<p>Logged out: the old session is gone.</p>"))


def stats(request: HttpRequest) -> HttpResponse:
    if not from_this_machine(request.META):  # figures about your users: not for everyone
        return HttpResponseForbidden("Forbidden: this page answers only requests from this machine.\n",
                                     content_type="text/plain; charset=utf-8")
    return stats_view(request)


def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponseNotFound("")  # not a visit


def csrf_refused(request: HttpRequest, reason: str = "") -> HttpResponse:
    return HttpResponseForbidden("Forbidden: a form of this site must be sent.\n",
                                 content_type="text/plain; charset=utf-8")


urlpatterns = [
    path("", count),
    path("login", sign_in),
    path("logout", sign_out),
    path("stats", stats),
    path("favicon.ico", favicon),
]


def make_app(**lembro_options: Any) -> WSGIHandler:
    """Configure Django (once per process), make the tables and the demo user; ``lembro_options`` are
    LEMBRO_SESSIONS (the store's options)."""
    secret = cookie_secret()  # first: a refused secret stops it before anything is set up
    settings.configure(
        DEBUG=False,
        SECRET_KEY=secret,
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"],  # this machine only, as the server
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"],
        # in memory, one database for all the server's threads
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "file:django_app?mode=memory&cache=shared"}},
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.middleware.csrf.CsrfViewMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware"],
        SESSION_ENGINE="lembro_wsgi.django",
        LEMBRO_SESSIONS=lembro_options or {"max_size": "1M", "interval": 60},
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_SAMESITE="Lax",
        CSRF_USE_SESSIONS=True,  # the token in the session: one cookie
        CSRF_FAILURE_VIEW=f"{__name__}.csrf_refused",
    )
    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    get_user_model().objects.create_user(DEMO_USER, password=DEMO_PASSWORD)
    return WSGIHandler()


def main() -> None:
    serve(make_app, PORT, __doc__.splitlines()[0], threaded=True, banner=f"demo user: {DEMO_USER}, password: {DEMO_PASSWORD}")


if __name__ == "__main__":
    main()
