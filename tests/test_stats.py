"""StatsApp (HTML and JSON) and the Prometheus collector, on a real store."""

import pytest
import webtest

from lembro_wsgi import LembroMiddleware, LembroStore, StatsApp
from tests.wsgi_apps import session_app


@pytest.fixture
def flooded(clock):
    """A store after a flood through the middleware: ids known, evictions done, two purges sampled."""
    store = LembroStore(interval=None, clock=clock, max_size="64K", max_sessions=500)
    app = webtest.TestApp(LembroMiddleware(session_app, store=store))
    ids = []
    for _ in range(300):
        ids.append(webtest.TestApp(app.app).get("/inc").headers["Set-Cookie"].split(";")[0].split("=")[1])
    store.purge()
    clock.advance(1)
    store.purge()
    yield store, ids
    store.close()


def test_html_is_the_default_and_shows_exact_figures_never_ids(flooded):
    store, ids = flooded
    response = webtest.TestApp(StatsApp(store)).get("/")
    stats = store.stats()
    assert response.content_type == "text/html" and "<svg" in response.text and "<script" not in response.text
    assert f"{stats['bytes']:,}" in response.text and f"{stats['max_size']:,}" in response.text
    assert f"{stats['evictions']:,}" in response.text and "KiB" in response.text
    assert f"{stats['sessions']:,} of 500" in response.text
    assert not any(sid[:8] in response.text for sid in ids)
    assert "http" not in response.text.replace("http://www.w3.org", "")  # no external assets


@pytest.mark.parametrize("request_kwargs", [{"headers": {"Accept": "application/json"}}, {"params": {"format": "json"}}])
def test_json_on_accept_or_format_has_every_stat_and_the_history(flooded, request_kwargs):
    store, ids = flooded
    body = webtest.TestApp(StatsApp(store)).get("/", **request_kwargs).json
    assert {k: v for k, v in body.items() if k not in ("history", "name")} == store.stats()
    assert body["name"] == store.name
    assert len(body["history"]) == 2 and set(body["history"][0]) == {
        "time", "bytes", "sessions", "evictions", "expirations", "returning_evictions", "one_shot_evictions"}
    assert body["history"][0]["evictions"] == store.stats()["evictions"] > 0
    first = body["history"][0]
    assert first["returning_evictions"] + first["one_shot_evictions"] == first["evictions"]
    assert not any(sid[:8] in str(body) for sid in ids)


def test_nulls_are_kept_in_json_and_other_methods_get_405():
    with LembroStore(interval=None) as store:
        app = webtest.TestApp(StatsApp(store))
        assert app.get("/?format=json").json["max_sessions"] is None
        assert "no count cap" in app.get("/", headers={"Accept": "text/html,application/json;q=0.9"}).text
        for method in ("post", "put", "delete"):
            response = getattr(app, method)("/", status=405)
            assert response.headers["Allow"] == "GET, HEAD"
        assert app.head("/").body == b""


def test_stats_app_refuses_what_is_not_a_store():
    with pytest.raises(ValueError, match="^store: "):
        StatsApp({"sessions": 1})


def test_prometheus_exposition_parses_back_with_labels_and_totals(flooded):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from lembro_wsgi.prometheus import LembroCollector

    store, _ = flooded
    registry = CollectorRegistry()
    registry.register(LembroCollector(store, name="web"))
    samples = {
        sample.name: sample for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    stats = store.stats()
    expected = {
        "lembro_sessions": stats["sessions"], "lembro_bytes": stats["bytes"], "lembro_max_bytes": stats["max_size"],
        "lembro_max_sessions": 500, "lembro_evictions_total": stats["evictions"],
        "lembro_expirations_total": stats["expirations"], "lembro_purges_total": 2,
    }
    for name, value in expected.items():
        assert samples[name].value == value and samples[name].labels == {"store": "web"}, name
    with LembroStore(interval=None) as uncapped:
        other = CollectorRegistry()
        other.register(LembroCollector(uncapped))
        assert "lembro_max_sessions" not in generate_latest(other).decode()


def test_prometheus_several_stores_in_one_collector_and_clashes_refused():
    from prometheus_client import CollectorRegistry, Gauge, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from lembro_wsgi.prometheus import LembroCollector

    with LembroStore(interval=None) as web, LembroStore(interval=None, max_sessions=9) as api:
        registry = CollectorRegistry()
        registry.register(LembroCollector({"web": web, "api": api}))
        text = generate_openmetrics(registry).decode()
        families = {family.name: family for family in text_string_to_metric_families(text)}  # parses: no clash
        assert {sample.labels["store"] for sample in families["lembro_sessions"].samples} == {"web", "api"}
        assert [s.labels for s in families["lembro_max_sessions"].samples] == [{"store": "api"}]
        with pytest.raises(ValueError, match="Duplicated"):
            registry.register(LembroCollector(web, name="again"))
        with pytest.raises(ValueError, match="Duplicated"):
            Gauge("lembro_sessions", "clash", registry=registry)
        assert "lembro_bytes" in generate_latest(registry.restricted_registry(["lembro_bytes"])).decode()


@pytest.mark.parametrize("accept", ["application/json; charset=utf-8", "application/*", "application/json;q=1"])
def test_json_for_accept_headers_with_parameters(accept):
    with LembroStore(interval=None) as store:
        response = webtest.TestApp(StatsApp(store)).get("/", headers={"Accept": accept})
        assert response.content_type == "application/json"
