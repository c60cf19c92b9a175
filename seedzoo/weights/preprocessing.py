"""The preprocessing that belongs to a set of weights: one record, read by every consumer.

torchvision attaches its transforms to its `Weights`; seedzoo attaches a `DataConfig` (input size, crop,
interpolation, mean/std) to the weights it resolves. The registry declares it for an entry's own weights
(`ZooEntry.data`); a model folder records it in `config.json`'s `pretrained_cfg` (timm's fields), and a
run's export records the preprocessing it was trained with there. From that one record come:

- `seedzoo.timm_cfg.pretrained_cfg(...)`: timm's fields, for `model.pretrained_cfg`, `config.json` and
  timm's pretrained tags;
- `Preprocessing`: the eval and train transforms of `seedzoo.get_transform` and `seedzoo eval`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SeedzooError
from ..zoo import DataConfig, Normalization

__all__ = ["Preprocessing", "PreprocessingError", "ToRGB", "architecture_data_config", "data_config_from_cfg"]

_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


class PreprocessingError(SeedzooError, ValueError):
    """A recorded preprocessing that cannot be used (unknown interpolation, malformed sizes, ...)."""


def data_config_from_cfg(cfg: Mapping[str, Any], where: str = "the pretrained_cfg") -> DataConfig:
    """The `DataConfig` that timm-style `cfg` fields describe (a config.json's `pretrained_cfg`, a timm
    default cfg); fields it lacks keep `DataConfig`'s defaults."""
    base = DataConfig()
    try:
        size = tuple(int(s) for s in cfg.get("input_size") or base.input_size)
        mean = tuple(float(m) for m in cfg.get("mean") or base.normalization.mean)
        std = tuple(float(s) for s in cfg.get("std") or base.normalization.std)
        crop_pct = float(cfg.get("crop_pct") or base.crop_pct)
    except (TypeError, ValueError) as err:
        raise PreprocessingError(f"{where} holds a malformed input_size/mean/std/crop_pct ({err})") from None
    interpolation = str(cfg.get("interpolation") or base.interpolation)
    if len(size) != 3 or min(size) <= 0 or not 0 < crop_pct <= 1 or len(mean) != len(std) or min(std) <= 0:
        raise PreprocessingError(f"{where} is not a usable preprocessing: input_size {list(size)}, crop_pct "
                                 f"{crop_pct}, mean {list(mean)}, std {list(std)}")
    if interpolation not in _INTERPOLATIONS:
        raise PreprocessingError(f"{where} names interpolation '{interpolation}': use one of {_INTERPOLATIONS}")
    note = "as recorded with the weights"
    if mean == base.normalization.mean and std == base.normalization.std:
        note = base.normalization.note
    return DataConfig(input_size=size, crop_pct=crop_pct, interpolation=interpolation,
                      normalization=Normalization(mean, std, note=note))


def architecture_data_config(architecture: str) -> DataConfig:
    """timm's default preprocessing of an architecture (seedzoo's own: SEED's ImageNet protocol)."""
    import timm

    cfg = timm.models.get_pretrained_cfg(architecture)
    if cfg is None:
        return DataConfig()
    return data_config_from_cfg(cfg.to_dict(), where=f"timm's pretrained cfg of '{architecture}'")


class ToRGB:
    """Any PIL image (grayscale, palette, RGBA) as RGB: gray is repeated to three channels. Other inputs
    (tensors) pass through. A class rather than a lambda so that loader workers can pickle it."""

    def __call__(self, image: Any) -> Any:
        convert = getattr(image, "convert", None)
        if convert is None or getattr(image, "mode", "RGB") == "RGB":
            return image
        return convert("RGB")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@dataclass(frozen=True)
class Preprocessing:
    """The transforms of a `DataConfig`, flat enough for result settings and feature-cache keys.

    Eval: Resize(int(size / crop_pct)) (256 for 224 at 0.875) + CenterCrop(size). Train (linear probe,
    fine-tuning): RandomResizedCrop(size) + horizontal flip. Both start from RGB (gray repeated) and end
    with ToTensor + the weights' own normalisation.
    """

    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_data_config(cls, data: DataConfig, input_size: int | None = None) -> Preprocessing:
        return cls(input_size or data.input_size[-1], data.crop_pct, data.interpolation,
                   tuple(data.normalization.mean), tuple(data.normalization.std))

    def eval_transform(self) -> Any:
        from torchvision import transforms as T

        resize = int(self.input_size / self.crop_pct)  # timm truncates too
        return T.Compose([ToRGB(), T.Resize(resize, interpolation=self._interp()), T.CenterCrop(self.input_size),
                          T.ToTensor(), T.Normalize(self.mean, self.std)])

    def train_transform(self) -> Any:
        from torchvision import transforms as T

        return T.Compose([ToRGB(), T.RandomResizedCrop(self.input_size, interpolation=self._interp()),
                          T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(self.mean, self.std)])

    def transform(self, train: bool = False) -> Any:
        return self.train_transform() if train else self.eval_transform()

    def _interp(self) -> Any:
        from torchvision.transforms import InterpolationMode

        if self.interpolation not in _INTERPOLATIONS:
            raise PreprocessingError(f"unsupported interpolation '{self.interpolation}': use one of "
                                     f"{list(_INTERPOLATIONS)}")
        return InterpolationMode(self.interpolation)
