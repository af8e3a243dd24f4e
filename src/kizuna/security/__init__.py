"""Security primitives: PII encryption and keyed lookup hashes (users and roles come later)."""

from kizuna.security.pii import PiiCipher, load_or_create_secret

__all__ = ["PiiCipher", "load_or_create_secret"]
