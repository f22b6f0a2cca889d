"""Who is signed in where, on ext:redis: the owner index lives in Redis, shared by every app instance.

Two app instances (two LembroMiddleware, each with its own connection pool) over the real redis-server the
suite starts: what one does to an owner's sessions, the other sees. Expiry is simulated by deleting a
session's keys, as Redis does when their TTL runs out, and by moving its expiry score (in the owner's expiry
set) to the past, where Redis's clock would be by then: no test sleeps for it.
"""

import threading
import time

import pytest
import redis
import webtest
from webob import Request

from lembro_wsgi import BackendUnavailable, LembroMiddleware, SessionFactory
from lembro_wsgi.backends.redis import OWNER_BATCH, PRUNE_BATCH
from tests.conftest import GATE, run_threads
from tests.owners_app import ids, owners_app, sign_in, slow_owners_app
from tests.redis_server import RedisServer, free_port, wait_until
from tests.servers import browser, server_process


def build(url, app=owners_app, **options):
    options.setdefault("owner_key", "user")
    options.setdefault("timeout", 1800)
    return LembroMiddleware(app, type="ext:redis", url=url, **options)


def two_instances(redis_url, **options):
    """Two app instances on one Redis, as two workers are: the second with a connection pool of its own."""
    return build(redis_url, **options), build(f"{redis_url}?health_check_interval=30", **options)


def session_key(sid, prefix="lembro.sid:"):
    return f"beaker_cache:{prefix}{sid}:session"


def owner_key(sid, prefix="lembro.sid:"):
    return f"beaker_cache:{prefix}{sid}:owner"


def owners_key(owner, prefix="lembro.sid:"):
    return f"lembro_owners:{len(prefix.encode())}:{prefix}{owner}"


def expiry_key(owner, prefix="lembro.sid:"):
    return f"lembro_owners_expiry:{len(prefix.encode())}:{prefix}{owner}"


def index_sizes(client, owner):
    return client.zcard(owners_key(owner)), client.zcard(expiry_key(owner))


def expire_now(client, sid, prefix="lembro.sid:"):
    """What Redis does when a session's TTL runs out: its keys (the record and its owner, same TTL) vanish,
    and by then Redis's clock has passed the expiry the owner's expiry set scores it by."""
    owner = client.get(owner_key(sid, prefix)).decode()
    assert client.delete(session_key(sid, prefix), owner_key(sid, prefix)) == 2
    client.zadd(expiry_key(owner, prefix), {sid: 0}, xx=True)


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_the_key_layout_beside_beakers_session_key(redis_url, client):
    app = build(redis_url, timeout=600)
    _, sid = sign_in(app, "ana")
    assert sorted(key.decode() for key in client.scan_iter()) == sorted(
        [session_key(sid), owner_key(sid), owners_key("ana"), expiry_key("ana")])
    assert client.get(owner_key(sid)) == b"ana"
    assert client.zrange(owners_key("ana"), 0, -1) == [sid.encode()]
    assert 590 <= client.ttl(owner_key(sid)) <= client.ttl(session_key(sid)) <= 600
    ((member, expires),) = client.zrange(expiry_key("ana"), 0, -1, withscores=True)
    seconds, micros = client.time()
    assert member == sid.encode()  # scored by when it expires, in ms by Redis's clock
    assert 0 <= expires - (seconds * 1000 + micros // 1000) - client.pttl(session_key(sid)) <= 1000
    sets_left = [client.pttl(owners_key("ana")), client.pttl(expiry_key("ana"))]  # read first: time runs on
    assert max(sets_left) - min(sets_left) < 50 and min(sets_left) >= client.pttl(session_key(sid))


def test_owned_by_in_one_instance_lists_sessions_made_in_the_other(redis_url):
    first, second = two_instances(redis_url)
    (phone, phone_sid), (laptop, laptop_sid) = sign_in(first, "ana"), sign_in(second, "ana")
    _, tablet_sid = sign_in(first, "ana")
    sign_in(second, "bo")
    for app in (first, second):
        assert ids(app.sessions.owned_by("ana")) == [tablet_sid, laptop_sid, phone_sid]  # most recently used first
    found = first.sessions.owned_by("ana")
    assert [session.data for session in found] == [{"user": "ana"}] * 3
    assert found[0].accessed >= found[1].accessed >= found[2].accessed >= found[2].created
    assert len(second.sessions.owned_by("bo")) == 1
    phone.get("/")  # a read that refreshes the session (in the other instance) is a use of it
    assert ids(second.sessions.owned_by("ana")) == [phone_sid, tablet_sid, laptop_sid]
    laptop.get("/set", {"key": "theme", "value": "dark"})  # and so is a write
    assert ids(first.sessions.owned_by("ana")) == [laptop_sid, phone_sid, tablet_sid]
    assert first.sessions.owned_by("ana")[0].data == {"user": "ana", "theme": "dark"}


def test_a_worker_process_and_this_one_share_the_index(redis_url):
    """A real second process (tests/app_server.py, session_app): its sign-in is listed and revoked here."""
    here = build(redis_url, max_per_owner=2)
    options = {"type": "ext:redis", "url": redis_url, "owner_key": "user", "max_per_owner": 2}
    with server_process(options) as (_, worker):
        opener = browser()
        worker_sid = opener.open(f"{worker}/login?user=ana", timeout=10).read().split()[0].decode()
        assert ids(here.sessions.owned_by("ana")) == [worker_sid]
        _, here_sid = sign_in(here, "ana")
        assert ids(here.sessions.owned_by("ana")) == [here_sid, worker_sid]
        assert here.sessions.revoke("ana", keep=here_sid) == 1
        assert opener.open(f"{worker}/", timeout=10).read().split()[2] == b"-"  # signed out there
        opener.open(f"{worker}/login?user=ana", timeout=10)
        opener.open(f"{worker}/login?user=ana", timeout=10)  # regenerate(): the worker's own id moves
        sign_in(here, "ana")
        assert len(here.sessions.owned_by("ana")) == 2  # max_per_owner counted the worker's too


def test_owned_by_is_no_activity(redis_url, client):
    first, second = two_instances(redis_url)
    _, sid = sign_in(first, "ana")
    client.expire(session_key(sid), 100)
    client.expire(owner_key(sid), 100)
    (before,) = client.zrange(owners_key("ana"), 0, -1, withscores=True)
    (found,) = second.sessions.owned_by("ana")
    found.data["user"] = "mallory"  # a copy
    assert client.ttl(session_key(sid)) <= 100 and client.ttl(owner_key(sid)) <= 100  # timers not restarted
    assert client.zrange(owners_key("ana"), 0, -1, withscores=True) == [before]
    assert found.accessed == before[1]
    assert first.sessions.owned_by("ana")[0].data == {"user": "ana"}


def test_revoke_in_one_instance_signs_out_the_others_clients(redis_url, client):
    first, second = two_instances(redis_url)
    phone, phone_sid = sign_in(first, "ana")
    (laptop, laptop_sid), (tablet, tablet_sid) = sign_in(second, "ana"), sign_in(second, "ana")
    bo, bo_sid = sign_in(second, "bo")
    assert first.sessions.revoke("ana", keep=phone_sid) == 2
    assert ids(second.sessions.owned_by("ana")) == [phone_sid]
    for device, sid in ((laptop, laptop_sid), (tablet, tablet_sid)):
        page = device.get("/").json
        assert "user" not in page and page["id"] != sid  # a fresh session
        assert client.exists(session_key(sid), owner_key(sid)) == 0
    assert phone.get("/").json == {"id": phone_sid, "user": "ana"}
    assert bo.get("/").json == {"id": bo_sid, "user": "bo"}
    assert second.sessions.revoke(42) == 0 and second.sessions.revoke(None) == 0
    assert second.sessions.revoke("ana") == 1 and phone.get("/").json.get("user") is None
    assert client.exists(owners_key("ana")) == 0 and first.sessions.revoke("ana") == 0


@pytest.mark.parametrize("late", ["write", "read", "regenerate"])
def test_a_request_still_running_cannot_bring_a_revoked_session_back(redis_url, client, late):
    """Two-phase: the slow request (in the second instance) loaded the session before the revoke (in the first),
    and writes it, touches it or moves it to a new id after."""
    first, second = two_instances(redis_url)
    _, sid = sign_in(first, "ana")
    sessions = second.sessions
    slow = sessions.open(Request.blank("/", headers={"Cookie": f"lembro.sid={sid}"}).environ, eager=True)
    assert slow["user"] == "ana"
    assert first.sessions.revoke("ana") == 1
    if late == "write":
        slow["cart"] = "book"
    elif late == "regenerate":
        slow.regenerate()
    assert sessions.close(slow) == []  # no cookie: nothing was written
    assert first.sessions.owned_by("ana") == [] and client.dbsize() == 0


def test_a_slow_request_racing_revoke_on_real_threads(redis_url, client):
    loaded, proceed = threading.Event(), threading.Event()

    slow_app = slow_owners_app(loaded, proceed)

    first = build(redis_url)
    second = build(f"{redis_url}?health_check_interval=30", app=slow_app)
    device, _ = sign_in(second, "ana")
    result = {}
    thread = threading.Thread(target=lambda: result.update(response=device.get("/slow")))
    thread.start()
    assert loaded.wait(GATE)
    assert first.sessions.revoke("ana") == 1
    proceed.set()
    thread.join(GATE)
    assert "Set-Cookie" not in result["response"].headers
    assert first.sessions.owned_by("ana") == [] and client.dbsize() == 0


def test_max_per_owner_counts_across_instances(redis_url, client):
    first, second = two_instances(redis_url, max_per_owner=2)
    (oldest, oldest_sid), (middle, middle_sid) = sign_in(first, "ana"), sign_in(second, "ana")
    oldest.get("/")  # the oldest comes back (touch): now the middle one is the least recently used
    _, newest_sid = sign_in(second, "ana")
    assert ids(first.sessions.owned_by("ana")) == [newest_sid, oldest_sid]
    assert client.exists(session_key(middle_sid), owner_key(middle_sid)) == 0  # destroyed, index and all
    assert "user" not in middle.get("/").json
    sign_in(first, "bo")  # others' sessions do not count
    assert len(second.sessions.owned_by("ana")) == 2
    assert oldest.get("/").json == {"id": oldest_sid, "user": "ana"}


def test_max_per_owner_applies_to_rewrites_and_moves_too(redis_url):
    """Not only brand-new sessions: one that gains its owner in place (SET XX) or signs in (regenerate())."""
    first, second = two_instances(redis_url, max_per_owner=1)
    anonymous, mover = webtest.TestApp(second), webtest.TestApp(first)
    sid = anonymous.get("/set", {"key": "note", "value": "x"}).json["id"]  # no owner yet
    moving = mover.get("/set", {"key": "note", "value": "y"}).json["id"]
    device, _ = sign_in(first, "ana")
    assert anonymous.get("/set", {"key": "user", "value": "ana"}).json["id"] == sid  # the rewrite gains the owner
    assert ids(first.sessions.owned_by("ana")) == [sid]
    assert device.get("/").json.keys() == {"id"}  # signed out: the whole session went
    moved = mover.get("/login", {"user": "ana"}).json["id"]
    assert moved != moving and ids(second.sessions.owned_by("ana")) == [moved]
    page = anonymous.get("/").json
    assert page["id"] != sid and page.keys() == {"id"}


def test_max_per_owner_counts_live_sessions_only(redis_url, client):
    first, second = two_instances(redis_url, max_per_owner=2)
    _, live = sign_in(first, "ana")
    _, expired = sign_in(second, "ana")  # used more recently than the live one, then expired
    expire_now(client, expired)
    _, newest = sign_in(first, "ana")  # the expired one is no live session: the live one stays
    assert client.zrange(owners_key("ana"), 0, -1) == [live.encode(), newest.encode()]  # the save pruned it
    assert ids(second.sessions.owned_by("ana")) == [newest, live]


def test_max_per_owner_holds_under_concurrent_sign_ins_on_both_instances(redis_url, client):
    instances = two_instances(redis_url, max_per_owner=2)
    start = threading.Barrier(8)

    def worker(i):
        device = webtest.TestApp(instances[i % 2])
        start.wait(GATE)
        device.get("/login", {"user": "ana"})

    assert run_threads(worker, count=8) == []
    assert len(instances[0].sessions.owned_by("ana")) == 2
    assert client.zcard(owners_key("ana")) == 2
    assert len(list(client.scan_iter("beaker_cache:*:session"))) == 2
    assert len(list(client.scan_iter("beaker_cache:*:owner"))) == 2


def test_the_owner_is_what_the_session_holds_when_saved(redis_url, client):
    first, second = two_instances(redis_url)
    device, sid = sign_in(first, "ana")
    device.app = second
    device.get("/set", {"key": "user", "value": "bo"})  # the same id, another owner, no regenerate()
    assert client.exists(owners_key("ana")) == 0 and client.get(owner_key(sid)) == b"bo"  # the write moved it
    assert first.sessions.owned_by("ana") == [] and ids(first.sessions.owned_by("bo")) == [sid]
    device.get("/set", {"key": "note", "value": "kept"})
    device.get("/drop-owner")  # no owner any more, the session stays
    assert second.sessions.owned_by("bo") == []
    assert device.get("/").json == {"id": sid, "note": "kept"}
    assert sorted(client.keys()) == [session_key(sid).encode()]


def test_sign_in_moves_the_owner_and_sign_out_removes_it(redis_url, client):
    first, second = two_instances(redis_url)
    device = webtest.TestApp(first)
    anonymous = device.get("/set", {"key": "cart", "value": "book"}).json["id"]
    signed_in = device.get("/login", {"user": "ana"}).json["id"]
    assert signed_in != anonymous and ids(second.sessions.owned_by("ana")) == [signed_in]
    device.app = second
    again = device.get("/login", {"user": "ana"}).json["id"]  # regenerate() again: the owner follows the id
    assert ids(first.sessions.owned_by("ana")) == [again]
    assert first.sessions.owned_by("ana")[0].data == {"cart": "book", "user": "ana"}
    assert client.exists(session_key(signed_in), owner_key(signed_in)) == 0
    assert client.zrange(owners_key("ana"), 0, -1) == [again.encode()]
    device.get("/logout")
    assert second.sessions.owned_by("ana") == [] and client.dbsize() == 0


def test_expired_sessions_are_never_listed_and_their_entries_are_pruned(redis_url, client):
    first, second = two_instances(redis_url)
    _, gone = sign_in(first, "ana")
    _, live = sign_in(second, "ana")
    expire_now(client, gone)
    assert ids(first.sessions.owned_by("ana")) == [live]
    assert client.zrange(owners_key("ana"), 0, -1) == [live.encode()]  # owned_by pruned it
    _, also_gone = sign_in(first, "ana")
    expire_now(client, also_gone)
    assert second.sessions.revoke("ana") == 1  # the live one only
    assert client.dbsize() == 0  # revoke pruned the other


def test_a_record_that_does_not_load_is_not_listed_and_its_client_leaves_the_index(redis_url, client):
    first, second = two_instances(redis_url)
    device, sid = sign_in(first, "ana")
    client.set(session_key(sid), b"not a pickle", keepttl=True)
    assert second.sessions.owned_by("ana") == []
    assert device.get("/").json.get("user") is None  # dropped on load: destroyed, index and all
    assert client.dbsize() == 0


def test_owners_compare_as_text(redis_url):
    first, second = two_instances(redis_url)
    _, as_int = sign_in(first, "42", int="1")
    _, as_text = sign_in(second, "42")
    assert set(ids(first.sessions.owned_by(42))) == {as_int, as_text} == set(ids(second.sessions.owned_by("42")))
    assert first.sessions.owned_by(None) == [] and first.sessions.owned_by("nobody") == []
    assert second.sessions.revoke(42) == 2 and first.sessions.owned_by("42") == []


def test_the_owners_sets_live_as_long_as_their_longest_lived_session(redis_url, client):
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)

    def save(factory=sessions, lifetime=None):
        session = factory.open({})
        session["user"] = "ana"
        session.lifetime = lifetime
        factory.close(session)
        return session.id

    def ttls():
        return client.ttl(owners_key("ana")), client.ttl(expiry_key("ana"))

    short = save()
    assert 590 <= min(ttls()) <= max(ttls()) <= 600
    long = save(lifetime=3000)
    assert 2990 <= min(ttls()) <= max(ttls()) <= 3000  # extended
    save()
    assert min(ttls()) > 2900  # not shortened while the long one lives
    client.expire(owners_key("ana"), 30)
    client.expire(expiry_key("ana"), 30)
    client.expire(owner_key(short), 30)
    cookie = f"lembro.sid={short}"
    read = sessions.open(Request.blank("/", headers={"Cookie": cookie}).environ)
    assert read["user"] == "ana"
    sessions.close(read)  # a read refreshes the session (EXPIRE), and the sets with it: to the longest-lived
    assert 2990 <= min(ttls()) <= max(ttls()) <= 3000
    assert 590 <= client.ttl(owner_key(short)) <= 600  # the owner key follows the session key
    assert 2990 <= client.ttl(owner_key(long)) <= 3000
    sessions.revoke("ana", keep=short)
    save()
    assert 590 <= min(ttls()) <= max(ttls()) <= 600  # the longest-lived is gone: the sets follow the next
    forever = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=None)
    endless = save(forever)
    assert ttls() == (-1, -1) and client.ttl(owner_key(endless)) == -1  # no timeout: none
    save()
    assert ttls() == (-1, -1)
    assert forever.revoke("ana", keep=short) == 3
    save()
    assert 590 <= min(ttls()) <= max(ttls()) <= 600  # the one without a timeout is gone: a TTL again


def login(sessions, owner):
    session = sessions.open({})
    session["user"] = owner
    sessions.close(session)
    return session.id


def read(sessions, sid):
    """A request that only reads the session: its close touches it (EXPIRE, and the owner's sets)."""
    session = sessions.open(Request.blank("/", headers={"Cookie": f"lembro.sid={sid}"}).environ)
    assert session["user"]
    sessions.close(session)


def test_an_owner_who_signs_in_again_and_again_keeps_an_index_the_size_of_their_live_sessions(redis_url, client):
    """An API client that drops its cookie and signs in at every call: each session expires, each sign-in
    makes another. No owned_by or revoke ever runs: the writes themselves keep the sets small."""
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user")
    live = []
    for _ in range(300):
        live.append(login(sessions, "bot"))
        if len(live) > 5:
            expire_now(client, live.pop(0))
        assert max(index_sizes(client, "bot")) <= len(live) + PRUNE_BATCH
    assert index_sizes(client, "bot") == (6, 6)  # all pruned but the one expired since the last sign-in
    assert sorted(client.scan_iter("beaker_cache:*:owner")) == sorted(owner_key(sid).encode() for sid in live)
    assert set(ids(sessions.owned_by("bot"))) == set(live)


def test_a_burst_of_expiries_is_pruned_a_bounded_batch_per_write_or_read(redis_url, client):
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user")
    made = [login(sessions, "bot") for _ in range(3 * PRUNE_BATCH + 10)]
    kept = made[-1]
    for sid in made[:-1]:
        expire_now(client, sid)
    dead = len(made) - 1
    read(sessions, kept)  # a touch prunes one batch: no more, however many expired
    dead -= PRUNE_BATCH
    assert index_sizes(client, "bot") == (1 + dead,) * 2
    newer = [login(sessions, "bot")]  # and so does a write
    dead -= PRUNE_BATCH
    assert index_sizes(client, "bot") == (2 + dead,) * 2
    while dead > 0:
        newer.append(login(sessions, "bot"))
        dead = max(0, dead - PRUNE_BATCH)
        assert index_sizes(client, "bot") == (1 + len(newer) + dead,) * 2
    assert 1 + len(newer) == -(-(len(made) - 1) // PRUNE_BATCH)  # a touch and writes, a batch each
    assert set(ids(sessions.owned_by("bot"))) == {kept, *newer}


def test_a_live_session_whose_expiry_score_has_passed_is_rescored_never_dropped(redis_url, client):
    """A score behind the session's TTL (a clock that disagrees, a TTL set behind the scripts' back): pruning
    finds the session live and scores it again; it stays indexed, so revoke still signs it out."""
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)
    first, second = login(sessions, "ana"), login(sessions, "ana")
    client.zadd(expiry_key("ana"), {first: 0, second: 0}, xx=True)
    client.pexpire(owners_key("ana"), 50)  # the sets would even be about to expire
    client.pexpire(expiry_key("ana"), 50)
    third = login(sessions, "ana")
    assert set(client.zrange(owners_key("ana"), 0, -1)) == {first.encode(), second.encode(), third.encode()}
    seconds, micros = client.time()
    now = seconds * 1000 + micros // 1000
    for sid in (first, second):
        assert client.zscore(expiry_key("ana"), sid) >= now + client.pttl(session_key(sid))
    assert client.pttl(owners_key("ana")) >= client.pttl(session_key(third))
    assert sessions.revoke("ana") == 3 and client.dbsize() == 0


def test_the_owners_sets_outlive_every_session_to_the_millisecond(redis_url, client):
    """Two sign-ins 400 ms apart, both of 600 s: the sets must last until the second one expires, although
    both TTLs read 600 in whole seconds (simulated: the sets' TTL is set to 400 ms less than the first's)."""
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)

    def sets_outlive(sid):
        sets_left = min(client.pttl(owners_key("ana")), client.pttl(expiry_key("ana")))  # read first: time runs on
        return sets_left >= client.pttl(session_key(sid)) > 0

    first = login(sessions, "ana")
    assert sets_outlive(first)
    for key in (owners_key("ana"), expiry_key("ana")):
        client.pexpire(key, client.pttl(session_key(first)) - 400)
    second = login(sessions, "ana")  # a write
    assert sets_outlive(second)
    for key in (owners_key("ana"), expiry_key("ana")):
        client.pexpire(key, client.pttl(session_key(second)) - 400)
    read(sessions, first)  # a touch
    assert sets_outlive(first) and sets_outlive(second)


def ttls_of(client, owner):
    return client.pttl(owners_key(owner)), client.pttl(expiry_key(owner))


def record(owner):
    return {"created": time.time(), "accessed": time.time(), "data": {} if owner is None else {"user": owner}}


@pytest.mark.parametrize("leaves", ["destroy", "owner change", "sign-out keeping the session", "revoke",
                                    "evicted, then owned_by", "evicted, then a read of another",
                                    "evicted, then revoke"])
def test_the_owners_sets_get_their_ttl_back_when_the_session_without_one_leaves(redis_url, client, leaves):
    """The sets have no TTL while one of the owner's sessions has none (timeout=None beside a timed one, as
    Flask's non-permanent and permanent sessions); when that one leaves, however, they follow the others
    again, or they would outlive them for good. An evicted one (or deleted by hand) is found by the next
    script that looks at the owner's sets."""
    forever = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=None)
    timed = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)
    endless, lasting = login(forever, "ana"), login(timed, "ana")
    assert ttls_of(client, "ana") == (-1, -1)
    backend = forever.backend
    if leaves == "destroy":
        backend.destroy(endless)  # a logout
    elif leaves == "owner change":
        assert backend.replace(endless, record("bo"))
        assert ttls_of(client, "bo") == (-1, -1)
    elif leaves == "sign-out keeping the session":
        assert backend.replace(endless, record(None))
    elif leaves == "revoke":
        assert forever.revoke("ana", keep=lasting) == 1
    else:
        assert client.delete(session_key(endless)) == 1  # maxmemory evicted it
        assert ttls_of(client, "ana") == (-1, -1)
        if leaves == "evicted, then owned_by":
            assert ids(forever.owned_by("ana")) == [lasting]
        elif leaves == "evicted, then a read of another":
            read(timed, lasting)
        else:
            assert timed.revoke("ana", keep=lasting) == 0
    assert client.zrange(owners_key("ana"), 0, -1) == client.zrange(expiry_key("ana"), 0, -1) == [lasting.encode()]
    sets_left = min(ttls_of(client, "ana"))  # read first: time runs on
    assert 590_000 <= sets_left and max(ttls_of(client, "ana")) <= 600_000
    assert sets_left >= client.pttl(session_key(lasting))
    assert client.exists(owner_key(endless)) == (leaves == "owner change")


def test_an_owner_left_with_no_session_leaves_no_sets(redis_url, client):
    forever = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=None)
    first, second = login(forever, "ana"), login(forever, "ana")
    forever.backend.destroy(first)
    assert forever.backend.replace(second, record(None))
    assert client.keys() == [session_key(second).encode()]


def many_sessions(sessions, owner, count):
    """``count`` sessions of ``owner``, saved straight through the backend (no request), in the order made."""
    made = [f"{owner}-{i:05d}" for i in range(count)]
    for sid in made:
        sessions.backend.save(sid, record(owner), 600)
    return made


def script_calls(client):
    return client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)


@pytest.fixture
def calls(monkeypatch):
    """What each owner script call returned, by script name: ``calls(sessions)`` starts recording on its
    backend; ``calls.between`` (if set) runs after each call of ``owned`` or ``revoke``, as if another client
    acted between two batches."""

    class Recorder(dict):
        between = None

        def __call__(self, sessions):
            backend = sessions.backend
            run = backend._run

            def recorded(name, manager, *args):
                reply = run(name, manager, *args)
                self.setdefault(name, []).append(reply)
                if name in ("owned", "revoke") and self.between is not None:
                    self.between(len(self[name]))
                return reply

            monkeypatch.setattr(backend, "_run", recorded)
            return self

    return Recorder()


def test_revoke_of_a_huge_shared_account_goes_a_bounded_batch_per_script_call(redis_url, client, calls):
    """1,000 sessions of one owner: no single script destroys them all (which held Redis 0.55 s for 100k)."""
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)
    made = many_sessions(sessions, "shared", 1000)
    sign_in_here = made[500]
    many_sessions(sessions, "other", 3)
    calls(sessions)
    client.config_resetstat()
    assert sessions.revoke("shared", keep=sign_in_here) == 999
    batches = -(-999 // OWNER_BATCH)
    assert script_calls(client) == len(calls["revoke"]) == batches > 1
    assert [destroyed for destroyed, _ in calls["revoke"]] == [OWNER_BATCH] * (batches - 1) + [999 % OWNER_BATCH]
    assert [left for _, left in calls["revoke"]] == [999 - OWNER_BATCH * n for n in range(1, batches)] + [0]
    assert client.zrange(owners_key("shared"), 0, -1) == [sign_in_here.encode()]
    assert len(list(client.scan_iter("beaker_cache:*:session"))) == 1 + 3
    assert 590 <= client.ttl(owners_key("shared")) <= 600


def test_a_session_moved_to_a_new_id_between_two_revoke_batches_is_revoked_there(redis_url, client, calls):
    """A sign-in (regenerate()) of one of the owner's sessions while the revoke is between two script calls:
    its new id joins the owner's set, and the revoke goes on until nothing is left but keep."""
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)
    made = many_sessions(sessions, "shared", 3 * OWNER_BATCH)
    moved = []

    def sign_in_meanwhile(done):
        if done == 1:  # the most recently used is revoked last: it is still there
            assert sessions.backend.move(made[-1], "moved-away", record("shared"), 600)
            moved.append("moved-away")
        if done == 2:
            assert sessions.backend.touch(made[-2], 600)  # a use meanwhile changes nothing either

    calls(sessions).between = sign_in_meanwhile
    assert sessions.revoke("shared") == 3 * OWNER_BATCH  # the moved one counted once, under its new id
    assert moved and len(calls["revoke"]) == 3
    assert client.dbsize() == 0


def test_revoke_stops_after_a_bounded_number_of_calls_however_many_sign_ins_come_meanwhile(redis_url, client, calls):
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)
    made = many_sessions(sessions, "shared", 2 * OWNER_BATCH)
    newcomers = iter(range(10**6))

    def flood(_):
        for _ in range(OWNER_BATCH + 1):
            sessions.backend.save(f"new-{next(newcomers)}", record("shared"), 600)

    calls(sessions).between = flood
    revoked = sessions.revoke("shared")
    assert len(calls["revoke"]) == 1 + (2 * OWNER_BATCH - OWNER_BATCH) // OWNER_BATCH + 2  # the bound
    assert revoked == len(calls["revoke"]) * OWNER_BATCH
    assert not any(client.exists(session_key(sid)) for sid in made)  # those there at the start are gone


def test_owned_by_of_a_huge_shared_account_reads_it_a_bounded_batch_per_script_call(redis_url, client, calls):
    """1,000 sessions: listed whole, most recently used first, over several calls of about OWNER_BATCH ids;
    one used between two calls (rescored) is listed still, and gone ones found on the way are pruned."""
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)
    made = many_sessions(sessions, "shared", 1000)
    for sid in made[100:105]:
        client.delete(session_key(sid))  # evicted
    live = [sid for sid in made if sid not in made[100:105]]
    calls(sessions).between = lambda done: sessions.backend.touch(made[3], 600) if done == 2 else None
    found = sessions.owned_by("shared")
    assert sorted(ids(found)) == live
    assert [session.accessed for session in found] == sorted((session.accessed for session in found), reverse=True)
    assert len(calls["owned"]) >= 1000 // OWNER_BATCH
    assert max((len(reply) - 1) // 3 for reply in calls["owned"]) <= 2 * OWNER_BATCH  # roughly a batch each
    assert client.zcard(owners_key("shared")) == client.zcard(expiry_key("shared")) == len(live)  # pruned
    assert all(session.data == {"user": "shared"} for session in found)


def test_owned_by_lists_in_recency_order_over_several_calls(redis_url, client, calls):
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)
    made = many_sessions(sessions, "shared", 1000)
    calls(sessions)
    assert ids(sessions.owned_by("shared")) == made[::-1]  # made one after another: the last most recent
    assert len(calls["owned"]) > 1


@pytest.mark.parametrize("count", [1, OWNER_BATCH])
def test_owners_of_at_most_a_batch_take_one_call_each(redis_url, client, count):
    sessions = SessionFactory(type="ext:redis", url=redis_url, owner_key="user", timeout=600)
    made = many_sessions(sessions, "ana", count)
    client.config_resetstat()
    assert ids(sessions.owned_by("ana")) == made[::-1]
    assert script_calls(client) == 1
    assert sessions.revoke("ana") == count
    assert script_calls(client) == 2 and client.dbsize() == 0


def test_key_prefixes_keep_owners_apart(redis_url, client):
    """Two apps on one Redis; and prefixes that a bare concatenation would confuse ('shop' + ':ana' and
    'shop:' + 'ana')."""
    shop = build(redis_url, key_prefix="shop:")
    blog = build(redis_url, key_prefix="blog:")
    tricky = build(redis_url, key_prefix="shop")
    _, shop_sid = sign_in(shop, "ana")
    _, blog_sid = sign_in(blog, "ana")
    _, tricky_sid = sign_in(tricky, ":ana")
    assert ids(shop.sessions.owned_by("ana")) == [shop_sid]
    assert ids(blog.sessions.owned_by("ana")) == [blog_sid]
    assert ids(tricky.sessions.owned_by(":ana")) == [tricky_sid]
    assert shop.sessions.revoke("ana") == 1
    assert ids(blog.sessions.owned_by("ana")) == [blog_sid] and ids(tricky.sessions.owned_by(":ana")) == [tricky_sid]
    assert client.exists(owners_key("ana", "shop:"), owners_key(":ana", "shop")) == 1


@pytest.mark.parametrize("prefix", ["x" * 1000 + ":", "é" * 900 + ":"], ids=["ascii", "two-byte-characters"])
def test_long_key_prefixes_follow_beakers_key_names(redis_url, client, prefix):
    """Beaker hashes the name part of a key whose whole passes 1024 characters (not bytes): the scripts name
    an owner's other sessions as Beaker does, so max_per_owner and revoke reach them."""
    first, second = two_instances(redis_url, key_prefix=prefix, max_per_owner=1)
    oldest, oldest_sid = sign_in(first, "ana")
    assert oldest.get("/").json == {"id": oldest_sid, "user": "ana"}  # Beaker's manager reads what a script wrote
    newest, newest_sid = sign_in(second, "ana")
    assert oldest.get("/").json.keys() == {"id"}  # the least recently used was really destroyed
    assert newest.get("/").json == {"id": newest_sid, "user": "ana"}
    assert ids(first.sessions.owned_by("ana")) == [newest_sid]
    assert second.sessions.revoke("ana") == 1 and client.dbsize() == 0


def test_a_full_redis_refuses_an_owned_write_and_keeps_what_was_stored():
    """maxmemory with noeviction: a sign-in refused by Redis evicts nobody for max_per_owner, and reads answer."""
    server = RedisServer.start_or_skip(extra=["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"])
    try:
        app = build(server.url, max_per_owner=1)
        device, sid = sign_in(app, "ana")
        client = redis.Redis.from_url(server.url)
        filler = 0
        for size in (100_000, 1_000, 10):  # fill Redis until even a small write is refused
            while True:
                try:
                    client.set(f"filler{filler}", "x" * size)
                except redis.exceptions.ResponseError:
                    break
                filler += 1
                assert filler < 20_000
        response = webtest.TestApp(app).get("/login", {"user": "ana"})
        assert response.status_int == 200 and "Set-Cookie" not in response.headers  # refused
        assert ids(app.sessions.owned_by("ana")) == [sid]
        assert device.get("/").json == {"id": sid, "user": "ana"}  # a read still answers
        client.flushdb()
        client.close()
    finally:
        server.stop()


def test_redis_down_is_backend_unavailable_and_the_scripts_work_again_after_a_restart():
    server = RedisServer.start_or_skip()
    try:
        app = build(server.url)
        sign_in(app, "ana")
        server.stop()
        with pytest.raises(BackendUnavailable):
            app.sessions.owned_by("ana")
        with pytest.raises(BackendUnavailable):
            app.sessions.revoke("ana")
        with pytest.raises(BackendUnavailable):
            sign_in(app, "ana")
        server.restart()  # empty, its script cache too: the scripts are loaded again
        device, sid = sign_in(app, "ana")
        assert device.get("/").json == {"id": sid, "user": "ana"}
        assert ids(app.sessions.owned_by("ana")) == [sid] and app.sessions.revoke("ana") == 1
    finally:
        server.stop()


def test_a_page_that_only_reads_an_owned_session_answers_on_a_read_only_replica():
    """After a failover that left the app on a demoted node: the touch script's refusal (READONLY) is
    BackendUnavailable, which a read-only page survives; a write, and revoke, are refused as such."""
    server = RedisServer.start_or_skip()
    try:
        app = build(server.url)
        device, sid = sign_in(app, "ana")
        node = redis.Redis.from_url(server.url)
        node.replicaof("127.0.0.1", free_port())  # a replica of a primary that is gone: it keeps its data
        try:
            response = device.get("/")
            assert response.json == {"id": sid, "user": "ana"} and "Set-Cookie" not in response.headers
            with pytest.raises(BackendUnavailable, match="READONLY"):
                device.get("/set", {"key": "theme", "value": "dark"})
            with pytest.raises(BackendUnavailable, match="READONLY"):
                app.sessions.revoke("ana")
            assert ids(app.sessions.owned_by("ana")) == [sid]  # nothing to prune: it only reads
        finally:
            node.replicaof("NO", "ONE")
        assert device.get("/set", {"key": "theme", "value": "dark"}).json == {"id": sid, "user": "ana", "theme": "dark"}
        node.close()
    finally:
        server.stop()


def test_a_redis_cluster_refuses_owner_key(tmp_path):
    """Its sessions live in many slots, where no one script reaches them all: refused, naming what can."""
    server = RedisServer.start_or_skip(extra=["--cluster-enabled", "yes", "--dir", str(tmp_path)])
    try:
        node = redis.Redis(port=server.port)
        node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_until(lambda: b"cluster_state:ok" in node.execute_command("CLUSTER", "INFO"), "the cluster to be up")
        node.close()
        urls = f"redis://127.0.0.1:{server.port}"
        with pytest.raises(ValueError, match=r"^owner_key: type='ext:rediscluster' cannot .*'ext:redis' can"):
            SessionFactory(type="ext:rediscluster", urls=urls, owner_key="user")
        sessions = SessionFactory(type="ext:rediscluster", urls=urls)  # without owners, it serves
        session = sessions.open({})
        session["n"] = 1
        assert sessions.close(session)
    finally:
        server.stop()


def test_without_owner_key_no_index_is_kept_and_no_script_runs(redis_url, client):
    """Owners cost nothing to apps that do not ask for them: the plain commands, as before."""
    app = build(redis_url, owner_key=None)
    client.config_resetstat()
    device, _ = sign_in(app, "ana")
    device.get("/")
    device.get("/set", {"key": "theme", "value": "dark"})
    device.get("/logout")
    assert not {"cmdstat_evalsha", "cmdstat_eval"} & set(client.info("commandstats"))
    device.get("/login", {"user": "ana"})
    assert client.keys() == [session_key(device.get("/").json["id"]).encode()]
