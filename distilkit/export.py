"""``distilkit export``: a kit checkpoint as an ONNX graph, checked against PyTorch.

The graph takes ``images`` (N, 3, H, W), ImageNet-normalised crops (``normalize_image``), with
a dynamic batch axis, and returns the model's raw deployable outputs; decoding, the flip test
and the mapping back to the image stay in Python (``distilkit.predict``), as in evaluation:

    regression models (DistilPose-S/L, DeepPose)   coords (N, K, 2) in [0, 1] (x/W, y/H),
                                                   scores (N, K), sigmas (N, K, 2) heatmap px
    heatmap models (teachers, SimpleBaseline)      heatmaps (N, K, h, w)

The exporter is torch's TorchScript-based one (``dynamo=False``). The torch.export-based
exporter, torch's default since 2.9, needs ``onnxscript``, which is not a kit dependency; the
TorchScript exporter converts ``F.scaled_dot_product_attention`` at opset 17 into MatMul,
Softmax and the 1/sqrt(d_head) scale, so the transformer exports as it is, with no export-time
change to the model. Its heatmap models' in-graph argmax decode (``decode_heatmaps``) feeds no
output and is pruned from the graph.

``check_onnx`` runs the file with onnxruntime on random inputs at two batch sizes (which is
what proves the batch axis dynamic) and compares every output with the PyTorch model's --
the model as loaded, so a ``--fold-bn`` export is checked against the unfolded weights.
"""
from __future__ import annotations

import argparse
import copy
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from distilkit.cli_args import positive_float
from distilkit.files import atomic_file
from distilkit.models.deploy import fold_batchnorm

OPSET = 17                      # LayerNormalization is an ONNX op from 17 on
ATOL = 1e-4                     # the check's tolerance on every output value
CHECK_BATCH_SIZES = (1, 3)      # two sizes, neither the traced one (2)
INPUT_NAME = "images"


class OnnxPoseWrapper(nn.Module):
    """A kit model with the exported outputs as a tuple of tensors (``output_names``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.kind = model.kind

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(images)
        if self.kind == "heatmap":
            return (out.heatmaps,)
        return tuple(t for t in (out.coords, out.scores, out.sigmas) if t is not None)


def output_names(model: nn.Module) -> tuple[str, ...]:
    """The graph's output names, in order, for this model (regression heads without sigmas
    export coords and scores only)."""
    if model.kind == "heatmap":
        return ("heatmaps",)
    h, w = model.input_size
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 3, h, w))
    return tuple(n for n in ("coords", "scores", "sigmas") if getattr(out, n) is not None)


def deployable_copy(model: nn.Module, *, fold_bn: bool = False) -> tuple[nn.Module, int]:
    """An eval-mode copy to export, with BatchNorms folded into their convs when asked (and
    the number of folds)."""
    model = copy.deepcopy(model).eval()
    folds = fold_batchnorm(model) if fold_bn else 0
    return model, folds


def max_opset() -> int:
    """The newest opset torch's TorchScript exporter writes."""
    from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    return ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET


def export_onnx(model: nn.Module, path: str | Path, *, fold_bn: bool = False,
                opset: int = OPSET) -> dict:
    """Write ``model`` as ONNX at ``path`` (atomically); returns what was written: outputs,
    opset, the number of BN folds. Opsets below ``OPSET`` lack LayerNormalization."""
    if not OPSET <= opset <= max_opset():
        from distilkit.data.errors import UsageError
        raise UsageError(f"--opset {opset}: the kit's models export at opset {OPSET} to "
                         f"{max_opset()} (LayerNormalization is an ONNX op from {OPSET} on)")
    deployed, folds = deployable_copy(model, fold_bn=fold_bn)
    names = output_names(deployed)
    h, w = deployed.input_size
    # Traced at batch 2: a batch of 1 invites the tracer to specialise size-1 dimensions.
    example = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    dynamic = {name: {0: "batch"} for name in (INPUT_NAME, *names)}
    with warnings.catch_warnings(), atomic_file(path, "wb") as f:
        # The tracer warns about the models' shape checks on H and W (fixed in the graph; the
        # batch axis is checked dynamic by check_onnx), and torch about using this exporter.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*feature will be removed.*")
        torch.onnx.export(OnnxPoseWrapper(deployed).eval(), (example,), f, dynamo=False,
                          input_names=[INPUT_NAME], output_names=list(names),
                          dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True)
    return {"path": Path(path), "outputs": names, "opset": opset, "bn_folds": folds,
            "input_size": (h, w), "kind": deployed.kind}


# ------------------------------------------------------------------------------ check
class OnnxMismatchError(RuntimeError):
    """onnxruntime's outputs differ from PyTorch's beyond the tolerance."""


@dataclass
class CheckReport:
    """The largest |onnxruntime - PyTorch| per output over the checked batch sizes."""

    max_abs_diff: dict[str, float]
    batch_sizes: tuple[int, ...]
    atol: float

    @property
    def largest(self) -> float:
        return max(self.max_abs_diff.values())

    def line(self) -> str:
        per = ", ".join(f"{k} {v:.2e}" for k, v in self.max_abs_diff.items())
        sizes = " and ".join(str(b) for b in self.batch_sizes)
        return (f"onnxruntime vs PyTorch on random inputs at batch {sizes}: largest "
                f"|difference| {self.largest:.2e} ({per}); tolerance {self.atol:g}")


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session (``threads`` intra-op threads, default onnxruntime's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_onnx(path: str | Path, model: nn.Module, *, batch_sizes=CHECK_BATCH_SIZES,
               atol: float = ATOL, seed: int = 0) -> CheckReport:
    """Compare the ONNX file's outputs with ``model``'s (eval mode) on random inputs at each
    batch size; OnnxMismatchError when a shape differs or a value by more than ``atol``."""
    session = onnx_session(path)
    names = [o.name for o in session.get_outputs()]
    reference = OnnxPoseWrapper(copy.deepcopy(model).eval()).eval()
    h, w = model.input_size
    gen = torch.Generator().manual_seed(seed)
    worst = {name: 0.0 for name in names}
    for n in batch_sizes:
        images = torch.randn(n, 3, h, w, generator=gen)
        with torch.no_grad():
            expected = [t.float().numpy() for t in reference(images)]
        got = session.run(names, {INPUT_NAME: images.numpy()})
        for name, e, g in zip(names, expected, got):
            if g.shape != e.shape:
                raise OnnxMismatchError(f"{path}: output {name} has shape {g.shape} at batch {n}, "
                                        f"PyTorch gives {e.shape}")
            worst[name] = max(worst[name], float(np.max(np.abs(g - e))) if g.size else 0.0)
    report = CheckReport(worst, tuple(batch_sizes), atol)
    if not all(np.isfinite(v) and v <= atol for v in worst.values()):
        raise OnnxMismatchError(f"{path}: {report.line()} -- exceeded")
    return report


# ------------------------------------------------------------------------------ command
EXAMPLE = """\
examples:
  distilkit export --checkpoint results/models/full.pt --onnx /tmp/full.onnx --check   # a published model
  distilkit export --checkpoint runs/cpu/teachers/hrw48-<hash>/best.pt --onnx teacher.onnx --fold-bn

outputs: regression models coords (N,K,2) in [0,1] of the input, scores (N,K), sigmas (N,K,2);
heatmap models heatmaps (N,K,h,w). Input "images": (N,3,H,W) ImageNet-normalised RGB crops."""


def _shapes(info: dict) -> str:
    h, w = info["input_size"]
    shapes = {"coords": "(N,17,2)", "scores": "(N,17)", "sigmas": "(N,17,2)",
              "heatmaps": "(N,17,h,w)"}
    return f"images (N,3,{h},{w}) -> " + ", ".join(f"{n} {shapes[n]}" for n in info["outputs"])


def _run(args: argparse.Namespace) -> int:
    from distilkit.predict import load_checkpoint_model   # its errors name the checkpoint

    model, ckpt = load_checkpoint_model(args.checkpoint)
    info = export_onnx(model, args.onnx, fold_bn=args.fold_bn, opset=args.opset)
    folded = f"; {info['bn_folds']} BatchNorms folded" if args.fold_bn else ""
    print(f"wrote {args.onnx}: {ckpt['model_name']} ({info['kind']}), opset {info['opset']}, "
          f"dynamic batch axis; {_shapes(info)}{folded}")
    if args.check:
        try:
            report = check_onnx(args.onnx, model, atol=args.atol)
        except OnnxMismatchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{report.line()}: OK")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="a checkpoint as ONNX (dynamic batch), checked with onnxruntime",
        description="Export a kit checkpoint to ONNX with a dynamic batch axis.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a kit checkpoint (trained or converted)")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--fold-bn", action="store_true",
                   help="fold BatchNorms into their convs first (default: off; onnxruntime "
                        "fuses them itself, other runtimes may not)")
    p.add_argument("--check", action="store_true",
                   help=f"run the file with onnxruntime at batch {CHECK_BATCH_SIZES[0]} and "
                        f"{CHECK_BATCH_SIZES[1]} and compare with PyTorch (default: off)")
    p.add_argument("--atol", type=positive_float, default=ATOL,
                   help="--check's tolerance on every output value (default: %(default)g)")
    p.add_argument("--opset", type=int, default=OPSET,
                   help=f"ONNX opset, {OPSET} to {max_opset()} (default: %(default)s)")
    p.set_defaults(func=_run)


__all__ = ["OPSET", "ATOL", "OnnxPoseWrapper", "output_names", "deployable_copy", "export_onnx",
           "check_onnx", "CheckReport", "OnnxMismatchError", "onnx_session", "add_cli"]
