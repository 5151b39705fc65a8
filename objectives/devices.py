"""Where torch methods train: ``"auto"`` (CUDA when torch sees a GPU), ``"cpu"`` or ``"cuda"``.

Random draws (initial weights, batch order, dropout masks) come from CPU generators
seeded by the split, so a run on a GPU draws the same numbers as on the CPU and differs
only by floating-point arithmetic. Importing this module does not import torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from objectives.errors import HyperparameterError

__all__ = ["DEVICES", "resolve_device", "torch_threads"]

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str):
    """The ``torch.device`` for ``device``; HyperparameterError for an unusable one."""
    import torch

    if device not in DEVICES:
        raise HyperparameterError(f"device {device!r}: must be one of {', '.join(DEVICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise HyperparameterError(
            "device 'cuda': torch sees no CUDA device here (torch.cuda.is_available() is "
            "False); use 'auto' to fall back to the CPU"
        )
    return torch.device(device)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, restoring the previous count."""
    import torch

    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n_threads must be an integer >= 1, got {n!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
