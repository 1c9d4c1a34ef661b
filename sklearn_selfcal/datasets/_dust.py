"""Dust extinction along each line of sight from a smooth exponential dust disk."""

from __future__ import annotations

import numpy as np

from .._paper import R0_KPC, Z_SUN_KPC

__all__ = ["DEFAULT_DUST", "extinction_k"]

DEFAULT_DUST = {
    "a_k_per_kpc": 0.10,   # dA_K/ds in the mid-plane at R0 (mag/kpc)
    "scale_length": 3.0,   # kpc
    "scale_height": 0.10,  # kpc
    "inner_hole": 1.5,     # kpc; dust density suppressed as 1 - exp(-(R / hole)^2)
    "n_steps": 24,
}


def extinction_k(xyz, dust):
    """K-band extinction A_K (mag) from the Sun to each star at Galactocentric ``xyz`` (kpc)."""
    sun = np.array([-R0_KPC, 0.0, Z_SUN_KPC])[:, None]
    delta = xyz - sun
    length = np.sqrt(np.sum(delta**2, axis=0))
    t = (np.arange(dust["n_steps"]) + 0.5) / dust["n_steps"]
    total = np.zeros(xyz.shape[1])
    for ti in t:  # midpoint rule, one slab of points at a time keeps memory at O(n)
        p = sun + ti * delta
        R = np.hypot(p[0], p[1])
        rho = (np.exp(-(R - R0_KPC) / dust["scale_length"] - np.abs(p[2]) / dust["scale_height"])
               * (1.0 - np.exp(-((R / dust["inner_hole"]) ** 2))))
        total += rho
    return dust["a_k_per_kpc"] * total * length / dust["n_steps"]
