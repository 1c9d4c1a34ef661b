"""Data and constants shared by the estimators' tests and the kernels' tests (tests/test_kernels_*).

Plain functions and constants; the shared fixtures are in ``tests/conftest.py``.
"""

import numpy as np

from sklearn_selfcal._kernels.explinear_l1 import ExpLinearChi2, WeightedL1
from sklearn_selfcal._kernels.orbit_sampling import potential_functions
from sklearn_selfcal._paper import GAIA_PARALLAX_ZERO_POINT


# --------------------------------------------------------------------------- parallax (section 3.1)
def toy_parallax_problem(n=400, p=40, seed=0, dtype=np.float64):
    """ln(parallax) linear in 3 latent labels seen through correlated 'pixels' and magnitudes."""
    rng = np.random.default_rng(seed)
    labels = rng.normal(size=(n, 3))
    pixels = labels @ rng.normal(scale=0.1, size=(3, p)) + rng.normal(scale=0.01, size=(n, p))
    dist_mod = rng.uniform(9.0, 14.0, n)
    mags = dist_mod[:, None] + labels[:, :1] * np.array([[0.5, 0.3]]) + rng.normal(0, 0.02, (n, 2))
    true = np.exp(-0.2 * np.log(10) * (dist_mod - 10) + 0.3 * labels[:, 0] - 0.5)
    sigma = 0.01 + 0.03 * rng.random(n)
    y = true + sigma * rng.normal(size=n) + GAIA_PARALLAX_ZERO_POINT
    X = np.column_stack([pixels, mags]).astype(dtype)
    names = [f"LOGFLUX_{i:04d}" for i in range(p)] + ["phot_g_mean_mag", "K"]
    return X, y, sigma, true, names


def unit_l1(alpha, pen):
    """The unit-weight L1 penalty on the columns ``pen``."""
    return WeightedL1(alpha, np.ones(len(pen)))


def explinear_pieces(X, y, sigma, n_unpen=2):
    """The kernel's inputs for :func:`toy_parallax_problem`: penalised columns (the pixels),
    unpenalised block (a constant and the last ``n_unpen`` columns) and the chi2 datafit."""
    U = np.column_stack([np.ones(len(y)), X[:, -n_unpen:]])
    pen = np.arange(X.shape[1] - n_unpen)
    return pen, U, ExpLinearChi2(y - GAIA_PARALLAX_ZERO_POINT, 1.0 / (sigma**2 * len(y)))


# --------------------------------------------------------------------------- gradients (section 4)
#: The paper's fit of the low-alpha [Fe/H] profile (section 4.1): dex/kpc, dex/kpc, dex, kpc.
PAPER_FEH_PROFILE = dict(m1=-0.057, m2=-0.019, b=0.41, k=14.5)
#: Centres of 2 kpc radial bins from 1 to 21 kpc.
BIN_CENTRES = np.arange(1.0, 22.0, 2.0)


# --------------------------------------------------------------------------- calibration (section 2)
#: The design of the paper's equation 1: quadratic in the actions, quadratic in log g.
PAPER_DESIGN = ["1", "J_R", "J_z", "L_z", "J_R^2", "J_R J_z", "J_R L_z", "J_z^2", "J_z L_z",
                "L_z^2", "(LOGG-2.2)", "(LOGG-2.2)^2"]


# --------------------------------------------------------------------------- actions (section 3.2)
def natural_stars(n, seed=0):
    """Phase space (galpy's natural units) of a mix of disk, thick-disk and halo-like stars."""
    rng = np.random.default_rng(seed)
    R = rng.uniform(0.3, 2.0, n)
    z = rng.normal(0.0, 0.15, n)
    hot = rng.uniform(0, 1, n) < 0.3
    v_R = rng.normal(0.0, np.where(hot, 0.5, 0.15))
    v_T = np.where(hot, rng.normal(0.3, 0.5, n), rng.normal(1.0, 0.1, n))
    v_z = rng.normal(0.0, np.where(hot, 0.4, 0.1))
    return R, z, v_R, v_T, v_z


def phi_of(pot):
    """The potential ``Phi(R, z)`` of a galpy potential (natural units)."""
    return potential_functions(pot)[0]
