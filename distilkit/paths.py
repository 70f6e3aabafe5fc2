"""Where the repository, its notebooks, ``runs/`` and ``results/`` are: one look-up for all.

Installed from a clone (``pip install -e .``, what the Makefile does) the repository is the
package's parent folder. Installed non-editable, the library and the ``synth``, ``train``,
``eval`` and ``profile`` commands need no repository; what executes the repository's
notebooks (``reproduce``, the figures) asks for one with ``require_repo``.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE_PARENT = Path(__file__).resolve().parents[1]


class NoRepositoryError(RuntimeError):
    """A step that runs the repository's notebooks was called outside a clone."""


def repo_root() -> Path:
    """The clone the package runs from; outside one (a non-editable install), the working folder."""
    return _PACKAGE_PARENT if is_clone(_PACKAGE_PARENT) else Path.cwd()


def is_clone(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir()


def require_repo(what: str) -> Path:
    if not is_clone(_PACKAGE_PARENT):
        raise NoRepositoryError(f"{what} runs the notebooks of a distilkit clone; this distilkit is "
                                f"installed from {_PACKAGE_PARENT} without them: git clone the "
                                "repository and run it there (make reproduce)")
    return _PACKAGE_PARENT


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def runs_dir(profile: str) -> Path:
    """``runs/<profile>``: the main job's run folders."""
    return repo_root() / "runs" / profile


def results_dir(profile: str) -> Path:
    """``results/`` for the cpu profile (the committed reference), ``results/<profile>/`` else."""
    root = repo_root() / "results"
    return root if profile == "cpu" else root / profile


def resolve(path: str | Path, base: Path | None = None) -> Path:
    """A path as given when absolute (``~`` expanded), else relative to ``base`` (default: the
    repository): the one base of every relative path a notebook or a figure is given."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (base or repo_root()) / path


def relative_to_repo(path: str | Path, root: Path | None = None) -> str:
    """``path`` relative to ``root`` (default: the repository) when inside it, else as given:
    what committed files record, so they point into any clone."""
    try:
        return str(Path(path).resolve().relative_to((root or repo_root()).resolve()))
    except ValueError:
        return str(path)


__all__ = ["repo_root", "require_repo", "notebooks_dir", "runs_dir", "results_dir", "resolve",
           "relative_to_repo", "NoRepositoryError", "is_clone"]
