"""Accounts, sessions, follows and streams over real HTTP against the real database."""

from __future__ import annotations

import datetime as dt

import jwt
from livenode import RunningNode, unique_username

from livecore.clock import ManualClock


async def _json(response) -> dict:  # type: ignore[no-untyped-def]
    return await response.json(content_type=None)


async def test_sign_up_log_in_and_me(node: RunningNode) -> None:
    name = unique_username()
    created = await node.signup(name, interests=["music"], display_name="Dee")
    assert created["username"] == name and created["token"] and created["adult"] is True
    async with node.http.post(f"{node.url}/api/sessions", json={"username": name,
                                                               "password": "correct horse battery"}) as r:
        assert r.status == 200
        token = (await r.json())["token"]
        assert "livecore_session" in r.cookies and r.cookies["livecore_session"]["httponly"]
    async with node.http.get(f"{node.url}/api/me", headers={"Authorization": f"Bearer {token}"}) as r:
        me = await r.json()
    assert me["display_name"] == "Dee" and me["interests"] == ["music"] and me["region"] == "US"


async def test_passwords_are_stored_as_argon2_hashes(node: RunningNode) -> None:
    name = unique_username()
    await node.signup(name)
    stored = await node.node.pool.fetchval("SELECT password_hash FROM accounts WHERE username = $1", name)
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


async def test_bad_sign_ups_get_problems_naming_the_field(node: RunningNode) -> None:
    cases = [
        ({"username": "x", "password": "long enough", "birth_date": "1990-01-01", "region": "US"}, "username"),
        ({"username": unique_username(), "password": "short", "birth_date": "1990-01-01", "region": "US"},
         "password"),
        ({"username": unique_username(), "password": "long enough", "birth_date": "someday", "region": "US"},
         "birth_date"),
        ({"username": unique_username(), "password": "long enough", "birth_date": "1990-01-01",
          "region": "US", "roles": ["admin"]}, "roles.0"),
    ]
    for body, field in cases:
        async with node.http.post(f"{node.url}/api/accounts", json=body) as r:
            problem = await _json(r)
            assert r.status == 400 and r.content_type == "application/problem+json"
            assert problem["type"] == "livecore:invalid-field" and problem["field"] == field
    async with node.http.post(f"{node.url}/api/accounts", data=b"{oops",
                              headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await _json(r))["type"] == "livecore:malformed-json"


async def test_duplicate_username_and_wrong_password(node: RunningNode) -> None:
    name = unique_username()
    await node.signup(name)
    body = {"username": name, "password": "another password", "birth_date": "1990-01-01", "region": "US"}
    async with node.http.post(f"{node.url}/api/accounts", json=body) as r:
        assert r.status == 409 and (await _json(r))["type"] == "livecore:username-taken"
    async with node.http.post(f"{node.url}/api/sessions", json={"username": name, "password": "wrong one"}) as r:
        assert r.status == 401 and (await _json(r))["type"] == "livecore:bad-credentials"


async def test_forged_and_expired_tokens_are_refused(node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock(start_ms=int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000))
    node = await node_factory(clock=clock, token_ttl_s=3600)
    token = (await node.signup())["token"]
    wrong_secret = "not the secret, but long enough for HS256 at least"
    forged = jwt.encode({"sub": "1", "exp": 2**40}, wrong_secret, algorithm="HS256")
    for bad in (forged, "garbage", token[:-3] + "abc"):
        async with node.http.get(f"{node.url}/api/me", headers={"Authorization": f"Bearer {bad}"}) as r:
            assert r.status == 401 and (await _json(r))["type"] == "livecore:bad-token"
    async with node.http.get(f"{node.url}/api/me", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
    clock.advance(3601)
    async with node.http.get(f"{node.url}/api/me", headers={"Authorization": f"Bearer {token}"}) as r:
        problem = await _json(r)
        assert r.status == 401 and "expired" in problem["detail"]


async def test_follow_and_unfollow(node: RunningNode) -> None:
    fan, star = await node.signup(), await node.signup()
    auth = {"Authorization": f"Bearer {fan['token']}"}
    async with node.http.post(f"{node.url}/api/users/{star['id']}/follow", headers=auth) as r:
        assert r.status == 204
    async with node.http.get(f"{node.url}/api/users/{star['id']}") as r:
        assert (await r.json())["followers"] == 1
    async with node.http.post(f"{node.url}/api/users/{fan['id']}/follow", headers=auth) as r:
        assert r.status == 403 and (await _json(r))["type"] == "livecore:self-follow"
    async with node.http.post(f"{node.url}/api/users/999999999/follow", headers=auth) as r:
        assert r.status == 404
    async with node.http.delete(f"{node.url}/api/users/{star['id']}/follow", headers=auth) as r:
        assert r.status == 204
    async with node.http.get(f"{node.url}/api/users/{star['id']}") as r:
        assert (await r.json())["followers"] == 0


async def test_streams_live_directory_and_age_rule(node: RunningNode) -> None:
    minor = await node.signup(birth_date=(dt.date.today() - dt.timedelta(days=365 * 16)).isoformat())
    async with node.http.post(f"{node.url}/api/streams", json={"title": "hi"},
                              headers={"Authorization": f"Bearer {minor['token']}"}) as r:
        assert r.status == 403 and (await _json(r))["type"] == "livecore:under-18"
    creator = await node.signup()
    stream = await node.create_stream(creator["token"], "Friday show")
    assert stream["stream_key"].startswith("sk_") and stream["whip_url"].endswith(f"/whip/{stream['id']}")
    async with node.http.get(f"{node.url}/api/live") as r:
        live = (await r.json())["streams"]
    assert any(s["id"] == stream["id"] and "stream_key" not in s for s in live)
    other = await node.signup()
    async with node.http.post(f"{node.url}/api/streams/{stream['id']}/end",
                              headers={"Authorization": f"Bearer {other['token']}"}) as r:
        assert r.status == 403
    async with node.http.post(f"{node.url}/api/streams/{stream['id']}/end",
                              headers={"Authorization": f"Bearer {creator['token']}"}) as r:
        assert r.status == 200 and (await r.json())["state"] == "ended"
    async with node.http.get(f"{node.url}/api/live") as r:
        assert all(s["id"] != stream["id"] for s in (await r.json())["streams"])
    async with node.http.get(f"{node.url}/api/streams/nope") as r:
        assert r.status == 404 and r.content_type == "application/problem+json"


async def test_only_the_creator_reads_a_streams_key(node: RunningNode) -> None:
    creator = await node.signup()
    stream = await node.create_stream(creator["token"], "Key check")
    ingest_url = f"{node.url}/api/streams/{stream['id']}/ingest"
    async with node.http.get(ingest_url, headers={"Authorization": f"Bearer {creator['token']}"}) as r:
        assert r.status == 200
        assert await r.json() == {"id": stream["id"], "state": "live", "stream_key": stream["stream_key"],
                                  "whip_url": stream["whip_url"]}
    other = await node.signup()
    async with node.http.get(ingest_url, headers={"Authorization": f"Bearer {other['token']}"}) as r:
        assert r.status == 403 and (await _json(r))["type"] == "livecore:not-your-stream"
    async with node.http.get(ingest_url) as r:
        assert r.status == 401


async def test_openapi_describes_every_route(node: RunningNode) -> None:
    async with node.http.get(f"{node.url}/api/openapi.json") as r:
        spec = await r.json()
    assert spec["openapi"].startswith("3.1")
    served = set()
    for route in node.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method in ("HEAD",) or "prefix" in info or not path:
            continue
        served.add((route.method.lower(), path))
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert served == documented
    for required in ("/api/accounts", "/api/sessions", "/api/me", "/api/streams", "/api/live",
                     "/ws/rooms/{id}", "/healthz", "/readyz", "/metrics"):
        assert required in spec["paths"]
    sign_up = spec["paths"]["/api/accounts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert sign_up["$ref"].endswith("/SignUp") and "username" in spec["components"]["schemas"]["SignUp"]["properties"]


async def test_health_readiness_and_metrics(node: RunningNode) -> None:
    async with node.http.get(f"{node.url}/healthz") as r:
        assert r.status == 200
    async with node.http.get(f"{node.url}/readyz") as r:
        assert (await r.json())["checks"] == {"postgres": "ok", "redis": "ok"}
    async with node.http.get(f"{node.url}/metrics") as r:
        text = await r.text()
    assert "livecore_ws_connections" in text and "livecore_http_requests_total" in text
    async with node.http.get(f"{node.url}/no/such/page") as r:
        assert r.status == 404 and r.content_type == "application/problem+json"


async def test_ids_that_cannot_exist_are_404_not_500(node: RunningNode) -> None:
    for path in ("/api/streams/99999999999999999999", "/api/users/99999999999999999999", "/api/streams/%C2%B2",
                 "/api/streams/99999999999999999999/leaderboard", "/ws/rooms/99999999999999999999",
                 "/api/streams/0/leaderboard"):  # ids start at 1, as the document says
        async with node.http.get(f"{node.url}{path}") as r:
            assert r.status == 404, path
            assert r.content_type == "application/problem+json"


async def test_a_node_reuses_an_account_it_read_for_account_cache_ms(node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock, account_cache_ms=2000)
    created = await node.signup()
    me = f"{node.url}/api/me"
    headers = {"Authorization": f"Bearer {created['token']}"}

    async def roles() -> list[str]:
        async with node.http.get(me, headers=headers) as r:
            return (await r.json())["roles"]

    assert "moderator" not in await roles()
    # What `livecore grant` does, from outside this node.
    await node.node.pool.execute("UPDATE accounts SET roles = roles || '{moderator}' WHERE id = $1", created["id"])
    assert "moderator" not in await roles()  # still the account this node read
    clock.advance(2.001)
    assert "moderator" in await roles()
    assert await node.node.accounts.get(10**15) is None  # never remembered: a later sign-up is seen at once
