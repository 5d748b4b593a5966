"""Every command and every exit code, through Typer's test runner, on file and Redis."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from qstate import StateRegistry
from qstate._changes import LOG_SIZE
from qstate_cli.main import app


class Cli:
    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = CliRunner()

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        return self.runner.invoke(app, ["--url", self.url, *args], input=input, env=env)

    def registry(self) -> StateRegistry:
        return StateRegistry(self.url)

    def state(self, name: str = "MyState", scope: str | None = None) -> dict[str, Any]:
        with self.registry() as registry:
            return registry.state(name, scope=scope).get_all()


@pytest.fixture
def cli(url: str) -> Cli:
    return Cli(url)


def test_set_then_get(cli: Cli) -> None:
    assert cli("set", "MyState", "step", "1").exit_code == 0
    result = cli("get", "MyState", "step")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "1\n", "")
    assert cli("set", "MyState", "prompt", "Введите телефон").exit_code == 0
    assert cli("get", "MyState", "prompt").stdout == "Введите телефон\n", "plain: strings bare"
    whole = cli("get", "MyState")
    assert json.loads(whole.stdout) == {"step": 1, "prompt": "Введите телефон"}


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("42", 42),
        ("-1.5", -1.5),
        ("true", True),
        ("null", None),
        ('"42"', "42"),
        ('[1, {"a": 2}]', [1, {"a": 2}]),
        ("hello world", "hello world"),
        ("NaN", "NaN"),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775807", -(2**63) + 1),
    ],
)
def test_set_parses_json_else_takes_a_string(cli: Cli, text: str, stored: Any) -> None:
    assert cli("set", "MyState", "v", "--", text).exit_code == 0  # -- for "-1.5"
    assert cli.state() == {"v": stored}


@pytest.mark.parametrize("text", ["{not json", "[1, 2", " {'single': 1}", "[bold]x[/]"])
def test_a_value_that_looks_like_json_must_parse(cli: Cli, text: str) -> None:
    result = cli("set", "MyState", "v", text)
    assert result.exit_code == 2
    assert "looks like JSON" in result.stderr
    assert "--string" in result.stderr
    assert cli.state() == {}
    assert cli("set", "--string", "MyState", "v", text).exit_code == 0
    assert cli.state() == {"v": text}


def test_json_nested_ten_thousand_levels_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    dump = tmp_path / "deep.json"
    dump.write_text('{"qstate_export": 1, "states": [{"name": "S", "data": {"k": ' + deep + "}}]}")
    for args in (
        ["set", "MyState", "v", deep],
        ["set", "MyState", "v", "-"],
        ["update", "MyState", f"v={deep}"],
        ["update", "MyState", "--json", '{"v": ' + deep + "}"],
        ["import", str(dump)],
    ):
        result = cli(*args, input=deep)
        assert result.exit_code == 2, (args[:2], result.stderr)
        assert "nested deeper than 100 levels" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert cli.state() == {}


def test_set_string_stdin_ttl_scope(cli: Cli) -> None:
    assert cli("set", "--string", "MyState", "n", "42").exit_code == 0
    assert cli("set", "MyState", "body", "-", input='{"from": "stdin"}\n').exit_code == 0
    assert cli("set", "--scope", "u1", "--ttl", "60", "MyState", "a", "1").exit_code == 0
    assert cli.state() == {"n": "42", "body": {"from": "stdin"}}
    assert cli.state(scope="u1") == {"a": 1}
    listed = json.loads(cli("list").stdout)
    [scoped] = [s for s in listed if s["scope"] == "u1"]
    assert 50 < scoped["ttl"] <= 60


def test_json_output_of_set_is_one_document(cli: Cli) -> None:
    result = cli.runner.invoke(app, ["--url", cli.url, "--json", "set", "S", "k", "[1]"])
    assert json.loads(result.stdout) == {"state": "S", "scope": "", "key": "k", "value": [1]}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["get", "Nope"], 1, "state Nope not found"),
        (["get", "MyState", "nope"], 1, "key 'nope' not found"),
        (["get", "bad name"], 2, "invalid state name"),
        (["set", "MyState", "big", "9223372036854775808"], 2, "outside"),
        (["set", "MyState", "", "1"], 2, "invalid key"),
        (["set", "--ttl", "-5", "MyState", "k", "1"], 2, "ttl"),
        (["update", "MyState"], 2, "nothing to update"),
        (["update", "MyState", "novalue"], 2, "expected KEY=VALUE"),
        (["update", "MyState", "--json", "{bad"], 2, "not valid JSON"),
        (["update", "MyState", "--json", "[1]"], 2, "must be a JSON object"),
        (["incr", "MyState", "step", "abc"], 2, "AMOUNT must be a number"),
        (["incr", "MyState", "name"], 2, "not a number"),
        (["gte", "MyState"], 2, "No such command"),
        (["get"], 2, "Missing argument"),
        (["clear", "MyState"], 5, "no terminal; pass --yes"),
        (["import", "/nonexistent/dump.json"], 2, "cannot read"),
    ],
)
def test_errors_are_one_line_with_documented_codes(
    cli: Cli, args: list[str], code: int, message: str
) -> None:
    cli("update", "MyState", "step=1", "name=x")
    result = cli(*args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert cli.state() == {"step": 1, "name": "x"}, "a failed command changes nothing"


def test_bad_urls_and_unavailable_backends(tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "plain").write_text("a file, not a directory")
    for url, code, message in [
        ("nowhere", 2, "not a backend URL"),
        ("postgres://u:secret@h/db", 2, "no backend for postgres://"),
        ("file:x.db?timeout=soon", 2, "timeout"),
        (f"file:{tmp_path}/plain/state.db", 3, "cannot use"),
        ("redis://:secret@127.0.0.1:1/0?timeout=0.5", 3, "unavailable"),
    ]:
        result = runner.invoke(app, ["--url", url, "set", "S", "k", "1"])
        assert result.exit_code == code, (url, result.stderr)
        assert message in result.stderr
        assert "secret" not in result.stderr


def test_update_prints_the_updated_state(cli: Cli) -> None:
    cli("set", "MyState", "state", "await_phone")
    result = cli("update", "MyState", "step=1", "prompt=Введите телефон")
    assert json.loads(result.stdout) == {
        "state": "await_phone",
        "step": 1,
        "prompt": "Введите телефон",
    }
    result = cli("update", "MyState", "--json", '{"step": 2, "list": [1]}', "extra=x=y")
    assert json.loads(result.stdout)["list"] == [1]
    assert cli.state()["extra"] == "x=y"
    assert cli("-o", "plain", "update", "MyState", "step=3").stdout.splitlines()[1] == "step\t3"


def test_delete_clear_incr(cli: Cli) -> None:
    cli("update", "MyState", "a=1", "b=2", "c=3")
    result = cli("delete", "MyState", "a", "b", "zz")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "deleted 2 of 3" in result.stderr
    deleted = cli.runner.invoke(app, ["--url", cli.url, "--json", "delete", "MyState", "c"])
    assert json.loads(deleted.stdout)["deleted"] == 1
    assert cli("incr", "Counter", "n").stdout == "1\n"
    assert cli("incr", "Counter", "n", "41").stdout == "42\n"
    assert cli("incr", "Counter", "n", "0.5").stdout == "42.5\n"
    assert cli("clear", "--yes", "Counter").exit_code == 0
    assert cli.state("Counter") == {}
    assert "already empty" in cli("clear", "--yes", "Counter").stderr


def test_clear_asks_on_a_terminal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from qstate_cli.output import Output

    monkeypatch.setattr(Output, "interactive", property(lambda self: True))
    cli("set", "MyState", "a", "1")
    refused = cli("clear", "MyState", input="n\n")
    assert refused.exit_code == 5
    assert "not confirmed" in refused.stderr
    assert cli.state() == {"a": 1}
    default_no = cli("clear", "MyState", input="\n")
    assert default_no.exit_code == 5, "the default answer is No"
    assert cli("clear", "MyState", input="y\n").exit_code == 0
    assert cli.state() == {}


def test_list_and_prefix(cli: Cli) -> None:
    cli("set", "Alpha", "a", "1")
    cli("set", "--scope", "s1", "Beta", "b", "2")
    listed = json.loads(cli("list").stdout)
    assert [(s["state"], s["scope"], s["keys"]) for s in listed] == [
        ("Alpha", "", 1),
        ("Beta", "s1", 1),
    ]
    assert [s["state"] for s in json.loads(cli("list", "--prefix", "Be").stdout)] == ["Beta"]
    assert cli("-o", "plain", "list").stdout == "Alpha\t\t1\t\nBeta\ts1\t1\t\n"
    table = cli("-o", "table", "list").stdout
    assert "Alpha" in table
    assert "┃ state" in table


def test_export_import_round_trip_and_across_backends(
    cli: Cli, tmp_path: Path, redis_url: str
) -> None:
    cli("update", "MyState", "state=await_phone", "step=1", 'nested={"a": [1, null]}')
    cli("update", "--scope", "u1", "MyState", "x=Юникод")
    cli("set", "--ttl", "300", "Session", "token", "abc")
    dump = cli("export").stdout
    document = json.loads(dump)
    assert document["qstate_export"] == 1
    assert [(s["state"], s["scope"]) for s in document["states"]] == [
        ("MyState", ""),
        ("MyState", "u1"),
        ("Session", ""),
    ]
    other = Cli(f"file:{tmp_path}/other.db" if cli.url.startswith("redis") else redis_url)
    (tmp_path / "dump.json").write_text(dump)
    result = other("import", str(tmp_path / "dump.json"))
    assert result.exit_code == 0, result.stderr
    assert "imported 3 state(s)" in result.stderr
    again = json.loads(other("export").stdout)
    for state in again["states"] + document["states"]:
        ttl = state.pop("ttl")
        assert ttl is None or 250 < ttl <= 300
    assert again == document
    selected = json.loads(cli("export", "Session").stdout)["states"]
    assert [s["state"] for s in selected] == ["Session"]


def test_import_merge_replace_dry_run(cli: Cli, tmp_path: Path) -> None:
    dump = tmp_path / "dump.json"
    dump.write_text(
        json.dumps({"qstate_export": 1, "states": [{"state": "MyState", "data": {"a": 9}}]})
    )
    cli("update", "MyState", "a=1", "b=2")
    dry = cli.runner.invoke(app, ["--url", cli.url, "--json", "import", "--dry-run", str(dump)])
    assert json.loads(dry.stdout)["states"][0]["changed"] == ["a"]
    assert cli.state() == {"a": 1, "b": 2}, "--dry-run writes nothing"
    assert cli("import", "--replace", str(dump)).exit_code == 5, "no terminal, no --yes"
    assert cli.state() == {"a": 1, "b": 2}
    assert cli("import", "-", input=dump.read_text()).exit_code == 0
    assert cli.state() == {"a": 9, "b": 2}, "merge by default"
    assert cli("import", "--replace", "--yes", str(dump)).exit_code == 0
    assert cli.state() == {"a": 9}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"states": []}', "not a qstate export"),
        ('{"qstate_export": 1, "states": {}}', "must be a list"),
        ('{"qstate_export": 1, "states": [{"state": "bad name", "data": {}}]}',
         "invalid state name"),
        ('{"qstate_export": 1, "states": [{"state": "Ok", "data": {"": 1}}]}', "invalid key"),
        ('{"qstate_export": 1, "states": [{"state": "Ok", "data": {"a": 1}},'
         ' {"state": "Ok2", "data": {"b": 1e999}}]}', "not a JSON number"),
    ],
)  # fmt: skip
def test_bad_imports_change_nothing(cli: Cli, document: str, message: str) -> None:
    result = cli("import", "-", input=document)
    assert result.exit_code == 2
    assert message in result.stderr
    assert json.loads(cli("list").stdout) == []


def test_wait(cli: Cli) -> None:
    cli("set", "Job", "status", "running")
    timed_out = cli("wait", "--timeout", "0.3", "Job", "status=done")
    assert timed_out.exit_code == 4
    assert 'status="done" (is "running")' in timed_out.stderr

    def finish() -> None:
        # A concurrent writer, through the library: a second CliRunner in a
        # thread would swap the process-wide stdio under the running command.
        time.sleep(0.3)
        with cli.registry() as registry:
            registry.state("Job").update(status="done", code=0)

    thread = threading.Thread(target=finish)
    thread.start()
    done = cli("wait", "--timeout", "10", "--interval", "0.05", "Job", "status=done", "code=0")
    thread.join()
    assert (done.exit_code, done.stdout) == (0, "")


def test_watch_prints_a_json_line_per_change(cli: Cli) -> None:
    cli("set", "Job", "step", "1")

    def progress() -> None:
        time.sleep(0.4)
        with cli.registry() as registry:
            registry.state("Job").set("step", 2)
            registry.state("Job").update(step=3, done=True)

    thread = threading.Thread(target=progress)
    thread.start()
    # --since makes the test independent of when the watcher starts reading
    result = cli("watch", "--since", "1", "--count", "2", "Job")
    thread.join()
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for line in lines:
        assert list(line) == ["state", "scope", "rev", "time", "changes", "origin"]
        assert line["time"].endswith("Z")
        assert {"host", "pid"} <= set(line["origin"]), "who made the change"
    assert [(line["state"], line["scope"], line["rev"], line["changes"]) for line in lines] == [
        ("Job", "", 2, [{"key": "step", "old": 1, "new": 2}]),
        ("Job", "", 3, [{"key": "step", "old": 2, "new": 3}, {"key": "done", "new": True}]),
    ]


def _editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.py"
    script.write_text("import json, sys\npath = sys.argv[1]\n" + body)
    return f"{sys.executable} {script}"


def test_edit_saves_validated_json(cli: Cli, tmp_path: Path) -> None:
    cli("update", "MyState", "step=1")
    editor = _editor(
        tmp_path,
        "data = json.load(open(path))\ndata['step'] += 1\ndata['new'] = 'x'\n"
        "json.dump(data, open(path, 'w'))\n",
    )
    result = cli("edit", "MyState", env={"EDITOR": editor, "VISUAL": ""})
    assert result.exit_code == 0, result.stderr
    assert cli.state() == {"step": 2, "new": "x"}
    unchanged = cli("edit", "MyState", env={"EDITOR": _editor(tmp_path, "pass\n"), "VISUAL": ""})
    assert "no changes" in unchanged.stderr


def test_edit_conflict_and_bad_json_keep_the_text(cli: Cli, tmp_path: Path) -> None:
    cli("update", "MyState", "step=1")
    sneaky = _editor(
        tmp_path,
        "from qstate import StateRegistry\n"
        f"StateRegistry({cli.url!r}).state('MyState').set('step', 100)\n"
        "json.dump({'step': 2}, open(path, 'w'))\n",
    )
    conflict = cli("edit", "MyState", env={"EDITOR": sneaky, "VISUAL": ""})
    assert conflict.exit_code == 4
    assert "changed by someone else" in conflict.stderr
    kept = Path(conflict.stderr.rsplit("kept in ", 1)[1].strip())
    assert json.loads(kept.read_text()) == {"step": 2}
    assert cli.state() == {"step": 100}
    broken = _editor(tmp_path, "open(path, 'w').write('{oops')\n")
    bad = cli("edit", "MyState", env={"EDITOR": broken, "VISUAL": ""})
    assert bad.exit_code == 2
    assert "nothing was written" in bad.stderr
    assert cli.state() == {"step": 100}


def test_values_are_never_markup_or_terminal_control(cli: Cli) -> None:
    cli("set", "--string", "MyState", "markup", "[bold]x[/]")
    cli("set", "MyState", "escape", "\x1b[2J")
    table = cli("-o", "table", "get", "MyState").stdout
    assert '"[bold]x[/]"' in table
    assert "\x1b" not in table
    assert "\\u001b[2J" in table


def test_version_and_help() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).stdout.startswith("qstate ")
    assert "Inspect and edit qstate states" in runner.invoke(app, ["--help"]).stdout


def test_doctor_reports_a_healthy_backend(cli: Cli) -> None:
    cli("set", "MyState", "a", "1")
    result = cli.runner.invoke(app, ["--url", cli.url, "--json", "doctor"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    assert report["reachable"] is True
    assert report["round_trip_ms"] >= 0
    assert report["states"] == 1
    if cli.url.startswith("file:"):
        assert report["integrity"] == "ok"
        assert report["journal_mode"] == "wal"
    else:
        assert report["mode"] == "standalone"
        assert report["redis"]


def test_doctor_on_unusable_backends(tmp_path: Path) -> None:
    runner = CliRunner()
    down = runner.invoke(app, ["--url", "redis://127.0.0.1:1/0?timeout=0.3", "--json", "doctor"])
    assert down.exit_code == 3
    assert json.loads(down.stdout)["reachable"] is False
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 4000)  # a header, then garbage
    corrupt = runner.invoke(app, ["--url", f"file:{broken}", "--json", "doctor"])
    assert corrupt.exit_code == 3
    assert "problem" in json.loads(corrupt.stdout)
    for url in ("nowhere", "nonsense://x", "redis://:hunter2@127.0.0.1:1/0?timeout=abc"):
        misconfigured = runner.invoke(app, ["--url", url, "--json", "doctor"])
        assert misconfigured.exit_code == 3, "a doctor reports a bad configuration"
        report = json.loads(misconfigured.stdout)
        assert report["healthy"] is False
        assert report["problem"]
        assert "hunter2" not in misconfigured.stdout + misconfigured.stderr


@pytest.mark.redis
def test_doctor_reports_the_cluster_state(redis_cluster: list[Any]) -> None:
    url = f"redis+cluster://127.0.0.1:{redis_cluster[0].port}"
    result = CliRunner().invoke(app, ["--url", url, "--json", "doctor"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["mode"], report["cluster_state"]) == ("cluster", "ok")


def test_watch_since_a_revision_no_longer_kept_exits_4(cli: Cli) -> None:
    with cli.registry() as registry:
        job = registry.state("Job")
        for i in range(LOG_SIZE + 300):
            job.set("i", i)
    lost = cli("watch", "--since", "0", "--count", "1", "Job")
    assert lost.exit_code == 4
    assert "no longer kept" in lost.stderr
    kept = cli("watch", "--since", str(LOG_SIZE + 299), "--count", "1", "Job")
    assert kept.exit_code == 0
    assert json.loads(kept.stdout)["rev"] == LOG_SIZE + 300
