"""Colour-space conversions for clustering: sRGB <-> linear light and sRGB <-> CIELAB.

This module owns the colour maths. Every function works on NumPy or CuPy arrays of any
leading shape (``xp`` is the array module, derived from the input when omitted), takes
and returns float32, and uses the sRGB standard (IEC 61966-2-1) with the D65 white
point. sRGB values are floats on the 0-255 scale; linear light is 0-1; CIELAB has
L in 0-100.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from moviebarcode._xp import get_xp

Array = Any
"""A NumPy or CuPy array."""

# Linear sRGB -> CIE XYZ (D65), IEC 61966-2-1, and its inverse.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
# D65 reference white, the XYZ of linear RGB (1, 1, 1), so that white maps to a=b=0.
_WHITE = _RGB_TO_XYZ.sum(axis=1)

_EPSILON = 216.0 / 24389.0  # (6/29)**3
_KAPPA = 24389.0 / 27.0  # (29/3)**3


def srgb_to_linear(x: Array, xp: Any = None) -> Array:
    """sRGB on the 0-255 scale -> linear light on 0-1 (the IEC 61966-2-1 piecewise curve).

    Parameters
    ----------
    x : array of any shape, float
        sRGB component values, 0-255.

    Returns
    -------
    array of the same shape, float32
    """
    xp = xp or get_xp(x)
    v = xp.asarray(x, dtype=xp.float32) / xp.float32(255.0)
    low = v / xp.float32(12.92)
    high = ((xp.maximum(v, 0.04045) + xp.float32(0.055)) / xp.float32(1.055)) ** xp.float32(2.4)
    return xp.where(v <= 0.04045, low, high).astype(xp.float32)


def linear_to_srgb(x: Array, xp: Any = None) -> Array:
    """Linear light on 0-1 -> sRGB on the 0-255 scale, clipped to 0-255 and not rounded.

    Parameters
    ----------
    x : array of any shape, float
        Linear-light component values, 0-1.

    Returns
    -------
    array of the same shape, float32
    """
    xp = xp or get_xp(x)
    v = xp.clip(xp.asarray(x, dtype=xp.float32), 0.0, 1.0)
    low = v * xp.float32(12.92)
    high = xp.float32(1.055) * xp.maximum(v, 0.0031308) ** xp.float32(1.0 / 2.4) - xp.float32(0.055)
    out = xp.where(v <= 0.0031308, low, high) * xp.float32(255.0)
    return xp.clip(out, 0.0, 255.0).astype(xp.float32)


def _matvec(m: np.ndarray, v: Array, xp: Any) -> Array:
    """Apply the 3x3 matrix ``m`` to the last axis of ``v`` (..., 3)."""
    return xp.matmul(v, xp.asarray(m.T, dtype=xp.float32))


def srgb_to_lab(x: Array, xp: Any = None) -> Array:
    """sRGB on 0-255 -> CIELAB (D65 white), via linear RGB and CIE XYZ.

    Parameters
    ----------
    x : array of shape (..., 3), float
        sRGB colours, 0-255.

    Returns
    -------
    array of shape (..., 3), float32
        L* (0-100), a*, b*.
    """
    xp = xp or get_xp(x)
    xyz = _matvec(_RGB_TO_XYZ, srgb_to_linear(x, xp), xp)
    t = xyz / xp.asarray(_WHITE, dtype=xp.float32)
    f = xp.where(
        t > _EPSILON,
        xp.cbrt(xp.maximum(t, _EPSILON)),
        (xp.float32(_KAPPA) * t + xp.float32(16.0)) / xp.float32(116.0),
    )
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    lab = xp.stack(
        [xp.float32(116.0) * fy - xp.float32(16.0), 500.0 * (fx - fy), 200.0 * (fy - fz)],
        axis=-1,
    )
    return lab.astype(xp.float32)


def lab_to_srgb(x: Array, xp: Any = None) -> Array:
    """CIELAB (D65 white) -> sRGB on 0-255, clipped to 0-255 and not rounded.

    Parameters
    ----------
    x : array of shape (..., 3), float
        L* (0-100), a*, b*.

    Returns
    -------
    array of shape (..., 3), float32
    """
    xp = xp or get_xp(x)
    lab = xp.asarray(x, dtype=xp.float32)
    fy = (lab[..., 0] + xp.float32(16.0)) / xp.float32(116.0)
    fx = fy + lab[..., 1] / xp.float32(500.0)
    fz = fy - lab[..., 2] / xp.float32(200.0)
    f = xp.stack([fx, fy, fz], axis=-1)
    f3 = f * f * f
    t = xp.where(f3 > _EPSILON, f3, (xp.float32(116.0) * f - xp.float32(16.0)) / xp.float32(_KAPPA))
    xyz = t * xp.asarray(_WHITE, dtype=xp.float32)
    return linear_to_srgb(_matvec(_XYZ_TO_RGB, xyz, xp), xp)
