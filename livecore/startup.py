"""What a node says when its set-up is wrong: one line naming the setting, its value (secrets masked) and what to
do, and an exit status per cause, so an operator and a deploy pipeline can both tell the causes apart.
"""

from __future__ import annotations

import enum
import re
from typing import Any

import yarl

SECRET_MASK = "***"


class ExitCode(enum.IntEnum):
    """`livecore serve` and `livecore check` exit with one of these when the set-up is wrong."""

    CHECK_FAILED = 1  # `livecore check`: at least one check failed (its table says which)
    SETTING = 2  # a setting is unknown, malformed or out of range (also argparse's usage errors)
    BIND = 3  # the host or port cannot be listened on
    DATABASE = 4  # PostgreSQL unreachable, refusing the credentials, or missing the database
    REDIS = 5  # Redis unreachable, refusing the credentials, or lacking what the node needs
    EMBEDDED = 6  # an embedded PostgreSQL or Valkey did not start
    DATA_DIR = 7  # the data dir cannot be created or written


EXIT_CODES_HELP = "\n".join(f"  {code.value}  {text}" for code, text in (
    (ExitCode.CHECK_FAILED, "an unexpected error (a traceback follows); for `livecore check`: a check failed"),
    (ExitCode.SETTING, "a setting is unknown, malformed or out of range"),
    (ExitCode.BIND, "the host or port cannot be listened on"),
    (ExitCode.DATABASE, "PostgreSQL is unreachable, refuses the credentials or lacks the database"),
    (ExitCode.REDIS, "Redis is unreachable, refuses the credentials or lacks what the node needs"),
    (ExitCode.EMBEDDED, "an embedded PostgreSQL or Valkey did not start (the tail of its log is shown)"),
    (ExitCode.DATA_DIR, "the data dir cannot be created or written"),
))


class StartupError(Exception):
    """A set-up mistake with a known cause: printed as one line, no traceback."""

    def __init__(self, code: ExitCode, problem: str, remedy: str, *, setting: str | None = None,
                 value: Any = None, label: str | None = None) -> None:
        super().__init__(problem)
        self.code = code
        self.problem = problem
        self.remedy = remedy
        self.setting = setting
        self.value = value
        self.label = label or (setting_label(setting) if setting else None)

    def detail(self) -> str:
        """The line without the program name: `SETTING=value: problem; remedy` (no value when None)."""
        text = f"{self.problem}; {self.remedy}"
        if self.label is None:
            return text
        if self.value is None:
            return f"{self.label}: {text}"
        shown = mask(self.setting, self.value) if self.setting else str(self.value)
        return f"{self.label}={shown}: {text}"

    def line(self) -> str:
        return f"livecore: {self.detail()}"


def env_name(field_name: str) -> str:
    return "LIVECORE_" + field_name.upper()


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def setting_label(field_name: str) -> str:
    """How an error names a setting whose source is not known: both ways to set it."""
    return f"{env_name(field_name)} ({flag_name(field_name)})"


# Settings whose values never appear in a message or a log.
SECRET_SETTINGS = frozenset({"secret", "stripe_secret_key", "stripe_webhook_secrets"})
_KEY_PREFIX = re.compile(r"^((?:sk|rk|pk)_(?:test|live)_|whsec_)")


def mask(field_name: str | None, value: Any) -> str:
    """A setting's value as it may be shown: passwords in URLs and secrets replaced by ***."""
    text = "" if value is None else str(value)
    if field_name in SECRET_SETTINGS:
        return ",".join(_mask_secret(part) for part in text.split(",")) if text else ""
    return mask_url(text) if "://" in text else text


def mask_url(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db (and ?password=); others unchanged."""
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError):
        return SECRET_MASK
    if parsed.password is not None:
        parsed = parsed.with_password(SECRET_MASK)
    if "password" in parsed.query:
        parsed = parsed.update_query(password=SECRET_MASK)
    return str(parsed) if parsed.password is not None or "password" in parsed.query else url


def _mask_secret(secret: str) -> str:
    prefix = _KEY_PREFIX.match(secret.strip())
    return (prefix.group(1) if prefix else "") + SECRET_MASK
