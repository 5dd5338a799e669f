"""The sound library: tracks with their title, artist and licence, each stored once as AAC (in PostgreSQL, the book
of record, and as files in each node's bounded cache), and counted each time a ready video uses one.

Public for the rest of the editor: `SoundLibrary.audio_path` / `sound_audio_path` (a sound id to a local file the
renderer can open).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg

from editor.audio import PreparedSound, SoundLimits, prepare_sound
from editor.audiocache import AudioCache
from livecore.http import Problem

log = logging.getLogger("livecore.editor.sounds")

AUDIO_SUFFIX = ".m4a"
AUDIO_MEDIA_TYPE = "audio/mp4"
Sort = Literal["uses", "new"]
_COLUMNS = ("s.id, s.title, s.artist, s.licence, s.uploader_id, s.node_id, s.audio_file, s.duration_ms,"
            " s.audio_bytes, s.uses, s.created_at, a.username AS uploader_username,"
            " a.display_name AS uploader_display_name")
_FROM = "sounds s LEFT JOIN accounts a ON a.id = s.uploader_id"


class SoundNotFound(Problem):
    def __init__(self, sound_id: int) -> None:
        super().__init__(404, "sound-not-found", f"there is no sound {sound_id}", sound_id=sound_id)


@dataclass(frozen=True)
class Sound:
    id: int
    title: str
    artist: str
    licence: str
    uploader_id: int | None
    uploader_username: str | None
    uploader_display_name: str | None
    node_id: str | None
    audio_file: str
    duration_ms: int
    audio_bytes: int
    uses: int
    created_at: dt.datetime

    def public(self) -> dict[str, Any]:
        uploader = None if self.uploader_id is None else {
            "id": self.uploader_id, "username": self.uploader_username, "display_name": self.uploader_display_name}
        return {"id": self.id, "title": self.title, "artist": self.artist, "licence": self.licence,
                "uploader": uploader, "platform": self.uploader_id is None, "duration_ms": self.duration_ms,
                "uses": self.uses, "created_at": self.created_at.isoformat(),
                "audio_url": f"/api/sounds/{self.id}/audio"}


def _from_row(row: asyncpg.Record) -> Sound:
    return Sound(id=row["id"], title=row["title"], artist=row["artist"], licence=row["licence"],
                 uploader_id=row["uploader_id"], uploader_username=row["uploader_username"],
                 uploader_display_name=row["uploader_display_name"], node_id=row["node_id"],
                 audio_file=row["audio_file"], duration_ms=row["duration_ms"], audio_bytes=row["audio_bytes"],
                 uses=row["uses"], created_at=row["created_at"])


@dataclass(frozen=True)
class NewSound:
    title: str
    artist: str
    licence: str
    uploader_id: int | None  # None: the platform's


class SoundFiles:
    """Where a node keeps sounds: audio files at `<data dir>/sounds/<file>` (a bounded cache of the database's),
    uploads staged in `sounds/uploads/` until they are checked."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "sounds"

    def own(self, audio_file: str) -> Path:
        return self.root / audio_file

    def staging(self) -> Path:
        folder = self.root / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{secrets.token_hex(12)}.upload"

    def new_name(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        return f"{secrets.token_hex(16)}{AUDIO_SUFFIX}"


class SoundLibrary:
    """The sounds of one node: adding (checked and transcoded, a bounded number at once), reading, counting uses."""

    def __init__(self, pool: asyncpg.Pool, files: SoundFiles, node_id: str, limits: SoundLimits,
                 checks_max: int, cache_bytes_max: int, on_read: Callable[[], None] = lambda: None) -> None:
        self.pool = pool
        self.files = files
        self.node_id = node_id
        self.limits = limits
        self.checks_max = checks_max
        self.cache = AudioCache(files.root, cache_bytes_max)
        self._on_read = on_read  # counted: audio read from the database into the cache
        self._checks = 0

    def check_capacity(self) -> None:
        """Refuse with 503 when `checks_max` uploads are being checked already (before the next one is read)."""
        if self._checks >= self.checks_max:
            raise Problem(503, "sounds-busy", f"{self.checks_max} sounds are being checked on this node "
                          "(sound_checks_max); try again shortly", headers={"Retry-After": "5"})

    async def add(self, new: NewSound, staged: Path) -> Sound:
        """Check and transcode the staged upload, then record it with its audio in one transaction; the staged
        file is removed either way, and the checked file too when the record cannot be written (the database holds
        the audio whenever it holds the record, so removing this node's file is always safe)."""
        try:
            self.check_capacity()
        except Problem:
            await asyncio.to_thread(staged.unlink, missing_ok=True)
            raise
        self._checks += 1  # taken before the first await: two uploads cannot both pass the check above
        name = self.files.new_name()
        target = self.files.own(name)
        try:
            prepared: PreparedSound = await asyncio.to_thread(prepare_sound, staged, target, self.limits)
            audio = await asyncio.to_thread(target.read_bytes)
            async with self.pool.acquire() as conn, conn.transaction():
                sound_id = await conn.fetchval(
                    "INSERT INTO sounds (title, artist, licence, uploader_id, audio_file, node_id, duration_ms,"
                    " audio_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    new.title, new.artist, new.licence, new.uploader_id, name, self.node_id, prepared.duration_ms,
                    prepared.audio_bytes)
                await conn.execute("INSERT INTO sound_audio (sound_id, audio) VALUES ($1, $2)", sound_id, audio)
        except BaseException:
            await asyncio.to_thread(target.unlink, missing_ok=True)
            raise
        finally:
            self._checks -= 1
            await asyncio.to_thread(staged.unlink, missing_ok=True)
        self.cache.add(name, prepared.audio_bytes)
        sound = await get_sound(self.pool, sound_id)
        assert sound is not None
        return sound

    async def remove_orphans(self, older_than_s: float) -> int:
        """Remove audio files no sound names and staged uploads, last written more than `older_than_s` ago (an
        upload cut short by a stop); how many were removed."""
        found = await asyncio.to_thread(_files_older_than, self.files, older_than_s)
        audio = [path.name for path in found if path.suffix == AUDIO_SUFFIX and path.parent == self.files.root]
        known = {r["audio_file"] for r in await self.pool.fetch(
            "SELECT audio_file FROM sounds WHERE audio_file = ANY($1)", audio)} if audio else set()
        orphans = [path for path in found if path.name not in known]
        for path in orphans:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            self.cache.forget(path.name)
        if orphans:
            log.info("removed %d sound files left without a record", len(orphans))
        return len(orphans)

    async def audio_path(self, sound_id: int) -> Path:
        """A local file of the sound's audio (AAC in MP4), read once from the database into this node's cache when
        it is not there. Raises `SoundNotFound` (404)."""
        sound = await get_sound(self.pool, sound_id)
        if sound is None:
            raise SoundNotFound(sound_id)
        return await self.local_file(sound)

    async def local_file(self, sound: Sound) -> Path:
        async def fill(path: Path) -> int:
            audio = await self.pool.fetchval("SELECT audio FROM sound_audio WHERE sound_id = $1", sound.id)
            if audio is None:
                raise Problem(503, "sound-audio-missing", f"sound {sound.id}'s audio is not in the database",
                              headers={"Retry-After": "30"})
            await asyncio.to_thread(path.write_bytes, audio)
            self._on_read()
            return len(audio)

        return await self.cache.get(sound.audio_file, fill)


def _files_older_than(files: SoundFiles, older_than_s: float) -> list[Path]:
    """The node's own audio files, their temporaries and staged uploads, last written more than `older_than_s` ago."""
    cutoff = time.time() - older_than_s
    candidates = [*files.root.glob(f"*{AUDIO_SUFFIX}"), *files.root.glob("*.tmp"), *files.root.glob("uploads/*")]
    found = []
    for path in candidates:
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                found.append(path)
    return found


async def sound_audio_path(library: SoundLibrary, sound_id: int) -> Path:
    """The local audio file of sound `sound_id` (see `SoundLibrary.audio_path`)."""
    return await library.audio_path(sound_id)


async def get_sound(pool: asyncpg.Pool, sound_id: int) -> Sound | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM {_FROM} WHERE s.id = $1", sound_id)
    return _from_row(row) if row else None


async def sounds_by_ids(pool: asyncpg.Pool, sound_ids: list[int]) -> list[Sound]:
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM {_FROM} WHERE s.id = ANY($1)", sound_ids)
    return [_from_row(r) for r in rows]


async def sound_exists(pool: asyncpg.Pool, sound_id: int) -> bool:
    return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM sounds WHERE id = $1)", sound_id))


async def list_sounds(pool: asyncpg.Pool, search: str | None, sort: Sort, offset: int, limit: int) -> list[Sound]:
    """Sounds whose title or artist holds `search` (case-insensitively), most used (or newest) first."""
    order = "s.uses DESC, s.id DESC" if sort == "uses" else "s.id DESC"
    pattern = None if not search else "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE ($1::text IS NULL OR s.title ILIKE $1 OR s.artist ILIKE $1)"
        f" ORDER BY {order} OFFSET $2 LIMIT $3", pattern, offset, limit)
    return [_from_row(r) for r in rows]


async def count_uses(pool: asyncpg.Pool, video_ids: list[int]) -> int:
    """Count each of `video_ids` that is ready and uses a sound, once ever (whoever calls, however often, at
    once); how many uses were counted now."""
    return await pool.fetchval(
        "WITH used AS (INSERT INTO sound_uses (video_id, sound_id)"
        "  SELECT v.id, v.sound_id FROM videos v JOIN sounds s ON s.id = v.sound_id"
        "  WHERE v.id = ANY($1) AND v.state = 'ready' ORDER BY v.id"
        "  ON CONFLICT (video_id) DO NOTHING RETURNING sound_id),"
        " per_sound AS (SELECT sound_id, count(*) AS n FROM used GROUP BY sound_id),"
        " bumped AS (UPDATE sounds SET uses = uses + per_sound.n FROM per_sound WHERE sounds.id = per_sound.sound_id"
        "  RETURNING per_sound.n)"
        " SELECT coalesce(sum(n), 0)::bigint FROM bumped", video_ids)


async def uncounted_uses(pool: asyncpg.Pool, batch_max: int) -> list[int]:
    """Ready videos that use a sound and were not counted (their node stopped, or the database was away, when they
    became ready): at most `batch_max`."""
    rows = await pool.fetch(
        "SELECT v.id FROM videos v WHERE v.sound_id IS NOT NULL AND v.state = 'ready'"
        " AND NOT EXISTS (SELECT 1 FROM sound_uses u WHERE u.video_id = v.id) ORDER BY v.id LIMIT $1", batch_max)
    return [r["id"] for r in rows]


async def videos_using(pool: asyncpg.Pool, sound_id: int, adult: bool, offset: int, limit: int) -> list[int]:
    """Ready videos that use the sound, newest first; mature ones only for an `adult`."""
    rows = await pool.fetch(
        "SELECT id FROM videos WHERE sound_id = $1 AND state = 'ready' AND (NOT mature OR $2)"
        " ORDER BY id DESC OFFSET $3 LIMIT $4", sound_id, adult, offset, limit)
    return [r["id"] for r in rows]
