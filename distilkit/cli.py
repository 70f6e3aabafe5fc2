"""The ``distilkit`` command: one subcommand per capability, each defined beside its code."""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading

from distilkit import convert, export, predict, publish
from distilkit.cli_args import HelpFormatter, Parser
from distilkit.data import synthetic
from distilkit.data.errors import DataError, UsageError
from distilkit.engine import cli as engine_cli
from distilkit.engine.locks import FolderBusyError
from distilkit.experiments import cli as experiments_cli
from distilkit.files import CheckpointReadError, CheckpointWriteError, UnsafeCheckpointError
from distilkit.models import complexity
from distilkit.paths import NoRepositoryError
from distilkit.publish import PublishError
from distilkit.weights import WeightsError

# set by the Makefile's reproduce target: the command an interrupted main job prints to resume it
RESUME_COMMAND_ENV = "DISTILKIT_RESUME_COMMAND"

# Each command is defined beside its code, by the module's ``add_cli(subparsers)``; in this
# order in ``distilkit --help``.
_COMMAND_MODULES = (synthetic, complexity, engine_cli, convert, experiments_cli, predict, export, publish)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="distilkit", formatter_class=HelpFormatter,
        description="DistilPose reproducibility and ablation kit. `distilkit COMMAND --help` shows "
                    "each command's options, defaults and examples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.add_cli(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so it stops as Ctrl-C stops it."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    previous = _catch_sigterm()
    try:
        result = args.func(args)
    except _user_errors() as err:  # bad input: one line naming the file, no traceback
        print(f"error: {os_error_line(err) if isinstance(err, OSError) else one_line(err)}",
              file=sys.stderr)
        return 2
    except OSError as err:         # a file or folder the command cannot read or write
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(interrupted_line(args, argv, stop), file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(result or 0)


def _catch_sigterm():
    """SIGTERM raises Terminated (main thread only); returns the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


def one_line(err: BaseException) -> str:
    """The error's message on one line (a message of several lines keeps its first)."""
    text = str(err).strip() or type(err).__name__
    return " ".join(text.split("\n")[0].split()) if "\n" in text else text


def os_error_line(err: OSError) -> str:
    """'<path>: <what the system said>', e.g. 'out/x.onnx: Permission denied'."""
    if err.strerror is None:
        return one_line(err)
    if err.filename is None:
        return " ".join(err.strerror.split())
    where = f"{err.filename} -> {err.filename2}" if err.filename2 else f"{err.filename}"
    return f"{where}: {err.strerror}"


def interrupted_line(args: argparse.Namespace, argv: list[str], stop: BaseException) -> str:
    """One line: what stopped it, what finished (the command's ``interrupted`` hook) and the
    command that resumes."""
    how = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted (Ctrl-C)"
    note = getattr(args, "interrupted", None)
    try:
        finished = note(args) if note else ""
    except Exception as err:  # noqa: BLE001 - the note is a courtesy; never mask the interrupt
        finished = f"(what finished is unknown: {one_line(err)})"
    if note is None:                 # nothing of it is kept: the command starts over
        return f"{how}; run again with: distilkit {shlex.join(argv)}"
    resume = getattr(args, "resume_argv", None)
    command = "distilkit " + shlex.join(resume(argv) if resume else argv)
    if args.command == "reproduce" and os.environ.get(RESUME_COMMAND_ENV):
        command = os.environ[RESUME_COMMAND_ENV]       # started by make reproduce: resumed by it
    return f"{how}: {finished}; resume with: {command}"


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors about the user's input or machine, each naming the file or folder it concerns."""
    return (DataError, UsageError, UnsafeCheckpointError, CheckpointReadError, CheckpointWriteError,
            FolderBusyError, WeightsError, NoRepositoryError, PublishError)


if __name__ == "__main__":
    sys.exit(main())
