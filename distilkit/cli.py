"""The ``distilkit`` command: one subcommand per capability, each defined beside its code."""
from __future__ import annotations

import argparse
import importlib
import math
import shlex
import signal
import sys
import threading

from distilkit.files import CheckpointWriteError, UnsafeCheckpointError

# Modules that define a subcommand through ``add_cli(subparsers)``; imported lazily so a
# missing optional piece does not break the others.
_SUBCOMMAND_MODULES = (
    "distilkit.data.synthetic",
    "distilkit.models.complexity",
    "distilkit.engine.cli",
    "distilkit.convert",
    "distilkit.experiments.cli",
    "distilkit.predict",
    "distilkit.export",
    "distilkit.publish",
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help keeps the examples' line breaks and shows an option's default once: not where the
    help line already gives it, not for a required argument, a flag or an unset (None) value."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == [] \
            or action.default == argparse.SUPPRESS
        if "default" in text or action.required or unset:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)".lstrip()
        return text


class Parser(argparse.ArgumentParser):
    """A mistake on the command line is one ``error:`` line naming the command, exit 2."""

    def error(self, message: str):
        sys.stderr.write(f"error: {self.prog}: {message} (`{self.prog} --help` lists the options)\n")
        sys.exit(2)


def _number(text: str, kind: type, lowest: float, inclusive: bool, want: str):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or math.isnan(value) or value < lowest or (value == lowest and not inclusive):
        raise argparse.ArgumentTypeError(f"want {want}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _number(text, int, 1, True, "a whole number of at least 1")


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    return _number(text, int, 0, True, "a whole number of at least 0")


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    value = _number(text, float, 0.0, False, "a number above 0")
    if value == float("inf"):
        raise argparse.ArgumentTypeError(f"want a finite number above 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="distilkit", formatter_class=HelpFormatter,
        description="DistilPose reproducibility and ablation kit. `distilkit COMMAND --help` shows "
                    "each command's options, defaults and examples.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and module_name.startswith(err.name):
                continue  # not built yet
            raise
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
    return f"{how}: {finished}; resume with: {command}"


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors about the user's input or machine, each naming the file or folder it concerns."""
    from distilkit.data.errors import DataError, UsageError
    from distilkit.engine.locks import FolderBusyError
    from distilkit.paths import NoRepositoryError
    from distilkit.publish import PublishError
    from distilkit.weights import WeightsError
    return (DataError, UsageError, UnsafeCheckpointError, CheckpointWriteError, FolderBusyError,
            WeightsError, NoRepositoryError, PublishError)


if __name__ == "__main__":
    sys.exit(main())
