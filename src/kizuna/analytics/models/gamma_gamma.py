"""Gamma-Gamma: how much a customer spends per purchase.

The spend model of Fader, Hardie & Lee, "RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis", *Journal of Marketing Research* 42(4), 2005 (derivations in
Fader & Hardie, "The Gamma-Gamma Model of Monetary Value", 2013). A customer's
purchase values are Gamma(p, ν); across customers ν ~ Gamma(q, γ). Only the mean
``z̄`` of a customer's ``x`` repeat purchases is needed, and the model assumes spend
is independent of purchase frequency (check the correlation before trusting it).

It is fitted on repeat customers only (``x > 0``), with positive spend; the first
purchase is left out because it often differs (welcome offers, starter sets).
Terms of ``x`` alone (``Γ``, ``ψ``) are evaluated once per distinct ``x``, so a row
costs one logarithm per evaluation. Customers sharing ``(x, z̄)`` may also be merged
into one weighted row (exact); ``analytics.clv`` does that in SQL.

Density of ``z̄`` given ``x`` and its log-likelihood gradient::

    ℓ = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln(x z̄) + ln x − (px+q) ln(γ + x z̄)
    ∂ℓ/∂p = x [ψ(px+q) − ψ(px) + ln(x z̄) − ln(γ + x z̄)]
    ∂ℓ/∂q = ψ(px+q) − ψ(q) + ln γ − ln(γ + x z̄)
    ∂ℓ/∂γ = q/γ − (px+q)/(γ + x z̄)

The expected spend per purchase of a customer is ``p (γ + x z̄) / (px + q − 1)``; for
someone with no repeat purchase it is the population mean ``p γ / (q − 1)``, which
exists only when ``q > 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from kizuna.analytics.models.bgnbd import ArrayLike, FloatArray, unique_rows
from kizuna.errors import InvalidInput, Problem

__all__ = [
    "GammaGammaData",
    "GammaGammaFit",
    "GammaGammaParams",
    "collapse_gamma_gamma",
    "conditional_expected_spend",
    "fit_gamma_gamma",
    "log_likelihood",
    "log_likelihood_gradient",
]

_LOG_BOUND = 25.0


def _dot(weights: FloatArray, values: FloatArray) -> float:
    """Σ weights × values without BLAS: threaded ddot stalls on busy machines (100× slower)."""
    return float(np.einsum("i,i->", weights, values))


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: spend ~ Gamma(p, ν), ν ~ Gamma(q, γ)."""

    p: float
    q: float
    gamma: float

    def as_array(self) -> FloatArray:
        """``[p, q, gamma]``."""
        return np.array([self.p, self.q, self.gamma], dtype=np.float64)

    @property
    def mean_spend(self) -> float:
        """Population mean spend per purchase, ``p γ / (q − 1)``; ``inf`` when ``q ≤ 1``."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")


@dataclass(frozen=True, slots=True)
class GammaGammaData:
    """Repeat customers' ``(x, z̄)`` rows with weights (customers per row)."""

    x: FloatArray
    spend: FloatArray
    weights: FloatArray
    excluded: int  # rows dropped: no repeat purchase, or spend ≤ 0
    _parts: _Parts = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parts", _parts(self))

    @property
    def customers(self) -> float:
        """Number of customers the rows stand for."""
        return float(self.weights.sum())


@dataclass(frozen=True, slots=True)
class GammaGammaFit:
    """A fitted Gamma-Gamma model and its diagnostics."""

    params: GammaGammaParams
    log_likelihood: float
    customers: int
    rows: int
    converged: bool
    iterations: int
    message: str


def _column(name: str, values: ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise InvalidInput(Problem("not_finite", f"{name} has NaN or infinite values", name))
    return array


def collapse_gamma_gamma(
    x: ArrayLike, spend: ArrayLike, weights: ArrayLike | None = None, *, collapse: bool = False
) -> GammaGammaData:
    """Keep repeat customers with positive mean spend and, with ``collapse``, merge identical rows.

    Rows with ``x = 0`` or ``spend ≤ 0`` are dropped and counted in ``excluded``.
    Raises ``InvalidInput`` on NaN/inf, negative or fractional ``x``, or unequal lengths.
    """
    xs, zs = _column("x", x), _column("spend", spend)
    w = np.ones_like(xs) if weights is None else _column("weights", weights)
    if not (len(xs) == len(zs) == len(w)):
        raise InvalidInput("x, spend and weights must have the same length")
    if np.any(xs < 0) or np.any(xs != np.round(xs)) or np.any(w < 0):
        raise InvalidInput(Problem("invalid_summary", "x must be whole numbers ≥ 0", "x"))
    keep = (xs > 0) & (zs > 0) & (w > 0)
    excluded = int(np.count_nonzero(~keep))
    xs, zs, w = xs[keep], zs[keep], w[keep]
    if not collapse:
        return GammaGammaData(xs, zs, w, excluded)
    first, inverse, _ = unique_rows(xs, zs)
    summed = np.bincount(inverse, weights=w, minlength=len(first)).astype(np.float64)
    return GammaGammaData(xs[first], zs[first], summed, excluded)


class _Parts(NamedTuple):
    """What the likelihood needs, precomputed: Γ and ψ terms depend on x alone."""

    x_values: FloatArray
    x_weights: FloatArray  # customers per distinct x
    total: FloatArray  # x z̄ per row
    weights: FloatArray
    x_times_weights: FloatArray
    constant: float  # Σ w [ln x − ln(x z̄)]
    log_total_x: float  # Σ w x ln(x z̄)


def _parts(data: GammaGammaData) -> _Parts:
    values, index = np.unique(data.x, return_inverse=True)
    x_weights = np.bincount(index, weights=data.weights, minlength=len(values))
    total = data.x * data.spend
    log_total = np.log(total)
    xw = data.x * data.weights
    constant = _dot(data.weights, np.log(data.x) - log_total)
    return _Parts(values, x_weights.astype(np.float64), total, data.weights, xw, constant,
                  _dot(xw, log_total))  # fmt: skip


def _loglik_and_grad(theta: FloatArray, data: GammaGammaData) -> tuple[float, FloatArray]:
    """Weighted log-likelihood and its gradient in (p, q, γ)."""
    p, q, gamma = (float(v) for v in theta)
    d = data._parts
    xu, wx = d.x_values, d.x_weights
    n = float(wx.sum())
    pxu = p * xu
    psi_pxq = digamma(pxu + q)
    # Per row only ln(γ + x z̄) and its reciprocal depend on the parameters.
    log_den = np.log(gamma + d.total)
    inv_den = 1.0 / (gamma + d.total)
    sum_log, sum_x_log = _dot(d.weights, log_den), _dot(d.x_times_weights, log_den)
    total = (
        _dot(wx, gammaln(pxu + q) - gammaln(pxu))
        - n * gammaln(q)
        + n * q * np.log(gamma)
        + p * d.log_total_x
        + d.constant
        - p * sum_x_log
        - q * sum_log
    )
    grad = np.array(
        [
            _dot(wx, xu * (psi_pxq - digamma(pxu))) + d.log_total_x - sum_x_log,
            _dot(wx, psi_pxq) - n * digamma(q) + n * np.log(gamma) - sum_log,
            n * q / gamma - p * _dot(d.x_times_weights, inv_den) - q * _dot(d.weights, inv_den),
        ],
        dtype=np.float64,
    )
    return float(total), grad


def log_likelihood(params: GammaGammaParams, data: GammaGammaData) -> float:
    """Total (weighted) log-likelihood of the data under ``params``."""
    return _loglik_and_grad(params.as_array(), data)[0]


def log_likelihood_gradient(params: GammaGammaParams, data: GammaGammaData) -> FloatArray:
    """Gradient of :func:`log_likelihood` with respect to ``[p, q, gamma]``."""
    return _loglik_and_grad(params.as_array(), data)[1]


def fit_gamma_gamma(
    x: ArrayLike, spend: ArrayLike, weights: ArrayLike | None = None, *, collapse: bool = False
) -> GammaGammaFit:
    """Fit Gamma-Gamma by maximum likelihood on repeat customers (others are skipped).

    ``spend`` is each customer's mean repeat-purchase value. A row costs one log per
    evaluation, so sorting to ``collapse`` rows in NumPy rarely pays; it is off by
    default (``analytics.clv`` collapses in SQL). Raises ``InvalidInput`` when fewer
    than two repeat customers with positive spend remain.
    """
    data = collapse_gamma_gamma(x, spend, weights, collapse=collapse)
    if data.customers < 2:
        message = "the spend model needs at least two customers with repeat purchases"
        raise InvalidInput(Problem("no_repeat_customers", message))
    scale = 1.0 / data.customers

    def objective(z: FloatArray) -> tuple[float, FloatArray]:
        theta = np.exp(z)
        value, grad = _loglik_and_grad(theta, data)
        return -value * scale, -grad * theta * scale

    # Start at p = 1, q = 2, so the population mean p γ/(q−1) equals the sample mean.
    z0 = np.log([1.0, 2.0, _dot(data.weights, data.spend) * scale])
    bounds = [(v - _LOG_BOUND, v + _LOG_BOUND) for v in z0]
    options = {"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-8}
    result = minimize(objective, z0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    theta = np.exp(result.x)
    value, grad = _loglik_and_grad(theta, data)
    if not (np.isfinite(value) and np.all(np.isfinite(theta))):
        raise InvalidInput(Problem("fit_failed", "the spend model fit did not reach finite values"))
    at_bound = np.any(np.abs(np.abs(result.x - z0) - _LOG_BOUND) < 1e-6)
    stationary = np.max(np.abs(grad * theta)) * scale < 1e-5
    return GammaGammaFit(
        params=GammaGammaParams(*(float(v) for v in theta)),
        log_likelihood=value,
        customers=round(data.customers),
        rows=len(data.x),
        converged=bool((result.success or stationary) and not at_bound),
        iterations=int(result.nit),
        message=str(result.message),
    )


def conditional_expected_spend(
    params: GammaGammaParams, x: ArrayLike, spend: ArrayLike
) -> FloatArray:
    """Expected spend per future purchase given ``x`` repeat purchases of mean ``spend``.

    Customers with ``x = 0`` or ``spend ≤ 0`` get the population mean. Raises
    ``InvalidInput`` if that mean is needed but infinite (``q ≤ 1``).
    """
    p, q, gamma = params.p, params.q, params.gamma
    xs, zs = np.broadcast_arrays(_column("x", x), _column("spend", spend))
    if np.any(xs < 0):
        raise InvalidInput(Problem("invalid_summary", "x must be ≥ 0", "x"))
    observed = np.where(zs > 0, xs, 0.0)  # non-positive spend carries no information
    denominator = p * observed + q - 1
    if np.any(denominator <= 0):
        message = (
            f"the fitted spend model has q = {q:.3g} ≤ 1, so its mean spend is infinite; "
            "spend is too heavy-tailed for Gamma-Gamma"
        )
        raise InvalidInput(Problem("spend_model_degenerate", message))
    return np.asarray(p * (gamma + observed * np.maximum(zs, 0.0)) / denominator, dtype=np.float64)
