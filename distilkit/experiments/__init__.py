"""Ablation grids, the row runner and the main job; shared by the CLI and the table notebooks."""
from distilkit.experiments.grid import TABLES, TEACHERS, RunSpec, table4_rows, table5_rows, table6_rows

__all__ = ["TABLES", "TEACHERS", "RunSpec", "table4_rows", "table5_rows", "table6_rows",
           "run_tables", "reproduce"]


def run_tables(*args, **kwargs):
    from distilkit.experiments.reproduce import run_tables as _impl
    return _impl(*args, **kwargs)


def reproduce(*args, **kwargs):
    from distilkit.experiments.reproduce import reproduce as _impl
    return _impl(*args, **kwargs)
