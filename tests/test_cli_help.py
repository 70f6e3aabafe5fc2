"""--help shows defaults, choices and an example for every command."""
from __future__ import annotations

import pytest

from distilkit.cli import main


@pytest.mark.parametrize("command, shows", [
    ("train", ["default: cpu", "examples:", "--init-backbone"]),
    ("eval", ["default: cpu", "examples:", "--dark"]),
    ("reproduce", ["default: local", "examples:", "--plan", "{local,slurm,submitit-local}"]),
    ("convert", ["example:", "distilpose-mmpose"]),
    ("profile", ["example:", "default:"]),
    ("synth", ["example:", "default: cpu"]),
    ("publish", ["examples:", "default: cpu", "--runs-root"]),
])
def test_help_shows_defaults_choices_and_an_example(command, shows, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")      # argparse wraps to the terminal: keep phrases on one line
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for text in shows:
        assert text in out, (command, text)
