"""BG/NBD and Gamma-Gamma: CDNOW anchor, analytic gradients, collapsing, predictions, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.integrate import quad

from kizuna.analytics.clv import holdout_table
from kizuna.analytics.models import bgnbd, gamma_gamma
from kizuna.analytics.models.bgnbd import (
    BgNbdParams,
    collapse_bgnbd,
    conditional_expected_purchases,
    discounted_expected_purchases,
    expected_purchases,
    fit_bgnbd,
    p_alive,
    time_to_expected_purchase,
)
from kizuna.analytics.models.gamma_gamma import (
    GammaGammaParams,
    collapse_gamma_gamma,
    conditional_expected_spend,
    fit_gamma_gamma,
)
from kizuna.errors import InvalidInput

CDNOW = Path(__file__).parents[1] / "fixtures" / "cdnow" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """The CDNOW sample summary with t_x and T in weeks, as in the published fit."""
    frame = pd.read_csv(CDNOW)
    frame["t_x"] = frame["t_x_days"] / 7
    frame["T"] = frame["T_days"] / 7
    return frame


@pytest.fixture(scope="module")
def cdnow_fit(cdnow):
    return fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


def _central_gradient(function, theta: np.ndarray, rel: float = 1e-6) -> np.ndarray:
    grad = np.empty_like(theta)
    for i in range(len(theta)):
        h = rel * theta[i]
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (function(up) - function(down)) / (2 * h)
    return grad


# --- the CDNOW anchor (Fader, Hardie & Lee 2005) ---------------------------------------


def test_cdnow_sample_is_the_published_one(cdnow):
    assert len(cdnow) == 2357
    assert cdnow["x"].sum() == 2457
    assert (cdnow["x"] > 0).sum() == 946


def test_bgnbd_reproduces_the_published_cdnow_estimates(cdnow_fit):
    p = cdnow_fit.params
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(cdnow_fit.log_likelihood, 1) == -9582.4
    assert cdnow_fit.converged
    assert cdnow_fit.customers == 2357
    assert cdnow_fit.rows < 2357  # collapsed


def test_gamma_gamma_reproduces_the_published_cdnow_estimates(cdnow):
    fit = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    p = fit.params
    assert (round(p.p, 2), round(p.q, 2), round(p.gamma, 2)) == (6.25, 3.74, 15.44)
    assert fit.customers == 946
    assert fit.converged


def test_conditional_expectation_matches_the_paper(cdnow_fit):
    # FHL 2005, section 5: a customer with x = 2, t_x = 30.43, T = 38.86 (weeks)
    # is expected to make 1.226 purchases in the next 39 weeks.
    value = conditional_expected_purchases(cdnow_fit.params, 39, 2, 30.43, 38.86)
    assert round(float(value[0]), 3) == 1.226


def test_cdnow_holdout_comparison(cdnow, cdnow_fit):
    table = holdout_table(
        cdnow_fit.params, cdnow["x"], cdnow["t_x"], cdnow["T"], cdnow["x_star"], holdout_length=39
    )
    assert table["bucket"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["customers"].sum() == 2357
    assert (table["actual"] * table["customers"]).sum() == pytest.approx(1882)
    zero = table.iloc[0]
    assert zero["predicted"] == pytest.approx(zero["actual"], abs=0.02)
    assert table["predicted"].is_monotonic_increasing
    assert table.iloc[-1]["predicted"] == pytest.approx(table.iloc[-1]["actual"], rel=0.1)


# --- the fitter ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "theta", [(0.3, 5.0, 0.7, 2.0), (1.2, 40.0, 2.5, 9.0), (0.243, 4.4, 1.0, 2.4)]
)
def test_bgnbd_gradient_matches_finite_differences(cdnow, theta):
    data = collapse_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    params = BgNbdParams(*theta)
    analytic = bgnbd.log_likelihood_gradient(params, data)
    numeric = _central_gradient(
        lambda th: bgnbd.log_likelihood(BgNbdParams(*th), data), params.as_array()
    )
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("theta", [(6.0, 3.7, 15.0), (1.0, 2.0, 30.0), (20.0, 1.2, 2.0)])
def test_gamma_gamma_gradient_matches_finite_differences(cdnow, theta):
    data = collapse_gamma_gamma(cdnow["x"], cdnow["zbar"])
    params = GammaGammaParams(*theta)
    analytic = gamma_gamma.log_likelihood_gradient(params, data)
    numeric = _central_gradient(
        lambda th: gamma_gamma.log_likelihood(GammaGammaParams(*th), data), params.as_array()
    )
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-4)


def test_collapsed_and_per_customer_fits_agree(cdnow, cdnow_fit):
    plain = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"], collapse=False)
    assert plain.rows == 2357
    np.testing.assert_allclose(plain.params.as_array(), cdnow_fit.params.as_array(), rtol=1e-6)
    assert plain.log_likelihood == pytest.approx(cdnow_fit.log_likelihood, abs=1e-6)
    spend = fit_gamma_gamma(cdnow["x"], cdnow["zbar"], collapse=True)
    spend_plain = fit_gamma_gamma(cdnow["x"], cdnow["zbar"], collapse=False)
    assert spend.rows < spend_plain.rows == 946
    np.testing.assert_allclose(spend.params.as_array(), spend_plain.params.as_array(), rtol=1e-5)


def test_weights_are_customer_counts(cdnow, cdnow_fit):
    data = collapse_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    weighted = fit_bgnbd(data.x, data.t_x, data.T, data.weights, collapse=False)
    np.testing.assert_allclose(weighted.params.as_array(), cdnow_fit.params.as_array(), rtol=1e-6)
    assert weighted.customers == 2357


def test_the_time_unit_only_rescales_alpha(cdnow, cdnow_fit):
    days = fit_bgnbd(cdnow["x"], cdnow["t_x_days"], cdnow["T_days"])
    np.testing.assert_allclose(
        days.params.as_array(), cdnow_fit.params.as_array() * [1, 7, 1, 1], rtol=1e-5
    )
    # The log-likelihood changes by the Jacobian of the time change: −Σx ln 7.
    shift = -cdnow["x"].sum() * np.log(7)
    assert days.log_likelihood == pytest.approx(cdnow_fit.log_likelihood + shift, abs=1e-4)


def test_recovers_simulated_parameters():
    rng = np.random.default_rng(3)
    n, truth = 50_000, BgNbdParams(0.5, 20.0, 0.8, 3.0)
    lam = rng.gamma(truth.r, 1 / truth.alpha, n)
    p = rng.beta(truth.a, truth.b, n)
    age = rng.uniform(30, 720, n)
    # Alive, purchases arrive as Poisson(λ); death follows the D-th repeat purchase,
    # D ~ Geometric(p). Given N arrivals in [0, T], the x-th is T × Beta(x, N − x + 1).
    arrivals = rng.poisson(lam * age)
    x = np.minimum(arrivals, rng.geometric(p))
    t_x = np.zeros(n)
    some = x > 0
    t_x[some] = age[some] * rng.beta(x[some], arrivals[some] - x[some] + 1)
    fit = fit_bgnbd(x, t_x, age)
    np.testing.assert_allclose(fit.params.as_array(), truth.as_array(), rtol=0.1)


# --- predictions -----------------------------------------------------------------------


def test_p_alive_is_one_without_repeat_purchases_and_falls_with_silence(cdnow_fit):
    params = cdnow_fit.params
    assert p_alive(params, [0, 0], [0, 0], [5, 50]).tolist() == [1.0, 1.0]
    ages = np.array([10.0, 20.0, 40.0, 80.0])
    alive = p_alive(params, 3, 10, ages)
    assert np.all((alive > 0) & (alive <= 1))
    assert np.all(np.diff(alive) < 0)  # longer silence, less alive
    recent = p_alive(params, 3, [5, 20, 39], 40)
    assert np.all(np.diff(recent) > 0)  # a later last purchase, more alive
    assert p_alive(params, 5000, 0.0, 1e6)[0] == 0.0  # underflows cleanly, no NaN


def test_conditional_expectation_matches_the_beta_gamma_integral(cdnow_fit):
    # Given alive at T, λ ~ Gamma(r+x, α+T) and p ~ Beta(a, b+x), and
    # E[purchases in t | λ, p] = (1 − e^(−λpt)) / p: integrate over p numerically.
    params = cdnow_fit.params

    def integral(t, x, t_x, age):
        s, shape = t / (params.alpha + age), params.r + x

        def integrand(q):
            return (
                -np.expm1(-shape * np.log1p(q * s)) / q * stats.beta.pdf(q, params.a, params.b + x)
            )

        value = quad(integrand, 0, 1, limit=200, points=[1e-6, 1e-4, 1e-2])[0]
        return value * p_alive(params, x, t_x, age)[0]

    for args in [(39, 2, 30.43, 38.86), (39, 0, 0, 38), (365, 10, 30, 38), (52, 300, 37, 38)]:
        expected = integral(*args)
        assert conditional_expected_purchases(params, *args)[0] == pytest.approx(expected, rel=1e-6)


def test_predictions_stay_finite_for_extreme_customers(cdnow_fit):
    params = cdnow_fit.params
    x = np.array([0, 1, 100, 1000, 5000])
    t_x = np.array([0, 1, 500, 900, 999])
    age = np.full(5, 1000.0)
    for t in (0.0, 1.0, 365.0, 1e5):
        values = conditional_expected_purchases(params, t, x, t_x, age)
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
    near_one = BgNbdParams(params.r, params.alpha, 1.0, params.b)  # 0/0 in the closed form
    assert np.all(np.isfinite(conditional_expected_purchases(near_one, 39, x, t_x, age)))


@pytest.mark.parametrize(
    ("theta", "t", "x", "t_x", "age", "expected"),
    [
        # SciPy's ₂F₁ returns NaN here (z close to 1); the quadrature fallback takes over.
        ((0.01, 0.1, 0.01, 4.6415888336127775), 365.0, 0, 0, 0, 34.63841530435434),
        # ... and a finite but impossible value here (h < 0): caught by the bounds check.
        ((20.0, 30.0, 20.0, 100.0), 365.0, 0, 0, 5, 6.2631572235853366),
    ],
)
def test_closed_form_failures_fall_back_to_quadrature(theta, t, x, t_x, age, expected):
    # Reference values: the textbook formula evaluated with mpmath at 40 digits.
    value = conditional_expected_purchases(BgNbdParams(*theta), t, x, t_x, age)[0]
    assert value == pytest.approx(expected, rel=1e-7)


def test_too_little_data_gives_a_flagged_fit_with_finite_predictions():
    fit = fit_bgnbd([1, 2], [31, 48], [81, 79])  # two customers: no heterogeneity to estimate
    assert not fit.converged
    assert np.all(np.isfinite(fit.params.as_array()))
    values = conditional_expected_purchases(fit.params, 365, [1, 2], [31, 48], [81, 79])
    assert np.all(np.isfinite(values))


def test_unconditional_expectation_grows_from_zero(cdnow_fit):
    values = expected_purchases(cdnow_fit.params, [0, 13, 39, 78])
    assert values[0] == 0
    assert np.all(np.diff(values) > 0)


def test_time_to_expected_purchase_solves_for_one_purchase(cdnow_fit):
    params = cdnow_fit.params
    x, t_x, age = np.array([5, 20, 0]), np.array([30, 38, 0]), np.array([38.0, 38.0, 38.0])
    waits = time_to_expected_purchase(params, x, t_x, age, limit=52)
    assert np.isfinite(waits[:2]).all() and waits[2] == np.inf
    reached = conditional_expected_purchases(params, waits[:2], x[:2], t_x[:2], age[:2])
    np.testing.assert_allclose(reached, 1.0, rtol=1e-4)
    assert waits[1] < waits[0]  # the more frequent buyer comes back sooner


def test_discounting(cdnow_fit):
    params = cdnow_fit.params
    x, t_x, age = [0, 2, 7], [0, 30, 35], [38, 38, 38]
    plain = conditional_expected_purchases(params, 52, x, t_x, age)
    undiscounted = discounted_expected_purchases(
        params, x, t_x, age, horizon=52, period=52 / 12, discount_rate=0.0
    )
    np.testing.assert_allclose(undiscounted, plain, rtol=1e-12)
    discounted = discounted_expected_purchases(
        params, x, t_x, age, horizon=52, period=52 / 12, discount_rate=0.01
    )
    assert np.all(discounted < plain) and np.all(discounted > plain / 1.01**12)


def test_expected_spend_shrinks_towards_the_population_mean(cdnow):
    params = fit_gamma_gamma(cdnow["x"], cdnow["zbar"]).params
    mean = params.p * params.gamma / (params.q - 1)
    assert params.mean_spend == pytest.approx(mean)
    spend = conditional_expected_spend(params, [0, 1, 10, 1000], [0, 100, 100, 100])
    assert spend[0] == pytest.approx(mean)
    assert mean < spend[1] < spend[2] < spend[3] < 100
    assert spend[3] == pytest.approx(100, rel=0.01)
    assert conditional_expected_spend(params, 3, -5)[0] == pytest.approx(mean)


# --- bad input -------------------------------------------------------------------------


def _code(excinfo: pytest.ExceptionInfo[InvalidInput]) -> str:
    return excinfo.value.code


def test_no_customers():
    with pytest.raises(InvalidInput) as excinfo:
        fit_bgnbd([], [], [])
    assert _code(excinfo) == "no_customers"


def test_only_one_time_buyers():
    with pytest.raises(InvalidInput) as excinfo:
        fit_bgnbd([0, 0, 0], [0, 0, 0], [10, 20, 30])
    assert _code(excinfo) == "no_repeat_customers"
    with pytest.raises(InvalidInput) as excinfo:
        fit_gamma_gamma([0, 0, 0], [0, 0, 0])
    assert _code(excinfo) == "no_repeat_customers"


@pytest.mark.parametrize(
    ("x", "t_x", "age", "code"),
    [
        ([1, np.nan], [1, 0], [5, 5], "not_finite"),
        ([1, 1], [1, np.inf], [5, 5], "not_finite"),
        ([1, -1], [1, 0], [5, 5], "invalid_summary"),
        ([1.5, 1], [1, 1], [5, 5], "invalid_summary"),
        ([1, 1], [6, 1], [5, 5], "invalid_summary"),
    ],
)
def test_bad_summaries_are_refused(x, t_x, age, code):
    with pytest.raises(InvalidInput) as excinfo:
        fit_bgnbd(x, t_x, age)
    assert _code(excinfo) == code


def test_zero_and_negative_spend_are_left_out(cdnow):
    spend = cdnow["zbar"].to_numpy().copy()
    repeaters = np.flatnonzero(cdnow["x"].to_numpy() > 0)
    spend[repeaters[:3]] = [0.0, -10.0, 0.0]
    data = collapse_gamma_gamma(cdnow["x"], spend)
    assert data.customers == 943
    assert data.excluded == 2357 - 943
    fit = fit_gamma_gamma(cdnow["x"], spend)
    assert np.all(np.isfinite(fit.params.as_array()))


def test_infinite_mean_spend_is_refused():
    heavy = GammaGammaParams(p=2.0, q=0.8, gamma=10.0)
    assert heavy.mean_spend == np.inf
    with pytest.raises(InvalidInput) as excinfo:
        conditional_expected_spend(heavy, [0, 3], [0, 50])
    assert _code(excinfo) == "spend_model_degenerate"
    assert conditional_expected_spend(heavy, [3], [50])[0] > 0  # repeaters still have one


def test_negative_horizon_is_refused(cdnow_fit):
    with pytest.raises(InvalidInput):
        conditional_expected_purchases(cdnow_fit.params, -1, 1, 1, 2)
    with pytest.raises(InvalidInput):
        discounted_expected_purchases(
            cdnow_fit.params, 1, 1, 2, horizon=0, period=1, discount_rate=0
        )
