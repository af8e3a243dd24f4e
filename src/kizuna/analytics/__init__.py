"""Customer analytics: RFM, deciles, Pareto, repeat conversion, cohorts, LTV and CLV.

Aggregations compile to SQL that runs inside SQLite or PostgreSQL (``sql.py`` holds
the few expressions the two dialects spell differently); Python only fits models on
per-customer or collapsed summaries. Every analysis reads *net purchases*
(``base.purchases``): orders that were not cancelled and still have a positive
amount after refunds, up to the analysis date.
"""
