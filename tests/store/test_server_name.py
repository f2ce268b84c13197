"""MCPADMIN_REDIS_SERVER_NAME / --redis-server-name: TLS to 127.0.0.1 (a tunnel's end) verified
against the cache's real name, on a real TLS Redis whose certificate names only that host; and
the Redis password read from Secrets Manager (moto) by MCPADMIN_REDIS_PASSWORD_SECRET_ARN."""

from __future__ import annotations

import ssl

import pytest
import trustme

from finops_mcp_admin.errors import BackendUnavailable, InvalidInput
from finops_mcp_admin.store.redis import RedisStore
from tests.redis_server import TlsTerminator, free_port, server_binary, start_tls_redis

CACHE_NAME = "cache.example.internal"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def named_tls_redis(redis_server, tmp_path_factory, ca):
    """(port, CA file) of a TLS Redis whose certificate names only cache.example.internal."""
    workdir = tmp_path_factory.mktemp("tls-named")
    port, handle = start_tls_redis(server_binary(), workdir, redis_server, ca, hostname=CACHE_NAME)
    yield port, str(workdir / "ca.pem")
    if hasattr(handle, "stop"):
        handle.stop()


def test_the_server_name_makes_a_tunnelled_address_verify(cli, named_tls_redis):
    port, ca_file = named_tls_redis
    env = {"MCPADMIN_REDIS_CA": ca_file, "MCPADMIN_NAMESPACE": "sni",
           "MCPADMIN_REDIS_SERVER_NAME": CACHE_NAME, "MCPADMIN_STORE": f"rediss://127.0.0.1:{port}/0"}
    created = cli("keys", "create", "through-tunnel", "-q", env=env)
    assert created.code == 0, created.stderr
    verified = cli("keys", "verify", stdin=created.stdout, env=env)
    assert verified.code == 0, verified.stderr


def test_the_flag_works_like_the_variable(cli, named_tls_redis):
    port, ca_file = named_tls_redis
    r = cli("keys", "list", "--store", f"rediss://127.0.0.1:{port}/0", "--redis-server-name", CACHE_NAME,
            env={"MCPADMIN_REDIS_CA": ca_file})
    assert r.code == 0, r.stderr


def test_without_the_server_name_the_address_fails_verification(cli, named_tls_redis):
    port, ca_file = named_tls_redis
    r = cli("keys", "list", "--store", f"rediss://127.0.0.1:{port}/0", env={"MCPADMIN_REDIS_CA": ca_file})
    assert r.code == 5 and r.stderr.count("\n") == 1, r.stderr
    assert "certificate" in r.stderr and "127.0.0.1" in r.stderr and "Traceback" not in r.stderr


def test_a_wrong_server_name_fails_verification(cli, named_tls_redis):
    port, ca_file = named_tls_redis
    r = cli("keys", "list", "--store", f"rediss://127.0.0.1:{port}/0",
            "--redis-server-name", "other.example.internal", env={"MCPADMIN_REDIS_CA": ca_file})
    assert r.code == 5 and r.stderr.count("\n") == 1, r.stderr
    assert "certificate" in r.stderr and "other.example.internal" in r.stderr


def test_a_server_name_is_verified_even_with_cert_checks_turned_off_in_the_url(named_tls_redis):
    # Fail closed: ?ssl_cert_reqs=none in the URL must not silently disable the named check.
    port, ca_file = named_tls_redis
    with pytest.raises(BackendUnavailable, match="certificate"):
        RedisStore(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none", ca_file=ca_file,
                   server_name="other.example.internal")


def test_a_server_name_without_tls_is_refused(cli, redis_server):
    r = cli("keys", "list", "--store", redis_server.url, "--redis-server-name", CACHE_NAME)
    assert r.code == 2 and r.stderr.count("\n") == 1 and "rediss://" in r.stderr
    with pytest.raises(InvalidInput):
        RedisStore(redis_server.url, server_name=CACHE_NAME)


def test_the_server_name_is_sent_as_sni(redis_server, ca):
    # A TLS front that records the SNI it receives, in front of the real server.
    seen: list[str | None] = []
    cert = ca.issue_cert(CACHE_NAME)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ctx.sni_callback = lambda _sock, name, _ctx: seen.append(name)
    front = TlsTerminator(redis_server.port, ctx)
    with ca.cert_pem.tempfile() as ca_file:
        RedisStore(f"rediss://127.0.0.1:{front.port}/0", ca_file=ca_file, server_name=CACHE_NAME).close()
    assert seen and set(seen) == {CACHE_NAME}


# --- the Redis password from Secrets Manager -------------------------------------------------


@pytest.fixture
def password_secret(aws_env, admin_password) -> str:
    import boto3

    sm = boto3.client("secretsmanager", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    return sm.create_secret(Name=f"redis-auth-{free_port()}", SecretString=admin_password)["ARN"]


def test_the_password_is_read_from_secrets_manager_and_never_shown(cli, redis_server, password_secret,
                                                                    admin_password):
    env = {"MCPADMIN_STORE": redis_server.admin_url, "MCPADMIN_REDIS_PASSWORD_SECRET_ARN": password_secret,
           "MCPADMIN_NAMESPACE": "secretarn"}
    created = cli("keys", "create", "from-secret", env=env)
    assert created.code == 0, created.stderr
    listed = cli("keys", "list", "-o", "json", env=env)
    assert listed.code == 0 and "from-secret" in listed.stdout
    for r in (created, listed):
        assert admin_password not in r.stdout + r.stderr


def test_a_wrong_password_in_the_secret_is_permission_denied(cli, redis_server, aws_env):
    import boto3

    sm = boto3.client("secretsmanager", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    arn = sm.create_secret(Name=f"redis-wrong-{free_port()}", SecretString="not-the-password")["ARN"]
    r = cli("keys", "list", "--store", redis_server.admin_url,
            env={"MCPADMIN_REDIS_PASSWORD_SECRET_ARN": arn})
    assert r.code == 6 and r.stderr.count("\n") == 1 and "not-the-password" not in r.stderr


def test_a_missing_secret_is_one_line_not_found(cli, redis_server, aws_env):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret-AbCdEf"
    r = cli("keys", "list", "--store", redis_server.admin_url,
            env={"MCPADMIN_REDIS_PASSWORD_SECRET_ARN": arn})
    assert r.code == 3 and r.stderr.count("\n") == 1, r.stderr


def test_a_sqlite_store_never_calls_aws_for_the_secret(cli, tmp_path):
    # The ARN is set but AWS is unreachable: a SQLite command must not care.
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"
    env = {"MCPADMIN_REDIS_PASSWORD_SECRET_ARN": arn,
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "y"}
    assert cli("cors", "add", "https://a.example", "--store", f"sqlite:///{tmp_path / 'k.db'}").code == 0
    r = cli("keys", "list", "--store", f"sqlite:///{tmp_path / 'k.db'}", env=env)
    assert r.code == 0, r.stderr
