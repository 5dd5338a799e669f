"""Challenges: created with a unique hashtag and an existing sound, their videos ranked by engagement, the trending
ones ranked over a window of hours and offered to everyone's For You feed."""

from __future__ import annotations

import secrets
import time
from typing import Any

from livenode import RunningNode
from soundclient import auth, get_json, new_challenge, new_sound, post_json, ready_video

from editor import EDITOR
from feeds import FEEDS
from livecore.clock import ManualClock


def _tag(name: str) -> str:
    return f"{name}{secrets.token_hex(4)}"  # the database is shared between tests: hashtags of this test's own


async def _engage(node: RunningNode, token: str, video_id: int, *kinds: str) -> None:
    events: list[dict[str, Any]] = []
    for kind in kinds:
        event: dict[str, Any] = {"id": secrets.token_hex(8), "video_id": video_id, "kind": kind}
        if kind == "watch":
            event["watch_ms"] = 500
        events.append(event)
    async with node.http.post(f"{node.url}/api/engagements", json={"events": events},
                              headers=auth(token)) as response:
        assert response.status == 200, await response.text()


async def test_a_challenge_needs_a_free_hashtag_an_existing_sound_and_a_creator(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(challenge_template_bytes_max=2000)
    creator = await node.signup()
    sound = await new_sound(node, creator["token"])
    tag = _tag("dance")
    challenge = await new_challenge(node, creator["token"], sound["id"], "#" + tag.upper(),
                                    template={"texts": [{"text": "#" + tag, "x": 40, "y": 1100}]})
    assert challenge["hashtag"] == tag and challenge["sound"]["id"] == sound["id"]
    assert challenge["creator"]["id"] == creator["id"] and challenge["video_count"] == 0

    async def refused(body: dict[str, Any], status: int, slug: str, token: str = creator["token"]) -> dict[str, Any]:
        got, problem = await post_json(node, "/api/challenges", {"description": "d", "sound_id": sound["id"],
                                                                 "hashtag": _tag("x"), **body}, token)
        assert (got, problem["type"]) == (status, f"livecore:{slug}"), problem
        return problem

    assert (await refused({"hashtag": tag}, 409, "hashtag-taken"))["field"] == "hashtag"
    assert (await refused({"sound_id": 987654321}, 404, "sound-not-found"))["field"] == "sound_id"
    assert (await refused({"hashtag": "two words"}, 400, "invalid-field"))["field"] == "hashtag"
    assert (await refused({"hashtag": "İ" * 50}, 400, "invalid-field"))["field"] == "hashtag"  # 100 once lower
    assert (await refused({"description": ""}, 400, "invalid-field"))["field"] == "description"
    big = {"texts": [{"text": "x" * 200, "x": 0, "y": 0}] * 10}
    assert (await refused({"template": big}, 413, "template-too-large"))["field"] == "template"
    assert (await refused({"template": [1, 2]}, 400, "invalid-field"))["field"] == "template"
    assert (await refused({"template": {"clips": [{"speed": 3}]}}, 400, "invalid-field"))["field"] == \
        "template.clips.0.speed"
    assert (await refused({"template": {"stickers": []}}, 400, "invalid-field"))["field"] == "template.stickers"
    viewer = await node.signup(roles=["viewer"])
    await refused({}, 403, "not-a-creator", viewer["token"])
    status, problem = await get_json(node, "/api/challenges/987654321")
    assert status == 404 and problem["type"] == "livecore:challenge-not-found"
    status, found = await get_json(node, f"/api/challenges?q={tag}")
    assert [c["id"] for c in found["items"]] == [challenge["id"]]


async def test_a_challenges_videos_are_ranked_by_the_engagement_they_drew(node: RunningNode) -> None:
    creator = await node.signup()
    sound = await new_sound(node, creator["token"])
    tag = _tag("jump")
    challenge = await new_challenge(node, creator["token"], sound["id"], tag)
    by_id = await ready_video(node, creator["token"], challenge_id=challenge["id"], sound_id=sound["id"])
    by_tag = await ready_video(node, creator["token"], hashtags=f"#{tag} #fun")
    disliked = await ready_video(node, creator["token"], hashtags=tag)
    elsewhere = await ready_video(node, creator["token"], hashtags=_tag("other"))
    viewers = [await node.signup() for _ in range(3)]
    for viewer in viewers:
        await _engage(node, viewer["token"], by_tag, "like", "share")
        await _engage(node, viewer["token"], by_id, "watch")
    await _engage(node, viewers[0]["token"], disliked, "not_interested")
    status, page = await get_json(node, f"/api/challenges/{challenge['id']}")
    assert status == 200 and page["video_count"] == 3
    assert [v["id"] for v in page["videos"]] == [by_tag, by_id, disliked]
    assert elsewhere not in [v["id"] for v in page["videos"]]
    scores = [v["score"] for v in page["videos"]]
    assert scores[0] > scores[1] > 0 > scores[2]
    status, second = await get_json(node, f"/api/challenges/{challenge['id']}?limit=1&offset=1")
    assert [v["id"] for v in second["videos"]] == [by_id] and second["next_offset"] == 2


async def test_trending_counts_only_the_last_hours_of_engagement(node_factory) -> None:  # type: ignore[no-untyped-def]
    # In the past, so the events this test makes are too old to trend anywhere else in the shared database.
    clock = ManualClock(start_ms=int(time.time() * 1000) - 30 * 86400 * 1000)
    node = await node_factory(clock=clock, challenge_trending_hours=24)
    creator = await node.signup()
    sound = await new_sound(node, creator["token"])
    quiet, busy = _tag("quiet"), _tag("busy")
    quiet_challenge = await new_challenge(node, creator["token"], sound["id"], quiet)
    busy_challenge = await new_challenge(node, creator["token"], sound["id"], busy)
    quiet_video = await ready_video(node, creator["token"], hashtags=quiet)
    busy_video = await ready_video(node, creator["token"], challenge_id=busy_challenge["id"])
    viewer = await node.signup()
    await _engage(node, viewer["token"], busy_video, "like", "share")
    clock.advance(23 * 3600)
    await _engage(node, viewer["token"], quiet_video, "like")
    editor = node.app[EDITOR]
    await editor.refresh_trending()
    assert editor.trending.challenge_ids[:2] == [busy_challenge["id"], quiet_challenge["id"]]
    clock.advance(2 * 3600)  # the busy challenge's engagement is 25 hours old now
    await editor.refresh_trending()
    assert quiet_challenge["id"] in editor.trending.challenge_ids
    assert busy_challenge["id"] not in editor.trending.challenge_ids
    _, listed = await get_json(node, "/api/challenges?limit=50")
    ranks = {c["id"]: c["trending_rank"] for c in listed["items"]}
    assert ranks[quiet_challenge["id"]] == editor.trending.challenge_ids.index(quiet_challenge["id"]) + 1
    assert ranks.get(busy_challenge["id"]) is None


async def test_a_trending_challenges_videos_reach_everyones_for_you_candidates(node_factory) -> None:  # type: ignore[no-untyped-def]
    # No exploration: every video shown is credited to the candidate source that found it (not to "fresh").
    node = await node_factory(foryou_exploration_percent=0)
    creator = await node.signup()
    sound = await new_sound(node, creator["token"])
    tag = _tag("wave")
    challenge = await new_challenge(node, creator["token"], sound["id"], tag)
    video_id = await ready_video(node, creator["token"], challenge_id=challenge["id"])
    fans = [await node.signup() for _ in range(3)]
    for fan in fans:
        await _engage(node, fan["token"], video_id, "like", "share")
    await node.app[EDITOR].refresh_trending()
    assert challenge["id"] in node.app[EDITOR].trending.challenge_ids
    # A newcomer with no interests, follows or history: nothing but trending and fresh videos would find it.
    newcomer = await node.signup(interests=[])
    await node.app[FEEDS].refresh()
    sources = {name for name, _ in node.app[FEEDS].for_you.sources}
    assert "trending_challenge" in sources
    found: dict[int, str] = {}
    cursor = None
    while True:
        status, page = await get_json(node, "/api/feed/for-you?limit=50" + (f"&cursor={cursor}" if cursor else ""),
                                      newcomer["token"])
        assert status == 200, page
        found.update({item["video"]["id"]: item["source"] for item in page["items"] if item["kind"] == "video"})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert found.get(video_id) == "trending_challenge", found.get(video_id)
