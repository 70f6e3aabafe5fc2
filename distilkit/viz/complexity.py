"""Fig. 1: accuracy against cost -- the paper's methods, and ours, never on one axis.

The paper's points are COCO val AP at 256x192 with its parameter and GFLOP counts
(``distilkit/models/paper_complexity.csv``: Table 1, plus the Table 3 teacher). Ours are AP on the
embedded synthetic set with the compact ``-cpu`` (or ``-smoke``) models, profiled here
with ``distilkit.models.complexity``; their GFLOPs are mmcv-convention (``gflops_mmcv``, the
paper's counter) so the two rows use one definition, but the data and the model sizes
differ, so they are drawn in separate rows with separate axes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from distilkit.models.checkpoint import load_checkpoint

FAMILY_STYLE: dict[str, tuple[str, str]] = {   # family -> (colour, marker)
    "heatmap": ("#1f77b4", "s"),
    "distillation": ("#9467bd", "D"),
    "regression": ("#2ca02c", "^"),
    "teacher": ("#7f7f7f", "P"),
    "distilpose": ("#d62728", "o"),
}
# The rows of our tables worth a point in Fig. 1 (the rest repeat a model at one cost).
KEY_ROWS: dict[int, tuple[str, ...] | None] = {
    0: None,                                   # teachers.csv: every teacher
    4: ("none", "KT+VT", "all"),
    5: ("HRNet-W48-s3 / none", "HRNet-W48-s3 / HRNet-W48"),
    6: None,
}


def load_paper_points(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's points from ``distilkit/models/paper_complexity.csv`` (the profiler's reference
    table): every Table 1 row plus the Table 3 teacher without extra post-processing.

    Returns method, backbone, input_size, params_m, gflops, AP (%), family (heatmap,
    distillation, regression, teacher, distilpose) and source."""
    from distilkit.models.complexity import PAPER_CSV

    path = Path(path) if path is not None else PAPER_CSV
    raw = pd.read_csv(path, dtype={"ex_post": str, "role": str})
    missing = {"model", "table", "method", "backbone", "input_size", "params_m", "gflops",
               "ap"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)} needed for Fig. 1")
    role = raw["role"].fillna("")
    teacher = (raw["table"] == 3) & (role == "teacher") & (raw["ex_post"].fillna("N") != "Y")
    rows = raw[(raw["table"] == 1) | teacher].copy()
    is_teacher = teacher[rows.index].to_numpy()
    # the CSV's "method" is the family (heatmap / distillation / regression); the method
    # name is the model name's first part (SimpleBaselines-R50 -> SimpleBaselines)
    rows["family"] = np.where(rows["model"].str.startswith("DistilPose"), "distilpose",
                              np.where(is_teacher, "teacher", rows["method"]))
    name = rows["model"].str.split("-").str[0]
    rows["method"] = np.where(is_teacher, name + " (teacher)", name)
    rows["source"] = "Table " + rows["table"].astype(str)
    rows = rows.rename(columns={"ap": "AP"})
    return rows[["method", "backbone", "input_size", "params_m", "gflops", "AP", "family",
                 "source"]].reset_index(drop=True)


def _read(path: Path) -> list[dict]:
    """An exported table's rows, AP in percent whatever unit its ``AP_unit`` column states."""
    from distilkit.units import read_percent_csv

    if not path.is_file():
        return []
    frame = read_percent_csv(path)
    return frame.astype(object).where(frame.notna(), "").to_dict("records")


def ours_from_results(results_dir: str | Path, profile: str = "cpu", *,
                      rows: Mapping[int, tuple[str, ...] | None] | None = KEY_ROWS
                      ) -> pd.DataFrame:
    """Our finished runs from exported ``table4/5/6.csv`` and ``teachers.csv`` (e.g. the
    committed reference): see ``ours_from_tables``."""
    results_dir = Path(results_dir)
    return ours_from_tables([r for name in ("teachers.csv", "table4.csv", "table5.csv", "table6.csv")
                             for r in _read(results_dir / name)], profile, rows=rows)


def ours_from_runs(runs_root: str | Path, profile: str = "cpu", *,
                   rows: Mapping[int, tuple[str, ...] | None] | None = KEY_ROWS) -> pd.DataFrame:
    """Our finished runs found in the main job's run folders (``collect_table``)."""
    from distilkit.experiments.plan import Recipe
    from distilkit.experiments.records import collect_table

    if not Path(runs_root).is_dir():
        return ours_from_tables([], profile, rows=rows)
    frames = [collect_table(t, runs_root, Recipe(profile)) for t in (0, 4, 5, 6)]
    return ours_from_tables([r for f in frames for r in f.to_dict("records")], profile, rows=rows)


def ours_from_tables(records: list[dict], profile: str = "cpu", *,
                     rows: Mapping[int, tuple[str, ...] | None] | None = KEY_ROWS) -> pd.DataFrame:
    """One row per (table, row) of results rows (AP in percent: an exported table read by its
    ``AP_unit``, or ``collect_table``) with the AP averaged over seeds, ``n_seeds``, and the
    resolved model preset. ``rows=None`` keeps every row."""
    from distilkit.profiles import get_profile

    prof = get_profile(profile)
    recs = []
    for r in records:
        missing = r.get("AP") in (None, "") or pd.isna(r["AP"])
        if missing or r.get("error") or r.get("profile", profile) != profile:
            continue
        table = int(r.get("table") or 0)
        keep = None if rows is None else rows.get(table, ())
        if rows is not None and keep is not None and r.get("row") not in keep:
            continue
        recs.append({"table": table, "row": r["row"], "model": prof.model_name(r["model"]),
                     "AP": float(r["AP"]), "seed": r.get("seed"),
                     "kind": "teacher" if "(teacher)" in r["row"] else "student"})
    if not recs:
        return pd.DataFrame(columns=["label", "model", "AP", "n_seeds", "kind"])
    df = pd.DataFrame(recs)
    out = (df.groupby(["table", "row", "model", "kind"], sort=False)
             .agg(AP=("AP", "mean"), n_seeds=("AP", "size")).reset_index())
    out["label"] = [r if t == 0 else f"T{t} {r}" for t, r in zip(out["table"], out["row"])]
    return out[["label", "model", "AP", "n_seeds", "kind"]]


def ours_from_checkpoints(paths: Mapping[str, str | Path],
                          labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One point per checkpoint: its recorded validation AP (%) and model preset."""
    recs = []
    for role, path in paths.items():
        ckpt = load_checkpoint(path)
        ap = ckpt.get("metrics", {}).get("AP")
        recs.append({"label": (labels or {}).get(role, role), "model": ckpt["model_name"],
                     "AP": 100.0 * float(ap) if ap is not None else np.nan, "n_seeds": 1,
                     "kind": "teacher" if role == "teacher" else "student"})
    return pd.DataFrame(recs, columns=["label", "model", "AP", "n_seeds", "kind"])


def add_complexity(df: pd.DataFrame, *, profiler=None) -> pd.DataFrame:
    """Join params_m, gmacs, gmacs_paper and gflops_mmcv of each model preset (one
    profile per distinct preset; no timing runs)."""
    if profiler is None:
        from distilkit.models.complexity import profile_models

        def profiler(names: Iterable[str]) -> list[dict]:
            return profile_models(list(names), batch_sizes=())
    names = list(dict.fromkeys(df["model"]))
    prof = pd.DataFrame(profiler(names)) if names else pd.DataFrame(columns=["model"])
    cols = [c for c in ("model", "params_m", "gmacs", "gmacs_paper", "gflops_mmcv")
            if c in prof.columns]
    return df.merge(prof[cols], on="model", how="left")


def short_backbone(name: str) -> str:
    """Compact backbone label for a point annotation (the method is in the legend)."""
    for old, new in (("HRNet-Small-W48", "HR-S-W48"), ("HRNet-W48-stage3", "HR-W48-s3"),
                     ("HRNet-", "HR-"), ("ResNet-small", "R-small"), ("ResNet-", "R"),
                     ("MobileNetV2", "MNv2"), ("-Stack HG", "xHG")):
        name = name.replace(old, new)
    return name


def _series_key(paper: pd.DataFrame) -> pd.Series:
    """Which points one line joins: a method's backbones (SimpleBaselines R50 -> R152), or,
    for a method run at several input sizes (PRTR), one backbone's sizes."""
    method = paper["method"].str.rstrip("*").str.replace(r" \(teacher\)", "", regex=True)
    sizes = paper.groupby(method)["input_size"].transform("nunique")
    return method.where(sizes <= 1, method + " " + paper["backbone"])


def _log_ticks(ax) -> None:
    # plain numbers (2, 5, 10, 20) instead of 2 x 10^0 on the log axis
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


Label = tuple[float, float, str, object]          # x, y (data), text, colour


def _paper_axes(ax, paper: pd.DataFrame, x: str, xlabel: str, *, legend: bool = True) -> list[Label]:
    """The paper's points and lines; returns their labels (placed once the layout is settled)."""
    paper = paper.assign(series=_series_key(paper))
    methods = list(dict.fromkeys(paper["method"].str.rstrip("*")))
    others = [m for m in methods if not m.startswith("DistilPose")]
    palette = plt.get_cmap("tab10")
    colors = {m: palette(i % 10) for i, m in enumerate(others)}
    labels: list[Label] = []
    for _, grp in paper.groupby("series", sort=False):
        grp = grp.sort_values(x)
        method = grp["method"].iloc[0].rstrip("*")
        family = grp["family"].iloc[0]
        dp = family == "distilpose"
        color = FAMILY_STYLE["distilpose"][0] if dp else colors[method]
        marker = FAMILY_STYLE.get(family, ("k", "o"))[1]
        ax.plot(grp[x], grp["AP"], "-", color=color, alpha=0.9 if dp else 0.6,
                linewidth=2 if dp else 1)
        ax.scatter(grp[x], grp["AP"], color=color, marker=marker, s=90 if dp else 28, zorder=3,
                   edgecolor="black" if dp else "none")
        for _, r in grp.iterrows():
            text = short_backbone(r["backbone"])
            if r.get("input_size", "256x192") != "256x192":
                text += f" {r['input_size']}"
            labels.append((float(r[x]), float(r["AP"]), text, color))
    handles = [plt.Line2D([], [], color=FAMILY_STYLE["distilpose"][0] if m.startswith("DistilPose")
                          else colors[m], marker=FAMILY_STYLE[fam][1], linestyle="-",
                          markersize=8 if fam == "distilpose" else 5,
                          label=m if fam in ("teacher", "distilpose") else f"{m} ({fam})")
               for m, fam in dict(zip(paper["method"].str.rstrip("*"), paper["family"])).items()]
    if legend:
        # outside the axes: inside, it would hide points whatever the corner
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  title="method (family)", title_fontsize=7)
    ax.set_xscale("log")
    _log_ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("COCO val AP (%)")
    ax.grid(alpha=0.3, which="major")
    return labels


def _ours_axes(ax, ours: pd.DataFrame, x: str, xlabel: str) -> list[Label]:
    """Our points; runs of one preset at one AP share a point and one label listing them."""
    for kind, color, marker in (("teacher", "#7f7f7f", "P"), ("student", "#d62728", "o")):
        sub = ours[ours["kind"] == kind]
        ax.scatter(sub[x], sub["AP"], color=color, marker=marker, s=45, label=kind, zorder=3)
    labels: list[Label] = []
    for (xv, ap, model), grp in ours.groupby([x, "AP", "model"], sort=False, dropna=False):
        names = [f"{r['label']}" + (f" ({int(r['n_seeds'])} seeds)" if r.get("n_seeds", 1) > 1
                                    else "") for _, r in grp.iterrows()]
        labels.append((float(xv), float(ap), "\n".join(names + [f"[{model}]"]), "black"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("AP on synthetic val (%)")
    ax.grid(alpha=0.3)
    ax.margins(x=0.35, y=0.2)
    lo, hi = ours["AP"].min(), ours["AP"].max()
    if np.isfinite(lo) and hi - lo < 2.0:   # all (near) equal, e.g. untrained smoke models
        ax.set_ylim(lo - 2.0, hi + 2.0)
    if np.isfinite(lo) and lo >= 0:         # AP is never negative: no axis below 0
        ax.set_ylim(bottom=0.0)
    return labels


# label offsets (points) tried in turn: right-below, right-above, left-above, left-below, then
# farther out; the first that stays inside the axes, clear of other labels and points, wins
_OFFSETS = ((5, -3, "left", "top"), (5, 3, "left", "bottom"), (-5, 3, "right", "bottom"),
            (-5, -3, "right", "top"), (5, -14, "left", "top"), (5, 14, "left", "bottom"),
            (-5, 14, "right", "bottom"), (-5, -14, "right", "top"))


def place_labels(ax, labels: list[Label], fontsize: float = 6) -> None:
    """Annotate each point at the first offset where its text overlaps no label placed before,
    no point of the axes, and stays inside them (the layout must be settled: measured in px)."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    points = ax.transData.transform(np.array([(x, y) for x, y, _, _ in labels]).reshape(-1, 2))
    r = 5.0 * ax.figure.dpi / 72          # the largest marker's radius, px
    markers = [Bbox.from_extents(px - r, py - r, px + r, py + r) for px, py in points]
    taken = []
    for (x, y, text, color), own in zip(labels, points):
        others = [m for m, p in zip(markers, points) if not np.allclose(p, own)]
        best = None
        for dx, dy, ha, va in _OFFSETS:
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                              fontsize=fontsize, color=color)
            box = ann.get_window_extent(renderer)
            clear = (box.x0 >= inside.x0 and box.x1 <= inside.x1 and box.y0 >= inside.y0
                     and box.y1 <= inside.y1 and not any(box.overlaps(t) for t in taken)
                     and not any(box.overlaps(m) for m in others))
            if clear:
                best = box
                break
            ann.remove()
        if best is None:       # nowhere clear: the first place, as before
            ann = ax.annotate(text, (x, y), xytext=_OFFSETS[0][:2], textcoords="offset points",
                              ha="left", va="top", fontsize=fontsize, color=color)
            best = ann.get_window_extent(renderer)
        taken.append(best)


def plot_complexity(paper: pd.DataFrame, ours: pd.DataFrame | None = None, *,
                    ours_note: str = "ours: synthetic data, compact models") -> plt.Figure:
    """Top row: the paper (AP vs GFLOPs, AP vs params, log x). Bottom row (when ``ours``
    has rows): our runs on their own axes, clearly titled as not comparable."""
    has_ours = ours is not None and len(ours) > 0 and ours["AP"].notna().any()
    fig, axes = plt.subplots(2 if has_ours else 1, 2, squeeze=False, layout="constrained",
                             figsize=(14, 11 if has_ours else 5.5))
    labels = {axes[0, 0]: _paper_axes(axes[0, 0], paper, "gflops", "GFLOPs (mmcv count)", legend=False),
              axes[0, 1]: _paper_axes(axes[0, 1], paper, "params_m", "parameters (M)")}
    axes[0, 0].set_title("paper: AP vs GFLOPs (COCO val, Table 1)", fontsize=10)
    axes[0, 1].set_title("paper: AP vs parameters (COCO val, Table 1)", fontsize=10)
    if has_ours:
        labels[axes[1, 0]] = _ours_axes(axes[1, 0], ours, "gflops_mmcv", "GFLOPs (mmcv count, profiled here)")
        labels[axes[1, 1]] = _ours_axes(axes[1, 1], ours, "params_m", "parameters (M, profiled here)")
        axes[1, 0].set_title(f"{ours_note}: AP vs GFLOPs", fontsize=10, color="#a50f15")
        axes[1, 1].set_title(f"{ours_note}: AP vs parameters", fontsize=10, color="#a50f15")
        axes[1, 1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Fig. 1 analog: accuracy vs cost" + (" -- rows are NOT on a common scale"
                                                      if has_ours else ""), fontsize=11)
    for ax in labels:                     # fixed limits: the labels must not move the axes
        ax.set_xlim(ax.get_xlim())
        ax.set_ylim(ax.get_ylim())
    fig.draw_without_rendering()          # settle the layout, then place labels in pixels
    fig.set_layout_engine("none")
    for ax, items in labels.items():
        place_labels(ax, items)
    return fig


__all__ = ["FAMILY_STYLE", "KEY_ROWS", "load_paper_points", "ours_from_results",
           "ours_from_checkpoints", "add_complexity", "plot_complexity", "short_backbone", "place_labels"]
