"""Private redis-server processes for the tests, on free loopback ports.

The tests start their own servers (rather than using the machine's Redis on
6379) so they can flush, stop and restart them freely. Without a redis-server
binary the Redis tests skip, except under ``QSTATE_REQUIRE_REDIS=1`` (set by
``.ci/run``), where they fail: CI must run them.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port below 55536 whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = random.randrange(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if os.environ.get("QSTATE_REQUIRE_REDIS"):
            pytest.fail(f"{message}, and QSTATE_REQUIRE_REDIS is set: Redis tests must run")
        pytest.skip(message)
    return path


class RedisServer:
    """One redis-server process that a test can stop and start again."""

    def __init__(self, directory: Path, *extra: str, port: int | None = None) -> None:
        self.binary = require_binary("redis-server")
        self.directory = directory
        self.port = port or free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(self.directory / "redis.log"),
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.wait_ready()

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            if self.process is not None and self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited: {log}")
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def command(self, *args: str) -> str:
        cli = require_binary("redis-cli")
        result = subprocess.run(
            [cli, "-p", str(self.port), *args], capture_output=True, text=True, check=True
        )
        return result.stdout


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private server for the whole session; tests flush it."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """An empty database on the session's private server."""
    redis_server.command("FLUSHALL")
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """A real 3-master Redis Cluster on loopback ports."""
    base = tmp_path_factory.mktemp("cluster")
    nodes = [
        RedisServer(base / str(i), "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                    port=free_cluster_port())
        for i in range(3)
    ]  # fmt: skip
    for node in nodes:
        node.start()
    try:
        cli = require_binary("redis-cli")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while "cluster_state:ok" not in nodes[0].command("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise RuntimeError("the test cluster did not become ready")
            time.sleep(0.1)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def monitored(url: str, action: Callable[[], object]) -> list[dict[str, Any]]:
    """What the server ran while ``action`` ran, as MONITOR reports it, in order.

    MONITOR starts listening at some point after it is sent, so a start marker is
    echoed until MONITOR reports it (no fixed sleep); an end marker closes the
    window. The client sending the markers is connected first, so its own
    handshake is not in the window.
    """
    import redis

    start, end = f"qstate-monitor-start-{uuid.uuid4()}", f"qstate-monitor-end-{uuid.uuid4()}"
    entries: list[dict[str, Any]] = []
    listening = threading.Event()

    def watch() -> None:
        with redis.Redis.from_url(url).monitor() as monitor:  # type: ignore[no-untyped-call]
            for entry in monitor.listen():
                command = entry["command"]
                if end in command:
                    return
                if start in command:
                    listening.set()
                elif listening.is_set():
                    entries.append(entry)

    client = redis.Redis.from_url(url)
    client.ping()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not listening.wait(0.1):
        assert time.monotonic() < deadline, "MONITOR never started listening"
        client.echo(start)
    action()
    client.echo(end)
    client.close()
    thread.join(timeout=30)
    return entries
