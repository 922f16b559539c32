"""Settings: environment over the data dir's TOML file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchardist.config import (
    NON_SETTING_VARIABLES,
    load_settings,
    resolve_data_dir,
    write_config,
)
from orchardist.config_check import SettingsError


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


def test_an_unknown_key_in_the_file_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    write_config(tmp_path, {"hostname": "h", "scep_static_chalenge": "x"})
    refused = _refusal(tmp_path)
    assert refused == (
        f"{tmp_path / 'orchardist.toml'}: unknown setting 'scep_static_chalenge' "
        "(did you mean 'scep_static_challenge'?)"
    )


def test_an_unknown_key_in_a_table_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path, {"smtp": {"host": "mail", "prot": 25}, "nonsense_entirely": 1})
    refused = _refusal(tmp_path)
    prefix = f"{tmp_path / 'orchardist.toml'}: unknown setting"
    assert sorted(refused.splitlines()) == [
        f"{prefix} 'nonsense_entirely' (not a setting: see docs/configuration.md)",
        f"{prefix} 'smtp.prot' (did you mean 'smtp.port'?)",
    ]


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            {"ORCHARDIST_SCEP_STATIC_CHALENGE": "x", "ORCHARDIST_SMTP__PROT": "25"},
            [
                "unknown environment variable ORCHARDIST_SCEP_STATIC_CHALENGE "
                "(did you mean ORCHARDIST_SCEP_STATIC_CHALLENGE?)",
                "unknown environment variable ORCHARDIST_SMTP__PROT "
                "(did you mean ORCHARDIST_SMTP__PORT?)",
            ],
        ),
        (
            {
                "ORCHARDIST_SMTP__PORT": "0",
                "ORCHARDIST_SMTP__HOST": "mail.test",
                "ORCHARDIST_LOG_LEVEL": "loud",
            },
            [
                "setting log_level (from ORCHARDIST_LOG_LEVEL): "
                "expected 'debug', 'info', 'warning' or 'error', got 'loud'",
                "setting smtp.port (from ORCHARDIST_SMTP__PORT): "
                "expected a number greater than or equal to 1, got '0'",
            ],
        ),
    ],
    ids=["unknown variables", "wrong values"],
)
def test_environment_mistakes_are_named(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    expected: list[str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert _refusal(tmp_path).splitlines() == expected


def test_settings_and_allowed_variables_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHARDIST_TEST_POSTGRES_URL", "postgresql://nowhere/x")
    monkeypatch.setenv("ORCHARDIST_APNS_URL", "https://127.0.0.1:1")
    monkeypatch.setenv("ORCHARDIST_SMTP__HOST", "mail.test")
    monkeypatch.setenv("orchardist_log_level", "DEBUG")  # matched case-insensitively
    settings = load_settings(tmp_path)
    assert settings.apns_url == "https://127.0.0.1:1"
    assert settings.smtp is not None
    assert settings.smtp.host == "mail.test"
    assert settings.log_level == "debug"
    assert "ORCHARDIST_TEST_POSTGRES_URL" in NON_SETTING_VARIABLES


def test_a_wrong_type_in_the_file_is_one_line(tmp_path: Path) -> None:
    write_config(tmp_path, {"certificate_validity_days": "ten"})
    refused = _refusal(tmp_path)
    assert refused == (
        f"setting certificate_validity_days (from {tmp_path / 'orchardist.toml'}): "
        "expected a valid integer, unable to parse string as an integer, got 'ten'"
    )


def test_a_missing_table_key_is_named(tmp_path: Path) -> None:
    write_config(tmp_path, {"sms": {"account": "AC1"}})
    refused = _refusal(tmp_path)
    assert refused == (
        f"setting sms.url (from {tmp_path / 'orchardist.toml'}): required, but not given"
    )


def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    secrets = {"scep_static_challenge": 31415926, "smtp": {"host": "m", "password": 27182818}}
    write_config(tmp_path, secrets)
    refused = _refusal(tmp_path)
    message = refused
    assert "setting scep_static_challenge" in message
    assert "setting smtp.password" in message
    assert "got a int" in message
    assert "31415926" not in message
    assert "27182818" not in message


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "orchardist.toml").write_text('hostname = "unterminated\n')
    with pytest.raises(SettingsError, match=r"orchardist\.toml: cannot read it: "):
        load_settings(tmp_path)


def test_public_url(tmp_path: Path) -> None:
    assert load_settings(tmp_path, hostname="mdm.test").base_url == "https://mdm.test:8443"
    given = load_settings(tmp_path, public_url="https://mdm.example.com/")
    assert (given.base_url, given.public_listen_port) == ("https://mdm.example.com", 443)
    refusal = r"^setting public_url \(from the command line\): expected a"
    for bad in ("mdm.example.com:8443", "ftp://mdm.example.com", "https://h:99999", "https://h/?x"):
        with pytest.raises(SettingsError, match=refusal):
            load_settings(tmp_path, public_url=bad)


def _refusal(data_dir: Path) -> str:
    """The message of the SettingsError that loading the data dir's settings raises."""
    with pytest.raises(SettingsError) as refused:
        load_settings(data_dir)
    return str(refused.value)
