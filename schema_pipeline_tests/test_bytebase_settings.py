"""BytebaseSettings, BYTEBASE_TARGETS syntax and state-file loading (no server needed)."""

from __future__ import annotations

import pytest

from schema_pipeline.backends.base import StateFiles
from schema_pipeline.backends.bytebase import BytebaseConfigError, BytebaseSettings, parse_targets

SECRET = "sa-secret-value-123"
BASE_ENV = {
    "BYTEBASE_URL": "https://bb.example.com/",
    "BYTEBASE_SERVICE_ACCOUNT": "api@service.bytebase.com",
    "BYTEBASE_SERVICE_ACCOUNT_SECRET": SECRET,
    "BYTEBASE_PROJECT": "hr",
    "BYTEBASE_TARGETS": "test=instances/i1/databases/hr_test;prod=instances/i1/databases/hr_prod,instances/i2/databases/hr_prod",
}


def test_parse_targets_keeps_promotion_order_and_lists():
    targets = parse_targets(
        " test = instances/i1/databases/a ; prod=instances/i1/databases/b,instances/i2/databases/c;"
    )
    assert list(targets) == ["test", "prod"]
    assert targets["prod"] == ("instances/i1/databases/b", "instances/i2/databases/c")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("instances/i1/databases/a", "has no environment"),
        ("test=", "has no databases"),
        ("test=hr_test", "is not a database name"),
        ("test=instances/i/databases/a;prod=instances/i/databases/a", "listed for both"),
        ("test=instances/i/databases/a;test=instances/i/databases/b", "listed twice"),
        ("  ; ", "is empty"),
    ],
)
def test_parse_targets_errors(text, expected):
    with pytest.raises(BytebaseConfigError, match=expected):
        parse_targets(text)


def test_from_env_normalises_and_hides_the_secret():
    s = BytebaseSettings.from_env(BASE_ENV)
    assert s.url == "https://bb.example.com"
    assert s.project == "projects/hr"
    assert s.targets_for("prod") == ("instances/i1/databases/hr_prod", "instances/i2/databases/hr_prod")
    assert s.bytebase_environment("prod") == "environments/prod"
    assert s.state_file_pattern == "schemas/*.sql"
    assert s.protocol == "connect"
    assert SECRET not in repr(s)


def test_from_env_lists_every_missing_variable():
    with pytest.raises(BytebaseConfigError) as err:
        BytebaseSettings.from_env({})
    msg = str(err.value)
    for name in (
        "BYTEBASE_URL",
        "BYTEBASE_PROJECT",
        "BYTEBASE_TARGETS",
        "BYTEBASE_SERVICE_ACCOUNT",
        "BYTEBASE_ACCESS_TOKEN",
    ):
        assert name in msg


def test_from_env_secret_without_account_names_the_account():
    env = {k: v for k, v in BASE_ENV.items() if k != "BYTEBASE_SERVICE_ACCOUNT"}
    with pytest.raises(BytebaseConfigError, match="missing environment variables: BYTEBASE_SERVICE_ACCOUNT$"):
        BytebaseSettings.from_env(env)


def test_access_token_alone_is_enough_and_environment_mapping():
    env = {k: v for k, v in BASE_ENV.items() if "SERVICE_ACCOUNT" not in k}
    env |= {
        "BYTEBASE_ACCESS_TOKEN": "tok-xyz-secret",
        "BYTEBASE_ENVIRONMENTS": "prod=environments/production",
        "STATE_FILE_PATTERN": "db/**/*.sql",
        "BYTEBASE_PROTOCOL": "REST",
    }
    s = BytebaseSettings.from_env(env)
    assert s.bytebase_environment("prod") == "environments/production"
    assert s.bytebase_environment("test") == "environments/test"
    assert s.state_file_pattern == "db/**/*.sql"
    assert s.protocol == "rest"
    assert "tok-xyz-secret" not in repr(s)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"BYTEBASE_URL": "bb.example.com"}, "absolute http"),
        ({"BYTEBASE_PROJECT": "projects/a/b"}, "BYTEBASE_PROJECT"),
        ({"BYTEBASE_PROTOCOL": "grpc"}, "BYTEBASE_PROTOCOL"),
        ({"BYTEBASE_TIMEOUT": "soon"}, "BYTEBASE_TIMEOUT"),
        ({"BYTEBASE_ENVIRONMENTS": "staging=environments/staging"}, "without targets"),
        ({"BYTEBASE_ENVIRONMENTS": "prod=production"}, "environments/prod"),
    ],
)
def test_from_env_invalid_values(override, expected):
    with pytest.raises(BytebaseConfigError, match=expected):
        BytebaseSettings.from_env(BASE_ENV | override)


def test_unknown_environment_is_a_clear_error():
    s = BytebaseSettings.from_env(BASE_ENV)
    with pytest.raises(BytebaseConfigError, match="no databases for environment 'staging'.*test, prod"):
        s.targets_for("staging")


def test_state_files_glob_and_directory(tmp_path):
    (tmp_path / "schemas" / "sub").mkdir(parents=True)
    (tmp_path / "schemas" / "b.sql").write_text("CREATE TABLE public.b (id int);\n")
    (tmp_path / "schemas" / "a.sql").write_text("CREATE TABLE public.a (id int);\n")
    (tmp_path / "schemas" / "sub" / "c.sql").write_text("CREATE TABLE public.c (id int);\n")
    (tmp_path / "schemas" / "notes.txt").write_text("x")
    flat = StateFiles.load(tmp_path, "schemas/*.sql")
    assert [f.path for f in flat.files] == ["schemas/a.sql", "schemas/b.sql"]
    deep = StateFiles.load(tmp_path, "schemas")
    assert [f.path for f in deep.files] == ["schemas/a.sql", "schemas/b.sql", "schemas/sub/c.sql"]
    assert deep.concatenated().count("CREATE TABLE") == 3
    assert flat.fingerprint != deep.fingerprint
