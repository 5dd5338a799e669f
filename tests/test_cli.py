"""The command line: `livecore serve --help` explains every setting; `livecore grant` gives roles."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import aioice.ice
import pytest
import yarl
from livenode import Servers, unique_username

from livecore.cli import build_parser
from livecore.config import Settings, env_name, settings_from_env
from livecore.startup import ExitCode, StartupError, mask_url


def test_serve_help_lists_every_setting_with_its_environment_variable() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    for f in dataclasses.fields(Settings):
        assert "--" + f.name.replace("_", "-") in text
        assert env_name(f.name) in text


def test_serve_help_lists_the_exit_statuses() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    for code in ExitCode:
        if code != ExitCode.CHECK_FAILED:
            assert f"  {code.value}  " in text


def test_settings_from_environment_and_flags() -> None:
    settings = settings_from_env({"LIVECORE_CHAT_CHARS_MAX": "42", "LIVECORE_SEED_DEMO": "no"}, port=9000)
    assert settings.chat_chars_max == 42 and settings.seed_demo is False and settings.node_id == "127.0.0.1-9000"
    flagged = settings_from_env({"LIVECORE_CHAT_CHARS_MAX": "42"}, flags={"chat_chars_max": "43"})
    assert flagged.chat_chars_max == 43  # flags win
    assert settings_from_env({}, flags={"host": "::1"}).public_url == "http://[::1]:8080"


def test_the_internal_url_is_this_nodes_own_address_by_default() -> None:
    local = settings_from_env({}, flags={"port": "9000", "public_url": "https://live.example.com"})
    assert local.internal_url == "http://127.0.0.1:9000" and local.public_url == "https://live.example.com"
    assert settings_from_env({}, flags={"host": "::1"}).internal_url == "http://[::1]:8080"
    wildcard = yarl.URL(settings_from_env({}, flags={"host": "0.0.0.0"}).internal_url)
    assert wildcard.host in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)  # reachable, not 0.0.0.0
    assert wildcard.port == 8080
    chosen = settings_from_env({"LIVECORE_INTERNAL_URL": "http://10.0.0.11:8080"}, flags={"host": "0.0.0.0"})
    assert chosen.internal_url == "http://10.0.0.11:8080"


@pytest.mark.parametrize(("environ", "flags", "line"), [
    ({"LIVECORE_PORT": "eighty"}, {}, "livecore: LIVECORE_PORT=eighty: not a whole number"),
    ({}, {"port": "70000"}, "livecore: --port=70000: out of range (1 to 65535)"),
    ({"LIVECORE_SEED_DEMO": "perhaps"}, {}, "LIVECORE_SEED_DEMO=perhaps: not a boolean"),
    ({"LIVECORE_PRESENCE_TTL_MS": "500"}, {}, "presence_refresh_ms (1000) must be below presence_ttl_ms (500)"),
    ({"LIVECORE_MEDIA_HISTORY_PACKETS": "500"}, {}, "must be a power of two"),
    ({"LIVECORE_LOG_LEVEL": "chatty"}, {}, "must be one of DEBUG, INFO, WARNING, ERROR"),
    ({"LIVECORE_REDIS_URL": "http://cache:6379"}, {}, "must be a redis:// or rediss:// or "
     "unix:// or redis+cluster:// or rediss+cluster:// URL"),
    ({"LIVECORE_DATABASE_URL": "postgresql://app:s3cret@db/app?sslmode=require"}, {"port": "0"}, "--port=0"),
    ({"LIVECORE_STRIPE_WEBHOOK_SECRETS": "whsec_a,sk_test_oops"}, {},
     "LIVECORE_STRIPE_WEBHOOK_SECRETS=whsec_***,sk_test_***: secret 2 does not start with whsec_"),
    ({"LIVECORE_STRIPE_KEY": "sk_live_oops"}, {},
     "LIVECORE_STRIPE_KEY: not a livecore setting (did you mean LIVECORE_STRIPE_SECRET_KEY?)"),
])
def test_bad_settings_are_one_line_naming_where_they_came_from(
    environ: dict[str, str], flags: dict[str, str], line: str
) -> None:
    with pytest.raises(StartupError) as refused:
        settings_from_env(environ, flags=flags)
    assert refused.value.code == ExitCode.SETTING
    assert line in refused.value.line() and "\n" not in refused.value.line()
    assert "s3cret" not in refused.value.line() and "oops" not in refused.value.line()


def test_passwords_in_urls_are_masked() -> None:
    assert mask_url("postgresql://app:s3cret@db:5432/app") == "postgresql://app:***@db:5432/app"
    assert mask_url("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert mask_url("postgresql://postgres@127.0.0.1:5432/postgres") == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert "s3cret" not in mask_url("postgresql://db/app?password=s3cret")


async def test_grant_gives_a_role(servers: Servers, node) -> None:  # type: ignore[no-untyped-def]
    name = unique_username()
    await node.signup(name)
    env = {**os.environ, "LIVECORE_DATABASE_URL": servers.database_url}
    done = subprocess.run([sys.executable, "-m", "livecore", "grant", name, "moderator"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    roles = await node.node.pool.fetchval("SELECT roles FROM accounts WHERE username = $1", name)
    assert "moderator" in roles
    missing = subprocess.run([sys.executable, "-m", "livecore", "grant", "no_such_user", "admin"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no account" in missing.stderr


def _serve_settings(argv: list[str], environ: dict[str, str]) -> Settings:
    """What `livecore serve ARGV` runs with, the way main() builds it."""
    args = build_parser().parse_args(["serve", *argv])
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings) if getattr(args, f.name) is not None}
    return settings_from_env(environ, flags=flags)


def test_the_demo_is_on_by_default_only_on_the_embedded_database() -> None:
    embedded = _serve_settings([], {})
    assert embedded.demo is True
    # serve fills in the embedded database's URL later; the decision stands.
    assert embedded.replace(database_url="postgresql://127.0.0.1:5999/livecore").demo is True
    external = {"LIVECORE_DATABASE_URL": "postgresql://db.internal/livecore"}
    assert _serve_settings([], external).demo is False
    assert _serve_settings(["--demo"], external).demo is True
    assert _serve_settings([], {**external, "LIVECORE_DEMO": "on"}).demo is True
    assert _serve_settings(["--no-demo"], {"LIVECORE_DEMO": "on"}).demo is False, "flags win"
    assert _serve_settings(["--demo", "false"], {}).demo is False
    assert _serve_settings(["--no-seed-demo"], {}).demo is False, "no seeded accounts, no demo to log in as"
    with pytest.raises(StartupError, match="seed_demo"):
        _serve_settings(["--demo", "--no-seed-demo"], {})


def test_boolean_flags_take_a_value_or_none() -> None:
    assert _serve_settings(["--recording-enabled", "no"], {}).recording_enabled is False
    assert _serve_settings(["--no-recording-enabled"], {}).recording_enabled is False
    assert _serve_settings(["--recording-enabled"], {"LIVECORE_RECORDING_ENABLED": "0"}).recording_enabled is True
