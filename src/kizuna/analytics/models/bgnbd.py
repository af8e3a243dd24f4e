"""BG/NBD: how many purchases a customer will make, and whether they are still a customer.

The beta-geometric / negative binomial distribution model of Fader, Hardie & Lee,
"Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD Model",
*Marketing Science* 24(2), 2005. While alive, a customer buys at Poisson rate λ;
after every purchase they drop out with probability p. Across customers
λ ~ Gamma(r, α) (α is a rate, in the time unit of the data) and p ~ Beta(a, b).

A customer is summarised by ``x`` (repeat purchases: purchases after the first),
``t_x`` (time from the first to the last purchase) and ``T`` (time from the first
purchase to the end of observation). The code is unit-agnostic: use days or weeks,
and ``α`` and every ``t`` come out in that unit.

Fitting is maximum likelihood with the analytic gradient (derived below) by
L-BFGS-B on log-parameters. Customers sharing ``(x, t_x, T)`` have identical
likelihood terms, so the data are collapsed to unique rows with counts as weights:
exact, and far fewer rows. Terms that depend on ``x`` alone (``Γ``, ``ψ``) are
evaluated once per distinct ``x``.

Log-likelihood of one customer (FHL 2005, eq. 6), with ``A = r + x``::

    ℓ = ln Γ(A) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b)
        + ln[ (α+T)^−A + 1{x>0} · a/(b+x−1) · (α+t_x)^−A ]

Writing the bracket as ``e^L3 + e^L4`` and ``w = e^L4 / (e^L3 + e^L4)``::

    ∂ℓ/∂r = ψ(A) − ψ(r) + ln α − (1−w) ln(α+T) − w ln(α+t_x)
    ∂ℓ/∂α = r/α − A [ (1−w)/(α+T) + w/(α+t_x) ]
    ∂ℓ/∂a = ψ(a+b) − ψ(a+b+x) + w/a
    ∂ℓ/∂b = ψ(b+x) − ψ(b) + ψ(a+b) − ψ(a+b+x) − w/(b+x−1)

Predictions need ``h = (1−z)^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z)`` (FHL 2005 eq. 10). Of
that form and its Euler transform ``(1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z)`` the
one whose series converges at ``z = 1`` is used (the other overflows, e.g. beyond a
hundred repeat purchases). SciPy's ₂F₁ can still return NaN or a wrong value near
``z = 1``, so each result is checked against bounds the true value must respect
(Jensen and chord bounds of a convex function of p); failures are recomputed by
adaptive quadrature over the Beta mixing distribution.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.integrate import IntegrationWarning, quad
from scipy.optimize import minimize
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1, log_expit, logit

from kizuna.errors import InvalidInput, Problem

__all__ = [
    "BgNbdData",
    "BgNbdFit",
    "BgNbdParams",
    "collapse_bgnbd",
    "conditional_expected_purchases",
    "discounted_expected_purchases",
    "expected_purchases",
    "fit_bgnbd",
    "log_likelihood",
    "log_likelihood_gradient",
    "p_alive",
    "time_to_expected_purchase",
    "unique_rows",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
ArrayLike = npt.ArrayLike

# Shapes r, a, b are fitted within [1e-3, 50], the box where predictions were checked
# against 40-digit mpmath (x ≤ 200, T ≤ 1,095, t ≤ 3,650 days: worst relative error
# 2.4e-7); beyond it the Gamma or Beta mixing is a point mass in all but name. The scale
# α stays within e^±25 of its start. A fit that ends on a bound is reported as not converged.
_SHAPE_BOUNDS = (float(np.log(1e-3)), float(np.log(50.0)))
_SCALE_SPAN = 25.0
_NEAR = 1e-7  # a = 1 and a + b + x = 1 are removable 0/0 points: nudge past them


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """BG/NBD parameters: purchase rate λ ~ Gamma(r, α), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_array(self) -> FloatArray:
        """``[r, alpha, a, b]``."""
        return np.array([self.r, self.alpha, self.a, self.b], dtype=np.float64)


def _dot(weights: FloatArray, values: FloatArray) -> float:
    """Σ weights × values without BLAS: threaded ddot stalls on busy machines (100× slower)."""
    return float(np.einsum("i,i->", weights, values))


class _Split(NamedTuple):
    """The rows arranged for the likelihood: distinct x, then x = 0 rows and repeat rows.

    Γ and ψ terms depend on x alone, so they are evaluated once per distinct x; rows
    with x = 0 have no second term in the likelihood, so they are kept apart.
    """

    x_values: FloatArray
    x_weights: FloatArray
    zero_age: FloatArray
    zero_weights: FloatArray
    x: FloatArray
    t_x: FloatArray
    age: FloatArray
    weights: FloatArray
    x_weights_rows: FloatArray  # x × weight per repeat row
    x_index: IntArray  # each repeat row's index into x_values


def _split(data: BgNbdData) -> _Split:
    values, index = np.unique(data.x, return_inverse=True)
    summed = np.bincount(index, weights=data.weights, minlength=len(values)).astype(np.float64)
    zero = data.x == 0
    rep = ~zero
    x, w = data.x[rep], data.weights[rep]
    return _Split(values, summed, data.T[zero], data.weights[zero], x, data.t_x[rep],
                  data.T[rep], w, x * w, index[rep])  # fmt: skip


@dataclass(frozen=True, slots=True)
class BgNbdData:
    """Validated ``(x, t_x, T)`` rows with weights (how many customers share each row)."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    weights: FloatArray
    _split: _Split = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_split", _split(self))

    @property
    def customers(self) -> float:
        """Number of customers the rows stand for."""
        return float(self.weights.sum())


@dataclass(frozen=True, slots=True)
class BgNbdFit:
    """A fitted BG/NBD model and its diagnostics."""

    params: BgNbdParams
    log_likelihood: float
    customers: int
    rows: int  # likelihood rows after collapsing
    converged: bool
    iterations: int
    message: str


def _column(name: str, values: ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise InvalidInput(Problem("not_finite", f"{name} has NaN or infinite values", name))
    return array


def _validate(x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray) -> None:  # noqa: N803
    if not (len(x) == len(t_x) == len(T) == len(weights)):
        raise InvalidInput("x, t_x, T and weights must have the same length")
    rules = [
        (x < 0, "x", "repeat purchases must be ≥ 0"),
        (x != np.round(x), "x", "repeat purchases must be whole numbers"),
        (t_x < 0, "t_x", "recency must be ≥ 0"),
        (t_x > T * (1 + 1e-12), "t_x", "recency cannot exceed the customer's age T"),
        (weights < 0, "weights", "weights must be ≥ 0"),
    ]
    problems = [Problem("invalid_summary", msg, name) for bad, name, msg in rules if bad.any()]
    if problems:
        raise InvalidInput(problems)


def _packed_key(columns: tuple[FloatArray, ...]) -> npt.NDArray[np.int64] | None:
    """One int64 per row when every column holds small whole numbers ≥ 0 (days), else None."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    span = 1
    for column in columns:
        top = float(column.max())
        span *= int(top) + 1
        if column.min() < 0 or top >= 2**31 or span >= 2**62:
            return None
        if not np.array_equal(column, np.floor(column)):
            return None
        key = key * (int(top) + 1) + column.astype(np.int64)
    return key


def unique_rows(*columns: FloatArray) -> tuple[IntArray, IntArray, IntArray]:
    """Distinct rows of equal-length columns: (index of each first row, inverse, counts).

    ``columns[k][first][inverse]`` rebuilds ``columns[k]``. Whole-number columns (days)
    are packed into one int64 key and sorted once; others go through a lexsort
    (``np.unique(axis=0)`` is an order of magnitude slower on a million rows).
    """
    n = len(columns[0])
    if n == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, empty
    key = _packed_key(columns)
    if key is not None:
        _, first, inverse, counts = np.unique(
            key, return_index=True, return_inverse=True, return_counts=True
        )
        return first, inverse, counts
    order = np.lexsort(columns[::-1])
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for column in columns:
        ordered = column[order]
        change[1:] |= ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(change)
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(change) - 1
    counts = np.diff(np.append(starts, n))
    return order[starts], inverse, counts


def collapse_bgnbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
    weights: ArrayLike | None = None,
    *,
    collapse: bool = True,
) -> BgNbdData:
    """Validate per-customer summaries and (by default) merge identical rows, summing weights.

    Raises ``InvalidInput`` on NaN/inf, negative or fractional ``x``, or ``t_x > T``.
    """
    xs, ts, ages = _column("x", x), _column("t_x", t_x), _column("T", T)
    w = np.ones_like(xs) if weights is None else _column("weights", weights)
    _validate(xs, ts, ages, w)
    if not collapse:
        return BgNbdData(xs, ts, ages, w)
    first, inverse, _ = unique_rows(xs, ts, ages)
    summed = np.bincount(inverse, weights=w, minlength=len(first)).astype(np.float64)
    return BgNbdData(xs[first], ts[first], ages[first], summed)


def _loglik_and_grad(theta: FloatArray, data: BgNbdData) -> tuple[float, FloatArray]:
    """Weighted log-likelihood and its gradient in (r, α, a, b)."""
    r, alpha, a, b = (float(v) for v in theta)
    d = data._split
    xu, wx = d.x_values, d.x_weights
    # Terms of x alone, once per distinct x.
    const = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu) - betaln(a, b)
    d_r = digamma(r + xu) - digamma(r) + np.log(alpha)
    d_a = digamma(a + b) - digamma(a + b + xu)
    d_b = digamma(b + xu) - digamma(b) + d_a
    bx1 = np.maximum(b + xu - 1, np.finfo(np.float64).tiny)  # only x ≥ 1 uses it: b + x − 1 > 0
    log_ratio, inv_bx1 = (np.log(a) - np.log(bx1))[d.x_index], (1.0 / bx1)[d.x_index]
    # Rows with x = 0: the bracket is (α+T)^−r alone.
    log_age0 = np.log(alpha + d.zero_age)
    zero_log = _dot(d.zero_weights, log_age0)
    zero_inv = _dot(d.zero_weights, 1.0 / (alpha + d.zero_age))
    # Repeat rows: A = r + x, L3 = −A ln(α+T), δ = L4 − L3 = ln a/(b+x−1) + A ln((α+T)/(α+t_x)),
    # ln(e^L3 + e^L4) = L3 + max(δ, 0) + ln(1 + e^−|δ|) and w = logistic(δ). Sums over A·f
    # are split as r·Σw f + Σxw f so no A-array is formed; one exp and one log1p per row.
    w, xw = d.weights, d.x_weights_rows
    log_age, log_rec = np.log(alpha + d.age), np.log(alpha + d.t_x)
    gap = log_age - log_rec
    delta = log_ratio + (r + d.x) * gap
    small = np.exp(-np.abs(delta))
    softplus = np.maximum(delta, 0.0) + np.log1p(small)
    w4 = np.where(delta > 0, 1.0, small) / (1.0 + small)
    ww4 = w * w4
    inv_age = 1.0 / (alpha + d.age)
    sum_log_age, sum_x_log_age = _dot(w, log_age), _dot(xw, log_age)
    total = _dot(wx, const) + _dot(w, softplus) - r * (sum_log_age + zero_log) - sum_x_log_age
    # w3/(α+T) + w4/(α+t_x) = 1/(α+T) + w4 (1/(α+t_x) − 1/(α+T))
    spread = ww4 * (r + d.x) * (1.0 / (alpha + d.t_x) - inv_age)
    grad = np.array(
        [
            _dot(wx, d_r) - sum_log_age + _dot(ww4, gap) - zero_log,
            r / alpha * wx.sum()
            - r * (_dot(w, inv_age) + zero_inv)
            - _dot(xw, inv_age)
            - float(spread.sum()),
            _dot(wx, d_a) + float(ww4.sum()) / a,
            _dot(wx, d_b) - _dot(ww4, inv_bx1),
        ],
        dtype=np.float64,
    )
    return total, grad


def log_likelihood(params: BgNbdParams, data: BgNbdData) -> float:
    """Total (weighted) log-likelihood of the data under ``params``."""
    return _loglik_and_grad(params.as_array(), data)[0]


def log_likelihood_gradient(params: BgNbdParams, data: BgNbdData) -> FloatArray:
    """Gradient of :func:`log_likelihood` with respect to ``[r, alpha, a, b]``."""
    return _loglik_and_grad(params.as_array(), data)[1]


def _start(data: BgNbdData) -> FloatArray:
    """Start at r = a = b = 1 with α matching the mean purchase rate (sets the time unit)."""
    w = data.weights / data.customers
    mean_age = max(_dot(w, data.T), 1e-9)
    mean_x = max(_dot(w, data.x), 1e-3)
    return np.log(np.array([1.0, mean_age / mean_x, 1.0, 1.0], dtype=np.float64))


def _check_fittable(data: BgNbdData) -> None:
    if data.customers <= 0:
        raise InvalidInput(Problem("no_customers", "no customers to fit the BG/NBD model on"))
    if not np.any((data.x > 0) & (data.weights > 0)):
        message = "no customer has a repeat purchase; BG/NBD cannot estimate purchase rates"
        raise InvalidInput(Problem("no_repeat_customers", message))
    if not np.any((data.T > 0) & (data.weights > 0)):
        raise InvalidInput(Problem("no_history", "every customer was first seen at the end"))


def fit_bgnbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
    weights: ArrayLike | None = None,
    *,
    collapse: bool = True,
) -> BgNbdFit:
    """Fit BG/NBD by maximum likelihood; ``weights`` counts customers per row (default 1).

    Raises ``InvalidInput`` on bad summaries, no customers, or no repeat purchases.
    The parameters returned are always finite; ``converged`` says whether they are an optimum.
    """
    data = collapse_bgnbd(x, t_x, T, weights, collapse=collapse)
    _check_fittable(data)
    keep = data.weights > 0
    data = BgNbdData(data.x[keep], data.t_x[keep], data.T[keep], data.weights[keep])
    scale = 1.0 / data.customers  # per-customer objective: tolerances mean the same at any N

    def objective(z: FloatArray) -> tuple[float, FloatArray]:
        theta = np.exp(z)
        value, grad = _loglik_and_grad(theta, data)
        return -value * scale, -grad * theta * scale  # chain rule: ∂/∂ln θ = θ ∂/∂θ

    z0 = _start(data)
    bounds = [
        _SHAPE_BOUNDS,
        (z0[1] - _SCALE_SPAN, z0[1] + _SCALE_SPAN),
        _SHAPE_BOUNDS,
        _SHAPE_BOUNDS,
    ]
    result = _minimize(objective, z0, bounds)
    theta = np.exp(result.x)
    value, grad = _loglik_and_grad(theta, data)
    if not (np.isfinite(value) and np.all(np.isfinite(theta))):
        raise InvalidInput(Problem("fit_failed", "the BG/NBD fit did not reach finite values"))
    at_bound = any(
        min(abs(v - lo), abs(v - hi)) < 1e-6 for v, (lo, hi) in zip(result.x, bounds, strict=True)
    )
    stationary = np.max(np.abs(grad * theta)) * scale < 1e-5
    return BgNbdFit(
        params=BgNbdParams(*(float(v) for v in theta)),
        log_likelihood=value,
        customers=round(data.customers),
        rows=len(data.x),
        converged=bool((result.success or stationary) and not at_bound),
        iterations=int(result.nit),
        message=str(result.message),
    )


def _minimize(objective: Any, z0: FloatArray, bounds: list[tuple[float, float]]) -> Any:
    # Tighter tolerances only spend line searches on rounding noise (params agree to ~1e-6).
    options = {"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-8}
    return minimize(objective, z0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)


def _summary(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[FloatArray, ...]:  # noqa: N803
    xs, ts, ages = _column("x", x), _column("t_x", t_x), _column("T", T)
    xs, ts, ages = np.broadcast_arrays(xs, ts, ages)
    _validate(xs, ts, ages, np.ones_like(xs))
    return xs, ts, ages


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:  # noqa: N803
    """Probability each customer is still alive at ``T`` (FHL 2005 eq. 13); 1 when ``x = 0``.

    In BG/NBD a customer can only drop out right after a purchase, so one who never
    repurchased is alive by definition.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xs, ts, ages = _summary(x, t_x, T)
    result = np.ones_like(xs)
    rep = xs > 0
    xr = xs[rep]
    # log odds of being dead = ln a/(b+x−1) + (r+x) ln((α+T)/(α+t_x)); expit never overflows.
    log_odds = np.log(a / (b + xr - 1)) + (r + xr) * (
        np.log(alpha + ages[rep]) - np.log(alpha + ts[rep])
    )
    result[rep] = expit(-log_odds)
    return result


def _safe_a(a: float) -> float:
    if abs(a - 1.0) < _NEAR:
        return 1.0 + _NEAR if a >= 1.0 else 1.0 - _NEAR
    return a


def _alive_expectation(
    params: BgNbdParams, t: FloatArray, xs: FloatArray, ages: FloatArray
) -> FloatArray:
    """E[purchases in (T, T+t] | alive at T] per row: closed form, checked, else quadrature."""
    r, alpha = params.r, params.alpha
    a = _safe_a(params.a)
    # c = a + b + x − 1 = 0 (x = 0, a + b = 1) is a pole of ₂F₁ but not of c (1 − h).
    b = params.b + np.where(np.abs(a + params.b + xs - 1) < _NEAR, 2 * _NEAR, 0.0)
    z = t / (alpha + ages + t)
    c = a + b + xs - 1
    log_rest = np.log1p(-z)
    h = np.empty_like(z)
    # h = (1−z)^(r+x) ₂F₁(r+x, b+x; c; z). Of this form and its Euler transform
    # (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; c; z), use the one whose series converges at z = 1.
    plain = a - 1 > r + xs
    euler = ~plain
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows are redone below
        h[plain] = np.exp((r + xs[plain]) * log_rest[plain]) * hyp2f1(
            r + xs[plain], b[plain] + xs[plain], c[plain], z[plain]
        )
        h[euler] = np.exp((a - 1) * log_rest[euler]) * hyp2f1(
            a + b[euler] - 1 - r, a - 1, c[euler], z[euler]
        )
        value = c / (a - 1) * (1.0 - h)
    wrong = ~_plausible(params, value, t, xs, ages)
    for i in np.flatnonzero(wrong):
        value[i] = _alive_expectation_by_quadrature(params, t[i], xs[i], ages[i])
    return np.asarray(np.maximum(value, 0.0), dtype=np.float64)


def _purchases_given_dropout(p: FloatArray, shape: FloatArray, s: FloatArray) -> FloatArray:
    """g(p) = E[purchases in the horizon | alive, p] averaged over λ: (1 − (1 + p s)^−A) / p."""
    return np.asarray(-np.expm1(-shape * np.log1p(p * s)) / p, dtype=np.float64)


def _plausible(
    params: BgNbdParams, value: FloatArray, t: FloatArray, xs: FloatArray, ages: FloatArray
) -> npt.NDArray[np.bool_]:
    """Whether each value lies within bounds the true one must respect.

    The value is E[g(p)] with p ~ Beta(a, b+x) and g convex and decreasing, so it lies
    between g(E p) (Jensen) and the chord (1 − E p) g(0) + E p g(1); for a > 1 it is also
    below (a+b+x−1)/(a−1), the expected number of all future purchases. ₂F₁ from SciPy
    can be NaN or plainly wrong for large parameters near z = 1; this catches both.
    """
    shape, s = params.r + xs, t / (params.alpha + ages)
    mean_p = params.a / (params.a + params.b + xs)
    lower = _purchases_given_dropout(mean_p, shape, s)
    upper = (1 - mean_p) * shape * s + mean_p * _purchases_given_dropout(np.ones_like(s), shape, s)
    if params.a > 1:
        upper = np.minimum(upper, (params.a + params.b + xs - 1) / (params.a - 1))
    slack = 1e-7 * np.abs(upper) + 1e-12
    finite = np.isfinite(value)
    inside = (value >= lower - slack) & (value <= upper + slack)
    return np.asarray(finite & inside, dtype=np.bool_)


def _alive_expectation_by_quadrature(params: BgNbdParams, t: float, x: float, age: float) -> float:
    """E[g(p)], p ~ Beta(a, b+x), by adaptive quadrature over logit p (about 1 ms per row).

    Below p_cut, g(p) = A s to 1e-9, so that part is A s × P(p < p_cut) exactly.
    """
    shape, beta, s = params.r + x, params.b + x, t / (params.alpha + age)
    if s <= 0:
        return 0.0
    a = params.a
    p_cut = min(1e-9 / (shape * s), 0.5)
    log_norm = float(betaln(a, beta))

    def integrand(y: float) -> float:
        p = expit(y)
        density = np.exp(a * log_expit(y) + beta * log_expit(-y) - log_norm)
        return float(-np.expm1(-shape * np.log1p(p * s)) / p * density)

    start, mode = float(logit(p_cut)), float(np.log(a / beta))
    pieces = [(start, mode), (mode, np.inf)] if mode > start else [(start, np.inf)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        body = sum(
            quad(integrand, lo, hi, epsabs=0.0, epsrel=1e-10, limit=200)[0] for lo, hi in pieces
        )
    return float(body + shape * s * betainc(a, beta, p_cut))


def conditional_expected_purchases(
    params: BgNbdParams,
    t: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
) -> FloatArray:
    """Expected purchases in the next ``t`` after ``T``, given ``(x, t_x, T)`` (FHL 2005 eq. 10)."""
    xs, ts, ages = _summary(x, t_x, T)
    horizon = _column("t", t)
    if np.any(horizon < 0):
        raise InvalidInput(Problem("invalid_horizon", "t must be ≥ 0", "t"))
    horizon, xs, ts, ages = np.broadcast_arrays(horizon, xs, ts, ages)
    return _alive_expectation(params, horizon, xs, ages) * p_alive(params, xs, ts, ages)


def expected_purchases(params: BgNbdParams, t: ArrayLike) -> FloatArray:
    """Expected purchases of a new customer in ``t`` after their first (FHL 2005 eq. 9)."""
    horizon = _column("t", t)
    zeros = np.zeros_like(horizon)
    return conditional_expected_purchases(params, horizon, zeros, zeros, zeros)


def time_to_expected_purchase(
    params: BgNbdParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
    *,
    limit: float,
    purchases: float = 1.0,
) -> FloatArray:
    """Time after ``T`` by which ``purchases`` more are expected; ``inf`` if not within ``limit``.

    Conditional expected purchases grow with ``t`` but, because customers drop out,
    may level off below ``purchases``: those customers get ``inf``. Solved by
    bisection to a relative precision of 1e-6 of ``limit``.
    """
    if not limit > 0:
        raise InvalidInput(Problem("invalid_horizon", "limit must be > 0", "limit"))
    xs, ts, ages = _summary(x, t_x, T)
    first, inverse, _ = unique_rows(xs, ts, ages)
    ux, ut, ua = xs[first], ts[first], ages[first]
    alive = p_alive(params, ux, ut, ua)

    def expected(t: FloatArray) -> FloatArray:
        return _alive_expectation(params, t, ux, ua) * alive

    reached = expected(np.full_like(ux, limit)) >= purchases
    lo, hi = np.zeros_like(ux), np.full_like(ux, limit)
    for _ in range(int(np.ceil(np.log2(1e6))) + 1):
        mid = 0.5 * (lo + hi)
        above = expected(mid) >= purchases
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return np.where(reached, hi, np.inf)[inverse]


def discounted_expected_purchases(
    params: BgNbdParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
    *,
    horizon: float,
    period: float,
    discount_rate: float,
) -> FloatArray:
    """Expected purchases in the next ``horizon``, period ``k``'s divided by ``(1 + d)^k``.

    Times are in the data's unit; ``discount_rate`` is per ``period`` and applies at
    each period's end (the last period may be partial). Times expected spend, this is CLV.
    """
    if not (horizon > 0 and period > 0 and discount_rate > -1):
        raise InvalidInput("horizon and period must be > 0 and the discount rate > −1")
    xs, ts, ages = _summary(x, t_x, T)
    first, inverse, _ = unique_rows(xs, ts, ages)
    ux, ua = xs[first], ages[first]
    total, previous = np.zeros_like(ux), np.zeros_like(ux)
    steps = int(np.ceil(horizon / period - 1e-9))
    for k in range(1, steps + 1):
        cumulative = _alive_expectation(params, np.full_like(ux, min(k * period, horizon)), ux, ua)
        total += (cumulative - previous) / (1.0 + discount_rate) ** k
        previous = cumulative
    return (total * p_alive(params, ux, ts[first], ua))[inverse]
