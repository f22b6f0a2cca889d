"""Owners on the stats page, in its JSON and in the Prometheus collector: users signed in (``owner_key``)
and the sessions they own, as ``store.stats()`` counts them.

Sessions are signed in through the middleware (WebTest clients sharing one app), then one owner is
revoked; the page (HTML and JSON) and the collector (parsed back) follow each step.
"""

import re

import pytest
import webtest

from lembro_wsgi import LembroMiddleware, LembroStore, StatsApp
from tests.wsgi_apps import session_app


def owners_on_page(text):
    """The figures of the owners' table on the stats page, as integers."""
    found = {label: int(value.replace(",", "")) for label, value in
             re.findall(r"<tr><th>(Owners|Owned sessions)</th><td>([0-9,]+)</td></tr>", text)}
    assert set(found) == {"Owners", "Owned sessions"}, text
    return found["Owners"], found["Owned sessions"]


def scrape(store, name="web"):
    """``{metric: value}`` of the samples labelled ``store=name``, from a registry holding only our collector."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from lembro_wsgi.prometheus import LembroCollector

    registry = CollectorRegistry()
    registry.register(LembroCollector(store, name=name))
    return {sample.name: sample.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples if sample.labels == {"store": name}}


@pytest.fixture
def signed_in(clock):
    """Ana signed in on two clients, Bob on one, two anonymous visitors: 2 owners, 3 owned sessions of 5."""
    store = LembroStore(interval=None, clock=clock, max_sessions=100)
    middleware = LembroMiddleware(session_app, store=store, owner_key="user")
    clients = {}
    for name, user in (("ana-laptop", "ana"), ("ana-phone", "ana"), ("bob", "bob")):
        clients[name] = webtest.TestApp(middleware)
        clients[name].get("/login", params={"user": user})
    for name in ("visitor-1", "visitor-2"):
        clients[name] = webtest.TestApp(middleware)
        clients[name].get("/inc")
    yield store, middleware, clients
    store.close()


def test_page_and_json_show_owners_and_owned_sessions(signed_in):
    store, _, _ = signed_in
    stats = webtest.TestApp(StatsApp(store))
    page = stats.get("/").text
    assert owners_on_page(page) == (2, 3) and "5 of 100" in page
    body = stats.get("/?format=json").json
    assert (body["owners"], body["owned_sessions"], body["sessions"]) == (2, 3, 5)
    assert "ana" not in page and "bob" not in page  # owners are never shown


def test_page_without_a_count_cap_shows_owners_too():
    with LembroStore(interval=None) as store:
        app = webtest.TestApp(LembroMiddleware(session_app, store=store, owner_key="user"))
        app.get("/login", params={"user": "ana"})
        webtest.TestApp(app.app).get("/inc")
        page = webtest.TestApp(StatsApp(store)).get("/").text
        assert "no count cap" in page and owners_on_page(page) == (1, 1)


def test_page_follows_revoke_logout_and_sign_in(signed_in):
    store, middleware, clients = signed_in
    stats = webtest.TestApp(StatsApp(store))
    assert middleware.sessions.revoke("ana", keep=None) == 2
    assert owners_on_page(stats.get("/").text) == (1, 1)
    clients["bob"].get("/logout")
    assert owners_on_page(stats.get("/").text) == (0, 0)
    clients["visitor-1"].get("/login", params={"user": "cy"})  # an anonymous visitor signs in: regenerated, owned
    assert owners_on_page(stats.get("/").text) == (1, 1)
    assert stats.get("/", headers={"Accept": "application/json"}).json["owned_sessions"] == 1


def test_page_formats_large_owner_counts_with_separators(make_store):
    store = make_store(max_size="16M")
    for user in range(1500):
        for device in range(2 if user < 100 else 1):
            store.set(f"s-{user}-{device}", {"user": user}, owner=user)
    store.set("anonymous", {"n": 1})
    page = webtest.TestApp(StatsApp(store)).get("/").text
    assert "<th>Owners</th><td>1,500</td>" in page and "<th>Owned sessions</th><td>1,600</td>" in page
    assert "1,601" in page  # the sessions, owned or not


def test_prometheus_exports_owners_and_owned_sessions_and_follows_revoke(signed_in):
    store, middleware, _ = signed_in
    samples = scrape(store)
    assert (samples["lembro_owners"], samples["lembro_owned_sessions"]) == (2, 3)
    assert samples["lembro_sessions"] == 5
    middleware.sessions.revoke("ana", keep=None)
    samples = scrape(store)
    assert (samples["lembro_owners"], samples["lembro_owned_sessions"]) == (1, 1)
    assert samples["lembro_sessions"] == 3


def test_prometheus_owners_are_zero_in_a_store_without_owners():
    with LembroStore(interval=None) as store:
        webtest.TestApp(LembroMiddleware(session_app, store=store)).get("/inc")
        samples = scrape(store, name="plain")
        assert (samples["lembro_owners"], samples["lembro_owned_sessions"], samples["lembro_sessions"]) == (0, 0, 1)
