"""`--device`: checked before any work starts, so that asking for a GPU the machine lacks fails at once."""
from __future__ import annotations

from ..errors import SeedzooError


class DeviceError(SeedzooError, ValueError):
    """A `--device` this machine cannot provide."""


def checked_device(name: str | None):
    """The torch device `name` names (default: cuda when available, else cpu), or a one-line refusal."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"--device {name}: not a device name; use cpu, cuda, cuda:1, mps ...") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: no CUDA device is available on this machine; "
                              "use --device cpu (or leave --device out)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                              f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {name}: MPS is not available here; use --device cpu")
    return device
