"""Where the backend URL comes from, and how schemes find their backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from qstate import ConfigError, State, StateRegistry
from qstate._config import DEFAULT_URL, locate_url
from qstate._urls import redact


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QSTATE_URL", raising=False)


def test_default_when_nothing_is_configured(tmp_path: Path) -> None:
    assert locate_url(cwd=tmp_path) == (DEFAULT_URL, "default")
    assert DEFAULT_URL == "file:.qstate/state.db"


def test_explicit_beats_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "qstate.toml").write_text('url = "memory://"\n')
    assert locate_url(cwd=tmp_path).url == "memory://"
    monkeypatch.setenv("QSTATE_URL", "redis://env:6379/0")
    assert locate_url(cwd=tmp_path) == ("redis://env:6379/0", "$QSTATE_URL")
    assert locate_url("file:x.db", cwd=tmp_path) == ("file:x.db", "argument")


def test_config_found_upward_and_relative_paths_anchored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.qstate]\nurl = "file:var/state.db"\n')
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    found = locate_url(cwd=deep)
    assert found.url == f"file:{tmp_path}/var/state.db"
    assert found.source == str(tmp_path / "pyproject.toml")


def test_qstate_toml_wins_over_pyproject_in_the_same_directory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.qstate]\nurl = "memory://"\n')
    (tmp_path / "qstate.toml").write_text('url = "file:///abs/s.db"\n')
    assert locate_url(cwd=tmp_path).url == "file:///abs/s.db"


def test_pyproject_without_qstate_table_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "qstate-user"\n')
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[tool.other]\nx = 1\n")
    assert locate_url(cwd=inner).url == DEFAULT_URL


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("qstate.toml", "url = [1", "not valid TOML"),
        ("qstate.toml", "url = 5", "url must be a non-empty string"),
        ("pyproject.toml", "[tool.qstate]\nurl = ''", "url must be a non-empty string"),
    ],
)
def test_broken_config_is_a_clear_error(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        locate_url(cwd=tmp_path)


def test_registry_without_url_uses_the_same_resolution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with StateRegistry() as registry:
        assert registry.url == f"file:{Path(DEFAULT_URL[5:])}"
        type("Probe", (State,), {})(registry).set("a", 1)
    assert (tmp_path / ".qstate" / "state.db").is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nothing-here", "not a backend URL"),
        ("postgres://u:secret@h/db", "no backend for postgres://"),
        ("memory://host", "takes no host"),
    ],
)
def test_unknown_or_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        StateRegistry(url)
    assert "secret" not in str(info.value)


def test_third_party_backend_registers_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package adds ``custom://`` without touching qstate (a real dist-info on sys.path)."""
    (tmp_path / "custom_backend.py").write_text(
        "from qstate.backends.memory import AsyncMemoryBackend, MemoryBackend\n"
        "def open_sync(url):\n    return MemoryBackend(url)\n"
        "def open_async(url):\n    return AsyncMemoryBackend(url)\n"
    )
    info = tmp_path / "custom_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: custom-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[qstate.backends]\ncustom = custom_backend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with StateRegistry("custom://anything") as registry:
        assert registry.url == "custom://anything"
        type("Probe", (State,), {})(registry).set("a", 1)
        assert registry.list_states()[0].keys == 1


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:s3cret@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:s3cret@host:6379", "redis://:***@host:6379"),
        ("rediss://host:6379/0?password=s3cret&x=1", "rediss://host:6379/0?password=***&x=1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("file:/a:b@c/state.db", "file:/a:b@c/state.db"),
    ],
)
def test_redact_hides_passwords(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    "backend", ["memory", "file", pytest.param("redis", marks=pytest.mark.redis)]
)
def test_history_in_the_url_sets_how_many_changes_a_log_keeps(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``?history=N`` is read alike by every built-in backend (Redis trims about N)."""
    url = {"memory": "memory://", "file": f"file:{tmp_path}/s.db"}.get(backend)
    if url is None:
        url = request.getfixturevalue("redis_url")
    with StateRegistry(f"{url}?history=50") as registry:
        state = registry.state("HistoryInURL")
        for i in range(300):
            state.set("i", i)
        kept = [c.rev for c in state.history()]
    assert 50 <= len(kept) < 100  # exactly 50 on memory and Redis; trimmed in steps on file
    assert kept[-1] == 300


@pytest.mark.parametrize("scheme", ["memory://", "file:/tmp/never.db", "redis://127.0.0.1/0"])
@pytest.mark.parametrize("bad", ["0", "-3", "1.5", "", "100001"])
def test_a_bad_history_in_the_url_is_a_config_error(scheme: str, bad: str) -> None:
    with pytest.raises(ConfigError, match="history must be"):
        StateRegistry(f"{scheme}?history={bad}")


@pytest.mark.parametrize("backend", ["file", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_writer_without_history_keeps_the_size_another_asked_for(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The CLI or another service, which never sees the state class, must not trim
    its history to the default: the log remembers the size its class asked for."""
    url = f"file:{tmp_path}/s.db" if backend == "file" else request.getfixturevalue("redis_url")

    class Audit(State, history=1200):
        pass

    with StateRegistry(url) as app, StateRegistry(url) as other:
        audit = Audit(app)
        for i in range(1300):
            audit.set("i", i)
        for i in range(10):
            other.state("Audit").set("i", i)  # no class, no ?history=
        kept = len(other.state("Audit").history())
    assert 1200 <= kept < 1400


def test_a_class_met_after_the_first_write_resizes_the_memory_log() -> None:
    with StateRegistry("memory://") as registry:
        for i in range(1100):
            registry.state("Late").set("i", i)
        assert len(registry.state("Late").history()) == 1000

        class Late(State, history=1200):
            pass

        late = Late(registry)
        for i in range(150):
            late.set("i", i)
        assert len(late.history()) == 1150
