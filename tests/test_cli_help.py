"""--help helps: every command has a description and examples, every option a help line, a
default is shown once and never for a required argument, and the examples parse and name files
a fresh clone has (the published models in results/models)."""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from distilkit.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ["synth", "profile", "train", "eval", "convert", "reproduce", "predict", "export", "publish"]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _help(command: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")      # argparse wraps to the terminal: keep phrases on one line
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def _example_commands(epilog: str) -> list[list[str]]:
    """The ``distilkit ...`` command lines of an epilog, continuation lines joined, comments cut."""
    joined = re.sub(r"\\\n\s*", " ", epilog)
    lines = [line.split("  #")[0].strip() for line in joined.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("distilkit ")]


def test_every_command_is_listed():
    assert sorted(_subparsers()) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description_and_examples(command):
    parser = _subparsers()[command]
    assert parser.description and len(parser.description) > 30
    assert "example" in (parser.epilog or "") and _example_commands(parser.epilog)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_a_help_line(command):
    parser = _subparsers()[command]
    silent = [a.dest for a in parser._actions if a.dest != "help" and not (a.help or "").strip()]
    assert silent == []


@pytest.mark.parametrize("command", COMMANDS)
def test_defaults_show_once_and_never_for_required_arguments(command, capsys, monkeypatch):
    parser = _subparsers()[command]
    formatter = parser._get_formatter()
    for action in parser._actions:
        text = formatter._expand_help(action) if action.help else ""
        assert text.count("default") <= 1, (action.dest, text)
        assert "(default: None)" not in text and "(default: [])" not in text, (action.dest, text)
        if action.required:
            assert "default" not in text, (action.dest, text)
    assert "(default: None)" not in _help(command, capsys, monkeypatch)


@pytest.mark.parametrize("command, shows", [
    ("train", ["default: cpu", "examples:", "--init-backbone", "results/models/teacher.pt"]),
    ("eval", ["default: cpu", "examples:", "--dark", "results/models/full.pt"]),
    ("reproduce", ["default: local", "examples:", "--plan", "{local,slurm,submitit-local}"]),
    ("convert", ["example:", "distilpose-mmpose"]),
    ("profile", ["examples:", "(default: 5)", "(default: [1, 32])"]),
    ("synth", ["example:", "(default: cpu)", "(default: 0)"]),
    ("publish", ["examples:", "default: cpu", "--runs-root"]),
    ("predict", ["results/models/full.pt"]),
    ("export", ["results/models/full.pt"]),
])
def test_help_shows_defaults_choices_and_an_example(command, shows, capsys, monkeypatch):
    out = _help(command, capsys, monkeypatch)
    assert [text for text in shows if text not in out] == []


@pytest.mark.parametrize("command", COMMANDS)
def test_the_examples_parse_and_the_committed_files_they_name_exist(command):
    parser = build_parser()
    for argv in _example_commands(_subparsers()[command].epilog):
        args = parser.parse_args(argv)          # a bad flag exits 2
        assert args.command == argv[0]
        named = [a for a in argv if a.startswith("results/")]
        assert [a for a in named if not (REPO / a).exists()] == []
        assert not [a for a in argv if "XXXX" in a]
