"""The Wasserstein (earth mover's) distance: discrete as a linear program, and continuous in 1-D.

Discrete case (Prince, *Understanding Deep Learning*, section 15.2.4). Two histograms p (n bins)
and q (m bins) at positions x_i and y_j; moving one unit of mass from bin i to bin j costs
C_ij = |x_i - y_j|. A transport plan P (n x m) is a joint distribution with marginals p and q:

    primal:  D_W = min_P  sum_ij P_ij C_ij   s.t.  sum_j P_ij = p_i,  sum_i P_ij = q_j,  P >= 0.

Written as a standard LP over the vectorised plan (stacked column by column, as in problem 15.3),

    minimise c^T vec(P)   s.t.  A vec(P) = b,  vec(P) >= 0,    b = [p; q],  c = vec(C),

and its dual is  maximise b^T f  s.t.  A^T f <= c  (f = [f_1..f_n, g_1..g_m] free), i.e.
f_i + g_j <= C_ij. When p and q live on the same equally spaced bins, the optimum has g = -f and
the dual shrinks to the book's eq. 15.12-15.13:

    D_W = max_f  sum_i (p_i - q_i) f_i   s.t.  |f_{i+1} - f_i| <= x_{i+1} - x_i   (<= 1 for unit bins),

a discrete "1-Lipschitz" function, which is what a WGAN critic approximates.

Continuous 1-D case: W_p(P, Q)^p = int_0^1 |F^{-1}(u) - G^{-1}(u)|^p du; for p = 1 this equals
int |F(x) - G(x)| dx, the area between the two CDFs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from course_lib.core.errors import DataError

# Relative tolerance for "the two histograms carry the same total mass".
MASS_RTOL = 1e-6


# ------------------------------------------------------------------------------ input checking
def _histogram(values, what: str) -> np.ndarray:
    """A 1-D float array of non-negative, finite masses with a positive total, or DataError."""
    h = np.asarray(values, dtype=float)
    if h.ndim != 1 or h.size == 0:
        raise DataError(f"{what}: expected a non-empty 1-D histogram, got shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise DataError(f"{what}: contains NaN or infinite masses")
    if np.any(h < 0):
        raise DataError(f"{what}: negative mass at bin(s) {np.flatnonzero(h < 0).tolist()}; masses must be >= 0")
    if h.sum() <= 0:
        raise DataError(f"{what}: total mass is 0; a histogram needs some mass to move")
    return h


def _positions(positions, size: int, what: str) -> np.ndarray:
    """Bin positions: 0, 1, ..., size-1 by default; otherwise a strictly increasing array of `size` numbers."""
    if positions is None:
        return np.arange(size, dtype=float)
    x = np.asarray(positions, dtype=float)
    if x.shape != (size,):
        raise DataError(f"{what}: {x.size} positions for {size} bins")
    if not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        raise DataError(f"{what}: positions must be finite and strictly increasing")
    return x


def _same_mass(p: np.ndarray, q: np.ndarray) -> None:
    if not np.isclose(p.sum(), q.sum(), rtol=MASS_RTOL, atol=0.0):
        raise DataError(
            f"the histograms carry different total mass ({p.sum():.6g} vs {q.sum():.6g}); transport needs equal "
            "mass, so normalise both (p / p.sum(), q / q.sum())"
        )


def _check_pair(p, q, positions_p=None, positions_q=None, same_bins: bool = False):
    """Validated (p, q, x, y). Positions default to 0, 1, 2, ...; when only p's are given, q shares
    them (which needs as many bins)."""
    p, q = _histogram(p, "p"), _histogram(q, "q")
    if same_bins and p.size != q.size:
        raise DataError(f"p has {p.size} bins and q has {q.size}; this form needs both on the same bins")
    _same_mass(p, q)
    x = _positions(positions_p, p.size, "positions of p")
    if positions_q is None and positions_p is not None:
        if q.size != p.size:
            raise DataError(f"q has {q.size} bins but p's {p.size} positions were given for both; pass positions_q too")
        positions_q = positions_p
    y = _positions(positions_q, q.size, "positions of q")
    return p, q, x, y


# --------------------------------------------------------------------------------- the primal
def transport_constraint_matrix(n: int, m: int | None = None) -> np.ndarray:
    """The (n + m) x (n m) matrix A with A vec(P) = [row sums of P; column sums of P].

    vec(P) stacks the columns of P (column-major, as problem 15.3 assumes), so P_ij sits at index
    i + j n. Row i < n has ones where the entry belongs to row i of P (sum_j P_ij = p_i); row n + j has
    ones where it belongs to column j (sum_i P_ij = q_j). For n = m = 4 this is problem 15.3's 8 x 16.
    """
    m = n if m is None else m
    if int(n) != n or int(m) != m or n < 1 or m < 1:
        raise DataError(f"the plan needs at least one row and one column, got n={n}, m={m}")
    n, m = int(n), int(m)
    A = np.zeros((n + m, n * m))
    for j in range(m):
        for i in range(n):
            k = i + j * n
            A[i, k] = 1.0  # contributes to row sum i  -> p_i
            A[n + j, k] = 1.0  # contributes to column sum j -> q_j
    return A


def cost_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """C_ij = |x_i - y_j|: the work to move one unit of mass from position x_i to position y_j."""
    return np.abs(np.asarray(x, dtype=float)[:, None] - np.asarray(y, dtype=float)[None, :])


@dataclass
class TransportSolution:
    """The solution of the earth mover's LP: distance, plan P (n x m) and the LP's pieces."""

    distance: float
    plan: np.ndarray
    cost: np.ndarray
    A: np.ndarray
    b: np.ndarray


def earth_movers_primal(p, q, positions_p=None, positions_q=None) -> TransportSolution:
    """Solve min_P sum_ij P_ij |x_i - y_j| over plans with marginals p and q (eq. 15.10-15.11).

    p, q: non-negative histograms with equal total mass; positions default to 0, 1, 2, ...
    (q uses p's positions when it has as many bins and none are given).
    """
    p, q, x, y = _check_pair(p, q, positions_p, positions_q)
    C = cost_matrix(x, y)
    A = transport_constraint_matrix(p.size, q.size)
    b = np.concatenate([p, q])
    c = C.flatten(order="F")  # column-major, matching A
    # One equality row is redundant (both blocks sum to the total mass); HiGHS handles that.
    result = linprog(c, A_eq=A, b_eq=b, bounds=(0, None), method="highs")
    if result.status != 0:
        raise DataError(f"the transport LP failed: {result.message}")
    plan = result.x.reshape((p.size, q.size), order="F")
    return TransportSolution(float(result.fun), plan, C, A, b)


# ----------------------------------------------------------------------------------- the dual
@dataclass
class DualSolution:
    """The solution of a dual LP: the distance and the potentials f (and g for the general form)."""

    distance: float
    f: np.ndarray
    g: np.ndarray | None = None


def earth_movers_dual(p, q, positions_p=None, positions_q=None) -> DualSolution:
    """The LP dual of `earth_movers_primal`: max b^T [f; g] subject to A^T [f; g] <= c.

    Row (i, j) of A^T reads f_i + g_j <= C_ij. The variables are free (no sign constraint) because
    the primal constraints are equalities.
    """
    p, q, x, y = _check_pair(p, q, positions_p, positions_q)
    A = transport_constraint_matrix(p.size, q.size)
    b = np.concatenate([p, q])
    c = cost_matrix(x, y).flatten(order="F")
    # linprog minimises, so minimise -b^T f.
    result = linprog(-b, A_ub=A.T, b_ub=c, bounds=(None, None), method="highs")
    if result.status != 0:
        raise DataError(f"the dual LP failed: {result.message}")
    return DualSolution(float(-result.fun), result.x[: p.size], result.x[p.size :])


def earth_movers_dual_lipschitz(p, q, positions=None) -> DualSolution:
    """The book's 1-D dual (eq. 15.12-15.13) for p and q on the same bins:

        max_f sum_i (p_i - q_i) f_i   s.t.  |f_{i+1} - f_i| <= x_{i+1} - x_i.

    f is only fixed up to an added constant (sum_i (p_i - q_i) = 0), so we pin f_0 = 0.
    """
    p, q, x, _ = _check_pair(p, q, positions, None, same_bins=True)
    k = p.size
    # Each neighbouring pair gives two rows: f_{i+1} - f_i <= d_i and f_i - f_{i+1} <= d_i.
    D = np.zeros((k - 1, k))
    D[np.arange(k - 1), np.arange(1, k)] = 1.0
    D[np.arange(k - 1), np.arange(k - 1)] = -1.0
    gaps = np.diff(x)
    A_ub = np.vstack([D, -D]) if k > 1 else np.zeros((0, k))
    b_ub = np.concatenate([gaps, gaps])
    bounds = [(0.0, 0.0)] + [(None, None)] * (k - 1)
    result = linprog(
        -(p - q), A_ub=A_ub if k > 1 else None, b_ub=b_ub if k > 1 else None, bounds=bounds, method="highs"
    )
    if result.status != 0:
        raise DataError(f"the Lipschitz dual LP failed: {result.message}")
    return DualSolution(float(-result.fun), result.x)


# -------------------------------------------------------------------------- continuous, 1-D
def _grid(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        raise DataError("x must be a finite, strictly increasing 1-D grid with at least 2 points")
    return x


def _cdf_on_grid(x: np.ndarray, density: np.ndarray, what: str) -> np.ndarray:
    """Cumulative trapezoid integral of a density on grid x, normalised to end at 1."""
    density = np.asarray(density, dtype=float)
    if density.shape != x.shape:
        raise DataError(f"{what}: {density.size} density values for {x.size} grid points")
    if np.any(density < 0) or not np.all(np.isfinite(density)):
        raise DataError(f"{what}: a density must be finite and >= 0")
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(x))])
    if cdf[-1] <= 0:
        raise DataError(f"{what}: the density integrates to 0 on this grid")
    return cdf / cdf[-1]


def wasserstein_1d_densities(x, p_density, q_density) -> float:
    """W_1 between two 1-D densities sampled on grid x: int |F(x) - G(x)| dx (trapezoid rule).

    Both densities are normalised on the grid first, so the grid must cover (nearly) all their mass.
    """
    x = _grid(x)
    gap = np.abs(_cdf_on_grid(x, p_density, "p_density") - _cdf_on_grid(x, q_density, "q_density"))
    return float(np.sum(0.5 * (gap[1:] + gap[:-1]) * np.diff(x)))


def wasserstein_1d_quantiles(quantile_p, quantile_q, order: float = 1.0, n: int = 20_000) -> float:
    """W_order between two 1-D distributions given their quantile functions (inverse CDFs):

        W_r = ( int_0^1 |F^{-1}(u) - G^{-1}(u)|^r du )^(1/r),

    evaluated with the midpoint rule on n points (this also avoids the infinite tails at u = 0, 1).
    """
    if order < 1:
        raise DataError(f"the Wasserstein order must be >= 1, got {order}")
    if n < 2:
        raise DataError(f"need at least 2 quadrature points, got {n}")
    u = (np.arange(n) + 0.5) / n
    gap = np.abs(np.asarray(quantile_p(u), dtype=float) - np.asarray(quantile_q(u), dtype=float))
    return float(np.mean(gap**order) ** (1.0 / order))


def histogram_on_bins(samples, edges) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, probability masses) of 1-D samples on the given bin edges (mass outside is dropped)."""
    samples = np.asarray(samples, dtype=float).ravel()
    edges = _grid(edges)
    counts, _ = np.histogram(samples, bins=edges)
    if counts.sum() == 0:
        raise DataError("no sample falls inside the bin edges")
    return 0.5 * (edges[1:] + edges[:-1]), counts / counts.sum()
