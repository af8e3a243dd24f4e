"""PII encryption, lookup hashes, key files, masking."""

from __future__ import annotations

import stat

import pytest

from kizuna.errors import ConfigurationError
from kizuna.security.masking import mask_email, mask_name, mask_phone
from kizuna.security.pii import PiiCipher, load_or_create_secret
from kizuna.security.tokens import load_or_create_api_token


def test_encryption_round_trips_and_never_repeats(tmp_path):
    cipher = PiiCipher(load_or_create_secret(tmp_path))
    first, second = cipher.encrypt("山田 太郎"), cipher.encrypt("山田 太郎")
    assert first != second
    assert "山田".encode() not in first
    assert cipher.decrypt(first) == cipher.decrypt(second) == "山田 太郎"


def test_key_file_is_created_once_with_owner_only_permissions(tmp_path):
    secret = load_or_create_secret(tmp_path)
    mode = stat.S_IMODE((tmp_path / "secret.key").stat().st_mode)
    assert mode == 0o600
    assert load_or_create_secret(tmp_path) == secret


def test_another_key_cannot_read_the_data(tmp_path):
    token = PiiCipher(load_or_create_secret(tmp_path / "a")).encrypt("a@example.com")
    with pytest.raises(ConfigurationError):
        PiiCipher(load_or_create_secret(tmp_path / "b")).decrypt(token)


def test_tampered_ciphertext_fails_its_integrity_check(tmp_path):
    cipher = PiiCipher(load_or_create_secret(tmp_path))
    token = bytearray(cipher.encrypt("a@example.com"))
    token[-1] ^= 1
    with pytest.raises(ConfigurationError):
        cipher.decrypt(bytes(token))


def test_lookup_hash_is_keyed_and_scoped_by_kind(tmp_path):
    one = PiiCipher(load_or_create_secret(tmp_path / "a"))
    two = PiiCipher(load_or_create_secret(tmp_path / "b"))
    assert one.lookup_hash("email", "a@example.com") == one.lookup_hash("email", "a@example.com")
    assert one.lookup_hash("email", "x") != one.lookup_hash("user_id", "x")
    assert one.lookup_hash("email", "a@example.com") != two.lookup_hash("email", "a@example.com")


def test_malformed_secret_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError):
        load_or_create_secret(tmp_path, "c2hvcnQ")


def test_api_token_file_is_stable(tmp_path):
    token = load_or_create_api_token(tmp_path)
    assert token.startswith("kza_")
    assert load_or_create_api_token(tmp_path) == token
    assert load_or_create_api_token(tmp_path, "from-env") == "from-env"


def test_masks_match_what_the_brief_shows():
    assert mask_email("taro@example.com") == "t***@example.com"
    assert mask_phone("+819012345678") == "090-****-5678"
    assert mask_name("山田 太郎") == "山田 *"


def test_the_mobile_fast_path_masks_as_the_full_parse_does():
    import phonenumbers

    for stored in ("+819012345678", "+818055501234", "+817000009999"):
        national = phonenumbers.format_number(
            phonenumbers.parse(stored), phonenumbers.PhoneNumberFormat.NATIONAL
        )
        head, _, tail = national.split("-")
        assert mask_phone(stored) == f"{head}-****-{tail}"
    assert mask_phone("+81312345678") == "03-****-5678"  # landlines still take the full parse
