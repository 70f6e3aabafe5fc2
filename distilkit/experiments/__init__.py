"""Ablation grids, the row runner, the tables derived from run folders, and the main job.

The package exports the grid and the tables; the main job is ``experiments.reproduce`` (not
imported here, so the rooms below it, e.g. ``publish``, can use the grid without it)."""
from distilkit.experiments.grid import TABLES, TEACHERS, RunSpec, table4_rows, table5_rows, table6_rows
from distilkit.experiments.plan import Recipe
from distilkit.experiments.records import collect_table, export_tables

__all__ = ["TABLES", "TEACHERS", "RunSpec", "Recipe", "table4_rows", "table5_rows", "table6_rows",
           "collect_table", "export_tables"]
