"""The L1-penalised chi-squared of an exponential-linear model (the paper's eq. 7): array kernels.

The problem, for stars ``n`` with observed value ``y_n``, weight ``c_n`` and feature rows, is ::

    F(a, b) = 1/2 sum_n c_n (y_n - exp(eta_n))**2  +  alpha sum_j w_j |b_j|,
    eta_n   = U_n . a + X_n[pen_cols] . b

with an *unpenalised block* ``U`` (a small dense float64 design: intercept, magnitudes, LSF
moments) and a *penalised block*: the columns ``pen_cols`` of a large matrix ``X`` (the spectral
pixels; float32 or float64, any memory order, never written to) with penalty weights ``w_j > 0``.
The caller chooses ``c_n`` (for the parallax model ``c_n = s_n / (sigma_n**2 sum_m s_m)`` with
sample weights ``s``, so ``F`` is half the weighted mean chi-squared plus the penalty).

Pieces are kept apart in the manner of skglm: a datafit (:class:`ExpLinearChi2`: value, exact
value changes, gradient and curvature with respect to ``eta``), a penalty (:class:`WeightedL1`:
value, proximal operator, optimality violations) and solvers that only talk to those two (the
penalty is passed to them as an object):

- :func:`solve_gauss_newton`: the default. Working sets of penalised features (the support plus
  the worst violators of the optimality conditions); on each working set Newton-type steps whose
  quadratic model (clipped-Hessian or Fisher curvature), with the unpenalised block eliminated
  exactly by a QR projection, is a plain Lasso on a small Gram matrix, solved exactly by an
  active-set (orthant) Newton method with Cholesky factorisations (scikit-learn's Gram coordinate
  descent, :func:`sklearn.linear_model.enet_path`, as fallback); a backtracking line search on the
  true objective; convergence on the relative KKT residual of the full problem.
- :func:`explinear_l1_path`: the solutions along a decreasing grid of ``alpha``, each warm started
  from the previous one (as :func:`sklearn.linear_model.enet_path` for the Elastic Net); a single
  fit is a one-point path.

Overflow safety: every exponential is ``exp(min(eta, EXP_CAP))`` with ``EXP_CAP = 30`` (a
parallax of 1e13 mas), so trial steps of any length give finite (huge) objectives that a line
search rejects. Observed values ``y`` may be negative: no logarithm of ``y`` is ever taken, and
the curvatures used are positive whatever ``y`` is.

Memory: besides ``X`` the solvers hold n-vectors, the small ``U``, the working-set columns of
``X`` (copied in ``X``'s dtype while they are at most half of ``X``, streamed from ``X``
otherwise), their float64 Gram matrix (working-set size squared, accumulated in place) and the
Cholesky factor of its support block (factorised in place); ``X`` is read in row blocks and never
copied or cast as a whole.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, qr, solve_triangular
from scipy.linalg.blas import dsyrk, dtrmv
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import enet_path
from sklearn.utils import Bunch

__all__ = [
    "EXP_CAP",
    "safe_exp",
    "ExpLinearChi2",
    "WeightedL1",
    "kkt_residual",
    "RowSubset",
    "RowBlockOperator",
    "matvec",
    "rmatvec",
    "working_set_columns",
    "projected_gram",
    "solve_gauss_newton",
    "explinear_l1_path",
    "alpha_max",
]

#: Largest exponent evaluated: ``exp(min(eta, EXP_CAP))`` (exp(30) = 1.07e13; squares stay finite).
EXP_CAP = 30.0


def safe_exp(eta):
    """``exp(min(eta, EXP_CAP))``: the overflow-safe link (see module docstring)."""
    return np.exp(np.minimum(eta, EXP_CAP))


# --------------------------------------------------------------------------------------------
# datafit and penalty
# --------------------------------------------------------------------------------------------
class ExpLinearChi2:
    """Datafit ``1/2 sum_n c_n (y_n - exp(eta_n))**2`` of the exponential-linear model.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Observed values (for the parallax model: Gaia parallax plus zero point, mas; may be
        negative).
    weights : ndarray of shape (n_samples,)
        Non-negative ``c_n`` (mas^-2 for the parallax model).
    """

    def __init__(self, y, weights):
        self.y = np.asarray(y, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)

    def value(self, eta, mu=None):
        """Datafit value at linear predictor ``eta``."""
        mu = safe_exp(eta) if mu is None else mu
        r = self.y - mu
        return 0.5 * float(np.dot(self.weights * r, r))

    def value_change(self, eta, d_eta, mu=None):
        """``value(eta + d_eta) - value(eta)``, computed without cancellation.

        Uses ``r1**2 - r0**2 = (mu0 - mu1)(2 y - mu0 - mu1)`` with ``mu1 - mu0`` from ``expm1``,
        so changes far below the rounding level of the value itself keep their relative accuracy
        (this is what lets a line search certify decreases near the optimum).
        """
        e0 = np.minimum(eta, EXP_CAP)
        mu = np.exp(e0) if mu is None else mu
        dmu = mu * np.expm1(np.minimum(eta + d_eta, EXP_CAP) - e0)
        return 0.5 * float(np.dot(self.weights * dmu, dmu - 2.0 * (self.y - mu)))

    def raw_grad(self, eta, mu=None):
        """Derivative with respect to ``eta``: ``c (mu - y) mu`` (capped ``mu``)."""
        mu = safe_exp(eta) if mu is None else mu
        return self.weights * (mu - self.y) * mu

    def curvature(self, eta, mu=None, kind="fisher", floor=0.1):
        """Curvature with respect to ``eta`` used by the Newton-type models (always positive).

        ``kind="fisher"``: the Gauss-Newton (expected Fisher) form ``c mu**2``.
        ``kind="hessian"``: the exact second derivative ``c mu (2 mu - y) = c mu**2 (2 - y / mu)``
        with the factor ``2 - y / mu`` floored at ``floor``, since it is negative where
        ``y > 2 mu``. Both keep every quadratic model convex; the clipped Hessian is the true one
        for most stars near the optimum, which turns Gauss-Newton's linear convergence (slow when
        residuals are large, as for faint stars) into nearly Newton's.
        """
        mu = safe_exp(eta) if mu is None else mu
        fisher = self.weights * mu * mu
        if kind == "fisher":
            return fisher
        if kind != "hessian":
            raise ValueError(f"kind must be 'fisher' or 'hessian', got {kind!r}")
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = 2.0 - self.y / mu
        return fisher * np.maximum(np.nan_to_num(factor, nan=floor, posinf=floor, neginf=floor),
                                   floor)


class WeightedL1:
    """Penalty ``alpha sum_j w_j |b_j|`` on the penalised coefficients (all ``w_j > 0``).

    Unpenalised coefficients (intercept, magnitudes, LSF moments) are not part of ``b``: the
    solvers keep them in a separate block, i.e. they carry weight zero.

    Parameters
    ----------
    alpha : float
        Strength (>= 0), in the units of the datafit per unit coefficient.
    weights : ndarray of shape (n_penalized,), optional
        Positive per-feature weights; ones by default.
    """

    def __init__(self, alpha, weights):
        self.alpha = float(alpha)
        self.weights = np.asarray(weights, dtype=np.float64)

    def value(self, b):
        return self.alpha * float(np.sum(self.weights * np.abs(b)))

    def prox(self, b, step):
        """Soft threshold: proximal operator of ``step * penalty`` at ``b``."""
        thresh = step * self.alpha * self.weights
        return np.sign(b) * np.maximum(np.abs(b) - thresh, 0.0)

    def violation(self, b, grad):
        """Per-coefficient distance of ``-grad`` to the penalty's subdifferential at ``b``.

        ``|grad_j + alpha w_j sign(b_j)|`` where ``b_j != 0`` and ``max(|grad_j| - alpha w_j, 0)``
        where ``b_j == 0``; zero everywhere exactly at the optimum.
        """
        lam = self.alpha * self.weights
        out = np.maximum(np.abs(grad) - lam, 0.0)
        nz = b != 0
        out[nz] = np.abs(grad[nz] + lam[nz] * np.sign(b[nz]))
        return out


def kkt_residual(grad_u, b, grad_b, penalty):
    """Relative optimality (KKT) residual of the full problem.

    ``max(max_j |grad_u_j|, max_j violation_j) / alpha`` (divided by 1 when ``alpha == 0``):
    the largest violation of the optimality conditions, in units of the penalty strength, for
    the unpenalised block (whose gradient must vanish) and the penalised block (see
    :meth:`WeightedL1.violation`).
    """
    worst = 0.0
    if grad_u.size:
        worst = float(np.max(np.abs(grad_u)))
    if b.size:
        worst = max(worst, float(np.max(penalty.violation(b, grad_b))))
    scale = penalty.alpha if penalty.alpha > 0 else 1.0
    return worst / scale


# --------------------------------------------------------------------------------------------
# streaming linear algebra on the big matrix (never copies or casts X as a whole)
# --------------------------------------------------------------------------------------------
class RowSubset:
    """Read-only stand-in for ``X[rows]`` that the solvers can use without copying ``X``.

    Supports what the kernels need: ``shape``, ``dtype`` and indexing by a slice of rows, which
    returns the corresponding (copied, block-sized) rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    rows : ndarray of int
    """

    def __init__(self, X, rows):
        self.X = X
        self.rows = np.asarray(rows, dtype=np.intp)
        self.shape = (self.rows.size, X.shape[1])
        self.dtype = X.dtype

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError("RowSubset only supports slices of rows")
        return self.X[self.rows[key]]


def _symmetrize_from_upper(G, block=512):
    """Copy the upper triangle of the square ``G`` into its lower triangle, in place, by blocks."""
    m = G.shape[0]
    for j0 in range(0, m, block):
        j1 = min(j0 + block, m)
        G[j0:j1, :j0] = G[:j0, j0:j1].T
        tile = G[j0:j1, j0:j1]
        tile[...] = np.triu(tile) + np.triu(tile, 1).T
    return G


class ColumnSubset:
    """Read-only stand-in for ``X[:, cols]`` (row slices return the gathered columns).

    Used for large working sets, whose contiguous copy would cost more memory than it saves time.
    """

    def __init__(self, X, cols):
        self.X = X
        self.cols = np.asarray(cols, dtype=np.intp)
        self.shape = (X.shape[0], self.cols.size)
        self.dtype = X.dtype

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError("ColumnSubset only supports slices of rows")
        return self.X[key][:, self.cols]


class RowBlockOperator:
    """Interface of a big matrix held elsewhere (e.g. in row blocks on Dask workers).

    The solvers touch ``X`` only through :func:`matvec`, :func:`rmatvec`, the gathering of the
    working-set columns and the projected Gram pass of a Newton step; a subclass implements those
    four on its own storage (typically by running the in-memory kernels on every row block and
    summing), and the solvers run unchanged, the small vectors and matrices staying with the
    caller. Subclasses set ``shape`` and ``dtype``.
    """

    shape = (0, 0)
    dtype = np.dtype(np.float64)

    def matvec(self, cols, coef):
        """``X[:, cols] @ coef`` (float64, shape (n_samples,)); ``cols=None``: every column."""
        raise NotImplementedError

    def rmatvec(self, v):
        """``X.T @ v`` (float64, shape (n_features,))."""
        raise NotImplementedError

    def take_columns(self, cols):
        """The columns ``cols`` as another operator (the working set of a Newton step)."""
        raise NotImplementedError

    def projected_gram(self, s, inv_w, bz, rt, Q):
        """:func:`projected_gram` of this matrix."""
        raise NotImplementedError


def _row_blocks(X, block_bytes=16 * 2**20):
    """Row slices of ``X`` whose float64 version takes about ``block_bytes``."""
    n, d = X.shape
    step = max(1, block_bytes // (8 * max(d, 1)))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


#: Size of the float64 buffer a float32 row block is cast into: about the L2 cache, so that the
#: cast and the product that follows read it from cache (main memory sees 4 bytes per value).
CAST_BLOCK_BYTES = 2 * 2**20


def _float64_blocks(X):
    """``(rows, X[rows] as float64)`` by row blocks.

    A float64 array is read in place (16 MB blocks); other dtypes are cast into one reused
    cache-sized buffer (no fresh allocation, hence no page faults, per block); row and column
    subsets return their gathered blocks, cast if needed.
    """
    if not isinstance(X, np.ndarray) or X.dtype == np.float64:
        for rows in _row_blocks(X):
            yield rows, X[rows].astype(np.float64, copy=False)
        return
    d = X.shape[1]
    step = max(1, CAST_BLOCK_BYTES // (8 * max(d, 1)))
    buffer = np.empty((min(step, X.shape[0]), d))
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        block = buffer[:stop - start]
        np.copyto(block, X[start:stop])
        yield slice(start, stop), block


_CONTROLLER = None


def blas_threads(n_threads):
    """Context limiting the BLAS threads (threadpoolctl) to ``n_threads``.

    The products with the big matrix are matrix-vector products, bound by memory bandwidth: on a
    small machine a second BLAS thread only spin-waits (measured up to 5x slower on 2 cores under
    load), so the solvers run them on one thread, and only the Gram matrices of large working sets
    (matrix-matrix products) on more.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=n_threads, user_api="blas")


#: Working sets at least this large form their Gram matrix with every BLAS thread.
PARALLEL_GRAM_COLUMNS = 512


def matvec(X, cols, coef):
    """``X[:, cols] @ coef`` in float64 arithmetic, reading ``X`` in row blocks.

    Blocks of ``X`` are cast to float64 before the product, so the result is exact to float64
    rounding for float32 data too (a float32 product would put ~1e-7 relative noise into the
    linear predictor, which is enough to stall a Newton method).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    cols : ndarray of int or None
        Columns used (``None``: all, with ``coef`` of length ``n_features``).
    coef : ndarray
        Coefficients.
    """
    if isinstance(X, RowBlockOperator):
        return X.matvec(cols, coef)
    n = X.shape[0]
    out = np.zeros(n, dtype=np.float64)
    if cols is not None and len(cols) == 0:
        return out
    c = np.asarray(coef, dtype=np.float64)
    if cols is not None and len(cols) > X.shape[1] // 4:
        # a full-width product beats gathering many columns
        full = np.zeros(X.shape[1])
        full[cols] = c
        c, cols = full, None
    with blas_threads(1):
        if cols is None:
            for rows, block in _float64_blocks(X):
                out[rows] = block @ c
        else:
            for rows in _row_blocks(X):
                out[rows] = X[rows][:, cols].astype(np.float64, copy=False) @ c
    return out


def rmatvec(X, v):
    """``X.T @ v`` in float64 arithmetic, reading ``X`` in row blocks cast to float64.

    Exact to float64 rounding whatever ``X``'s dtype: the optimality conditions are checked on
    gradients that nearly cancel (``|grad_j| = alpha`` on the support), so a float32 sum over tens
    of thousands of stars would not be able to certify a relative residual of 1e-4.
    """
    if isinstance(X, RowBlockOperator):
        return X.rmatvec(v)
    out = np.zeros(X.shape[1], dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    with blas_threads(1):
        for rows, block in _float64_blocks(X):
            out += block.T @ v[rows]
    return out


def working_set_columns(X, cols):
    """The columns ``cols`` of ``X`` for the passes of a Newton step.

    A contiguous copy (in ``X``'s dtype) while it, its Gram matrix and Cholesky factor stay under
    0.9 copies of ``X`` (fast passes); otherwise a :class:`ColumnSubset` gathering them on every
    pass; a :class:`RowBlockOperator`'s own :meth:`~RowBlockOperator.take_columns`.
    """
    if isinstance(X, RowBlockOperator):
        return X.take_columns(cols)
    n, m = X.shape[0], len(cols)
    itemsize = np.dtype(X.dtype).itemsize
    if n * m * itemsize + 16 * m**2 <= 0.9 * n * X.shape[1] * itemsize:
        Xws = np.empty((n, m), dtype=X.dtype)
        for rows in _row_blocks(X):
            Xws[rows] = X[rows][:, cols]
        return Xws
    return ColumnSubset(X, cols)


def projected_gram(Xws, s, inv_w, bz, rt, Q):
    """One pass over the row-weighted working-set columns ``Z = diag(s) Xws diag(inv_w)``.

    Parameters
    ----------
    Xws : ndarray, ColumnSubset or RowBlockOperator of shape (n_samples, m)
    s, bz, rt : ndarray of shape (n_samples,)
        Row weights (square roots of the curvatures), weighted working response and weighted
        gradient factors.
    inv_w : ndarray of shape (m,)
        Column scales (inverse penalty weights).
    Q : ndarray of shape (n_samples, q)
        Orthonormal basis of the row-weighted unpenalised block.

    Returns
    -------
    G : ndarray of shape (m, m), Fortran order
        ``Z^T Z``; only its upper triangle is meaningful.
    zb, gz : ndarray of shape (m,)
        ``Z^T bz`` and ``Z^T rt``.
    C : ndarray of shape (q, m)
        ``Q^T Z``.

    Notes
    -----
    Every output is a sum over rows: those of row blocks add up to the whole's, which is how a
    :class:`RowBlockOperator` computes them.
    """
    if isinstance(Xws, RowBlockOperator):
        return Xws.projected_gram(s, inv_w, bz, rt, Q)
    m = Xws.shape[1]
    G = np.zeros((m, m), order="F")                   # accumulated in place (BLAS)
    zb = np.zeros(m)
    gz = np.zeros(m)
    C = np.zeros((Q.shape[1], m))
    with blas_threads(None if m >= PARALLEL_GRAM_COLUMNS else 1):
        for rows in _row_blocks(Xws):
            Zb = Xws[rows].astype(np.float64)
            Zb *= s[rows, None]
            Zb *= inv_w[None, :]
            if m:   # upper triangle of G += Zb^T Zb
                G = dsyrk(1.0, Zb.T, beta=1.0, c=G, overwrite_c=1)
            zb += Zb.T @ bz[rows]
            gz += Zb.T @ rt[rows]
            C += Q[rows].T @ Zb
    return G, zb, gz, C


def _eta(X, pen_cols, U, coef_u, coef_p):
    nz = np.flatnonzero(coef_p)
    eta = U @ coef_u if U.shape[1] else np.zeros(X.shape[0])
    if nz.size:
        eta += matvec(X, pen_cols[nz], coef_p[nz])
    return eta


def _full_gradient(X, pen_cols, U, v):
    """Gradient of the datafit with respect to ``(a, b)`` given ``v = d datafit / d eta``."""
    g_u = U.T @ v
    g_p = rmatvec(X, v)[pen_cols] if len(pen_cols) else np.zeros(0)
    return g_u, g_p


def alpha_max(X, pen_cols, U, datafit, coef_u, pen_weights=None):
    """Smallest ``alpha`` at which all penalised coefficients are zero.

    Parameters
    ----------
    X, pen_cols, U, datafit
        As in :func:`solve_gauss_newton`.
    coef_u : ndarray of shape (n_unpenalized,)
        The unpenalised optimum with ``b = 0`` (e.g. ``solve_gauss_newton`` with no penalised
        columns).
    pen_weights : ndarray, optional
        Penalty weights (ones by default).

    Returns
    -------
    alpha_max : float
        ``max_j |grad_j| / w_j`` over the penalised columns at that point.
    """
    eta = U @ coef_u
    g_u, g_p = _full_gradient(X, pen_cols, U, datafit.raw_grad(eta))
    w = np.ones(len(pen_cols)) if pen_weights is None else np.asarray(pen_weights, float)
    return float(np.max(np.abs(g_p) / w)) if len(pen_cols) else 0.0


# --------------------------------------------------------------------------------------------
# Gauss-Newton with working sets (default solver)
# --------------------------------------------------------------------------------------------
def _orthonormal_basis(A):
    """Pivoted economic QR of ``A``; returns ``Q, R, kept`` restricted to its numerical rank."""
    if A.shape[1] == 0:
        return A[:, :0], np.zeros((0, 0)), np.zeros(0, dtype=int)
    Q, R, piv = qr(A, mode="economic", pivoting=True, check_finite=False)
    diag = np.abs(np.diag(R))
    rank = int(np.sum(diag > diag[0] * max(A.shape) * np.finfo(float).eps)) if diag[0] > 0 else 0
    return Q[:, :rank], R[:rank, :rank], piv[:rank]


def _lasso_gram(G, Zty, yty, alpha, coef_init, tol, max_iter):
    """min_b 1/2 ||y - Z b||^2 + alpha ||b||_1 given ``G = Z^T Z``, ``Zty = Z^T y``, ``yty``.

    Solved by scikit-learn's Gram coordinate descent (:func:`sklearn.linear_model.enet_path`
    with ``precompute=G``), which needs ``y`` only through ``y^T y`` (for the duality gap); it is
    handed the one-row stand-ins ``X = 0`` and ``y = [sqrt(yty)]``, an exact rotation of the
    problem. ``tol`` is scikit-learn's: the duality gap is driven below ``tol * yty``.
    """
    p = G.shape[0]
    with warnings.catch_warnings():
        # the outer loop certifies optimality; an inexact inner solve only costs an extra step
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, coefs, _ = enet_path(
            np.zeros((1, p)), np.array([np.sqrt(yty)]), l1_ratio=1.0, alphas=[alpha],
            precompute=np.ascontiguousarray(G), Xy=np.ascontiguousarray(Zty), copy_X=False,
            coef_init=np.array(coef_init, dtype=np.float64), check_input=False, tol=tol,
            max_iter=max_iter,
        )
    return coefs[:, 0]


def _lasso_active_set(G, q, alpha, b0, viol_tol, max_iter=200):
    """min_b 1/2 b^T G b - q^T b + alpha ||b||_1 by an active-set (orthant) Newton method.

    Each iteration fixes the signs of the current support (plus the worst violators of the
    optimality conditions, signed by their gradient), solves the smooth problem on that orthant
    exactly (Cholesky of ``G_SS``), and moves to the exact minimiser of the true (convex,
    piecewise quadratic) objective along the segment to that solution; coordinates that reach
    zero on the way are dropped. Warm started from a nearly right support, as inside
    Gauss-Newton, it needs a handful of factorisations where coordinate descent on an
    ill-conditioned Gram matrix needs thousands of sweeps.

    Returns the solution, or ``None`` if ``G_SS`` is not positive definite or ``max_iter`` is
    reached before every optimality violation is ``<= viol_tol`` (then the caller falls back to
    coordinate descent).
    """
    b = np.array(b0, dtype=np.float64)
    grad = G @ b - q
    add_per_iter = max(8, b.size // 20)
    for _ in range(max_iter):
        nz = b != 0
        sgn = np.sign(b)
        viol = np.maximum(np.abs(grad) - alpha, 0.0)
        viol[nz] = np.abs(grad[nz] + alpha * sgn[nz])
        if viol.max(initial=0.0) <= viol_tol:
            return b
        S = nz.copy()
        if np.max(viol[nz], initial=0.0) <= viol_tol or not nz.any():
            # the support is optimal on its orthant: enlarge it by the worst violators
            zero = np.flatnonzero(~nz & (viol > viol_tol))
            if zero.size > add_per_iter:
                zero = zero[np.argpartition(-viol[zero], add_per_iter - 1)[:add_per_iter]]
            S[zero] = True
            sgn[zero] = -np.sign(grad[zero])
        idx = np.flatnonzero(S)
        # G_SS is symmetric: its transpose is an F-ordered view that LAPACK factorises in place
        G_SS = G[np.ix_(idx, idx)].T
        try:
            factor = cho_factor(G_SS, overwrite_a=True, check_finite=False)
        except LinAlgError:
            return None
        target = cho_solve(factor, q[idx] - alpha * sgn[idx], check_finite=False)
        if not np.all(np.isfinite(target)):
            return None
        d = target - b[idx]
        Rd = dtrmv(factor[0], d, lower=int(factor[1]), trans=int(factor[1]))
        t = _segment_minimiser(float(Rd @ Rd), grad[idx], b[idx], d, alpha)  # d^T G_SS d
        new = b[idx] + t * d
        # a coordinate whose zero crossing is the minimiser lands exactly on zero
        with np.errstate(divide="ignore", invalid="ignore"):
            at_kink = (b[idx] != 0) & np.isclose(-b[idx] / d, t, rtol=1e-12, atol=0.0)
        new[at_kink] = 0.0
        step = np.zeros_like(b)
        step[idx] = new - b[idx]
        b[idx] = new
        grad += G @ step
    return None


def _segment_minimiser(curv, grad, b, d, alpha):
    """Exact minimiser over ``t in [0, 1]`` of the Lasso objective along ``b + t d``.

    ``f(t) = t (grad . d) + t**2 / 2 curv + alpha sum_j |b_j + t d_j|`` (``curv = d^T G d``) is
    convex and piecewise quadratic; the kinks are where coordinates cross zero.
    """
    lin = float(grad @ d)
    # slope of the L1 term just after t = 0, and its increase at each crossing
    s0 = np.where(b != 0, np.sign(b), np.sign(d))
    slope = alpha * float(np.sum(s0 * d))
    with np.errstate(divide="ignore", invalid="ignore"):
        tk = np.where((b != 0) & (b * d < 0), -b / d, np.inf)
    order = np.argsort(tk)
    tk = tk[order]
    jumps = 2.0 * alpha * np.abs(d[order])
    start = 0.0
    for k in range(tk.size + 1):
        end = min(tk[k], 1.0) if k < tk.size else 1.0
        # derivative on (start, end): lin + curv t + slope
        if lin + curv * start + slope >= 0:
            return start
        root = -(lin + slope) / curv if curv > 0 else np.inf
        if root <= end:
            return root
        if end >= 1.0:
            return 1.0
        slope += jumps[k]
        start = end
    return 1.0


def _line_search(datafit, eta, mu, Xd, b_old, b_new, alpha, delta, armijo=1e-4, max_halvings=50):
    """Backtracking (Armijo) on the true objective along a Gauss-Newton direction.

    ``delta < 0`` is the model's predicted decrease (gradient term plus penalty change). Objective
    changes are computed directly (:meth:`ExpLinearChi2.value_change`, elementwise L1 change), not
    as differences of objective values, so the test stays meaningful to the last digits. Returns
    the accepted step, or 0.0 if no step decreases the objective.
    """
    step = 1.0
    for _ in range(max_halvings):
        b = b_old + step * (b_new - b_old)
        change = datafit.value_change(eta, step * Xd, mu) + alpha * float(
            np.sum(np.abs(b) - np.abs(b_old)))
        if change <= armijo * step * delta:
            return step
        step *= 0.5
    return 0.0


def _starting_point(pen_cols, U, penalty, coef_u, coef_p):
    """Penalised column indices and float64 copies of the starting coefficients."""
    pen_cols = np.asarray(pen_cols, dtype=np.intp)
    if penalty.weights.shape != (len(pen_cols),):
        raise ValueError(f"the penalty has {penalty.weights.size} weights for {len(pen_cols)} "
                         "penalised columns")
    coef_u = np.zeros(U.shape[1]) if coef_u is None else np.array(coef_u, dtype=np.float64)
    coef_p = np.zeros(len(pen_cols)) if coef_p is None else np.array(coef_p, dtype=np.float64)
    return pen_cols, coef_u, coef_p


def solve_gauss_newton(X, pen_cols, U, datafit, penalty, *, coef_u=None, coef_p=None, tol=1e-4,
                       max_iter=100, max_newton=25, ws_start=64, inner_max_iter=20000,
                       curvature="hessian", callback=None):
    """Minimise the L1-penalised exponential-linear chi-squared by working-set Newton steps.

    Outer iterations compute the full gradient (one pass over ``X``) and the relative KKT
    residual (:func:`kkt_residual`); they stop when it is ``<= tol``. Otherwise a working set is
    formed from the non-zero penalised coefficients plus the worst violators (at least
    ``ws_start``, at least twice the support) and the problem restricted to it is solved to a
    KKT residual of ``max(tol / 2, 0.3 * outer residual)`` by Newton-type (IRLS) steps:

    1. curvature ``h`` with respect to the linear predictor (:meth:`ExpLinearChi2.curvature`:
       the clipped exact Hessian by default, or the Gauss-Newton / Fisher ``c mu**2``) and the
       working response ``z = eta - grad / h``;
    2. the row-weighted unpenalised block ``sqrt(h) U`` is orthonormalised (pivoted QR) and
       projected out of the row-weighted working-set columns and response, which eliminates the
       unpenalised coefficients exactly and removes the near-collinearity of the magnitudes; the
       projected working-set columns only enter through their Gram matrix (one BLAS-3 pass);
    3. the resulting Lasso is solved exactly by an active-set Newton method warm started at the
       current coefficients (coordinate descent if that fails); the unpenalised coefficients
       follow by back substitution;
    4. a backtracking (Armijo) line search on the true objective accepts a step along the
       direction, so the objective decreases monotonically.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Big matrix holding the penalised columns (float32 or float64; read only).
    pen_cols : ndarray of int of shape (n_penalized,)
        Columns of ``X`` that are penalised (the only columns of ``X`` used).
    U : ndarray of shape (n_samples, n_unpenalized)
        Unpenalised design (float64), e.g. ``[1, magnitudes, LSF moments]``.
    datafit : ExpLinearChi2
    penalty : WeightedL1
        Penalty on the columns ``pen_cols`` (one weight per penalised column).
    coef_u, coef_p : ndarray, optional
        Starting point (warm start); zeros by default.
    tol : float, default=1e-4
        Target relative KKT residual.
    max_iter : int, default=100
        Maximum number of outer (working-set) iterations.
    max_newton : int, default=25
        Maximum Newton steps per working set.
    ws_start : int, default=64
        Smallest working set.
    inner_max_iter : int, default=20000
        Epoch limit of the fallback coordinate descent.
    curvature : {"hessian", "fisher"}, default="hessian"
        Curvature of the quadratic models (see :meth:`ExpLinearChi2.curvature`).
    callback : callable, optional
        Called at the start and after each outer iteration with a dict (iteration, objective,
        kkt, n_active, n_newton (cumulative), time (s)).

    Returns
    -------
    result : sklearn.utils.Bunch
        ``coef_u``, ``coef_p``, ``objective``, ``kkt`` (relative residual at the returned
        point), ``converged``, ``n_iter`` (outer), ``n_newton`` (total Newton steps),
        ``history`` (list of the callback dicts).
    """
    t0 = time.perf_counter()
    pen_cols, coef_u, coef_p = _starting_point(pen_cols, U, penalty, coef_u, coef_p)
    p = len(pen_cols)
    scale = penalty.alpha if penalty.alpha > 0 else 1.0

    history, total_newton, converged, stalled = [], 0, False, False
    eta = _eta(X, pen_cols, U, coef_u, coef_p)
    it = 0
    while True:
        # full gradient, optimality check and progress report at the current point
        mu = safe_exp(eta)
        g_u, g_p = _full_gradient(X, pen_cols, U, datafit.raw_grad(eta, mu))
        kkt = kkt_residual(g_u, coef_p, g_p, penalty)
        objective = datafit.value(eta, mu) + penalty.value(coef_p)
        _report(history, callback, it, objective, kkt, coef_p, total_newton, t0)
        converged = kkt <= tol
        if converged or stalled or it == max_iter:
            break
        it += 1

        # working set: the support plus the worst violators
        viol = penalty.violation(coef_p, g_p) if p else np.zeros(0)
        active = np.flatnonzero(coef_p)
        size = min(p, max(ws_start, 2 * active.size))
        candidates = np.flatnonzero((coef_p == 0) & (viol > 0))
        n_add = max(0, size - active.size)
        if candidates.size > n_add:
            worst = np.argpartition(-viol[candidates], n_add - 1)[:n_add] if n_add else []
            candidates = candidates[worst]
        ws = np.sort(np.concatenate([active, candidates]))

        n_newton, progressed = _newton_on_working_set(
            X, pen_cols, U, datafit, penalty, coef_u, coef_p, eta, ws,
            target=max(0.5 * tol, 0.3 * kkt) * scale, max_newton=max_newton,
            inner_max_iter=inner_max_iter, curvature=curvature,
        )
        total_newton += n_newton
        stalled = not progressed  # no decrease possible at this precision: report and stop
        eta = _eta(X, pen_cols, U, coef_u, coef_p)  # refresh (no drift from incremental updates)

    return Bunch(coef_u=coef_u, coef_p=coef_p, objective=objective, kkt=kkt,
                 converged=bool(converged), n_iter=it, n_newton=total_newton, history=history)


def explinear_l1_path(X, pen_cols, U, datafit, alphas, *, pen_weights=None, coef_u=None,
                      coef_p=None, tol=1e-4, max_iter=100, callback=None):
    """Solutions of the L1-penalised exponential-linear chi-squared along a grid of ``alpha``.

    As :func:`sklearn.linear_model.enet_path` for the Elastic Net: the grid is walked from the
    largest ``alpha`` down, every solve (:func:`solve_gauss_newton`) warm started from the previous
    solution. Without a penalised starting point (``coef_p`` None) the unpenalised block is first
    fitted alone with every penalised coefficient at zero (to a KKT residual ``tol / 10`` in units
    of the first ``alpha``), which is the exact solution at and above :func:`alpha_max`. A single
    fit is the one-point path ``alphas=[alpha]``.

    Parameters
    ----------
    X, pen_cols, U, datafit
        As in :func:`solve_gauss_newton`.
    alphas : array-like of float
        Penalty strengths (>= 0); solved in decreasing order.
    pen_weights : ndarray of shape (n_penalized,), optional
        Positive penalty weights (ones by default); the penalty at each ``alpha`` is
        ``WeightedL1(alpha, pen_weights)``.
    coef_u, coef_p : ndarray, optional
        Starting point. ``coef_u`` defaults to zeros.
    tol, max_iter
        Of every solve (relative KKT residual, outer iterations).
    callback : callable, optional
        Called as in :func:`solve_gauss_newton`, with the dict's extra keys ``alpha`` and
        ``alpha_index``.

    Returns
    -------
    path : sklearn.utils.Bunch
        ``alphas`` (decreasing), ``coefs_u`` of shape (n_alphas, n_unpenalized), ``coefs_p`` of
        shape (n_alphas, n_penalized) and ``results`` (one :func:`solve_gauss_newton` result per
        alpha, with ``converged``, ``kkt``, ``n_iter``, ``objective``).
    """
    alphas = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
    pen_cols = np.asarray(pen_cols, dtype=np.intp)
    w = (np.ones(len(pen_cols)) if pen_weights is None
         else np.asarray(pen_weights, dtype=np.float64))
    coef_u = np.zeros(U.shape[1]) if coef_u is None else np.asarray(coef_u, dtype=np.float64)
    if coef_p is None or len(pen_cols) == 0:
        scale = alphas[0] if alphas.size and alphas[0] > 0 else 1.0
        warm = solve_gauss_newton(X, pen_cols[:0], U, datafit, WeightedL1(0.0, np.zeros(0)),
                                  coef_u=coef_u, tol=0.1 * tol * scale, max_iter=max_iter)
        coef_u, coef_p = warm.coef_u, np.zeros(len(pen_cols))
    coefs_u, coefs_p, results = [], [], []
    for i, alpha in enumerate(alphas):
        hook = None
        if callback is not None:
            def hook(info, _alpha=float(alpha), _i=i):
                callback(dict(info, alpha=_alpha, alpha_index=_i))
        res = solve_gauss_newton(X, pen_cols, U, datafit, WeightedL1(alpha, w), coef_u=coef_u,
                                 coef_p=coef_p, tol=tol, max_iter=max_iter, callback=hook)
        coef_u, coef_p = res.coef_u, res.coef_p
        coefs_u.append(coef_u.copy())
        coefs_p.append(coef_p.copy())
        results.append(res)
    return Bunch(alphas=alphas, coefs_u=np.array(coefs_u).reshape(len(alphas), U.shape[1]),
                 coefs_p=np.array(coefs_p).reshape(len(alphas), len(pen_cols)), results=results)


def _report(history, callback, it, objective, kkt, coef_p, n_newton, t0):
    info = dict(iteration=it, objective=objective, kkt=kkt, n_active=int(np.count_nonzero(coef_p)),
                n_newton=int(n_newton), time=time.perf_counter() - t0)
    history.append(info)
    if callback is not None:
        callback(info)


def _newton_on_working_set(X, pen_cols, U, datafit, penalty, coef_u, coef_p, eta, ws, *, target,
                           max_newton, inner_max_iter, curvature, skip_first_check=True):
    """Newton-type steps on the working set ``ws``; update ``coef_u``, ``coef_p``, ``eta`` in place.

    The working-set columns are gathered once into a contiguous block of ``X``'s dtype; each step
    then streams through it to form the Gram matrix of the row-weighted, projected columns in
    float64 (one BLAS-3 pass), and the Lasso is solved on the Gram matrix. Returns the number of
    steps taken and whether the last one made progress.
    """
    n, k = U.shape
    cols = pen_cols[ws]
    inv_w = 1.0 / penalty.weights[ws]
    sub_penalty = WeightedL1(penalty.alpha, np.ones(ws.size))
    Xws = working_set_columns(X, cols)
    for step_no in range(1, max_newton + 1):
        mu = safe_exp(eta)
        v = datafit.raw_grad(eta, mu)                     # d datafit / d eta
        s = np.sqrt(datafit.curvature(eta, mu, kind=curvature))
        # gradient = X^T (s * rt); stars with zero weight (or an underflowed mu) have s = 0 = v
        rt = np.divide(v, s, out=np.zeros_like(v), where=s > 0)
        A = U * s[:, None]
        g_u = U.T @ v
        b_old = coef_p[ws] / inv_w                        # b' = w b: unit-weight Lasso coordinates
        if step_no > 1 or not skip_first_check:
            g_ws = rmatvec(Xws, v) * inv_w
            worst = max(np.max(np.abs(g_u), initial=0.0),
                        np.max(sub_penalty.violation(b_old, g_ws), initial=0.0))
            if worst <= target:
                return step_no - 1, True

        # Gram matrix of the row-weighted columns, their products with the working response and
        # with the orthonormal basis of the row-weighted unpenalised block (one pass)
        Q, R, kept = _orthonormal_basis(A)
        bz = s * eta - rt                                 # sqrt(h) * working response
        fixed = np.setdiff1d(np.arange(k), kept)
        if fixed.size:                                    # collinear columns keep their values
            bz = bz - A[:, fixed] @ coef_u[fixed]
        qb = Q.T @ bz
        G, zb, gz, C = projected_gram(Xws, s, inv_w, bz, rt, Q)
        # project out span(sqrt(h) U):  Z' = Z - Q C, z' = z - Q qb
        if C.shape[0] and ws.size:
            G = dsyrk(-1.0, C.T, beta=1.0, c=G, overwrite_c=1)
        _symmetrize_from_upper(G)
        zb -= C.T @ qb
        res_sq = max(float(bz @ bz - qb @ qb), 0.0)
        g_ws = gz
        if ws.size:
            b_new = _lasso_active_set(G, zb, penalty.alpha, b_old, 0.1 * target)
            if b_new is None:
                # fall back on coordinate descent; duality-gap target giving a coordinate
                # residual ~0.3 * target (gap >= r^2 / 2L)
                gap = (0.3 * target) ** 2 / (2.0 * max(float(np.max(np.diag(G))), 1e-300))
                tol_cd = min(1e-4, max(gap / max(res_sq, 1e-300), 1e-15))
                b_new = _lasso_gram(G, zb, res_sq, penalty.alpha, b_old, tol_cd, inner_max_iter)
        else:
            b_new = b_old
        u_new = coef_u.copy()
        if kept.size:
            u_new[kept] = solve_triangular(R, qb - C @ b_new, check_finite=False)

        # direction and line search on the true objective
        d_u = u_new - coef_u
        d_b = b_new - b_old
        changed = np.flatnonzero(d_b)
        Xd = U @ d_u if k else np.zeros(n)
        if changed.size:
            Xd += matvec(Xws, changed, d_b[changed] * inv_w[changed])
        # predicted decrease, summed per coordinate: on the support g_j and alpha sign(b_j) nearly
        # cancel, and summing the two totals separately would lose the difference to rounding
        delta = float(g_u @ d_u) + float(np.sum(
            g_ws * d_b + penalty.alpha * (np.abs(b_new) - np.abs(b_old))))
        if delta >= 0:
            return step_no, False
        t = _line_search(datafit, eta, mu, Xd, b_old, b_new, penalty.alpha, delta)
        if t == 0.0:
            return step_no, False
        coef_u += t * d_u
        coef_p[ws] = (b_old + t * d_b) * inv_w
        eta += t * Xd
    return max_newton, True
