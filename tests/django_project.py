"""The Django project the Django tests drive: settings (configured once per process), views and urls.

Importing it configures Django unless something configured it first: sqlite in shared memory (threads see one
database), django.contrib.auth and sessions, ``SESSION_ENGINE = "lembro_wsgi.django"``, this module as the
URLconf. ``LOGGING_CONFIG`` is None so Django leaves the logging of the other tests alone.
"""

import contextlib
import threading

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="the tests' secret key, long enough for Django's checks: 0123456789",
        ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
        ROOT_URLCONF="tests.django_project",
        USE_TZ=True,
        LOGGING_CONFIG=None,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                               "NAME": "file:lembro_django_tests?mode=memory&cache=shared"}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                            "LOCATION": "lembro-django-tests"}},
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware"],
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast: the tests log in often
        SESSION_ENGINE="lembro_wsgi.django",
    )
    django.setup()

from django.contrib.auth import authenticate, login, logout  # Django is configured first
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.urls import path

from lembro_wsgi.django import stats_view

#: The slow view's two gates: ``started`` once it has read the session, and ``release`` to let it finish.
SLOW = {"started": threading.Event(), "release": threading.Event()}


@contextlib.contextmanager
def slow_request(client, path="/slow"):
    """``client.get(path)`` on a thread, held by the view (``/slow``, ``/rotate``) once it has loaded its
    session while the block runs; its response is ``answers["response"]`` after the block."""
    from tests.conftest import GATE

    SLOW["started"].clear()
    SLOW["release"].clear()
    answers = {}
    thread = threading.Thread(target=lambda: answers.update(response=client.get(path)))
    thread.start()
    try:
        assert SLOW["started"].wait(GATE)  # it has loaded its session
        yield answers
    finally:
        SLOW["release"].set()
        thread.join(GATE)


def whoami(request):
    """The counter: visits in this session, and who is signed in."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    user = request.user
    return JsonResponse({"visits": request.session["visits"], "user": user.get_username() or None,
                         "authenticated": user.is_authenticated})


def peek(request):
    """Who is signed in, without a write: the session is read only."""
    return JsonResponse({"authenticated": request.user.is_authenticated,
                         "visits": request.session.get("visits")})


def fill(request):
    """A one-shot client: about 500 bytes of session."""
    request.session["pad"] = "x" * 500
    return HttpResponse("ok")


def big(request):
    """A change larger than a small store's whole cap."""
    request.session["big"] = "y" * 100_000
    return HttpResponse("stored?")


def rotate(request):
    """A new session key for the same data, as django.contrib.auth's update_session_auth_hash() makes one."""
    request.session.get("visits")
    SLOW["started"].set()
    if not SLOW["release"].wait(60):
        return HttpResponse("never released", status=500)
    request.session.cycle_key()
    return HttpResponse("rotated")


def sign_in(request):
    """django.contrib.auth's login() (a new session key, the user's id in the session)."""
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None:
        return HttpResponseBadRequest("bad credentials")
    login(request, user)
    return HttpResponse("signed in")


def sign_out(request):
    logout(request)
    return HttpResponse("signed out")


def slow(request):
    """Reads the session, waits for the test, then changes it: a request running while a logout happens."""
    request.session["slow"] = request.session.get("visits", 0)
    SLOW["started"].set()
    if not SLOW["release"].wait(60):
        return HttpResponse("never released", status=500)
    return HttpResponse("slow done")


def expire(request):
    """``set_expiry`` from ``?seconds=`` (absent: the settings' policy), and a change so the session is saved."""
    seconds = request.GET.get("seconds")
    request.session["expiry"] = seconds
    request.session.set_expiry(None if seconds is None else int(seconds))
    return HttpResponse("ok")


urlpatterns = [
    path("", whoami),
    path("peek", peek),
    path("fill", fill),
    path("big", big),
    path("rotate", rotate),
    path("login", sign_in),
    path("logout", sign_out),
    path("slow", slow),
    path("expire", expire),
    path("lembro/", stats_view),
]
