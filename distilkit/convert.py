"""The authors' released checkpoints (github yshMars/DistilPose, MMPose 0.x) as kit checkpoints.

Their files are ``{'meta', 'state_dict'}``: ``backbone.*`` under MMPose's HRNet / StemNet names
and the head under ``keypoint_head.tokenhead.`` (students) or ``keypoint_head.tokenpose.``
(teachers). The mapping (``shared/reference/weights_mapping.md``):

    backbone.*                               -> backbone.*       (weights.HRNET_RULES)
    keypoint_token                           -> encoder.keypoint_tokens
    patch_to_embedding (Linear over p1 p2 c) -> encoder.patch_embed (the same map as a conv)
    transformer.layers.{i}.0.fn.norm         -> encoder.layers.{i}.norm1
    transformer.layers.{i}.0.fn.fn.to_qkv    -> encoder.layers.{i}.attn.qkv
    transformer.layers.{i}.0.fn.fn.to_out.0  -> encoder.layers.{i}.attn.proj
    transformer.layers.{i}.1.fn.norm         -> encoder.layers.{i}.norm2
    transformer.layers.{i}.1.fn.fn.net.0/3   -> encoder.layers.{i}.mlp.fc1/fc2
    mlp_head.0, mlp_head.1 (students)        -> head.norm, head.fc
    mlp_head.{j} (teachers)                  -> head.mlp.{j}
    pos_embedding                            -> dropped: the fixed sine table the kit computes

Their student's score is the raw linear output and its sigma a plain softplus; the converted
model records that head option (``AUTHORS_HEAD``) in its overrides, so it reproduces their
outputs. Every key of the file is used or named as dropped, or the conversion fails. The file
is read weights-only; its ``meta`` may hold numpy scalars and arrays (mmcv's ``hook_msgs``),
named as numpy 1.x or numpy 2 name them, and only those are allow-listed.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from distilkit.cli_args import HelpFormatter
from distilkit.files import NUMPY_GLOBALS, atomic_torch_save, load_weights_only
from distilkit.weights import HRNET_RULES, WeightsError, map_key

log = logging.getLogger(__name__)

AUTHORS_MODELS: dict[str, str] = {        # kit preset -> the authors' head prefix
    "distilpose-s": "keypoint_head.tokenhead.",
    "distilpose-l": "keypoint_head.tokenhead.",
    "teacher-hrw48": "keypoint_head.tokenpose.",
    "teacher-stemnet": "keypoint_head.tokenpose.",
}
AUTHORS_HEAD = dict(score_sigmoid=False, sigma_init=None, sigma_eps=0.0)
DROPPED = ("pos_embedding",)              # head keys with no kit parameter, on purpose
_TRANSFORMER_RULES: tuple[tuple[str, str], ...] = (
    (r"^keypoint_token$", "encoder.keypoint_tokens"),
    (r"^patch_to_embedding\.", "encoder.patch_embed."),
    (r"^transformer\.layers\.(\d+)\.0\.fn\.norm\.", r"encoder.layers.\1.norm1."),
    (r"^transformer\.layers\.(\d+)\.0\.fn\.fn\.to_qkv\.", r"encoder.layers.\1.attn.qkv."),
    (r"^transformer\.layers\.(\d+)\.0\.fn\.fn\.to_out\.0\.", r"encoder.layers.\1.attn.proj."),
    (r"^transformer\.layers\.(\d+)\.1\.fn\.norm\.", r"encoder.layers.\1.norm2."),
    (r"^transformer\.layers\.(\d+)\.1\.fn\.fn\.net\.0\.", r"encoder.layers.\1.mlp.fc1."),
    (r"^transformer\.layers\.(\d+)\.1\.fn\.fn\.net\.3\.", r"encoder.layers.\1.mlp.fc2."),
)
_STUDENT_HEAD_RULES = ((r"^mlp_head\.0\.", "head.norm."), (r"^mlp_head\.1\.", "head.fc."))
_TEACHER_HEAD_RULES = ((r"^mlp_head\.(\d+)\.", r"head.mlp.\1."),)


def read_authors_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of an MMPose 0.x checkpoint, loaded weights-only."""
    obj = load_weights_only(path, allow=NUMPY_GLOBALS)   # mmcv's meta: numpy scalars and arrays
    state = obj.get("state_dict") if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: not an MMPose checkpoint (no 'state_dict' mapping)")
    for key, value in state.items():
        if not isinstance(key, str):
            raise WeightsError(f"{path}: state_dict key {key!r} is a {type(key).__name__}, not a name")
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{path}: state_dict[{key!r}] is a {type(value).__name__}, not a tensor")
    return state


def warn_non_finite(state: dict[str, torch.Tensor], path: str | Path) -> list[str]:
    """Names of the floating tensors holding NaN or inf, said in one WARNING naming the file."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        log.warning("%s: %d tensor(s) hold NaN or inf values, converted as they are: %s%s", path,
                    len(bad), bad[:8], " ..." if len(bad) > 8 else "")
    return bad


def _rename(key: str, rules) -> str | None:
    for pattern, repl in rules:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key, count=1)
    return None


def map_authors_state(state: dict[str, torch.Tensor], model: str, patch_size: tuple[int, int]
                      ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(kit state dict, dropped source keys); unknown source keys are an error naming them."""
    head_prefix = AUTHORS_MODELS[model]
    head_rules = _TRANSFORMER_RULES + (_STUDENT_HEAD_RULES if "tokenhead" in head_prefix
                                       else _TEACHER_HEAD_RULES)
    out: dict[str, torch.Tensor] = {}
    dropped, unknown = [], []
    for key, value in state.items():
        if key.startswith("backbone."):
            out["backbone." + map_key(key[len("backbone."):], HRNET_RULES)] = value
        elif key.startswith(head_prefix) and key[len(head_prefix):] in DROPPED:
            dropped.append(key)
        elif key.startswith(head_prefix) and (name := _rename(key[len(head_prefix):], head_rules)):
            out[name] = value
        else:
            unknown.append(key)
    if unknown:
        raise WeightsError(f"{len(unknown)} keys of the file have no place in {model}: "
                           f"{unknown[:8]}{' ...' if len(unknown) > 8 else ''}")
    weight = out.get("encoder.patch_embed.weight")
    if weight is not None and weight.dim() == 2:   # Linear (D, ph*pw*C) -> conv (D, C, ph, pw)
        d, ph, pw = weight.shape[0], *patch_size
        if weight.shape[1] % (ph * pw):
            raise WeightsError(f"patch_to_embedding.weight has shape {tuple(weight.shape)}: its "
                               f"{weight.shape[1]} inputs are not {ph}x{pw} patches of channels")
        out["encoder.patch_embed.weight"] = weight.reshape(d, ph, pw, -1).permute(0, 3, 1, 2).contiguous()
    return out, dropped


def _base_and_profile(model: str) -> tuple[str, str]:
    """``distilpose-s`` -> (it, "paper"); a sized name (``-smoke``, ``-cpu``, for tests) keeps its size."""
    for suffix, profile in (("-smoke", "smoke"), ("-cpu", "cpu")):
        if model.endswith(suffix):
            base = model[: -len(suffix)]
            break
    else:
        base, profile = model, "paper"
    if base not in AUTHORS_MODELS:
        from distilkit.data.errors import UsageError
        raise UsageError(f"--model must be one of {sorted(AUTHORS_MODELS)}, got {model!r}")
    return base, profile


def convert_authors_checkpoint(path: str | Path, model: str) -> dict:
    """A kit checkpoint holding the authors' weights for preset ``model`` (paper size; the
    ``-smoke`` / ``-cpu`` sizes are accepted for small re-creations in tests)."""
    from distilkit.engine.config import TrainConfig
    from distilkit.losses import LossConfig
    from distilkit.models import build_model

    base, profile = _base_and_profile(model)
    overrides = dict(AUTHORS_HEAD) if "tokenhead" in AUTHORS_MODELS[base] else {}
    kit = build_model(model, **overrides)
    source = read_authors_checkpoint(path)
    try:
        state, dropped = map_authors_state(source, base, kit.encoder.patch_size)
    except WeightsError as err:
        raise WeightsError(f"{path}: {err}") from None
    warn_non_finite(source, path)
    expected = kit.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise WeightsError(f"{path}: lacks {len(missing)} weights of {model}: {missing[:8]}")
    for name, value in state.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise WeightsError(f"{path}: {name} has shape {tuple(value.shape)}, {model} needs "
                               f"{tuple(expected[name].shape)}")
    kit.load_state_dict(state, strict=True)
    teacher = not overrides
    config = TrainConfig(out_dir=".", model=base, profile=profile,
                         # the authors trained their students with all four losses (L_CS too)
                         losses=LossConfig(reg=False, heatmap=True) if teacher
                         else LossConfig(kt=True, vt=True, sh=True, cs=True),
                         model_overrides=overrides)
    return {"model_name": model, "model_overrides": overrides, "config": config.to_dict(),
            "config_hash": config.hash(), "state_dict": kit.state_dict(), "epoch": 0,
            "metrics": {}, "best_ap": -1.0, "converted_from": str(path), "dropped_keys": dropped,
            "train_data": "coco-layout"}     # the authors trained on COCO, whatever size it is cut to


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="the authors' released checkpoints (MMPose 0.x) as kit checkpoints",
        description="Rename and reshape the weights of the authors' released DistilPose and teacher "
                    "checkpoints (MMPose 0.x .pth files, downloaded by you) into a kit checkpoint that "
                    "eval, predict and export take. The file is read weights-only: it cannot run code.",
        formatter_class=HelpFormatter,
        epilog="example:\n  distilkit convert --from distilpose-mmpose DistilPose_S.pth --model distilpose-s "
               "--out distilpose_s.pt\n  distilkit eval --checkpoint distilpose_s.pt --data-root /data/coco")
    p.add_argument("--from", dest="source", choices=("distilpose-mmpose",), required=True,
                   help="the checkpoint's origin (the authors' MMPose 0.x files)")
    p.add_argument("checkpoint", help="the authors' .pth file")
    p.add_argument("--model", required=True, metavar="PRESET",
                   help=f"one of {', '.join(sorted(AUTHORS_MODELS))} (a -smoke or -cpu suffix converts a "
                        "small re-creation, as the tests do)")
    p.add_argument("--out", required=True, help="the kit checkpoint to write")

    def run(args) -> int:
        ckpt = convert_authors_checkpoint(args.checkpoint, args.model)
        atomic_torch_save(ckpt, args.out)
        print(f"{args.out}: {args.model}, {len(ckpt['state_dict'])} tensors from {args.checkpoint}; "
              f"dropped {ckpt['dropped_keys'] or 'nothing'}")
        return 0

    p.set_defaults(func=run)


__all__ = ["convert_authors_checkpoint", "map_authors_state", "read_authors_checkpoint",
           "AUTHORS_MODELS", "AUTHORS_HEAD"]
