"""Fixtures shared by the whole suite.

The contract tests run once per (backend, flavour). A :class:`Flavour` hides the
difference between the sync and async APIs so that one test body checks both:
``f.run(x)`` awaits ``x`` on the flavour's event loop when it is a coroutine.
Adding a backend to the suite means adding one entry to ``backend_url``.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from qstate import AsyncState, AsyncStateRegistry, State, StateRegistry
from qstate._backends import ENTRY_POINT_GROUP
from tests import example_backend

pytest_plugins = ["tests.redis_server"]

ORDER_VARIABLE = "QSTATE_TEST_ORDER"
"""Set to ``reverse`` to run the collected tests last to first (order-dependence checks)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get(ORDER_VARIABLE) == "reverse":
        items.reverse()


class Flavour:
    """The sync or async API behind one uniform, synchronous test interface."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_async = name == "async"
        self.base: type[Any] = AsyncState if self.is_async else State
        self._runner = asyncio.Runner() if self.is_async else None
        self._registries: list[Any] = []

    def registry(self, url: str) -> Any:
        registry = AsyncStateRegistry(url) if self.is_async else StateRegistry(url)
        self._registries.append(registry)
        return registry

    def state_class(self, class_name: str, /, **options: Any) -> type[Any]:
        """A new State/AsyncState subclass called ``class_name``."""
        return type(class_name, (self.base,), {}, **options)

    def run(self, value: Any) -> Any:
        if inspect.iscoroutine(value):
            assert self._runner is not None
            return self._runner.run(value)
        return value

    @contextmanager
    def transaction(self, state: Any) -> Iterator[dict[str, Any]]:
        if not self.is_async:
            with state.transaction() as data:
                yield data
            return
        # Drive the async context manager by hand on the flavour's loop.
        manager = state.transaction()
        data = self.run(manager.__aenter__())
        try:
            yield data
        except BaseException as exc:
            if not self.run(manager.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            self.run(manager.__aexit__(None, None, None))

    def take(self, changes: Any, count: int) -> list[Any]:
        """The next ``count`` items of a ``watch()`` iterator of either flavour."""
        if not self.is_async:
            return [next(changes) for _ in range(count)]

        async def take() -> list[Any]:
            return [await anext(changes) for _ in range(count)]

        found: list[Any] = self.run(take())
        return found

    def close(self) -> None:
        for registry in self._registries:
            self.run(registry.aclose() if self.is_async else registry.close())
        if self._runner is not None:
            self._runner.close()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> Iterator[Flavour]:
    f = Flavour(request.param)
    yield f
    f.close()


def _register_example_backend(directory: Path) -> None:
    """Install ``tests/example_backend.py`` as another package would: an entry point.

    A ``*.dist-info`` directory on ``sys.path`` is what ``importlib.metadata``
    reads for installed distributions, so qstate finds ``example://`` exactly as
    it would find a backend installed with pip.
    """
    info = directory / "qstate_example_backend-1.0.dist-info"
    if str(directory) in sys.path:
        return
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: qstate-example-backend\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nexample = tests.example_backend\n"
    )
    sys.path.append(str(directory))


@pytest.fixture(scope="session")
def example_backend_installed(tmp_path_factory: pytest.TempPathFactory) -> None:
    _register_example_backend(tmp_path_factory.mktemp("site"))


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store that other processes (the ``qstate`` executable) share: file, Redis.

    A module testing other stores defines its own ``url`` fixture instead.
    """
    if request.param == "file":
        return f"file:{tmp_path}/state.db"
    found: str = request.getfixturevalue("redis_url")
    return found


@pytest.fixture(
    params=["memory", "file", pytest.param("redis", marks=pytest.mark.redis), "example"]
)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of each kind (``example``: the third-party backend of the tests)."""
    if request.param == "example":
        request.getfixturevalue("example_backend_installed")
        yield "example://"
        example_backend.forget_everything()
        return
    if request.param == "memory":
        yield "memory://"
        return
    if request.param == "file":
        yield f"file:{tmp_path}/data/state.db"
        return
    url: str = request.getfixturevalue("redis_url")
    yield url


@pytest.fixture
def registry(flavour: Flavour, backend_url: str) -> Any:
    return flavour.registry(backend_url)


@pytest.fixture
def make_state(flavour: Flavour, registry: Any) -> Callable[..., Any]:
    """``make_state("MyState", scope=..., ttl=...)`` → a state bound to ``registry``."""

    def make(name: str = "MyState", **kwargs: Any) -> Any:
        return flavour.state_class(name)(registry, **kwargs)

    return make


@pytest.fixture
def shared_directory() -> Iterator[Path]:
    """A directory other users can enter (pytest's own tmp directories are 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="qstate-perm-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def as_nobody() -> list[str]:
    """The command prefix that runs a program as user nobody, or a skip saying why not.

    Root ignores file permissions, so permission tests run as another user; that
    user must be able to run this checkout's interpreter, which it cannot when
    the checkout sits inside a 0700 home directory.
    """
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run qstate as another user")
    command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(
        [*command, sys.executable, "-c", "import qstate_cli.main"], capture_output=True
    )
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        pytest.skip(
            "user nobody cannot run this checkout's interpreter (inside a 0700 "
            f"directory?): {reason[0]}"
        )
    return command
