"""Challenges: a hashtag, a description, a sound and an optional template. A video joins one by carrying its
hashtag or its id; a challenge's videos are ranked by the engagement they drew, and the challenges whose videos drew
the most lately are trending.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from editor.sounds import Sound, get_sound
from feeds import ENGAGEMENT_WEIGHTS_SQL
from livecore.http import Problem

_COLUMNS = ("c.id, c.hashtag, c.description, c.sound_id, c.template, c.creator_id, c.created_at,"
            " a.username AS creator_username, a.display_name AS creator_display_name")
_FROM = "challenges c JOIN accounts a ON a.id = c.creator_id"
# A ready video is in a challenge when it names the challenge or carries its hashtag.
_JOINED = "v.state = 'ready' AND (v.challenge_id = c.id OR v.hashtags @> ARRAY[c.hashtag])"


class ChallengeNotFound(Problem):
    def __init__(self, challenge_id: int) -> None:
        super().__init__(404, "challenge-not-found", f"there is no challenge {challenge_id}",
                         challenge_id=challenge_id)


@dataclass(frozen=True)
class Challenge:
    id: int
    hashtag: str
    description: str
    sound_id: int
    template: dict[str, Any] | None
    creator_id: int
    creator_username: str
    creator_display_name: str
    created_at: dt.datetime

    def public(self, sound: Sound | None, video_count: int) -> dict[str, Any]:
        return {"id": self.id, "hashtag": self.hashtag, "description": self.description,
                "sound": sound.public() if sound else None, "template": self.template,
                "creator": {"id": self.creator_id, "username": self.creator_username,
                            "display_name": self.creator_display_name},
                "video_count": video_count, "created_at": self.created_at.isoformat()}


def _from_row(row: asyncpg.Record) -> Challenge:
    template = orjson.loads(row["template"]) if row["template"] is not None else None
    return Challenge(id=row["id"], hashtag=row["hashtag"], description=row["description"],
                     sound_id=row["sound_id"], template=template, creator_id=row["creator_id"],
                     creator_username=row["creator_username"], creator_display_name=row["creator_display_name"],
                     created_at=row["created_at"])


@dataclass(frozen=True)
class NewChallenge:
    hashtag: str
    description: str
    sound_id: int
    template: dict[str, Any] | None
    creator_id: int


async def create_challenge(pool: asyncpg.Pool, new: NewChallenge) -> Challenge:
    """Record a challenge: 409 when its hashtag is taken, 404 when its sound does not exist."""
    try:
        challenge_id = await pool.fetchval(
            "INSERT INTO challenges (hashtag, description, sound_id, template, creator_id)"
            " VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING id",
            new.hashtag, new.description, new.sound_id,
            None if new.template is None else orjson.dumps(new.template).decode(), new.creator_id)
    except asyncpg.UniqueViolationError as exc:
        raise Problem(409, "hashtag-taken", f"#{new.hashtag} is the hashtag of another challenge already",
                      field="hashtag") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise Problem(404, "sound-not-found", f"sound_id: there is no sound {new.sound_id}",
                      field="sound_id") from exc
    challenge = await get_challenge(pool, challenge_id)
    assert challenge is not None
    return challenge


async def get_challenge(pool: asyncpg.Pool, challenge_id: int) -> Challenge | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM {_FROM} WHERE c.id = $1", challenge_id)
    return _from_row(row) if row else None


async def challenge_exists(pool: asyncpg.Pool, challenge_id: int) -> bool:
    return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM challenges WHERE id = $1)", challenge_id))


async def list_challenges(pool: asyncpg.Pool, first_ids: list[int], search: str | None, offset: int,
                          limit: int) -> list[tuple[Challenge, int]]:
    """Challenges with their video counts: those of `first_ids` first in that order (the trending ones), then the
    newest; only those whose hashtag or description holds `search` when it is given."""
    pattern = None if not search else "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await pool.fetch(
        f"SELECT {_COLUMNS}, (SELECT count(*) FROM videos v WHERE {_JOINED}) AS video_count FROM {_FROM}"
        " WHERE ($2::text IS NULL OR c.hashtag ILIKE $2 OR c.description ILIKE $2)"
        " ORDER BY array_position($1::bigint[], c.id) NULLS LAST, c.id DESC OFFSET $3 LIMIT $4",
        first_ids, pattern, offset, limit)
    return [(_from_row(r), r["video_count"]) for r in rows]


async def video_count(pool: asyncpg.Pool, challenge: Challenge) -> int:
    return await pool.fetchval(
        f"SELECT count(*) FROM videos v, (SELECT $1::bigint AS id, $2::text AS hashtag) c WHERE {_JOINED}",
        challenge.id, challenge.hashtag)


async def ranked_videos(pool: asyncpg.Pool, challenge: Challenge, adult: bool, offset: int, limit: int
                        ) -> list[tuple[int, float]]:
    """The challenge's ready videos with their engagement score (every event they drew, weighed as For You's
    trending weighs them), best first; ties go to the newer video; mature ones only for an `adult`."""
    rows = await pool.fetch(
        "SELECT v.id, coalesce((SELECT sum(" + ENGAGEMENT_WEIGHTS_SQL + ") FROM engagements e"
        "  WHERE e.video_id = v.id), 0)::float8 AS score"
        f" FROM videos v, (SELECT $1::bigint AS id, $2::text AS hashtag) c WHERE {_JOINED} AND (NOT v.mature OR $5)"
        " ORDER BY score DESC, v.id DESC OFFSET $3 LIMIT $4", challenge.id, challenge.hashtag, offset, limit, adult)
    return [(r["id"], r["score"]) for r in rows]


@dataclass(frozen=True)
class Trending:
    """The challenges whose videos drew the most engagement lately, best first, and each one's best videos."""

    challenge_ids: list[int] = field(default_factory=list)
    scores: dict[int, float] = field(default_factory=dict)
    videos: dict[int, list[int]] = field(default_factory=dict)

    def candidate_videos(self) -> list[int]:
        """The trending challenges' videos, taking each challenge's best in turn (a round robin), each once."""
        found: dict[int, None] = {}
        lists = [self.videos.get(c, []) for c in self.challenge_ids]
        for rank in range(max((len(v) for v in lists), default=0)):
            for videos in lists:
                if rank < len(videos):
                    found.setdefault(videos[rank], None)
        return list(found)


async def trending(pool: asyncpg.Pool, since: dt.datetime, until: dt.datetime, challenges_max: int,
                   videos_max: int) -> Trending:
    """Rank challenges by the engagement their ready videos drew from `since` to `until`."""
    rows = await pool.fetch(
        "WITH recent AS (SELECT e.video_id, sum(" + ENGAGEMENT_WEIGHTS_SQL + ") AS score FROM engagements e"
        "  WHERE e.at >= $1 AND e.at <= $4 GROUP BY e.video_id),"
        " joined AS (SELECT v.challenge_id AS challenge_id, r.video_id, r.score FROM recent r"
        "   JOIN videos v ON v.id = r.video_id WHERE v.state = 'ready' AND v.challenge_id IS NOT NULL"
        "   AND EXISTS (SELECT 1 FROM challenges c WHERE c.id = v.challenge_id)"
        "  UNION SELECT c.id, r.video_id, r.score FROM recent r JOIN videos v ON v.id = r.video_id"
        "   CROSS JOIN LATERAL unnest(v.hashtags) AS t(tag) JOIN challenges c ON c.hashtag = t.tag"
        "   WHERE v.state = 'ready'),"
        " ranked AS (SELECT challenge_id, sum(score) OVER (PARTITION BY challenge_id) AS total, video_id, score,"
        "   row_number() OVER (PARTITION BY challenge_id ORDER BY score DESC, video_id DESC) AS place FROM joined),"
        " best AS (SELECT challenge_id, total FROM ranked WHERE place = 1 AND total > 0"
        "   ORDER BY total DESC, challenge_id DESC LIMIT $2)"
        " SELECT b.challenge_id, b.total::float8 AS total, r.video_id FROM best b"
        "  JOIN ranked r ON r.challenge_id = b.challenge_id AND r.place <= $3 AND r.score > 0"
        " ORDER BY b.total DESC, b.challenge_id DESC, r.place", since, challenges_max, videos_max, until)
    result = Trending()
    for row in rows:
        challenge_id = row["challenge_id"]
        if challenge_id not in result.scores:
            result.challenge_ids.append(challenge_id)
            result.scores[challenge_id] = row["total"]
        result.videos.setdefault(challenge_id, []).append(row["video_id"])
    return result


async def challenge_sound(pool: asyncpg.Pool, challenge: Challenge) -> Sound | None:
    return await get_sound(pool, challenge.sound_id)
