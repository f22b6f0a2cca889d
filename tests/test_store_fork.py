"""A store across os.fork() (gunicorn --preload): the child gets a working store, and a fork waits for a store
call in progress, so the child never copies a half-done one."""

import gc
import os
import signal
import sys
import threading
import time

import pytest

from lembro_wsgi import LembroStore
from tests.conftest import GATE

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),  # forking so is the point
]


def in_child(check, seconds=10):
    """Run ``check()`` in a forked child; whether it returned True there (a hang or an error is False)."""
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            signal.alarm(seconds)  # a deadlock in the child ends it
            ok = check() is True
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_child_reads_writes_and_closes_a_store_made_before_the_fork(clock):
    store = LembroStore(interval=None, timeout=10, clock=clock)
    store.set("before", 1)

    def child():
        found = store.get("before") == 1
        store.set("child", 2)
        store.close()  # no purge thread to stop, in the child as in the parent
        return found and store.get("child") == 2 and len(store) == 2

    assert in_child(child, seconds=5)
    assert store.get("child") is None and store.get("before") == 1
    store.close()


def runs_in(thread, function):
    """Whether ``function`` is on ``thread``'s stack now (its frames, read from the outside)."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def test_a_fork_waits_for_a_write_in_progress_and_the_child_has_it():
    inside, go_on = threading.Event(), threading.Event()

    def clock():  # the writer thread stops inside its store call, holding the store's lock
        if threading.current_thread().name == "slow-writer":
            inside.set()
            go_on.wait(GATE)
        return 1000.0

    store = LembroStore(interval=None, clock=clock)
    writer = threading.Thread(target=store.set, args=("in-flight", {"n": 1}), name="slow-writer")
    writer.start()
    assert inside.wait(GATE)
    forking, seen = threading.main_thread(), []

    def release_once_the_fork_waits():  # the write ends only while fork() is seen waiting for the store's lock
        deadline = time.monotonic() + GATE
        while not runs_in(forking, "_before_fork") and time.monotonic() < deadline:
            time.sleep(0.001)
        seen.append(runs_in(forking, "_before_fork"))
        go_on.set()

    release = threading.Thread(target=release_once_the_fork_waits)
    release.start()
    try:
        assert in_child(lambda: store.get("in-flight") == {"n": 1})
    finally:
        go_on.set()
        release.join()
        writer.join()
    assert seen == [True]  # the fork did wait for the write in progress
    assert store.get("in-flight") == {"n": 1}
    store.close()


def purge_threads_in_a_child():
    """How many background purges a forked child runs (each live store made before the fork may start one)."""
    gc.collect()  # stores other tests dropped must not go between two counts
    pid = os.fork()
    if pid == 0:
        count = 255
        try:
            signal.alarm(5)
            count = sum(thread.name == "lembro-purge" for thread in threading.enumerate())
        finally:
            os._exit(min(count, 200))
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status)
    return os.WEXITSTATUS(status)


def test_a_store_closed_before_the_fork_starts_no_purge_thread_in_the_child():
    store = LembroStore(interval=30)
    try:
        while_open = purge_threads_in_a_child()
        store.close()
        assert purge_threads_in_a_child() == while_open - 1  # close() stops background work for good
    finally:
        store.close()
