"""The demo seed gives the editor something to offer: platform sounds made at seed time and a challenge on one."""

from __future__ import annotations

import io

import av
from livenode import NodeFactory
from soundclient import get_json

from editor.demo import DEMO_CHALLENGE, DEMO_SOUNDS
from feeds import FEEDS
from livecore.embedded import EmbeddedPostgres


async def test_a_seeded_node_has_platform_sounds_and_a_challenge(own_postgres: EmbeddedPostgres,
                                                                  node_factory: NodeFactory) -> None:
    # A database of its own: on the shared one, another test's node may have seeded the sounds and gone with them.
    node = await node_factory(seed_demo=True, database_url=own_postgres.url)
    await node.app[FEEDS].jobs_done()
    titles = [title for title, *_ in DEMO_SOUNDS]
    pool = node.node.pool
    rows = await pool.fetch("SELECT id, title, artist, duration_ms FROM sounds WHERE uploader_id IS NULL"
                            " AND title = ANY($1) ORDER BY id", titles)
    assert [r["title"] for r in rows] == titles
    for row, (_, artist, _, _, duration_ms) in zip(rows, DEMO_SOUNDS, strict=True):
        status, sound = await get_json(node, f"/api/sounds/{row['id']}")
        assert status == 200 and sound["platform"] and sound["artist"] == artist
        assert sound["duration_ms"] == duration_ms
        async with node.http.get(node.url + sound["audio_url"]) as response:
            assert response.status == 200
            with av.open(io.BytesIO(await response.read())) as container:
                assert container.streams.audio[0].codec_context.name == "aac"
    challenge_id = await pool.fetchval("SELECT id FROM challenges WHERE hashtag = $1", DEMO_CHALLENGE[0])
    status, challenge = await get_json(node, f"/api/challenges/{challenge_id}")
    assert status == 200 and challenge["sound"]["id"] == rows[0]["id"]
    assert challenge["template"]["texts"][0]["text"] == "#sunrisedance"
    again = await node_factory(seed_demo=True, database_url=own_postgres.url)  # a restart adds nothing twice
    await again.app[FEEDS].jobs_done()
    assert await pool.fetchval("SELECT count(*) FROM sounds WHERE uploader_id IS NULL AND title = ANY($1)",
                               titles) == len(titles)
