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
