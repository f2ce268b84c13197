"""Issue 12.3: `config show` lists every effective setting with its origin (flag, env, profile,
file, default), secrets masked; `config path`; named profiles chosen by --profile or
MCPADMIN_PROFILE with precedence flag > env > profile > file > default."""

from __future__ import annotations

import pytest

PASSWORD = "canary-redis-pw-7Qz9XkLm"
URL_PASSWORD = "canary-url-pw-4Rt8Wq"


def write_config(tmp_path, text):
    path = tmp_path / "config" / "mcpadmin" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


CONFIG = f'''
store = "sqlite:////file/keys.db"
namespace = "filens"
redis_password = "{PASSWORD}"
log_group = "/mcp/file"
default_expires = "90d"
[argon2]
parallelism = 2
[profile.prod]
store = "rediss://admin:{URL_PASSWORD}@cache.internal:6379/0"
namespace = "prodns"
[profile.prod.argon2]
parallelism = 3
[profile.dev]
store = "sqlite:////dev/keys.db"
'''


def show(cli, *args, env=None):
    r = cli(*args, "config", "show", "-o", "json", env=env)
    assert r.code == 0, r.stderr
    return {row["setting"]: (row["value"], row["origin"]) for row in r.json()}


def test_every_origin_and_the_precedence(cli, tmp_path):
    write_config(tmp_path, CONFIG)
    s = show(cli)
    assert s["store"] == ("sqlite:////file/keys.db", "file")
    assert s["namespace"] == ("filens", "file")
    assert s["argon2.parallelism"] == (2, "file")
    assert s["argon2.time_cost"] == (1, "env")  # the suite's fast argon2 comes from the environment
    assert s["audit_maxlen"] == (100000, "default")
    assert s["profile"] == (None, "default")
    assert s["default_expires"] == ("90d", "file")
    s = show(cli, "--profile", "prod")
    assert s["store"] == ("rediss://admin:********@cache.internal:6379/0", "profile")
    assert s["namespace"] == ("prodns", "profile") and s["argon2.parallelism"] == (3, "profile")
    assert s["log_group"] == ("/mcp/file", "file")  # not in the profile: the top level applies
    assert s["profile"] == ("prod", "flag")
    s = show(cli, env={"MCPADMIN_PROFILE": "prod", "MCPADMIN_NAMESPACE": "envns"})
    assert s["profile"] == ("prod", "env") and s["namespace"] == ("envns", "env")
    s = show(cli, "--profile", "dev", env={"MCPADMIN_PROFILE": "prod"})  # the flag beats the env
    assert s["store"] == ("sqlite:////dev/keys.db", "profile")
    r = cli("config", "show", "--namespace", "flagns", "-o", "json", env={"MCPADMIN_NAMESPACE": "envns"})
    assert {row["setting"]: row for row in r.json()}["namespace"]["origin"] == "flag"


def test_profile_selects_the_store_other_commands_use(cli, tmp_path):
    dev = tmp_path / "dev.db"
    write_config(tmp_path, f'[profile.dev]\nstore = "sqlite:///{dev}"\n')
    created = cli("--profile", "dev", "keys", "create", "p", "--scope", "tools:read", "--expires", "1d")
    assert created.code == 0, created.stderr
    assert dev.exists()
    assert cli("keys", "show", "p", env={"MCPADMIN_PROFILE": "dev"}).code == 0
    assert cli("keys", "show", "p").code == 3  # the default store: missing, not created


def test_secrets_are_masked_in_every_format(cli, tmp_path):
    write_config(tmp_path, CONFIG)
    for fmt in ("table", "json", "csv"):
        for args in (("--profile", "prod"), ()):
            r = cli(*args, "config", "show", "-o", fmt)
            assert r.code == 0, r.stderr
            for secret in (PASSWORD, URL_PASSWORD):
                for i in range(len(secret) - 5):  # no piece of it, not even a prefix
                    assert secret[i:i + 6] not in r.stdout + r.stderr, (fmt, args)
            assert "********" in r.stdout


def test_password_from_the_environment_is_masked_too(cli, tmp_path):
    s = show(cli, env={"MCPADMIN_REDIS_PASSWORD": PASSWORD})
    assert s["redis_password"] == ("********", "env")
    assert show(cli)["redis_password"] == (None, "default")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_unknown_profile_is_an_error(cli, tmp_path, how):
    write_config(tmp_path, CONFIG)
    args = ("--profile", "staging") if how == "flag" else ()
    r = cli(*args, "keys", "list", env={"MCPADMIN_PROFILE": "staging"} if how == "env" else None)
    assert r.code == 2 and r.stderr.count("\n") == 1 and "'staging'" in r.stderr
    assert "dev, prod" in r.stderr


def test_profile_without_a_config_file_is_an_error(cli):
    r = cli("--profile", "prod", "config", "show")
    assert r.code == 2 and "'prod'" in r.stderr


def test_config_path(cli, tmp_path):
    r = cli("config", "path")
    expected = tmp_path / "config" / "mcpadmin" / "config.toml"
    assert r.code == 0 and r.stdout == f"{expected}\n" and "does not exist" in r.stderr
    write_config(tmp_path, "")
    r = cli("config", "path")
    assert r.code == 0 and r.stdout == f"{expected}\n" and r.stderr == ""
    other = tmp_path / "elsewhere.toml"
    r = cli("config", "path", env={"MCPADMIN_CONFIG": str(other)})
    assert r.stdout == f"{other}\n"
    other.write_text('namespace = "x"\n')
    s = show(cli, env={"MCPADMIN_CONFIG": str(other)})
    assert s["config_file"] == (str(other), "env") and s["namespace"] == ("x", "file")


def test_config_show_quiet_and_table(cli, tmp_path):
    r = cli("config", "show", "-q")
    assert r.code == 0 and "store\n" in r.stdout and "namespace\n" in r.stdout
    r = cli("config", "show")
    assert r.code == 0 and "ORIGIN" in r.stdout and "default" in r.stdout
