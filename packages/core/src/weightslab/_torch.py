"""Optional torch: imported only when a watched object needs it."""

from __future__ import annotations

import sys
from typing import Any


def torch_or_none() -> Any:
    """The torch module if the user's program already imported it (or it is importable)."""
    module = sys.modules.get("torch")
    if module is not None:
        return module
    try:
        import torch
    except ImportError:
        return None
    return torch


def is_tensor(value: Any) -> bool:
    module = sys.modules.get("torch")
    return module is not None and isinstance(value, module.Tensor)


def to_numpy(value: Any) -> Any:
    """Host numpy copy of a tensor/array/list (detached; no autograd)."""
    import numpy as np

    if is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class DeviceCopy:
    """A device tensor being copied to host memory without blocking the training thread.

    The copy is queued on the current CUDA stream (``non_blocking`` into pinned memory) and
    an event marks its end; :meth:`result` waits for that event, which only the recorder
    thread does, so the training loop never synchronises with the device for WeightsLab.
    """

    def __init__(self, tensor: Any) -> None:
        import torch

        detached = tensor.detach()
        self.host = torch.empty(detached.shape, dtype=detached.dtype, device="cpu", pin_memory=True)
        self.host.copy_(detached, non_blocking=True)
        self.event = torch.cuda.Event()
        self.event.record()
        self.shape = tuple(detached.shape)

    def result(self) -> Any:
        self.event.synchronize()
        return self.host.numpy()


def to_host_async(value: Any) -> Any:
    """A private numpy copy of host data (the caller may change its tensor/array in place after
    the call; O(batch)); a :class:`DeviceCopy` for a CUDA tensor (resolved off-thread)."""
    import numpy as np

    if is_tensor(value) and value.is_cuda:
        return DeviceCopy(value)
    return np.array(to_numpy(value), copy=True)


def resolve_host(value: Any) -> Any:
    return value.result() if isinstance(value, DeviceCopy) else value
