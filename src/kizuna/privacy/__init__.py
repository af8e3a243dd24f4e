"""Data-subject requests under Japan's APPI, and consent-evidence retention.

* :func:`disclose_customer` — everything held about one person (JSON + CSV bundle);
* :func:`correct_profile` — set or remove profile fields;
* :func:`stop_use` — no more marketing: opted out everywhere, suppressed, runs exited;
* :func:`erase_customer` — personal data removed, anonymous aggregates kept;
* :func:`retention_report` / :func:`purge_expired_evidence` — the Specified
  Electronic Mail Act's consent records: what is kept, until when, and the purge.

Each request is one transaction, recorded in ``privacy_requests`` and written to
the operation log with the customer's id (never the email or phone asked for).
"""

from kizuna.privacy.correct import CORRECTABLE, correct_profile
from kizuna.privacy.disclose import Disclosure, disclose_customer
from kizuna.privacy.erase import Erasure, erase_customer
from kizuna.privacy.retention import PurgeResult, purge_expired_evidence, update_privacy_settings
from kizuna.privacy.retention_report import RetentionReport, retention_report
from kizuna.privacy.settings import PrivacySettings
from kizuna.privacy.stop import stop_use

__all__ = [
    "CORRECTABLE",
    "Disclosure",
    "Erasure",
    "PrivacySettings",
    "PurgeResult",
    "RetentionReport",
    "correct_profile",
    "disclose_customer",
    "erase_customer",
    "purge_expired_evidence",
    "retention_report",
    "stop_use",
    "update_privacy_settings",
]
