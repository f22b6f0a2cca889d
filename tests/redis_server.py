"""A real redis-server for tests: on a free port of 127.0.0.1, no persistence, stopped afterwards.

    server = RedisServer.start_or_skip()   # skips (or fails under CI=true) when redis-server is missing
    server.url                             # 'redis://127.0.0.1:PORT/0'
    server.stop(); server.restart()        # the same port again, for outage tests
"""

import os
import shutil
import socket
import subprocess
import time

import pytest


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """One redis-server process; ``restart()`` brings it back on the same port, empty."""

    def __init__(self, binary, port, password=None, extra=()):
        self.binary, self.port, self.password, self.extra = binary, port, password, list(extra)
        self.url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{port}/0"
        self.process = None

    @classmethod
    def start_or_skip(cls, password=None, extra=()):
        binary = shutil.which("redis-server")
        if binary is None:
            reason = "redis-server is not installed (Debian: apt-get install -y redis-server)"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{reason}; CI must install it (.ci/run does)")
            pytest.skip(reason)
        server = cls(binary, free_port(), password, extra)
        server.restart()
        return server

    def restart(self):
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "yes", "--loglevel", "warning",
             *(["--requirepass", self.password] if self.password else []), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith((b"+PONG", b"-NOAUTH")):  # up, with or without a password
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{self.port}")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
