"""The simulator's own order store: one SQLite file in its data dir, so its orders, their schedule and the
callbacks not yet delivered survive its restart. Every statement is small and local, so they run inline."""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    external_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    seq INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    items TEXT NOT NULL,
    items_cents INTEGER NOT NULL,
    shipping_cents INTEGER NOT NULL,
    service TEXT NOT NULL,
    due_ms INTEGER,
    held_from TEXT,
    tracking TEXT,
    reason TEXT,
    created_ms INTEGER NOT NULL,
    history TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_due ON orders (due_ms) WHERE due_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS webhooks (
    msg_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    order_n INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    dead INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (next_attempt_ms) WHERE delivered_ms IS NULL AND dead = 0;
"""


@dataclass
class Order:
    n: int
    external_id: str
    status: str
    seq: int
    recipient: dict[str, Any]
    items: list[dict[str, Any]]
    items_cents: int
    shipping_cents: int
    service: str
    due_ms: int | None
    held_from: str | None
    tracking: dict[str, Any] | None
    reason: str | None
    created_ms: int
    history: list[dict[str, Any]]

    store: str = ""  # the store's own name, so ids differ between simulators (as between real accounts)

    @property
    def id(self) -> str:
        return f"po_{self.store}_{self.n}"

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "external_id": self.external_id, "status": self.status, "seq": self.seq,
                "recipient": self.recipient, "items": self.items, "service": self.service,
                "costs": {"items_cents": self.items_cents, "shipping_cents": self.shipping_cents,
                          "total_cents": self.items_cents + self.shipping_cents, "currency": "usd"},
                "tracking": self.tracking, "reason": self.reason, "created_ms": self.created_ms,
                "history": self.history}


def order_number(order_id: str, store: str) -> int | None:
    """`po_<store>_12` -> 12; None for anything that is not one of this store's ids."""
    prefix = f"po_{store}_"
    digits = order_id.removeprefix(prefix)
    return int(digits) if order_id.startswith(prefix) and digits.isdigit() and len(digits) < 19 else None


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT INTO meta (key, value) VALUES ('store', ?) ON CONFLICT DO NOTHING",
                         (secrets.token_hex(4),))
        self.name = self.meta("store") or ""

    def close(self) -> None:
        self._db.close()

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                         " SET value = excluded.value", (key, value))

    def add_order(self, external_id: str, recipient: dict[str, Any], items: list[dict[str, Any]], items_cents: int,
                  shipping_cents: int, service: str, now_ms: int) -> Order:
        history = [{"status": "draft", "at_ms": now_ms}]
        self._db.execute(
            "INSERT INTO orders (external_id, status, seq, recipient, items, items_cents, shipping_cents, service,"
            " created_ms, history) VALUES (?, 'draft', 1, ?, ?, ?, ?, ?, ?, ?)",
            (external_id, json.dumps(recipient), json.dumps(items), items_cents, shipping_cents, service, now_ms,
             json.dumps(history)))
        found = self.by_external_id(external_id)
        assert found is not None
        return found

    def by_external_id(self, external_id: str) -> Order | None:
        row = self._db.execute("SELECT * FROM orders WHERE external_id = ?", (external_id,)).fetchone()
        return None if row is None else self._order(row)

    def get(self, order_id: str) -> Order | None:
        n = order_number(order_id, self.name)
        row = None if n is None else self._db.execute("SELECT * FROM orders WHERE n = ?", (n,)).fetchone()
        return None if row is None else self._order(row)

    def due(self, now_ms: int, limit: int) -> list[Order]:
        rows = self._db.execute("SELECT * FROM orders WHERE due_ms <= ? ORDER BY due_ms, n LIMIT ?",
                                (now_ms, limit)).fetchall()
        return [self._order(r) for r in rows]

    def save_transition(self, order: Order, webhook: tuple[str, str, str, int]) -> None:
        """Store the order's new state and the callback announcing it, in one transaction."""
        msg_id, event_type, body, now_wall_ms = webhook
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE orders SET status = ?, seq = ?, due_ms = ?, held_from = ?, tracking = ?, reason = ?,"
                " history = ? WHERE n = ?",
                (order.status, order.seq, order.due_ms, order.held_from,
                 None if order.tracking is None else json.dumps(order.tracking), order.reason,
                 json.dumps(order.history), order.n))
            self._db.execute("INSERT INTO webhooks (msg_id, seq, order_n, type, body, next_attempt_ms)"
                             " VALUES (?, ?, ?, ?, ?, ?)", (msg_id, order.seq, order.n, event_type, body, now_wall_ms))

    def webhooks_due(self, now_wall_ms: int | None, limit: int) -> list[sqlite3.Row]:
        """Callbacks not delivered yet, oldest first: those due by `now_wall_ms`, or all of them when None."""
        if now_wall_ms is None:
            return self._db.execute("SELECT * FROM webhooks WHERE delivered_ms IS NULL AND dead = 0"
                                    " ORDER BY rowid LIMIT ?", (limit,)).fetchall()
        return self._db.execute("SELECT * FROM webhooks WHERE delivered_ms IS NULL AND dead = 0"
                                " AND next_attempt_ms <= ? ORDER BY rowid LIMIT ?", (now_wall_ms, limit)).fetchall()

    def webhooks_of(self, order_n: int) -> list[sqlite3.Row]:
        return self._db.execute("SELECT * FROM webhooks WHERE order_n = ? ORDER BY rowid", (order_n,)).fetchall()

    def delivered(self, msg_id: str, now_wall_ms: int) -> None:
        self._db.execute("UPDATE webhooks SET delivered_ms = ?, attempts = attempts + 1 WHERE msg_id = ?",
                         (now_wall_ms, msg_id))

    def failed_delivery(self, msg_id: str, next_attempt_ms: int, dead: bool) -> None:
        self._db.execute("UPDATE webhooks SET attempts = attempts + 1, next_attempt_ms = ?, dead = ?"
                         " WHERE msg_id = ?", (next_attempt_ms, int(dead), msg_id))


    def _order(self, row: sqlite3.Row) -> Order:
        return Order(row["n"], row["external_id"], row["status"], row["seq"], json.loads(row["recipient"]),
                     json.loads(row["items"]), row["items_cents"], row["shipping_cents"], row["service"],
                     row["due_ms"], row["held_from"], None if row["tracking"] is None else json.loads(row["tracking"]),
                     row["reason"], row["created_ms"], json.loads(row["history"]), self.name)
