"""The L1-penalised chi-squared of an exponential-linear model (the paper's eq. 7): array kernels.

The problem, for stars ``n`` with observed value ``y_n``, weight ``c_n`` and feature rows, is ::

    F(a, b) = 1/2 sum_n c_n (y_n - exp(eta_n))**2  +  alpha sum_j w_j |b_j|,
    eta_n   = U_n . a + X_n[pen_cols] . b

with an *unpenalised block* ``U`` (a small dense float64 design: intercept, magnitudes, LSF
moments) and a *penalised block*: the columns ``pen_cols`` of a large matrix ``X`` (the spectral
pixels; float32 or float64, any memory order, never written to) with penalty weights ``w_j > 0``.
The caller chooses ``c_n`` (for the parallax model ``c_n = s_n / (sigma_n**2 sum_m s_m)`` with
sample weights ``s``, so ``F`` is half the weighted mean chi-squared plus the penalty).

The pieces are kept apart in the manner of skglm: the datafit (:mod:`.datafits`), the penalty
and optimality residual (:mod:`.penalties`), the passes over ``X`` on a block plan whose results
do not depend on the number of threads (:mod:`.operators`), the inner Lasso of a Newton step
(:mod:`.lasso_gram`), the working-set Gauss-Newton solver (:mod:`.solver`) and the warm-started
path over ``alpha`` (:mod:`.path`, as :func:`sklearn.linear_model.enet_path`).

Overflow safety: every exponential is ``exp(min(eta, EXP_CAP))`` with ``EXP_CAP = 30`` (a
parallax of 1e13 mas), so trial steps of any length give finite (huge) objectives that a line
search rejects. Observed values ``y`` may be negative: no logarithm of ``y`` is ever taken, and
the curvatures used are positive whatever ``y`` is.

Memory: besides ``X`` (read in blocks, never copied or cast as a whole) the solvers hold
n-vectors, the small ``U``, the working-set columns in ``X``'s dtype (while they are at most
about half of ``X``), their float64 Gram matrix and the Cholesky factor of its support block.
"""

from .datafits import EXP_CAP, ExpLinearChi2, safe_exp
from .operators import (ColumnSubset, RowBlockOperator, RowSubset, block_plan, matvec,
                        projected_gram, rmatvec, working_set_columns)
from .path import explinear_l1_path
from .penalties import WeightedL1, kkt_residual
from .solver import alpha_max, solve_gauss_newton

__all__ = ["EXP_CAP", "safe_exp", "ExpLinearChi2", "WeightedL1", "kkt_residual", "RowSubset",
           "ColumnSubset", "RowBlockOperator", "block_plan", "matvec", "rmatvec",
           "working_set_columns", "projected_gram", "solve_gauss_newton", "explinear_l1_path",
           "alpha_max"]
