"""What every ``distilkit`` command's parser shares: the help layout, the one-line usage error
and the number types. Bottom layer: each room's ``add_cli`` imports it at module level, and
``distilkit.cli`` assembles the commands."""
from __future__ import annotations

import argparse
import math
import sys


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
