"""BytebaseClient against the local fake server over real sockets: auth, retries, errors."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from schema_pipeline.backends.bytebase import (
    BytebaseAuthError,
    BytebaseClient,
    BytebaseError,
    BytebaseSettings,
    BytebaseVersionError,
)
from schema_pipeline_tests.fake_bytebase import FakeBytebase

TARGETS = {
    "test": ("instances/test-sample-instance/databases/hr_test",),
    "prod": ("instances/prod-sample-instance/databases/hr_prod",),
}


@pytest.fixture
def fake() -> Iterator[FakeBytebase]:
    with FakeBytebase() as server:
        yield server


@pytest.fixture(params=["connect", "rest"])
def protocol(request) -> str:
    return request.param


def make_settings(url: str, secret: str, protocol: str = "connect", **kw) -> BytebaseSettings:
    base = dict(
        url=url,
        project="projects/hr",
        targets=TARGETS,
        service_account="api@service.bytebase.com",
        service_account_secret=secret,
        protocol=protocol,
        timeout=5.0,
        backoff_base=0.01,
        backoff_max=0.05,
    )
    base.update(kw)
    return BytebaseSettings(**base)


def make_client(fake: FakeBytebase, protocol: str = "connect", **kw) -> tuple[BytebaseClient, list[float]]:
    sleeps: list[float] = []
    client = BytebaseClient(make_settings(fake.url, fake.secret, protocol, **kw), sleep=sleeps.append)
    return client, sleeps


def assert_clean(message: str, fake: FakeBytebase, client: BytebaseClient | None = None) -> None:
    assert fake.secret not in message
    for token in fake.tokens:
        assert token not in message
    if client is not None and client._token:
        assert client._token not in message


def test_login_once_and_token_reuse(fake, protocol):
    client, _ = make_client(fake, protocol)
    assert client.check_version() == "3.21.0"
    client.get_database(TARGETS["test"][0])
    client.get_database(TARGETS["prod"][0])
    assert fake.logins == 1 and client.login_count == 1
    authed = [r for r in fake.requests if r.procedure != "AuthService/Login"]
    assert len(authed) == 3
    assert len({r.authorization for r in authed}) == 1
    assert all(r.protocol == protocol for r in fake.requests)
    login = fake.requests[0]
    assert login.procedure == "AuthService/Login"
    assert login.path == ("/v1/auth/login" if protocol == "rest" else "/bytebase.v1.AuthService/Login")
    assert "web" not in login.body


def test_relogin_once_on_401(fake, protocol):
    client, sleeps = make_client(fake, protocol)
    client.check_version()
    fake.expire_token_once = True
    db = client.get_database(TARGETS["test"][0])
    assert db["name"] == TARGETS["test"][0]
    assert fake.logins == 2
    assert sleeps == []  # the auth retry is not a backoff retry


def test_second_401_after_relogin_fails(fake):
    client, _ = make_client(fake)
    client.check_version()
    original = fake._authenticate
    calls = {"n": 0}

    def always_expired(auth):
        calls["n"] += 1
        fake.tokens.clear()
        from schema_pipeline_tests.fake_bytebase import RpcError

        raise RpcError("unauthenticated", "access token expired")

    fake._authenticate = always_expired
    try:
        with pytest.raises(BytebaseAuthError) as err:
            client.get_database(TARGETS["test"][0])
    finally:
        fake._authenticate = original
    assert calls["n"] == 2  # original call + exactly one retry after the re-login
    assert fake.logins == 2
    assert "HTTP 401" in str(err.value)
    assert_clean(str(err.value), fake, client)


def test_bad_secret_is_an_auth_error_without_the_secret(fake, protocol):
    fake.leak_secret_in_errors = True  # the server echoes the password; we must scrub it
    client, _ = make_client(fake, protocol, service_account_secret="wrong-secret-value-9")
    with pytest.raises(BytebaseAuthError) as err:
        client.check_version()
    msg = str(err.value)
    assert "HTTP 401" in msg and "email or password is not valid" in msg
    assert "Login" in msg or "/v1/auth/login" in msg
    assert "wrong-secret-value-9" not in msg
    assert "***" in msg


def test_rejected_access_token_is_reported_without_the_token(fake, protocol):
    settings = make_settings(
        fake.url,
        fake.secret,
        protocol,
        service_account=None,
        service_account_secret=None,
        access_token="tok-not-valid-1234",
    )
    client = BytebaseClient(settings)
    with pytest.raises(BytebaseAuthError) as err:
        client.check_version()
    msg = str(err.value)
    assert "HTTP 401" in msg and "access token" in msg
    assert "tok-not-valid-1234" not in msg
    assert fake.logins == 0


def test_access_token_is_used_directly(fake):
    token = "tok-preissued-abcdef"
    fake.tokens.add(token)
    settings = make_settings(
        fake.url, fake.secret, service_account=None, service_account_secret=None, access_token=token
    )
    client = BytebaseClient(settings)
    assert client.check_version() == "3.21.0"
    assert fake.logins == 0
    assert fake.requests[-1].authorization == f"Bearer {token}"


def test_retries_transient_statuses_with_exponential_backoff(fake, protocol):
    client, sleeps = make_client(fake, protocol, max_attempts=4)
    client.check_version()
    fake.fail_next = [503, 502, 429]
    assert client.get_database(TARGETS["test"][0])["name"] == TARGETS["test"][0]
    assert sleeps == [0.01, 0.02, 0.04]


def test_retries_are_bounded_and_the_error_names_the_call(fake, protocol):
    client, sleeps = make_client(fake, protocol, max_attempts=3)
    client.check_version()
    fake.fail_next = [504] * 10
    with pytest.raises(BytebaseError) as err:
        client.get_database(TARGETS["test"][0])
    msg = str(err.value)
    assert len(sleeps) == 2
    assert "HTTP 504" in msg
    if protocol == "rest":
        assert "GET /v1/instances/test-sample-instance/databases/hr_test" in msg
    else:
        assert "POST /bytebase.v1.DatabaseService/GetDatabase" in msg
    assert err.value.status == 504
    assert_clean(msg, fake, client)


def test_non_transient_errors_are_not_retried(fake, protocol):
    client, sleeps = make_client(fake, protocol)
    client.check_version()
    fake.fail_next = [500]
    with pytest.raises(BytebaseError, match="HTTP 500"):
        client.get_database(TARGETS["test"][0])
    assert sleeps == []


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    client = BytebaseClient(
        make_settings(f"http://127.0.0.1:{port}", "sa-secret-zz", max_attempts=3), sleep=sleeps.append
    )
    with pytest.raises(BytebaseError) as err:
        client.check_version()
    msg = str(err.value)
    assert "failed after 3 attempts" in msg and "ConnectError" in msg and "Login" in msg
    assert len(sleeps) == 2
    assert "sa-secret-zz" not in msg


def test_malformed_json_is_reported(fake, protocol):
    client, _ = make_client(fake, protocol)
    client.check_version()
    fake.malformed_next = 1
    with pytest.raises(BytebaseError) as err:
        client.get_database(TARGETS["prod"][0])
    msg = str(err.value)
    assert "not JSON" in msg and "HTTP 200" in msg and "502 Bad Gateway" in msg
    expected = "DatabaseService/GetDatabase" if protocol == "connect" else f"GET /v1/{TARGETS['prod'][0]}"
    assert expected in msg
    assert_clean(msg, fake, client)


def test_server_error_message_is_carried(fake, protocol):
    client, _ = make_client(fake, protocol)
    with pytest.raises(BytebaseError) as err:
        client.get_plan("projects/hr/plans/999")
    msg = str(err.value)
    assert "HTTP 404" in msg and 'plan "projects/hr/plans/999" not found' in msg
    assert err.value.server_message == 'plan "projects/hr/plans/999" not found'
    assert err.value.code == ("not_found" if protocol == "connect" else "5")


@pytest.mark.parametrize("version", ["3.13.2", "2.99.0"])
def test_unsupported_version_is_refused_clearly(protocol, version):
    with FakeBytebase(version=version) as fake:
        client, _ = make_client(fake, protocol)
        with pytest.raises(BytebaseVersionError) as err:
            client.check_version()
    msg = str(err.value)
    assert version in msg and "3.14 or newer" in msg and "native backend" in msg


@pytest.mark.parametrize("version", ["3.14.0", "3.21.1", "cloud-20260801", "development"])
def test_supported_versions(version):
    with FakeBytebase(version=version) as fake:
        client, _ = make_client(fake)
        assert client.check_version() == version


def test_scrub_hides_bearer_tokens_and_secrets(fake):
    client, _ = make_client(fake)
    client.login()
    token = client._token
    text = client.scrub(f"Authorization: Bearer {token} pw={fake.secret}")
    assert token not in text and fake.secret not in text


def test_retryable_error_codes_are_retried_whatever_the_status(fake, protocol):
    """The action's rule: Unknown whose message says the connection broke is transient."""
    client, sleeps = make_client(fake, protocol)
    client.check_version()
    fake.fail_next = [(500, "unknown", "read tcp 10.0.0.7:5432: connection reset by peer")]
    assert client.get_database(TARGETS["test"][0])["name"] == TARGETS["test"][0]
    assert sleeps == [0.01]
    fake.fail_next = [(500, "unknown", "runtime error: invalid memory address")]
    with pytest.raises(BytebaseError, match="HTTP 500.*invalid memory address"):
        client.get_database(TARGETS["test"][0])
    assert sleeps == [0.01]  # not retried


def test_hung_server_hits_the_bounded_request_timeout(fake, protocol):
    client, _ = make_client(fake, protocol, timeout=0.3)
    client.check_version()
    fake.delay_next = [3.0]
    started = time.monotonic()
    with pytest.raises(BytebaseError) as err:
        client.get_plan("projects/hr/plans/1")
    assert time.monotonic() - started < 2.0
    msg = str(err.value)
    assert "timed out after 0.3s" in msg
    assert ("PlanService/GetPlan" if protocol == "connect" else "GET /v1/projects/hr/plans/1") in msg
    assert_clean(msg, fake, client)


def test_server_without_the_actuator_endpoint_is_refused_clearly(fake, protocol):
    fake.unimplemented = {"ActuatorService/GetActuatorInfo"}
    client, _ = make_client(fake, protocol)
    with pytest.raises(BytebaseVersionError) as err:
        client.check_version()
    msg = str(err.value)
    assert "does not answer" in msg and "3.14" in msg
    assert ("ActuatorService/GetActuatorInfo" if protocol == "connect" else "/v1/actuator/info") in msg


def test_rejected_token_with_an_account_but_no_secret_does_not_try_to_log_in(fake):
    settings = make_settings(
        fake.url, fake.secret, service_account_secret=None, access_token="tok-stale-98765"
    )
    with pytest.raises(BytebaseAuthError, match="access token was rejected") as err:
        BytebaseClient(settings).check_version()
    assert fake.logins == 0 and "tok-stale-98765" not in str(err.value)
