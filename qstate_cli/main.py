"""The ``qstate`` command: the Typer app, its global options and its error boundary.

Commands live one group per module in ``qstate_cli.commands``; the interactive
shell runs the same app, so there is one grammar and one implementation.
"""

from __future__ import annotations

import copy
import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from qstate import QStateError, __version__, acting_as

from .commands import LazyCommands, build
from .errors import CliError, one_line, report
from .exit_codes import ExitCode
from .output import Output
from .render import Mode
from .session import Session

HELP = """Inspect and edit qstate states from a terminal or a CI script.

The backend URL comes from --url, else $QSTATE_URL, else qstate.toml or
[tool.qstate] in pyproject.toml (searched upward), else file:.qstate/state.db.
"""


GLOBAL_OPTIONS = ("url", "output", "json_output", "no_color", "debug")
"""The app's options that every command also accepts, anywhere on the line."""


class _Commands(TyperGroup):
    """The app's command group; it is the error boundary for what commands raise.

    Library and CLI errors become one line on stderr and a documented exit code
    here, inside the app, so every way of running it (the console script, the
    shell, Typer's test runner) behaves the same.

    It also gives every command the global options (``qstate get S k --json``
    works, and ``get --help`` lists them), except where a command has an option
    of the same spelling itself (``update --json DOC``).

    Its commands come from the table in :mod:`qstate_cli.commands`, each built
    (its module imported) only when it is run, helped or completed, so the
    number of commands costs nothing when one of them runs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(self._build)

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return list(self.commands)

    def _build(self, name: str) -> Any:
        command = build(name)
        taken = {opt for param in command.params for opt in param.opts}
        for param in self.params:
            if param.name in GLOBAL_OPTIONS and taken.isdisjoint(param.opts):
                command.params.append(_global_copy(param))
        command.callback = _labelled(command.callback, f"qstate {name}")
        return command

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (QStateError, CliError) as error:
            debug = isinstance(ctx.obj, Session) and ctx.obj.debug
            raise typer.Exit(report(error, debug=debug)) from None


def _labelled(callback: Callable[..., Any], task: str) -> Callable[..., Any]:
    """``callback`` with the changes it makes logged as made by ``task`` (``qstate set``)."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        with acting_as(task):
            return callback(*args, **kwargs)

    return run


def _global_copy(param: Any) -> Any:
    """A command's copy of a global option: parsed there, applied to the session."""
    copied = copy.copy(param)
    copied.expose_value = False
    copied.callback = _apply_global
    return copied


def _apply_global(ctx: typer.Context, param: Any, value: Any) -> Any:
    if value is not None and value is not False:
        session = ctx.find_root().obj
        if isinstance(session, Session):
            session.apply(param.name, value)
    return value


app = typer.Typer(
    name="qstate",
    cls=_Commands,
    help=HELP,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"qstate {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", "-u", help="Backend URL (memory://, file:PATH, redis://...)."),
    ] = None,
    output: Annotated[
        Mode | None,
        typer.Option(
            "--output",
            "-o",
            help="table on a terminal; otherwise plain for one value, json for the rest.",
            case_sensitive=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colours (also NO_COLOR).")] = (
        False
    ),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    if ctx.invoked_subcommand is None:
        print(short_usage(ctx), file=sys.stderr)
        raise typer.Exit(ExitCode.USAGE)
    if isinstance(ctx.obj, Session):  # run by the shell, on the shell's own session
        given = {"url": url, "output": output, "json_output": json_output}
        given.update(no_color=no_color, debug=debug)
        for name, value in given.items():
            if value is not None and value is not False:
                ctx.obj.apply(name, value)
        return
    session = Session(
        url=url,
        output=Output(requested=Mode.json if json_output else output, no_color=no_color),
        debug=debug,
    )
    ctx.obj = session
    ctx.call_on_close(session.close)


def short_usage(ctx: typer.Context) -> str:
    """What bare ``qstate`` prints: the usage line and the commands, one line each."""
    group = ctx.command
    assert isinstance(group, TyperGroup)
    names = group.list_commands(ctx)
    width = max(map(len, names))
    lines = [
        "Usage: qstate [--url URL] [--output table|json|plain] COMMAND [ARGS]...",
        "",
        "Commands:",
    ]
    for name in names:
        summary = (group.commands[name].help or "").strip().split("\n")[0]
        lines.append(f"  {name:<{width}}  {summary}")
    lines += ["", "Run 'qstate COMMAND --help' for a command's options, 'qstate --help' for all."]
    return "\n".join(lines)


def invoke(args: list[str], session: Session | None = None) -> int:
    """Run the app on ``args`` and return the exit code.

    Never a traceback for a user mistake: errors become one line on stderr and a
    documented code (:func:`qstate_cli.errors.report`). The shell passes its own
    ``session`` (and so its registry).
    """
    before_separator = args[: args.index("--")] if "--" in args else args
    debug = "--debug" in before_separator or (session is not None and session.debug)
    saved = session.settings() if session is not None else None
    try:
        result = app(args=args, prog_name="qstate", standalone_mode=False, obj=session)
    except typer.TyperException as error:  # click's usage and parameter errors
        return report(_usage_message(error, shell=session is not None), ExitCode.USAGE)
    except (QStateError, CliError) as error:  # raised before a command runs
        return report(error)
    except (KeyboardInterrupt, typer.Abort):
        print("qstate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0  # the reader went away (| head): not an error
    except Exception as error:
        if debug:
            raise
        print(
            f"qstate: internal error: {type(error).__name__}: {one_line(error)} "
            "(run with --debug for a traceback, and please report it)",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL
    finally:
        if session is not None and saved is not None:
            session.restore(saved)  # options typed on one shell line last for that line
    return result if isinstance(result, int) else ExitCode.OK


def _usage_message(error: typer.TyperException, *, shell: bool) -> str:
    """Click's message, naming the option at fault, and where to read more."""
    message = one_line(error.format_message())
    ctx = getattr(error, "ctx", None)
    if ctx is None:
        return message
    path = ctx.command_path.split(" ", 1)
    if shell:  # inside the shell there is no "qstate" word to type
        return f"{message} (see: help {path[1]})" if len(path) > 1 else f"{message} (see: help)"
    return f"{message} (see: {ctx.command_path} --help)"


def run(argv: list[str] | None = None) -> int:
    """Run ``qstate`` with ``argv`` (default: the process's arguments)."""
    return invoke(sys.argv[1:] if argv is None else argv)
