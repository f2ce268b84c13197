"""Settings precedence (flag > env > file > default) and the time syntax."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from finops_mcp_admin.config import load_settings
from finops_mcp_admin.durations import iso, parse_duration, parse_future, parse_past
from finops_mcp_admin.errors import InvalidInput

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _write_config(tmp_path, text):
    path = tmp_path / "config" / "mcpadmin" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_precedence_flag_env_file_default(tmp_path, monkeypatch):
    monkeypatch.delenv("MCPADMIN_ARGON2_TIME_COST")
    assert load_settings().store_url.endswith("/data/mcpadmin/mcpadmin.db")
    assert load_settings().hash_params.time_cost == 2
    _write_config(tmp_path, 'store = "sqlite:////from/file.db"\nnamespace = "filens"\n'
                            "[argon2]\ntime_cost = 3\n")
    assert load_settings().store_url == "sqlite:////from/file.db"
    assert load_settings().namespace == "filens"
    assert load_settings().hash_params.time_cost == 3
    monkeypatch.setenv("MCPADMIN_STORE", "sqlite:////from/env.db")
    monkeypatch.setenv("MCPADMIN_ARGON2_TIME_COST", "4")
    assert load_settings().store_url == "sqlite:////from/env.db"
    assert load_settings().hash_params.time_cost == 4
    assert load_settings(store="sqlite:////from/flag.db").store_url == "sqlite:////from/flag.db"


def test_config_file_errors_are_one_line(tmp_path, cli):
    _write_config(tmp_path, "store = [unclosed\n")
    r = cli("keys", "list")
    assert r.code == 2 and r.stderr.count("\n") == 1 and "not valid TOML" in r.stderr


def test_cli_flag_beats_env(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("MCPADMIN_STORE", f"sqlite:///{tmp_path / 'env.db'}")
    flag = f"sqlite:///{tmp_path / 'flag.db'}"
    assert cli("keys", "create", "where", "-q", "--store", flag).code == 0
    assert cli("keys", "show", "where", "--store", flag).code == 0
    assert cli("keys", "show", "where").code == 3


def test_default_store_is_created_private(tmp_path, cli):
    assert cli("keys", "create", "first", "-q").code == 0
    db = tmp_path / "data" / "mcpadmin" / "mcpadmin.db"
    assert db.stat().st_mode & 0o777 == 0o600
    assert db.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("text,delta", [("30m", timedelta(minutes=30)), ("24h", timedelta(hours=24)),
                                        ("90d", timedelta(days=90)), ("2w", timedelta(weeks=2)),
                                        ("45s", timedelta(seconds=45)), ("0", timedelta(0)),
                                        (" 7D ", timedelta(days=7))])
def test_durations(text, delta):
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "7", "-3d", "1.5h", "3 days", "P3D", "9x", "99999999999d"])
def test_bad_durations(text):
    with pytest.raises(InvalidInput):
        parse_duration(text)


def test_future_and_past_times():
    assert parse_future("90d", NOW) == NOW + timedelta(days=90)
    assert iso(parse_future("2027-01-31", NOW)) == "2027-01-31T00:00:00Z"
    assert iso(parse_future("2027-01-31T10:00:00+02:00", NOW)) == "2027-01-31T08:00:00Z"
    with pytest.raises(InvalidInput):
        parse_future("2026-11-01", NOW)
    assert parse_past("24h", NOW) == NOW - timedelta(hours=24)
    assert iso(parse_past("2026-11-01T00:00:00Z", NOW)) == "2026-11-01T00:00:00Z"
    with pytest.raises(InvalidInput):
        parse_past("last tuesday", NOW)
