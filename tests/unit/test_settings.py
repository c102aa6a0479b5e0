from __future__ import annotations

from pathlib import Path

import pytest

from ragship.errors import ConfigError
from ragship.settings import load_settings


def test_env_prefix_nesting_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ragship.toml").write_text('top_k = 7\nstore = "from-toml"\n[es]\nreplicas = 2\n')
    monkeypatch.setenv("RAGSHIP_STORE", "from-env")
    monkeypatch.setenv("RAGSHIP_ES__INDEX", "docs")
    settings = load_settings()
    assert settings.top_k == 7  # toml
    assert settings.store == "from-env"  # env beats toml
    assert settings.es.index == "docs" and settings.es.replicas == 2


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGSHIP_ES__API_KEY", "s3cr3t-value")
    settings = load_settings()
    assert settings.es.api_key is not None and settings.es.api_key.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings.masked())
    assert settings.masked()["es"]["api_key"] == "**********"


def test_bad_value_names_field_and_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGSHIP_TOP_K", "0")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "top_k" in str(err.value) and "'0'" in str(err.value)


def test_default_store_lives_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(home=tmp_path / "h").store_location == str(tmp_path / "h" / "store")


def test_nested_settings_ignore_unprefixed_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", "/somewhere/else")
    monkeypatch.setenv("PASSWORD", "not-for-us")
    monkeypatch.setenv("URL", "http://wrong:1")
    settings = load_settings()
    assert settings.local_es.home != Path("/somewhere/else")
    assert settings.es.password is None
    assert settings.es.url == "http://127.0.0.1:9200"
