"""Several clients, logins, logouts, floods and two-phase requests against a reference model (hypothesis).

The machine drives a real ``LembroMiddleware`` (small caps, fake clock) and
checks after every step that no client sees another's data, a retired id
(logout, login, revoke) never comes back, both caps hold, a returning client is never
evicted while a one-shot session remains, a refused write changes nothing, and
``owned_by(o)`` is exactly the live sessions whose data holds ``o`` under ``owner_key``.
"""

import json
import threading
from urllib.parse import parse_qs

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from webob import Request

from lembro_wsgi import LembroMiddleware, LembroStore
from tests.conftest import GATE, FakeClock

NAMES = st.sampled_from(["ana", "bo", "cy", "di"])
VALUES = st.text("abcxyz", min_size=0, max_size=300)
MAX_SIZE, MAX_SESSIONS, TIMEOUT = 8192, 16, 50


def model_app(environ, start_response):
    """Routes for the machine; every session carries its owner's name."""
    session = environ["lembro.session"]
    path = environ["PATH_INFO"]
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
    if path == "/read-late":  # the response starts before the session is first read
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(dict(session)).encode()]
    if path == "/write":
        session["owner"], session["v"] = query["owner"], query["v"]
        if query.get("save"):
            session.save()  # as some apps do; the response must not count it as the client coming back
    elif path == "/login":
        session.regenerate()
        session["owner"] = query["owner"]
        session["user"] = query.get("user", query["owner"])  # signed in as someone: several devices of one user
    elif path == "/logout":
        session.invalidate()
    elif path == "/big":
        session["blob"] = "x" * (MAX_SIZE * 2)
    elif path == "/slow-write":
        dict(session)  # load now
        gate = environ["test.gate"]
        gate.loaded.set()
        assert gate.proceed.wait(GATE)
        session["v"] = query["v"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(dict(session)).encode()]


class Client:
    def __init__(self, name):
        self.name = name
        self.cookie = None      # what the browser holds
        self.sid = None         # the live session the model expects, or None
        self.expected = None    # its data
        self.returning = False  # read back since it was written
        self.slow = None        # a request in flight: (thread, gate, sid at start, data at start, value)


class FlowMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.clock = FakeClock()
        self.store = LembroStore(interval=None, max_size=MAX_SIZE, max_sessions=MAX_SESSIONS, timeout=TIMEOUT,
                                 clock=self.clock, on_evict=self.evicted)
        self.app = LembroMiddleware(model_app, store=self.store, timeout=TIMEOUT, owner_key="user")
        self.clients = {}
        self.retired = set()        # ids a logout or login retired: never to come back
        self.bursts = set()         # one-shot clients' ids
        self.snapshots = []         # live ids right after a batch that evicted a returning client

    # -- plumbing -----------------------------------------------------------------

    def evicted(self, key, reason):
        sid = key[0]
        for client in self.clients.values():
            if client.sid == sid:
                if reason == "size" and client.returning:
                    self.snapshots.append({k[0] for k in self.store.ids()})
                client.sid, client.expected, client.returning = None, None, False

    def client(self, name):
        return self.clients.setdefault(name, Client(name))

    def request(self, client, path, environ=None):
        request = Request.blank(path, environ=environ or {})
        if client.cookie:
            request.headers["Cookie"] = f"lembro.sid={client.cookie}"
        response = request.get_response(self.app)
        assert response.status_int == 200
        set_cookie = [v for k, v in response.headerlist if k == "Set-Cookie"]
        assert len(set_cookie) <= 1
        sent = set_cookie[0].split(";")[0].split("=", 1)[1] if set_cookie else None
        if sent is not None:
            client.cookie = sent or None
        self.check_snapshots(written=sent or client.sid)
        return json.loads(response.text), sent

    def check_snapshots(self, written):
        """A returning client was evicted: then no one-shot session may remain but the one being written."""
        for live in self.snapshots:
            assert not (live & self.bursts) - {written}, "a returning client was evicted before a one-shot one"
        self.snapshots.clear()

    def loaded(self, client):
        if client.sid is not None:
            client.returning = True

    # -- rules ----------------------------------------------------------------------

    @rule(name=NAMES, value=VALUES, save=st.booleans())
    def write(self, name, value, save):
        client = self.client(name)
        self.loaded(client)
        data, sent = self.request(client, f"/write?owner={name}&v={value}&save={'1' if save else ''}")
        if client.sid is None:
            assert sent, "a new session got no cookie"
            client.sid, client.expected, client.returning = sent, {}, False
        client.expected = {**client.expected, "owner": name, "v": value}
        assert data == client.expected

    @rule(name=NAMES, late=st.booleans())
    def read(self, name, late):
        client = self.client(name)
        self.loaded(client)
        data, sent = self.request(client, "/read-late" if late else "/")
        assert data == (client.expected or {})
        assert sent is None  # a read-only request sends no cookie

    @rule(name=NAMES, user=st.none() | NAMES)
    def login(self, name, user):
        client = self.client(name)
        self.loaded(client)
        user = user or name
        data, sent = self.request(client, f"/login?owner={name}&user={user}")
        assert sent and sent != client.sid
        if client.sid is not None:  # still live through the request: moved, keeping its standing
            self.retired.add(client.sid)
        else:
            client.expected, client.returning = {}, False
        client.sid = sent
        client.expected = {**client.expected, "owner": name, "user": user}
        assert data == client.expected

    @rule(user=NAMES, keeper=st.none() | NAMES)
    def revoke(self, user, keeper):
        keep = self.client(keeper).sid if keeper else None
        revoked = [c for c in self.clients.values()
                   if c.sid is not None and c.sid != keep and c.expected.get("user") == user]
        assert self.app.sessions.revoke(user, keep=keep) == len(revoked)
        for client in revoked:  # signed out as by a logout: the id never comes back
            self.retired.add(client.sid)
            client.sid, client.expected, client.returning = None, None, False

    @rule(name=NAMES)
    def logout(self, name):
        client = self.client(name)
        data, sent = self.request(client, "/logout")
        assert data == {}
        if client.sid is not None:
            assert sent == ""  # the cookie is expired
            self.retired.add(client.sid)
        client.sid, client.expected, client.returning = None, None, False

    @rule(name=NAMES)
    def oversize_write(self, name):
        client = self.client(name)
        self.loaded(client)
        before = self.store.all()
        _, sent = self.request(client, "/big")
        assert sent is None
        assert self.store.all() == before  # a refused write changes nothing

    @rule(count=st.integers(1, 30), save=st.booleans())
    def burst_of_one_shot_clients(self, count, save):
        for i in range(count):
            one_shot = Client(f"burst{i}")
            _, sent = self.request(one_shot, f"/write?owner=burst{i}&v=x&save={'1' if save else ''}")
            self.bursts.add(sent)

    @rule(seconds=st.sampled_from([1, 10, 30, 60]))
    def advance_clock(self, seconds):
        self.clock.advance(seconds)
        len(self.store)  # lets the store drop what expired, reporting it

    @precondition(lambda self: any(c.sid and not c.slow for c in self.clients.values()))
    @rule(name=NAMES, value=VALUES)
    def begin_slow_request(self, name, value):
        client = self.client(name)
        if client.sid is None or client.slow:
            return
        gate = type("Gate", (), {})()
        gate.loaded, gate.proceed = threading.Event(), threading.Event()
        result = {}
        cookie, start_sid, start_data = client.cookie, client.sid, dict(client.expected)

        def run():
            request = Request.blank(f"/slow-write?v={value}", environ={"test.gate": gate})
            request.headers["Cookie"] = f"lembro.sid={cookie}"
            result["response"] = request.get_response(self.app)

        thread = threading.Thread(target=run)
        thread.start()
        assert gate.loaded.wait(GATE)
        client.returning = True
        client.slow = (thread, gate, start_sid, start_data, value, result)

    @precondition(lambda self: any(c.slow for c in self.clients.values()))
    @rule(name=NAMES)
    def finish_slow_request(self, name):
        client = self.client(name)
        if not client.slow:
            return
        thread, gate, start_sid, start_data, value, result = client.slow
        client.slow = None
        still_there = client.sid == start_sid
        gate.proceed.set()
        thread.join(GATE)
        assert not thread.is_alive()
        response = result["response"]
        assert response.status_int == 200
        assert "Set-Cookie" not in response.headers  # same id, or gone: nothing to send
        self.check_snapshots(written=start_sid)
        if still_there and client.sid == start_sid:  # last writer wins
            client.expected = {**start_data, "v": value}

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def sessions_match_the_model(self):
        live = {key[0]: record for key, record in self.store.all().items()}
        for client in self.clients.values():
            if client.sid is not None:
                assert live[client.sid]["data"] == client.expected
                assert live[client.sid]["data"]["owner"] == client.name
        for sid, record in live.items():  # every live session is its owner's current one, or a one-shot's
            owner = self.clients.get(record["data"]["owner"])
            assert sid in self.bursts or (owner is not None and owner.sid == sid), "a session nobody holds"
        assert not (self.retired & set(live)), "a retired id came back"

    @invariant()
    def owned_by_is_exactly_the_live_sessions_of_each_owner(self):
        live = {key[0]: record for key, record in self.store.all().items()}
        for user in ("ana", "bo", "cy", "di"):
            found = self.app.sessions.owned_by(user)
            assert {s.id for s in found} == {sid for sid, record in live.items() if record["data"].get("user") == user}
            assert all(s.data == live[s.id]["data"] for s in found)
            assert [s.accessed for s in found] == sorted((s.accessed for s in found), reverse=True)

    @invariant()
    def caps_hold(self):
        stats = self.store.stats()
        assert stats["bytes"] <= MAX_SIZE and stats["sessions"] <= MAX_SESSIONS

    def teardown(self):
        for client in self.clients.values():
            if client.slow:
                client.slow[1].proceed.set()
                client.slow[0].join(GATE)
        self.store.close()


FlowMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
TestFlowsAgainstModel = FlowMachine.TestCase
