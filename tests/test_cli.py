"""The command line: `livecore serve --help` explains every setting; `livecore grant` gives roles."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

from livenode import Servers, unique_username

from livecore.cli import build_parser
from livecore.config import Settings, env_name, settings_from_env


def test_serve_help_lists_every_setting_with_its_environment_variable() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    for f in dataclasses.fields(Settings):
        assert "--" + f.name.replace("_", "-") in text
        assert env_name(f.name) in text


def test_settings_from_environment_and_bad_values() -> None:
    settings = settings_from_env({"LIVECORE_CHAT_CHARS_MAX": "42", "LIVECORE_SEED_DEMO": "no"}, port=9000)
    assert settings.chat_chars_max == 42 and settings.seed_demo is False and settings.node_id == "127.0.0.1-9000"
    try:
        settings_from_env({"LIVECORE_PORT": "eighty"})
    except ValueError as exc:
        assert "LIVECORE_PORT" in str(exc)
    else:
        raise AssertionError("a bad port must be refused")


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
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)}
    return settings_from_env(environ, **overrides)


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
    try:
        _serve_settings(["--demo", "--no-seed-demo"], {})
    except ValueError as exc:
        assert "seed_demo" in str(exc)
    else:
        raise AssertionError("a demo without its seeded accounts must be refused")


def test_boolean_flags_take_a_value_or_none() -> None:
    assert _serve_settings(["--recording-enabled", "no"], {}).recording_enabled is False
    assert _serve_settings(["--no-recording-enabled"], {}).recording_enabled is False
    assert _serve_settings(["--recording-enabled"], {"LIVECORE_RECORDING_ENABLED": "0"}).recording_enabled is True
