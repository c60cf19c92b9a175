"""The evaluation transforms of SEED's protocols, built from a model's data config.

Eval: Resize(size / crop_pct) + CenterCrop(size) (256 -> 224 at the default crop_pct 0.875).
Train (linear probe, fine-tuning): RandomResizedCrop(size) + horizontal flip. Both bilinear with the
network's own normalisation (ImageNet mean/std for all but the SimCLR teacher).
"""
from __future__ import annotations

from dataclasses import dataclass

from torchvision import transforms as T

from ..zoo import DataConfig, UnknownModelError, get_entry

_INTERPOLATION = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
                  "nearest": T.InterpolationMode.NEAREST}


@dataclass(frozen=True)
class EvalPreprocessing:
    """What a transform does, in a form that goes into result settings and cache keys."""

    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_data_config(cls, data: DataConfig, input_size: int | None = None) -> EvalPreprocessing:
        return cls(input_size or data.input_size[-1], data.crop_pct, data.interpolation,
                   tuple(data.normalization.mean), tuple(data.normalization.std))

    def eval_transform(self) -> T.Compose:
        resize = int(self.input_size / self.crop_pct)  # timm and seedzoo.get_transform truncate too
        return T.Compose([T.Resize(resize, interpolation=self._interp()), T.CenterCrop(self.input_size),
                          T.ToTensor(), T.Normalize(self.mean, self.std)])

    def train_transform(self) -> T.Compose:
        return T.Compose([T.RandomResizedCrop(self.input_size, interpolation=self._interp()),
                          T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(self.mean, self.std)])

    def _interp(self) -> T.InterpolationMode:
        try:
            return _INTERPOLATION[self.interpolation]
        except KeyError:
            raise ValueError(f"unsupported interpolation '{self.interpolation}': "
                             f"use one of {sorted(_INTERPOLATION)}") from None


def preprocessing_for(name: str, input_size: int | None = None) -> EvalPreprocessing:
    """The preprocessing of a zoo entry (its own data config), or ImageNet defaults for other names."""
    try:
        data = get_entry(name).data
    except UnknownModelError:
        data = DataConfig()
    return EvalPreprocessing.from_data_config(data, input_size)
