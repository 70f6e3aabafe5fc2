"""Ablation grids, the row runner, the tables derived from run folders, and the main job."""
from distilkit.experiments.grid import TABLES, TEACHERS, RunSpec, table4_rows, table5_rows, table6_rows
from distilkit.experiments.records import collect_table, export_tables
from distilkit.experiments.reproduce import reproduce, run_tables

__all__ = ["TABLES", "TEACHERS", "RunSpec", "table4_rows", "table5_rows", "table6_rows",
           "run_tables", "reproduce", "collect_table", "export_tables"]
