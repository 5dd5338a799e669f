"""Sounds for the demo seed: a few platform tracks (short melodies made with PyAV at seed time, so no audio file is
kept in the repository) and a challenge on one of them, so the editor and the challenge pages have something to
offer on a fresh node."""

from __future__ import annotations

import asyncio
import logging

from editor import challenges
from editor.audio import write_tone
from editor.service import Editor
from editor.templates import ChallengeTemplate

log = logging.getLogger("livecore.editor.demo")

_SEED_LOCK = 0x736F756E  # one advisory lock id for every node seeding the demo sounds
PLATFORM_LICENCE = "livecore platform library: free to use in livecore videos"
# title, artist, notes (Hz), beat (ms), duration (ms)
DEMO_SOUNDS = (
    ("Sunrise Steps", "The Demo Band", (261.6, 329.6, 392.0, 523.3), 250, 12_000),
    ("Night Drive", "Synth Harbour", (220.0, 261.6, 329.6, 293.7), 400, 15_000),
    ("Pocket Groove", "Loop Garden", (196.0, 246.9, 293.7, 246.9), 300, 10_000),
)
DEMO_CHALLENGE = ("sunrisedance", "Dance to Sunrise Steps: three moves, one take. Join with the sound and the hashtag.")
DEMO_TEMPLATE = ChallengeTemplate.model_validate({
    "clips": [{"duration_ms": 4000}] * 3, "texts": [{"text": "#sunrisedance", "x": 40, "y": 1040}],
    "music": {"volume": 0.7}, "caption": "My three moves"}).model_dump(exclude_defaults=True)


async def seed_sounds(editor: Editor, creator_id: int) -> list[int]:
    """Add the platform's demo sounds and the demo challenge unless they are there; the new sound ids."""
    pool = editor.node.pool
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _SEED_LOCK)
        try:
            have = {r["title"] for r in await conn.fetch(
                "SELECT title FROM sounds WHERE uploader_id IS NULL AND title = ANY($1)",
                [title for title, *_ in DEMO_SOUNDS])}
            made = []
            for title, artist, notes, beat_ms, duration_ms in DEMO_SOUNDS:
                if title not in have:
                    made.append(await _add_tone(editor, title, artist, notes, beat_ms, duration_ms))
            first = await conn.fetchval("SELECT id FROM sounds WHERE uploader_id IS NULL AND title = $1",
                                        DEMO_SOUNDS[0][0])
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM challenges WHERE hashtag = $1)",
                                       DEMO_CHALLENGE[0]):
                await challenges.create_challenge(pool, challenges.NewChallenge(
                    DEMO_CHALLENGE[0], DEMO_CHALLENGE[1], first, DEMO_TEMPLATE, creator_id))
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _SEED_LOCK)
    if made:
        log.info("added %d demo sounds", len(made))
    return made


async def _add_tone(editor: Editor, title: str, artist: str, notes: tuple[float, ...], beat_ms: int,
                    duration_ms: int) -> int:
    library = editor.sounds
    name = library.files.new_name()
    path = library.files.own(name)
    await asyncio.to_thread(write_tone, path, notes, beat_ms, duration_ms)
    audio = await asyncio.to_thread(path.read_bytes)
    try:
        async with library.pool.acquire() as conn, conn.transaction():
            sound_id = await conn.fetchval(
                "INSERT INTO sounds (title, artist, licence, uploader_id, audio_file, node_id, duration_ms,"
                " audio_bytes) VALUES ($1, $2, $3, NULL, $4, $5, $6, $7) RETURNING id", title, artist,
                PLATFORM_LICENCE, name, library.node_id, duration_ms, len(audio))
            await conn.execute("INSERT INTO sound_audio (sound_id, audio) VALUES ($1, $2)", sound_id, audio)
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    library.cache.add(name, len(audio))
    return sound_id
