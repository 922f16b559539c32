"""Settings: environment over the data dir's TOML file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchardist.config import load_settings, resolve_data_dir, write_config


def test_defaults_without_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCHARDIST_DATABASE_URL", raising=False)
    settings = load_settings(tmp_path)
    assert settings.scep_static_challenge is None
    assert settings.certificate_validity_days == 365
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'orchardist.db'}"


def test_environment_wins_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, {"hostname": "from-toml", "certificate_validity_days": 30})
    monkeypatch.setenv("ORCHARDIST_HOSTNAME", "from-env")
    settings = load_settings(tmp_path)
    assert settings.hostname == "from-env"
    assert settings.certificate_validity_days == 30


def test_static_challenge_is_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHARDIST_SCEP_STATIC_CHALLENGE", "hunter2")
    settings = load_settings(tmp_path)
    assert settings.scep_static_challenge is not None
    assert settings.scep_static_challenge.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings)


def test_invalid_values_are_refused(tmp_path: Path) -> None:
    write_config(tmp_path, {"certificate_validity_days": 0})
    with pytest.raises(ValueError, match="certificate_validity_days"):
        load_settings(tmp_path)


def test_data_dir_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHARDIST_DATA_DIR", "/srv/mdm")
    assert resolve_data_dir(None) == Path("/srv/mdm")
    assert resolve_data_dir(Path("/elsewhere")) == Path("/elsewhere")
    monkeypatch.delenv("ORCHARDIST_DATA_DIR")
    assert resolve_data_dir(None) == Path("orchardist-data")
