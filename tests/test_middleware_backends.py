"""The same app code on Beaker's file backend, and under a real threaded server on 127.0.0.1."""

import threading
import time

import webtest

from lembro_wsgi import LembroMiddleware
from tests.servers import browser, serve
from tests.wsgi_apps import session_app


def reply(response):
    sid, n, user, items = response.text.split()
    return sid, int(n), user, int(items)


def test_same_app_code_on_beakers_file_backend(tmp_path):
    middleware = LembroMiddleware(session_app, type="file", data_dir=str(tmp_path / "sessions"), timeout=600)
    app = webtest.TestApp(middleware)
    first = reply(app.get("/inc"))
    assert reply(app.get("/inc"))[:2] == (first[0], 2)
    assert reply(webtest.TestApp(middleware).get("/inc"))[1] == 1
    assert any((tmp_path / "sessions").rglob("*"))  # really on disk
    new_sid = reply(app.get("/login?user=bo"))[0]
    assert new_sid != first[0]
    assert reply(app.get("/inc"))[:3] == (new_sid, 3, "bo")
    app.get("/logout")
    assert reply(app.get("/inc"))[1] == 1
    planted = webtest.TestApp(middleware)
    planted.set_cookie("lembro.sid", "P" * 43)
    assert reply(planted.get("/inc"))[0] != "P" * 43


def test_file_backend_sessions_idle_past_timeout_start_over(tmp_path):
    middleware = LembroMiddleware(session_app, type="file", data_dir=str(tmp_path), timeout=600)
    app = webtest.TestApp(middleware)
    sid = reply(app.get("/inc"))[0]
    record = middleware.sessions.backend.load(sid)
    middleware.sessions.backend.save(sid, {**record, "accessed": time.time() - 601})  # as if idle for 601 s
    assert reply(app.get("/inc"))[:2] != (sid, 2)
    assert middleware.sessions.backend.load(sid) is None


def test_real_server_eight_clients_two_hundred_requests_each():
    middleware = LembroMiddleware(session_app, max_size="1M")
    results, errors = {}, []

    def client(name, base):
        opener = browser()
        last = None
        try:
            for _ in range(200):
                with opener.open(f"{base}/inc", timeout=10) as response:
                    assert response.status == 200
                    last = response.read().decode().split()
            results[name] = last
        except Exception as exc:  # noqa: BLE001 - any failure fails the test below
            errors.append(exc)

    with serve(middleware) as base:
        clients = [threading.Thread(target=client, args=(n, base)) for n in range(8)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(60)
    assert errors == []
    assert sorted(int(r[1]) for r in results.values()) == [200] * 8
    assert len({r[0] for r in results.values()}) == 8
    assert middleware.store.stats()["sessions"] == 8
