"""Exporting backbones for other runtimes: detectron2 checkpoints (ResNets) and ONNX (any backbone).

detectron2
----------
`to_detectron2` renames a torchvision/timm-named ResNet the way MoCo's
`convert-pretrain-to-detectron2.py` does: stem layers under `stem.` (`stem.conv1.weight`,
`stem.conv1.norm.*`), `layerN` -> `res{N+1}`, `bnK` -> `convK.norm`, `downsample.0/1` ->
`shortcut` / `shortcut.norm`; the classifier and any projection head are dropped. The file is a pickle
of `{"model": {name: numpy array}, "__author__": "seedzoo", "matching_heuristics": True}`, which
detectron2's `DetectionCheckpointer` reads from a `.pkl` path. Use it with MoCo's detectron2 configs
(`INPUT.FORMAT "RGB"`, ImageNet `PIXEL_MEAN` [123.675, 116.280, 103.530] and `PIXEL_STD`
[58.395, 57.120, 57.375], `MODEL.RESNETS.STRIDE_IN_1X1 False`).

ResNet-18/34 use BasicBlocks, whose names (`conv1`, `conv2`, `shortcut`) detectron2's `BasicBlock`
shares; they need `MODEL.RESNETS.DEPTH 18` (or 34) and `MODEL.RESNETS.RES2_OUT_CHANNELS 64` (detectron2
defaults to 256, the bottleneck width). detectron2 builds the R-C4 box head (`Res5ROIHeads`) from
bottleneck blocks, so for these depths use an FPN config (inferred from detectron2's code).

ONNX
----
`export_onnx` writes a backbone's pre-logits representation ("features") with a dynamic batch axis,
and, for a model with a classifier (`num_classes` > 0), its logits as a second output ("logits");
before the file takes its name it is run under onnxruntime on a seeded batch and every output compared
with PyTorch's (`check_onnx`), so an interrupted or failed export never leaves an unchecked file at the
target (seedzoo.files).
"""
from __future__ import annotations

import io
import pickle
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SeedzooError
from ..files import write_atomic
from .features import representation

_SKIP_PREFIXES = ("fc.", "head.", "classifier.")
_BN_IN_BLOCK = re.compile(r"\.bn(\d)\.")


def to_detectron2(state_dict: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """detectron2 names for a torchvision/timm-named ResNet state dict (classifier/head dropped)."""
    if not any(k.startswith("layer1.") for k in state_dict):
        raise ValueError("not a ResNet state dict (no `layer1.*` keys): detectron2 export supports "
                         "the ResNet students (seed_resnet18/34/50) only; use export_onnx for others")
    out: dict[str, np.ndarray] = {}
    for key, tensor in state_dict.items():
        if key.startswith(_SKIP_PREFIXES) or key.endswith("num_batches_tracked"):
            continue
        new = key
        if not new.startswith("layer"):
            new = "stem." + new  # conv1.weight -> stem.conv1.weight, bn1.* -> stem.bn1.* (renamed below)
        for stage in (1, 2, 3, 4):
            new = new.replace(f"layer{stage}.", f"res{stage + 1}.")
        new = _BN_IN_BLOCK.sub(r".conv\1.norm.", new)
        new = new.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")
        out[new] = tensor.detach().cpu().numpy()
    return out


def save_detectron2(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Write a detectron2 checkpoint (`.pkl`) of a ResNet backbone."""
    state = model_or_state_dict.state_dict() if isinstance(model_or_state_dict, nn.Module) else model_or_state_dict
    return write_atomic(path, pickle.dumps({"model": to_detectron2(state), "__author__": "seedzoo",
                                            "matching_heuristics": True}))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Reconstructs numpy arrays and plain containers only: a detectron2 file can be inspected without
    trusting it."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def read_detectron2(path: str | Path) -> dict:
    """Read a detectron2 weights pickle, allowing nothing but numpy arrays and builtin containers."""
    return _NumpyOnlyUnpickler(io.BytesIO(Path(path).read_bytes())).load()


def has_classifier(model: nn.Module) -> bool:
    """Whether a timm model ends in a classifier (`num_classes` > 0), whose logits an export keeps."""
    return int(getattr(model, "num_classes", 0) or 0) > 0 and hasattr(model, "forward_head")


class _Representation(nn.Module):
    """The representation, and the logits too when the model has a classifier (one pass through the trunk)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not has_classifier(self.model):
            return representation(self.model, x)
        timm_model: Any = self.model  # timm's methods, which nn.Module does not declare
        trunk = timm_model.forward_features(x)
        return timm_model.forward_head(trunk, pre_logits=True), timm_model.forward_head(trunk)


def output_names(model: nn.Module) -> list[str]:
    """The ONNX graph's outputs for `model`: "features", and "logits" when it has a classifier."""
    return ["features", "logits"] if has_classifier(model) else ["features"]


class OnnxExportError(SeedzooError, ValueError):
    """The ONNX graph does not compute what the PyTorch model computes (or cannot be checked)."""


@dataclass(frozen=True)
class OnnxExport:
    """A checked ONNX file: `difference` is the largest absolute gap to PyTorch on the check batch,
    accepted because it is at most `rtol` x `scale` (the output's largest magnitude, at least 1)."""

    path: Path
    difference: float
    scale: float
    rtol: float


def export_onnx(model: nn.Module, path: str | Path, input_size: int = 224, opset: int = 17,
                dynamic_batch: bool = True, rtol: float = 1e-4) -> OnnxExport:
    """Write the model's representation (input "images" N x 3 x S x S, output "features", and "logits"
    for a model with a classifier) as ONNX.

    The graph is run under onnxruntime on a seeded batch of two (the export is traced at one: the batch
    axis is dynamic) and renamed into place only when its outputs are within `rtol` of PyTorch's, relative
    to the outputs' scale; otherwise `OnnxExportError`, and whatever was at `path` stays as it was.
    """
    if not input_size > 0 or not rtol > 0:
        raise OnnxExportError(f"input_size ({input_size}) and rtol ({rtol}) must be positive")
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        import onnxruntime  # noqa: F401  (the check runs the graph)
    except ModuleNotFoundError as err:
        raise OnnxExportError(f"ONNX export needs the '{err.name}' package: pip install 'seedzoo[onnx]'") from None
    model.eval()
    wrapped = _Representation(model).eval()
    example = torch.randn(1, 3, input_size, input_size)
    outputs = output_names(model)
    axes = {name: {0: "batch"} for name in ["images", *outputs]} if dynamic_batch else None
    graph = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated, but the torch.export-based one needs onnxscript,
        # which seedzoo does not depend on; both write the same standard ONNX graph for these CNNs.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Into memory (the TorchScript exporter takes a binary file), so the file is written and checked
        # before it takes its name.
        torch.onnx.export(wrapped, (example,), graph, input_names=["images"],  # type: ignore[arg-type]
                          output_names=outputs, dynamic_axes=axes, opset_version=opset, dynamo=False)
    images = torch.randn((2 if dynamic_batch else 1, 3, input_size, input_size),
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # the scale of every output: the representation, and the logits where there are some
        scale = max([float(out.abs().max()) for out in _as_tuple(wrapped(images))] + [1.0])
    checked: list[float] = []

    def parity(tmp: Path) -> None:
        diff = check_onnx(model, tmp, images)
        if not diff <= rtol * scale:  # NaN fails too
            raise OnnxExportError(f"the ONNX graph differs from PyTorch by {diff:.2e} (more than {rtol:g} of the "
                                  f"output's scale {scale:.3g}), so {path} was not written; try another opset, "
                                  "and report it if it persists")
        checked.append(diff)

    written = write_atomic(path, graph.getbuffer(), check=parity)
    return OnnxExport(written, checked[0], scale, rtol)


def _as_tuple(outputs: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return outputs if isinstance(outputs, tuple) else (outputs,)


def check_onnx(model: nn.Module, path: str | Path, images: torch.Tensor) -> float:
    """Max absolute difference between onnxruntime's and PyTorch's outputs on `images` (every output)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_outs = session.run(output_names(model), {"images": images.numpy()})
    with torch.no_grad():
        torch_outs = _as_tuple(_Representation(model).eval()(images))
    diffs = []
    for name, onnx_out, torch_out in zip(output_names(model), onnx_outs, torch_outs):
        if onnx_out.shape != tuple(torch_out.shape):
            raise AssertionError(f"ONNX output '{name}' {onnx_out.shape} differs in shape from PyTorch's "
                                 f"{tuple(torch_out.shape)}")
        diffs.append(np.abs(onnx_out - torch_out.numpy()).max())
    return float(np.max(diffs))  # NaN, if any, wins: a NaN output fails the check
