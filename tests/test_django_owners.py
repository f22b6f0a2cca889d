"""Who is signed in where, on the Django engine: ``lembro_wsgi.django.owned_by`` and ``revoke``, and
``LEMBRO_SESSIONS["max_per_owner"]``, through django.test.Client with real logins (django.contrib.auth on sqlite,
tests/django_project.py), with no ``owner_key`` set: django.contrib.auth's ``'_auth_user_id'`` owns sessions.

The scenarios run on a lembro store and on the suite's redis-server (whose owners' index is shared).
"""

import time
import uuid
from types import SimpleNamespace

import pytest
import webtest
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.sessions.backends.base import UpdateError
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.http import HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import path

import lembro_wsgi.django
from lembro_wsgi import LembroStore
from lembro_wsgi.django import SessionStore, owned_by, revoke
from tests import django_project  # configures Django (once for the run)

COOKIE = "sessionid"  # Django's SESSION_COOKIE_NAME
PASSWORD = "a password of the owners' tests"
ANA, BRUNO, CARLA = "owner-ana", "owner-bruno", "owner-carla"

# Views of the owners' pages, beside the project's own (tests/django_project.py).

def mine(request):
    """The signed-in user's sessions, and this request's key."""
    return JsonResponse({"sessions": [found.id for found in owned_by(request.user)],
                         "this": request.session.session_key})


def sign_out_others(request):
    """"Sign out everywhere else"."""
    return JsonResponse({"revoked": revoke(request.user, keep=request.session.session_key)})


def sign_out_everywhere(request):
    """Every session of the user, this one too, as the revoke() docstring says to."""
    revoked = revoke(request.user)
    logout(request)
    return JsonResponse({"revoked": revoked})


def new_password(request):
    """A password change that keeps this session signed in: update_session_auth_hash() cycles its key."""
    user = request.user
    user.set_password(PASSWORD)  # the same password, a new hash
    user.save()
    update_session_auth_hash(request, user)
    return HttpResponse("changed")


def tenant(request):
    """An app's own owner: ``session["tenant"]``."""
    request.session["tenant"] = request.GET["id"]
    return HttpResponse("ok")


urlpatterns = [
    *django_project.urlpatterns,
    path("mine", mine),
    path("others-out", sign_out_others),
    path("everywhere-out", sign_out_everywhere),
    path("password", new_password),
    path("tenant", tenant),
]


@pytest.fixture(scope="module", autouse=True)
def users():
    """django.contrib.auth's tables in the shared in-memory sqlite, and the users of these tests."""
    from django.contrib.auth.models import User  # a model: importable once Django is set up

    call_command("migrate", run_syncdb=True, verbosity=0)
    for name in (ANA, BRUNO, CARLA):
        if not User.objects.filter(username=name).exists():
            User.objects.create_user(name, password=PASSWORD)
    return SimpleNamespace(**{name.split("-")[1]: User.objects.get(username=name) for name in (ANA, BRUNO, CARLA)})


@pytest.fixture(autouse=True)
def configure():
    """``configure(**settings)``: override Django's settings for the test (this module is the URLconf) and make the
    engine read them again; before and after each test the engine forgets its configuration."""
    overrides = []

    def apply(**changes):
        override = override_settings(**changes)
        override.enable()
        overrides.append(override)
        lembro_wsgi.django._reset()

    apply(ROOT_URLCONF=__name__)
    yield apply
    lembro_wsgi.django._reset()
    for override in reversed(overrides):
        override.disable()


@pytest.fixture(params=["lembro", "redis"])
def engine(request, configure, make_store, clock):
    """The engine on a LembroStore of the test's (handed in: keys and owners under "django:"; a fake clock) or on
    the suite's redis-server, with no owner_key set: ``engine.use(**options)`` adds LEMBRO_SESSIONS options,
    ``engine.later()`` lets time pass (for "most recently used")."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        base = {"type": "ext:redis", "url": url}

        def later():
            time.sleep(0.01)
    else:
        base = {"store": make_store()}

        def later():
            clock.advance(1)

    def use(**options):
        configure(LEMBRO_SESSIONS={**base, **options})

    use()
    return SimpleNamespace(use=use, later=later)


def signed_in(username):
    """A new client (a device) that visited, then signed in through django.contrib.auth's login()."""
    client = Client()
    assert client.get("/").json()["visits"] == 1
    assert client.post("/login", {"username": username, "password": PASSWORD}).status_code == 200
    return client


def key_of(client):
    return client.cookies[COOKIE].value


def ids(user_or_pk):
    return [found.id for found in owned_by(user_or_pk)]


def is_signed_in(client):
    return client.get("/peek").json()["authenticated"]


# Listing: django.contrib.auth's key owns sessions, with no code and no owner_key.

def test_a_users_sessions_are_listed_most_recently_used_first_with_no_owner_key_set(engine, users):
    from django.contrib.auth.models import AnonymousUser, User

    Client().get("/")  # an anonymous visitor owns nothing
    started = time.time()
    phone = signed_in(ANA)
    engine.later()
    laptop = signed_in(ANA)
    engine.later()
    other = signed_in(BRUNO)
    assert ids(users.ana) == [key_of(laptop), key_of(phone)]
    assert ids(users.bruno) == [key_of(other)]
    assert ids(users.ana.pk) == ids(str(users.ana.pk)) == ids(users.ana)  # owners compare as text
    for found in owned_by(users.ana):
        assert found.data["_auth_user_id"] == str(users.ana.pk) and found.data["visits"] == 1
        assert started - 60 < found.created < time.time() + 5  # seconds since the epoch (the fake clock moved
        assert started - 60 < found.accessed < time.time() + 5  # some, not the wall's)
    page = laptop.get("/mine").json()
    assert page["this"] == key_of(laptop) and page["sessions"] == [key_of(laptop), key_of(phone)]
    engine.later()
    assert phone.get("/").json()["authenticated"]  # a write: now the most recently used
    assert ids(users.ana) == [key_of(phone), key_of(laptop)]
    for nobody in (AnonymousUser(), None, User(username="never saved"), 10**9, str(10**9)):
        assert owned_by(nobody) == [] and revoke(nobody) == 0


# Sign-in and sign-out move the owner.

def test_login_moves_the_owner_to_the_new_key_and_logout_drops_it(engine, users):
    browser = Client()
    browser.get("/")
    visitor_key = key_of(browser)
    assert ids(users.carla) == []
    browser.post("/login", {"username": CARLA, "password": PASSWORD})  # cycle_key(): a new key
    signed_in_key = key_of(browser)
    assert signed_in_key != visitor_key and ids(users.carla) == [signed_in_key]
    assert browser.post("/password").status_code == 200  # cycle_key() of a signed-in session: the owner moves
    assert key_of(browser) != signed_in_key and ids(users.carla) == [key_of(browser)]
    assert not SessionStore().exists(signed_in_key) and is_signed_in(browser)
    browser.post("/logout")
    assert ids(users.carla) == []
    browser.post("/login", {"username": CARLA, "password": PASSWORD})
    assert ids(users.carla) == [key_of(browser)]
    browser.post("/login", {"username": BRUNO, "password": PASSWORD})  # another user, same browser: flush()
    assert ids(users.carla) == [] and ids(users.bruno) == [key_of(browser)]


# Revoke: "sign out everywhere else", and everywhere.

def test_revoke_signs_out_every_other_device_and_keeps_this_one(engine, users):
    phone, laptop, tablet, other = signed_in(ANA), signed_in(ANA), signed_in(ANA), signed_in(BRUNO)
    revoked_keys = [key_of(phone), key_of(tablet)]
    assert laptop.post("/others-out").json() == {"revoked": 2}
    assert ids(users.ana) == [key_of(laptop)]
    assert not any(SessionStore().exists(key) for key in revoked_keys)
    assert not is_signed_in(phone) and not is_signed_in(tablet)  # their next request is anonymous
    assert is_signed_in(laptop) and is_signed_in(other) and ids(users.bruno) == [key_of(other)]
    assert laptop.post("/others-out").json() == {"revoked": 0}
    phone2 = signed_in(ANA)
    assert laptop.post("/everywhere-out").json() == {"revoked": 2}  # this one too, then logout()
    assert not is_signed_in(laptop) and not is_signed_in(phone2) and ids(users.ana) == []
    assert revoke(users.bruno.pk) == 1 and not is_signed_in(other)  # a pk, from outside any request


def test_a_request_running_while_its_session_is_revoked_cannot_write_it_back(engine, users):
    phone, laptop = signed_in(ANA), signed_in(ANA)
    key = key_of(phone)
    tab = Client()
    tab.cookies[COOKIE] = key  # the phone, in a second tab
    with django_project.slow_request(tab) as answers:  # it has loaded the signed-in session
        assert laptop.post("/others-out").json() == {"revoked": 1}
    slow = answers["response"]
    assert slow.status_code == 400  # SessionInterrupted: the engine's conditional write found it gone
    assert COOKIE not in slow.cookies
    assert not SessionStore().exists(key) and ids(users.ana) == [key_of(laptop)]
    assert not is_signed_in(phone) and not is_signed_in(tab)
    loaded = SessionStore(key_of(laptop))  # the engine itself: a session loaded before a revoke
    assert loaded["_auth_user_id"] == str(users.ana.pk)
    assert revoke(users.ana) == 1
    loaded["late"] = "change"
    with pytest.raises(UpdateError):
        loaded.save()
    assert ids(users.ana) == [] and not is_signed_in(laptop)


# max_per_owner: a device too many signs out the least recently used.

def test_max_per_owner_signs_out_the_least_recently_used_device(engine, users):
    engine.use(max_per_owner=2)
    phone = signed_in(ANA)
    engine.later()
    laptop = signed_in(ANA)
    engine.later()
    assert phone.get("/").json()["authenticated"]  # the phone is used again: the laptop is now the oldest
    engine.later()
    other = signed_in(BRUNO)
    tablet = signed_in(ANA)
    assert ids(users.ana) == [key_of(tablet), key_of(phone)]
    assert not is_signed_in(laptop) and is_signed_in(phone) and is_signed_in(tablet) and is_signed_in(other)
    engine.later()
    signed_in(ANA)
    assert not is_signed_in(phone) and is_signed_in(tablet)  # the phone's last use is now the oldest
    assert len(owned_by(users.ana)) == 2 and ids(users.bruno) == [key_of(other)]


# Settings: owner_key, max_per_owner, and backends that keep no index.

def test_owner_key_none_turns_the_index_off(configure, users):
    configure(LEMBRO_SESSIONS={"interval": None})
    signed_in(ANA)
    assert lembro_wsgi.django.store().stats()["owners"] == 1  # the default: django.contrib.auth's key
    configure(LEMBRO_SESSIONS={"interval": None, "owner_key": None})
    client = signed_in(ANA)
    assert lembro_wsgi.django.store().stats()["owners"] == 0 and is_signed_in(client)
    for call in (lambda: owned_by(users.ana), lambda: revoke(users.ana)):
        with pytest.raises(ImproperlyConfigured, match=r"^LEMBRO_SESSIONS\['owner_key'\]: None"):
            call()


def test_an_owner_key_of_the_apps_own_replaces_djangos(configure, users):
    configure(LEMBRO_SESSIONS={"interval": None, "owner_key": "tenant"})
    team = uuid.uuid4()
    member = signed_in(ANA)
    member.get(f"/tenant?id={team}")
    assert ids(team) == ids(str(team)) == [key_of(member)]  # a UUID is known by its str(), as auth stores one
    assert ids(users.ana) == []  # the signed-in user owns nothing here


def test_a_user_whose_pk_is_a_uuid_is_found_by_the_text_auth_stores(configure):
    """A custom user model with a UUID pk: login() stores ``str(pk)`` under '_auth_user_id'; the user and the
    pk both find it: the user through its pk field (as login() does), the UUID by its str()."""
    from django.db import models
    from django.test.utils import isolate_apps

    configure(LEMBRO_SESSIONS={"interval": None})
    with isolate_apps("django.contrib.auth"):
        class Member(models.Model):
            id = models.UUIDField(primary_key=True, default=uuid.uuid4)

            class Meta:
                app_label = "auth"

        member = Member()
    session = SessionStore()
    session["_auth_user_id"] = str(member.pk)  # as login(request, member) stores it
    session.save()
    assert ids(member) == ids(member.pk) == ids(str(member.pk)) == [session.session_key]
    assert revoke(member) == 1 and not SessionStore().exists(session.session_key)


def test_the_file_backend_keeps_working_with_no_owner_key_and_says_why_it_cannot_list(configure, tmp_path, users):
    configure(LEMBRO_SESSIONS={"type": "file", "data_dir": str(tmp_path)})
    client = signed_in(ANA)
    assert client.get("/").json() == {"visits": 2, "user": ANA, "authenticated": True}
    for call in (lambda: owned_by(users.ana), lambda: revoke(users.ana)):
        with pytest.raises(ImproperlyConfigured, match=r"^LEMBRO_SESSIONS\['type'\]: type='file' .*'ext:redis'"):
            call()
    client.post("/logout")
    assert not is_signed_in(client)


@pytest.mark.parametrize("value, named", [
    ({"owner_key": ""}, "owner_key"),
    ({"owner_key": 7}, "owner_key"),
    ({"max_per_owner": 0}, "max_per_owner"),
    ({"max_per_owner": "two"}, "max_per_owner"),
    ({"max_per_owner": True}, "max_per_owner"),
    ({"owner_key": None, "max_per_owner": 2}, "max_per_owner"),
    ({"type": "file", "owner_key": "_auth_user_id"}, "owner_key"),  # named with the backends that can
    ({"type": "file", "max_per_owner": 2}, "max_per_owner"),  # the default owner_key is not the one to blame
])
def test_a_bad_owner_setting_is_improperly_configured_naming_the_key(configure, tmp_path, value, named):
    if value.get("type") == "file":
        value = {**value, "data_dir": str(tmp_path)}
    configure(LEMBRO_SESSIONS=value)
    with pytest.raises(ImproperlyConfigured) as refused:
        Client().get("/")
    assert str(refused.value).startswith(f"LEMBRO_SESSIONS[{named!r}]: ")
    if "type" in value:
        assert "'ext:redis'" in str(refused.value)


def test_a_user_or_pk_of_another_type_is_a_value_error_naming_it(engine):
    for wrong in (True, 1.5, b"1", object()):
        with pytest.raises(ValueError, match="^user_or_pk: "):
            owned_by(wrong)
        with pytest.raises(ValueError, match="^user_or_pk: "):
            revoke(wrong)


def test_a_store_shared_with_another_app_keeps_each_apps_owners(configure, users):
    """In a store handed in, Django's sessions and owners are under "django:": another app's owner of the same text
    (its own user 1, Django's user 1) is another owner, and listing gives Django's session keys as they are."""
    from lembro_wsgi import LembroMiddleware
    from tests.wsgi_apps import session_app

    shared = LembroStore(interval=None)
    try:
        other = LembroMiddleware(session_app, store=shared, owner_key="user")
        browser = webtest.TestApp(other)
        browser.get(f"/login?user={users.ana.pk}")
        configure(LEMBRO_SESSIONS={"store": shared})
        client = signed_in(ANA)
        assert ids(users.ana) == [key_of(client)]
        assert [found.id for found in other.sessions.owned_by(users.ana.pk)] == [browser.cookies["lembro.sid"]]
        assert revoke(users.ana) == 1 and len(other.sessions.owned_by(users.ana.pk)) == 1
    finally:
        shared.close()
