"""``distilkit train`` and ``distilkit eval``."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from distilkit.cli_args import HelpFormatter, non_negative_int, positive_float, positive_int
from distilkit.data.errors import DataError, UsageError
from distilkit.engine.config import TrainConfig, read_config
from distilkit.engine.trainer import NonFiniteLossError, fit
from distilkit.losses import SH_MODES, SWITCHES, parse_loss_switches
from distilkit.models.checkpoint import load_checkpoint
from distilkit.models.presets import get_config
from distilkit.profiles import PROFILES

METRIC_KEYS = ("AP", "AP50", "AP75", "APM", "APL", "AR")


def metrics_json(metrics: dict) -> str:
    """The six COCO metrics (fractions inside the kit) as strict JSON in percent, the unit
    stated (a metric COCOeval could not compute is null)."""
    from distilkit.units import PERCENT, percent

    clean: dict = {}
    for k in METRIC_KEYS:
        v = metrics.get(k)
        clean[k] = None if v is None or v != v else round(percent(v), 6)
    clean["unit"] = PERCENT
    return json.dumps(clean)


TRAIN_DESCRIPTION = """Train one model on a COCO-layout set: a heatmap teacher, a plain regression student,
or a student distilled from a teacher checkpoint with any of the paper's losses. The run folder
gets last.pt / best.pt, metrics.csv and final_metrics.json (AP there is a fraction, 0-1); the
last line printed is the COCO metrics as JSON, in percent as the paper writes them."""
TRAIN_EXAMPLES = """examples:
  distilkit train --profile smoke --model teacher-hrw48 --out runs/t        # a teacher, seconds
  distilkit train --profile cpu --model distilpose-s --losses reg,kt,vt,sh,cs \\
      --teacher results/models/teacher.pt --out runs/s       # distilled from the published teacher
  distilkit train --profile paper --model teacher-hrw48 --init-backbone hrnet_w48.pth \\
      --data-root /data/coco --out runs/paper/teacher                          # from ImageNet weights
  distilkit train --config runs/cpu/distilpose-s-<hash>-s0/config.json --out runs/again
                                        # a run folder's recipe again: the same config hash
"""
EVAL_DESCRIPTION = """COCO keypoint metrics (AP, AP50, AP75, APM, APL, AR) of a checkpoint on a val set,
printed as one JSON line in percent, as the paper writes them. The data defaults to the set the
checkpoint's run trained on (the synthetic set is generated into the cache on first use)."""
EVAL_EXAMPLES = """examples:
  distilkit eval --checkpoint results/models/full.pt        # a published model, on its own data
  distilkit eval --checkpoint runs/s/best.pt --no-flip      # a run of yours, without the flip test
  distilkit eval --checkpoint teacher.pt --data-root /data/coco --dark
  distilkit eval --checkpoint distilpose_s.pt --data-root /data/coco --authors-eval   # val2017 alone is enough
"""


def _one_writer(out_dir: str):
    """The run folder's one-writer lock (the table runner takes the same one); under torchrun
    only rank 0 writes the folder, so only it holds the lock."""
    import contextlib

    from distilkit.engine.locks import exclusive
    if int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext()
    return exclusive(Path(out_dir) / ".lock", wait=False)


# Flags that name a TrainConfig field of the same name and change what is trained; with --config
# each one given overrides the file's value.
RECIPE_FLAGS = ("model", "profile", "teacher", "init_backbone", "seed", "epochs", "batch_size", "lr",
                "data_root", "amp", "max_train_instances", "max_val_instances", "compile")


def config_of(args: argparse.Namespace) -> TrainConfig:
    """The config to train: a run's ``--config`` file, or ``--model``'s defaults, then each recipe
    flag given; where and how it runs (out, resume, progress, workers, device, teacher store,
    tensorboard) always from the command line."""
    if args.config:
        base = read_config(args.config)
    elif args.model:
        base = TrainConfig(out_dir=args.out, model=args.model,
                           losses=parse_loss_switches(_default_losses(args.model)))
    else:
        raise UsageError("give --model (a preset or spec) or --config (a run's config.json)")
    # flags whose default is SUPPRESS are absent unless given; the others are None unless given
    recipe = {name: getattr(args, name) for name in RECIPE_FLAGS if getattr(args, name, None) is not None}
    if args.no_flip:
        recipe["flip_test"] = False
    if args.losses is not None:      # the switches from the flag, the weights from the file
        try:
            parsed = parse_loss_switches(args.losses)
        except ValueError as err:
            raise UsageError(f"--losses {args.losses!r}: {err}") from None
        recipe["losses"] = {name: getattr(parsed, name) for name in SWITCHES}
    for name in ("reg_loss", "sh_mode"):
        if hasattr(args, name):
            recipe.setdefault("losses", {})[name] = getattr(args, name)
    return replace(base.with_overrides(recipe), out_dir=args.out, resume=args.resume,
                   progress=not args.no_progress, workers=args.workers, device=args.device,
                   teacher_store=args.teacher_store, tensorboard=args.tensorboard)


def _check_train_config(config: TrainConfig) -> None:
    """The mistakes a train start can have, found before its folder is made."""
    try:
        get_config(config.model_name())
    except (ValueError, TypeError) as err:
        raise UsageError(f"--model {config.model!r}: {err}") from None
    for flag, path in (("--teacher", config.teacher), ("--init-backbone", config.init_backbone)):
        if path is not None and not Path(path).is_file():
            raise DataError(path, f"no such file ({flag})")
    if config.data_root is not None and not Path(config.data_root).expanduser().is_dir():
        raise DataError(config.data_root, "not a folder (--data-root wants a COCO-layout folder)")
    if config.tensorboard:
        from importlib.util import find_spec

        from distilkit.engine.scalars import INSTALL_HINT
        if find_spec("tensorboard") is None:
            raise UsageError(INSTALL_HINT)


def _train(args: argparse.Namespace) -> int:
    config = config_of(args)
    if args.config:
        recorded = json.loads(Path(args.config).read_text()).get("config_hash")
        note = "" if recorded in (None, config.hash()) else f" (the file recorded {recorded})"
        print(f"config {config.hash()} from {args.config}{note}", file=sys.stderr)
    _check_train_config(config)
    out = Path(args.out)
    made_here = not out.exists()
    try:
        with _one_writer(args.out):
            metrics = fit(config)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except BaseException:
        # a start that failed (or was stopped) before its first checkpoint leaves no folder
        if made_here and out.is_dir() and not (out / "last.pt").exists():
            shutil.rmtree(out, ignore_errors=True)
        raise
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every rank returns the metrics
        print(metrics_json(metrics))
    return 0


def _train_progress(args: argparse.Namespace) -> str:
    """What an interrupted train keeps: the epochs in its last.pt."""
    last = Path(args.out) / "last.pt"
    if not last.exists():
        return f"no epoch finished, nothing kept in {args.out}"
    return f"{load_checkpoint(last)['epoch']} epoch(s) finished, kept in {last}"


def _with_resume(argv: list[str]) -> list[str]:
    return argv if "--resume" in argv else [*argv, "--resume"]


def _eval(args: argparse.Namespace) -> int:
    from distilkit.data.errors import DataError
    from distilkit.engine import evaluate_checkpoint

    if not Path(args.checkpoint).is_file():
        raise DataError(args.checkpoint, "no such file (--checkpoint)")
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        raise DataError(args.data_root, "not a folder (--data-root wants a COCO-layout folder)")

    metrics = evaluate_checkpoint(args.checkpoint, data_root=args.data_root, flip_test=not args.no_flip,
                                  dark=args.dark, device=args.device, progress=not args.no_progress,
                                  max_val_instances=args.max_val_instances, authors_eval=args.authors_eval)
    print(metrics_json(metrics))
    return 0


def _default_losses(model: str) -> str:
    return "heatmap" if model.startswith(("teacher", "simplebaseline")) else "reg"


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a teacher, a plain student or a distilled student",
                              description=TRAIN_DESCRIPTION, formatter_class=HelpFormatter,
                              epilog=TRAIN_EXAMPLES)
    p.add_argument("--config", metavar="RUN/config.json",
                   help="train a run folder's recipe (its config.json) again: the same config hash; "
                        "each recipe flag given below overrides the file's value")
    p.add_argument("--profile", choices=sorted(PROFILES), default=argparse.SUPPRESS,
                   help="run scale: smoke (seconds), cpu (the embedded set), paper (real COCO, 256x192) "
                        "(default: cpu)")
    p.add_argument("--model",
                   help="preset, e.g. distilpose-s, teacher-hrw48, deeppose-r50; or a spec HEAD:timm/BACKBONE "
                        "with HEAD one of deeppose (GAP), deeppose-flatten, simplebaseline, distilpose, "
                        "tokenpose, e.g. deeppose-flatten:timm/resnet18 (the profile adds its size suffix; "
                        "weights are never downloaded: --init-backbone takes a local timm state dict). "
                        "Heatmap specs other than simplebaseline need --losses heatmap")
    p.add_argument("--teacher", help="teacher checkpoint (best.pt of a teacher run, or results/models/teacher.pt)")
    p.add_argument("--init-backbone", metavar="PATH",
                   help="start the backbone from local weights: a timm hrnet_w48/hrnet_w32 or torchvision "
                        "resnet50 state dict, MMPose's hrnet_w48-8ef0771d.pth, or a trained teacher's "
                        "checkpoint (DistilPose-L takes its first three stages)")
    p.add_argument("--losses",
                   help=f"comma list of {','.join(n for n in SWITCHES if n != 'heatmap')} (students) or "
                        "heatmap (teachers); default: heatmap for teacher and simplebaseline models, reg "
                        "(plain regression) for the others")
    p.add_argument("--reg-loss", choices=("smooth_l1", "l1"), default=argparse.SUPPRESS,
                   help="the students' coordinate loss (the paper's smooth L1, or the L1 control) "
                        "(default: smooth_l1)")
    p.add_argument("--sh-mode", choices=SH_MODES, default=argparse.SUPPRESS,
                   help="L_SH as the authors' code computes it (their weight broadcasts over the batch, "
                        "so unlabelled keypoints still learn from the teacher) or masked per sample "
                        "(default: authors)")
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS,
                   help="run seed (weights, shuffling, augmentation) (default: 0)")
    p.add_argument("--epochs", type=positive_int, help="override the profile's schedule (its decay scales along)")
    p.add_argument("--batch-size", type=positive_int, help="override the profile's batch size")
    p.add_argument("--lr", type=positive_float, help="override the profile's learning rate")
    p.add_argument("--data-root", help="COCO-layout folder; default: the profile's synthetic set")
    p.add_argument("--workers", type=non_negative_int, help="data loader processes; default: the profile's")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), default=argparse.SUPPRESS,
                   help="mixed precision on CUDA (auto: bf16 where supported); always off on the CPU "
                        "(default: auto)")
    p.add_argument("--no-flip", action="store_true", help="evaluate without the flip test")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                   help="torch.compile the model, or not (default: as the profile chooses; the cpu "
                        "profile compiles the transformer and HRNet models). Compiled kernels change "
                        "the last bits, so the config hash records it")
    p.add_argument("--teacher-store", metavar="DIR",
                   help="share the teacher's outputs through DIR with other runs that see the same "
                        "batches (same teacher, seed, data and loader): bit-identical results, no "
                        "teacher forward pass where a run already stored it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard scalars into the run folder, per epoch: each loss term, "
                        "the learning rate and the validation AP (view: tensorboard --logdir runs/cpu); "
                        "the config hash does not change")
    p.add_argument("--max-train-instances", type=positive_int, help="train on the first N instances only")
    p.add_argument("--max-val-instances", type=positive_int, help="evaluate on the first N instances only")
    p.add_argument("--out", required=True, help="run folder (checkpoints, metrics.csv)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.set_defaults(func=_train, interrupted=_train_progress, resume_argv=_with_resume)

    e = subparsers.add_parser("eval", help="COCO keypoint AP of a checkpoint, printed as JSON",
                              description=EVAL_DESCRIPTION, formatter_class=HelpFormatter,
                              epilog=EVAL_EXAMPLES)
    e.add_argument("--checkpoint", required=True, help="a kit checkpoint (trained, or from distilkit convert)")
    e.add_argument("--data-root", help="COCO-layout folder; default: the data the checkpoint's run used")
    e.add_argument("--no-flip", action="store_true", help="evaluate without the flip test")
    e.add_argument("--dark", action="store_true", help="DARK decoding for heatmap models")
    e.add_argument("--authors-eval", action="store_true",
                   help="the authors' test-time pipeline: regression x flipped back as 1 - x, flipped "
                        "scores averaged without the left/right swap, the model's own keypoint "
                        "scores; heatmaps shifted 1 px after the flip and decoded with DARK (kernel 11)")
    e.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument("--max-val-instances", type=positive_int, help="evaluate on the first N instances only")
    e.set_defaults(func=_eval)
