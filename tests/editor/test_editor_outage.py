"""PostgreSQL stopped while sounds are uploaded and challenges created: every request that fails answers 503
`livecore:unavailable`, and nothing half-written remains (no record without its audio, no audio without its record,
no challenge holding its hashtag)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from soundclient import make_audio, new_sound, post_json, upload_sound

from editor import EDITOR
from livecore.embedded import EmbeddedPostgres

PROBLEM = "application/problem+json"
UPLOADS_MAX = 40
ACCEPTED_BEFORE_THE_STOP = 2
FAILURES_WANTED = 3


async def test_sound_uploads_and_challenges_while_postgres_stops(
        own_postgres: EmbeddedPostgres, node_factory) -> None:  # type: ignore[no-untyped-def]
    # The account stays cached through the outage, so each upload is read and checked and fails at its insert.
    node = await node_factory(database_url=own_postgres.url, account_cache_ms=600_000)
    creator = await node.signup()
    token = creator["token"]
    sound = await new_sound(node, token)
    audio = make_audio(seconds=1.5)
    answers: list[tuple[int, str, Any]] = []
    some_accepted, stopped = asyncio.Event(), asyncio.Event()

    async def keep_uploading() -> None:
        failures = 0
        for index in range(UPLOADS_MAX):
            status, body = await upload_sound(node, token, audio, title=f"take {index}")
            answers.append((status, f"take {index}", body))
            if sum(1 for s, _, _ in answers if s == 201) >= ACCEPTED_BEFORE_THE_STOP:
                some_accepted.set()
            if stopped.is_set() and status >= 500:
                failures += 1
                if failures >= FAILURES_WANTED:
                    return
        raise AssertionError("the uploads never failed while PostgreSQL was stopped")

    async def stop_postgres_after_some_uploads() -> None:
        await some_accepted.wait()
        await asyncio.to_thread(own_postgres.stop)
        stopped.set()

    await asyncio.gather(keep_uploading(), stop_postgres_after_some_uploads())
    tag = f"outage{secrets.token_hex(4)}"
    status, problem = await post_json(node, "/api/challenges", {"hashtag": tag, "description": "during the outage",
                                                                "sound_id": sound["id"]}, token)
    assert (status, problem["type"], problem["unavailable"]) == (503, "livecore:unavailable", "database"), problem
    for status, _, body in answers:
        assert status == 201 or (status == 503 and body["type"] == "livecore:unavailable"
                                 and body["unavailable"] == "database"), (status, body)

    await asyncio.to_thread(own_postgres.start)
    editor = node.app[EDITOR]
    pool = node.node.pool
    for _ in range(50):  # the pool's connections died with the server: the first queries after may fail once
        try:
            await pool.fetchval("SELECT 1")
            break
        except Exception:
            await asyncio.sleep(0.1)
    accepted = {body["id"] for status, _, body in answers if status == 201}
    rows = {r["id"]: r["audio_file"] for r in await pool.fetch("SELECT id, audio_file FROM sounds")}
    assert accepted <= rows.keys()
    files = editor.sounds.files
    for sound_id, audio_file in rows.items():  # no record without its audio
        assert files.own(audio_file).is_file(), sound_id
    # Each refused upload was checked and written before its insert failed, and removed at once: the database holds
    # the audio with the record, so this node's file is never the only copy. Nothing is left for the sweep.
    left = {path.name for path in files.root.glob("*.m4a")}
    assert left == set(rows.values())  # no audio without its record
    assert await editor.sounds.remove_orphans(older_than_s=0) == 0
    assert await pool.fetchval("SELECT count(*) FROM sounds s WHERE NOT EXISTS"
                               " (SELECT 1 FROM sound_audio a WHERE a.sound_id = s.id)") == 0
    assert not list(files.root.glob("*.tmp")) and not list((files.root / "uploads").iterdir())

    assert await pool.fetchval("SELECT count(*) FROM challenges WHERE hashtag = $1", tag) == 0
    status, challenge = await post_json(node, "/api/challenges", {"hashtag": tag, "description": "after it",
                                                                  "sound_id": sound["id"]}, token)
    assert status == 201 and challenge["hashtag"] == tag, challenge
    status, again = await upload_sound(node, token, audio, title="after the outage")
    assert status == 201, again
