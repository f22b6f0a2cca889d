"""Soak: a real waitress server on 127.0.0.1, returning clients and a flood of one-shot clients, small cap.

The server runs in its own process; its RSS is sampled from /proc during the run.

CI runs 10 seconds. The long version (say, ten minutes) with its figures printed::

    LEMBRO_SOAK_SECONDS=600 python -m pytest -m soak -s
"""

import json
import os
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.servers import browser, server_process

SECONDS = float(os.environ.get("LEMBRO_SOAK_SECONDS", "10"))
MAX_REQUESTS = int(SECONDS * 2000)  # a bound on every loop, whatever the machine's speed
RETURNING, FLOODERS, CAP = 20, 2, 64 * 1024


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def slope_per_minute(samples):
    """Least-squares slope of (seconds, bytes) samples, in MiB per minute."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_b = sum(b for _, b in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (b - mean_b) for t, b in samples)
    return cov / var * 60 / 2**20 if var else 0.0


@pytest.mark.soak
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS is read from /proc (Linux)")
def test_soak_returning_clients_keep_their_data_through_a_flood_and_memory_stays_flat():
    deadline = time.monotonic() + SECONDS
    counts = {"requests": 0, "flood": 0}
    errors, lost, samples = [], [], []
    budget = threading.Semaphore(MAX_REQUESTS)

    def get(opener, url):
        if not budget.acquire(blocking=False):
            return None
        try:
            with opener.open(url, timeout=10) as response:
                body = response.read().decode()
        except urllib.error.HTTPError as exc:  # any 5xx (or other error status) fails the test
            errors.append(exc.code)
            return None
        except OSError as exc:  # a timeout or a reset too: a client that died must not pass for one that kept up
            errors.append(repr(exc))
            return None
        counts["requests"] += 1
        return body

    made = []  # requests each returning client made

    def returning_client(base):
        opener, expected = browser(), 0
        while time.monotonic() < deadline:
            body = get(opener, f"{base}/inc")
            if body is None:
                break
            expected += 1
            if int(body.split()[1]) != expected:
                lost.append(body)
                expected = int(body.split()[1])
            time.sleep(0.01)  # a person's pace, not a tight loop
        made.append(expected)

    def flooder(base):
        plain = urllib.request.build_opener()  # no cookie jar: every request is a new client
        while time.monotonic() < deadline and get(plain, f"{base}/inc") is not None:
            counts["flood"] += 1

    def sampler(pid):
        start = time.monotonic()
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - start, rss_bytes(pid)))
            time.sleep(0.2)

    with server_process({"max_size": CAP, "interval": 1}) as (pid, base):
        threads = [threading.Thread(target=returning_client, args=(base,)) for _ in range(RETURNING)]
        threads += [threading.Thread(target=flooder, args=(base,)) for _ in range(FLOODERS)]
        threads.append(threading.Thread(target=sampler, args=(pid,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SECONDS + 30)
        with urllib.request.urlopen(f"{base}/__stats", timeout=10) as response:
            stats = json.load(response)
    after_warmup = samples[len(samples) * 2 // 5:]
    slope = slope_per_minute(after_warmup)
    print(
        f"\nsoak: {SECONDS:.0f} s, {counts['requests']} requests ({counts['flood']} one-shot), "
        f"{RETURNING} returning clients, {stats['evictions']} evictions; "
        f"RSS {after_warmup[0][1] / 2**20:.1f} -> {after_warmup[-1][1] / 2**20:.1f} MiB after warm-up, "
        f"slope {slope:+.2f} MiB/min"
    )
    assert errors == []
    assert len(made) == RETURNING and min(made) >= 10, made  # every returning client really kept coming back
    assert lost == []  # returning clients kept their data
    assert counts["flood"] > 0 and stats["evictions"] > 0  # the flood really overflowed the cap
    assert stats["bytes"] <= CAP
    assert slope < 10, f"RSS grows {slope:.1f} MiB/min after warm-up"
