"""The ``qstate`` command: the Typer app, its global options and its error boundary.

Commands live one group per module in ``qstate_cli.commands``; the interactive
shell runs the same app, so there is one grammar and one implementation.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

# Typer 0.29 vendors click; its exceptions are what standalone_mode=False lets through.
from typer._click.exceptions import ClickException
from typer._click.exceptions import UsageError as ClickUsageError
from typer.core import TyperGroup

from qstate import QStateError, __version__
from qstate._urls import redact

from .commands import register_all
from .errors import CliError, exit_code_for
from .exit_codes import ExitCode
from .output import Output
from .render import Mode
from .session import Session

HELP = """Inspect and edit qstate states from a terminal or a CI script.

The backend URL comes from --url, else $QSTATE_URL, else qstate.toml or
[tool.qstate] in pyproject.toml (searched upward), else file:.qstate/state.db.
"""


class _Commands(TyperGroup):
    """The app's command group; it is the error boundary for what commands raise.

    Library and CLI errors become one line on stderr and a documented exit code
    here, inside the app, so every way of running it (the console script, the
    shell, Typer's test runner) behaves the same.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (QStateError, CliError) as error:
            session = ctx.obj
            if isinstance(session, Session) and session.debug:
                import traceback

                traceback.print_exc()
            print(f"qstate: error: {one_line(error)}", file=sys.stderr)
            raise typer.Exit(exit_code_for(error)) from None


app = typer.Typer(
    name="qstate",
    cls=_Commands,
    help=HELP,
    no_args_is_help=True,
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
    if isinstance(ctx.obj, Session):
        return  # run by the shell, on the shell's own session and registry
    session = Session(
        url=url,
        output=Output(requested=Mode.json if json_output else output, no_color=no_color),
        debug=debug,
    )
    ctx.obj = session
    ctx.call_on_close(session.close)


register_all(app)


def one_line(error: BaseException) -> str:
    """An error as one line, with any URL password in it (even one the user typed
    where a name was expected) replaced by ``***``."""
    text = str(error).strip() or type(error).__name__
    return redact(" ".join(text.split()))


def invoke(args: list[str], session: Session | None = None) -> int:
    """Run the app on ``args`` and return the exit code: the one error boundary.

    Never a traceback for a user mistake: errors become one line on stderr and a
    documented code. The shell passes its own ``session`` (and so its registry).
    """
    before_separator = args[: args.index("--")] if "--" in args else args
    debug = "--debug" in before_separator or (session is not None and session.debug)
    try:
        result = app(args=args, prog_name="qstate", standalone_mode=False, obj=session)
    except ClickUsageError as error:
        hint = f" (see: {error.ctx.command_path} --help)" if error.ctx is not None else ""
        print(f"qstate: error: {one_line(error)}{hint}", file=sys.stderr)
        return ExitCode.USAGE
    except ClickException as error:
        print(f"qstate: error: {one_line(error)}", file=sys.stderr)
        return ExitCode.USAGE
    except (QStateError, CliError) as error:  # raised before a command runs
        print(f"qstate: error: {one_line(error)}", file=sys.stderr)
        return exit_code_for(error)
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
    return result if isinstance(result, int) else ExitCode.OK


def run(argv: list[str] | None = None) -> int:
    """Run ``qstate`` with ``argv`` (default: the process's arguments)."""
    return invoke(sys.argv[1:] if argv is None else argv)


def entry_point() -> None:
    """The console script (see pyproject.toml)."""
    sys.exit(run())
