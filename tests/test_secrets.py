"""The privacy hashes' key is secret per installation (hole 7): generated, kept, never public."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from geo_service.infra.settings import PUBLIC_KEYS, Settings
from geo_service.operations.common import keyed_hash
from geo_service.web.app import create_app


def test_a_key_is_generated_once_per_installation_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "feedback_hash.key"
    first = Settings(feedback_key_file=str(path))
    hashed = keyed_hash(first, "client:203.0.113.7")
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32
    # The next start reads the same key: hashes stay comparable across restarts.
    assert keyed_hash(Settings(feedback_key_file=str(path)), "client:203.0.113.7") == hashed
    # Another installation has another key.
    other = Settings(feedback_key_file=str(tmp_path / "other.key"))
    assert keyed_hash(other, "client:203.0.113.7") != hashed


def test_the_public_default_is_never_the_key(tmp_path: Path) -> None:
    """With nothing configured, an address cannot be recomputed from the old public key."""
    settings = Settings(feedback_key_file=str(tmp_path / "k"))
    for public in PUBLIC_KEYS:
        guess = hmac.new(public.encode(), b"client:203.0.113.7", hashlib.sha256).hexdigest()
        assert keyed_hash(settings, "client:203.0.113.7") != guess[:32]


@pytest.mark.parametrize("key", [*PUBLIC_KEYS, "short-secret"])
def test_production_refuses_a_public_or_weak_key(db_url: str, key: str) -> None:
    with pytest.raises(ValueError, match="GEO_FEEDBACK_HASH_KEY"):
        create_app(Settings(database_url=db_url, env="production", feedback_hash_key=key))
    create_app(Settings(database_url=db_url, env="development", feedback_hash_key=key))


def test_a_configured_key_wins(tmp_path: Path) -> None:
    key = "k" * 40
    settings = Settings(feedback_hash_key=key, feedback_key_file=str(tmp_path / "unused"))
    expected = hmac.new(key.encode(), b"device:abc", hashlib.sha256).hexdigest()[:32]
    assert keyed_hash(settings, "device:abc") == expected
    assert not (tmp_path / "unused").exists()
