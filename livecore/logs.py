"""Structured logs: one JSON object per line on stderr, with the node id on every record."""

from __future__ import annotations

import logging
import sys

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "node": self.node_id,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str, node_id: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(node_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that narrate every request or ICE check at INFO would bury the node's own records (a viewer joining
    # is about ten aioice lines); they speak at WARNING unless the node runs at DEBUG.
    quiet = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for chatty in CHATTY_LIBRARIES:
        logging.getLogger(chatty).setLevel(quiet)


CHATTY_LIBRARIES = ("aiohttp.access", "aioice", "aiortc")
