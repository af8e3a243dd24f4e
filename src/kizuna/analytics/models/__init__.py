"""Customer-base models fitted on per-customer summaries: pure NumPy/SciPy, no database.

- ``bgnbd``: BG/NBD (Fader, Hardie & Lee 2005, *Marketing Science*): purchase counts
  and P(alive) from frequency ``x``, recency ``t_x`` and age ``T``.
- ``gamma_gamma``: Gamma-Gamma (Fader, Hardie & Lee 2005, *Journal of Marketing
  Research*): expected spend per purchase from repeat customers' mean spend.

Both are fitted by maximum likelihood with analytic gradients on collapsed data
(identical summaries merged, with counts as weights); neither ever returns NaN or
infinite parameters, and impossible fits raise ``kizuna.errors.InvalidInput``.
"""

from kizuna.analytics.models.bgnbd import (
    BgNbdData,
    BgNbdFit,
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
    GammaGammaData,
    GammaGammaFit,
    GammaGammaParams,
    collapse_gamma_gamma,
    conditional_expected_spend,
    fit_gamma_gamma,
)

__all__ = [
    "BgNbdData",
    "BgNbdFit",
    "BgNbdParams",
    "GammaGammaData",
    "GammaGammaFit",
    "GammaGammaParams",
    "collapse_bgnbd",
    "collapse_gamma_gamma",
    "conditional_expected_purchases",
    "conditional_expected_spend",
    "discounted_expected_purchases",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "p_alive",
    "time_to_expected_purchase",
]
