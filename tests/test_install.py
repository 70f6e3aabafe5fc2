"""Installed without the repository (``pip install .``, then run elsewhere), the library and the
commands that need no notebooks work; ``reproduce``, which executes the repository's notebooks,
says in one line that it needs a clone."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("source")
    # built from a copy: setuptools leaves build/ and *.egg-info beside the sources it builds
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "distilkit", source / "distilkit", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, timeout=600, capture_output=True)
    return target


def _run(args, installed: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run([sys.executable, "-m", "distilkit.cli", *args], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_non_editable_install_profiles_models_from_outside_the_repository(installed, tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import distilkit; print(distilkit.__file__)"],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)},
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip().startswith(str(installed))          # not the repository's copy
    run = _run(["profile", "--models", "distilpose-s-smoke", "--csv", str(tmp_path / "p.csv")], installed, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "distilpose-s-smoke" in (tmp_path / "p.csv").read_text()
    # the paper's figures it compares with ship inside the package
    assert (installed / "distilkit" / "models" / "paper_complexity.csv").is_file()


def test_reproduce_outside_a_clone_says_it_needs_one_in_one_line(installed, tmp_path):
    run = _run(["reproduce", "--profile", "smoke", "--no-progress"], installed, tmp_path)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "clone" in lines[0] and str(installed) in lines[0]
    assert not (tmp_path / "runs").exists()
