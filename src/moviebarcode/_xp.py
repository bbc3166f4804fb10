"""The array module of an array (NumPy or CuPy), and copies to the host.

One place decides which module an array belongs to, with ``array_api_compat``'s type
checks, so that no module imports CuPy to find out. The clustering code keeps the raw
``numpy`` / ``cupy`` modules (not the array-API wrappers): it uses the few functions the
two share beyond the standard (``bincount``, ``take`` along an axis, ``out=``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import is_cupy_array

Array = Any
"""A NumPy or CuPy array."""


def get_xp(*arrays: Array) -> Any:
    """The module, ``numpy`` or ``cupy``, of ``arrays`` (``numpy`` for anything else).

    Raises
    ------
    TypeError
        If host and device arrays are mixed.
    """
    on_device = [is_cupy_array(a) for a in arrays if a is not None]
    if any(on_device) and not all(on_device):
        raise TypeError("host (NumPy) and device (CuPy) arrays cannot be mixed")
    if on_device and on_device[0]:
        import cupy

        return cupy
    return np


def to_host(a: Array) -> np.ndarray:
    """``a`` as a NumPy array: copied from the device (``.get()``) when it is a CuPy one."""
    return a.get() if is_cupy_array(a) else np.asarray(a)
