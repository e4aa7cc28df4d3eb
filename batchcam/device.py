"""Where and in which precision to run: CUDA, then MPS, then CPU; bf16 and channels-last on CUDA."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from batchcam.data.dataset import as_model_input
from batchcam.errors import ConfigError


@dataclass(frozen=True)
class Execution:
    """The device and numeric choices of one run, recorded with its report."""

    device: torch.device
    bf16: bool
    channels_last: bool

    def autocast(self) -> AbstractContextManager[object]:
        if not self.bf16:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def model_input(self, images_u8: torch.Tensor) -> torch.Tensor:
        """A uint8 batch from a dataset → float [0, 1] on this device, in this memory format."""
        images = as_model_input(images_u8.to(self.device, non_blocking=True))
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def describe(self) -> dict[str, object]:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else self.device.type
        return {
            "device": str(self.device),
            "device_name": name,
            "bf16": self.bf16,
            "channels_last": self.channels_last,
            # CPU weights depend on it besides the config (README, "Reproducibility").
            "torch_threads": torch.get_num_threads(),
        }


def best_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def select_execution(device: str = "auto", precision: str = "auto") -> Execution:
    """``auto`` picks the best device; bf16 autocast and channels-last only where they pay (CUDA)."""
    chosen = best_device() if device == "auto" else torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was requested but no CUDA GPU is available; use device 'auto' or 'cpu'"
        )
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' was requested but MPS is not available; use device 'auto' or 'cpu'")
    on_cuda = chosen.type == "cuda"
    if precision == "bf16" and not on_cuda:
        raise ConfigError("precision 'bf16' needs a CUDA GPU; use precision 'auto' or 'fp32'")
    bf16 = on_cuda and precision in ("auto", "bf16") and torch.cuda.is_bf16_supported()
    return Execution(device=chosen, bf16=bf16, channels_last=on_cuda)
