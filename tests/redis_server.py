"""A real redis-server for tests: on a free port of 127.0.0.1, no persistence, stopped afterwards.

    server = RedisServer.start_or_skip()   # skips (or fails under CI=true) when redis-server is missing
    server.url                             # 'redis://127.0.0.1:PORT/0'
    server.stop(); server.restart()        # the same port again, for outage tests
    wait_until(lambda: ..., "what")        # polls a server state, with a deadline

    with ScriptedRedis(b"-MASTERDOWN Link with MASTER is down") as fake:
        fake.url                           # answers every command (but the handshake's) with that reply
"""

import os
import shutil
import socket
import socketserver
import subprocess
import threading
import time

import pytest


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PortTaken(RuntimeError):
    """redis-server stopped as it started: another process took its port first (or an option is wrong)."""


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
        for _ in range(4):  # a port found free may be taken by another process before redis-server binds it
            server = cls(binary, free_port(), password, extra)
            try:
                server.restart()
            except PortTaken:
                continue
            return server
        raise RuntimeError(f"redis-server stopped as it started, four times (ports taken, or a bad option in {extra})")

    def restart(self):
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "yes", "--loglevel", "warning",
             *(["--requirepass", self.password] if self.password else []), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:  # it stopped at once: the port was taken meanwhile, most likely
                self.process = None
                raise PortTaken(f"redis-server exited at start on 127.0.0.1:{self.port}")
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


def wait_until(check, what, timeout=10):
    """Poll ``check()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class _ScriptedHandler(socketserver.StreamRequestHandler):
    def handle(self):
        while line := self.rfile.readline():
            if line.startswith(b"*"):  # a RESP array of bulk strings, as redis-py sends commands
                args = []
                for _ in range(int(line[1:])):
                    size = int(self.rfile.readline()[1:])
                    args.append(self.rfile.read(size + 2)[:-2])
            else:  # an inline command
                args = line.split()
            handshake = bool(args) and args[0].upper() in (b"CLIENT", b"AUTH", b"SELECT")
            self.wfile.write(b"+OK\r\n" if handshake else self.server.reply)


class ScriptedRedis:
    """A stand-in for redis-server on a free loopback port that answers every command with one reply
    (such as ``b"-MASTERDOWN ..."``), but the connection handshake's: so redis-py parses a server's
    error reply into the very exception it would raise, for replies a test server cannot easily produce."""

    def __init__(self, reply):
        self.reply = reply if reply.endswith(b"\r\n") else reply + b"\r\n"

    def __enter__(self):
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ScriptedHandler)
        self.server.daemon_threads = True
        self.server.reply = self.reply
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), name="scripted-redis",
                                       daemon=True)
        self.thread.start()
        self.url = f"redis://127.0.0.1:{self.server.server_address[1]}/0"
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
