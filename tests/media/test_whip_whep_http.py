"""WHIP and WHEP as HTTP, as RFC 9725 clients and browsers use them: OPTIONS, CORS, and what a session's PATCH and
DELETE check (the stream key, the session, the content type, the entity tag)."""

from __future__ import annotations

from mediapeers import publish, wait_for, watch

from livecore.media import MEDIA

SDP = {"Content-Type": "application/sdp"}
FRAGMENT = {"Content-Type": "application/trickle-ice-sdpfrag"}
ICE = {"media_ice_servers": "stun:stun.example.net:3478, turn:turn.example.net:3478?transport=udp",
       "media_ice_username": "turn-user", "media_ice_credential": "turn-secret"}
LINKS = ['<stun:stun.example.net:3478>; rel="ice-server"',
         '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="turn-user"; '
         'credential="turn-secret"; credential-type="password"']


async def _stream(node) -> dict:  # type: ignore[no-untyped-def]
    account = await node.signup(roles=["creator"])
    return await node.create_stream(account["token"], live=False)


def _candidate_fragment(ufrag: str = "") -> str:
    lines = [f"a=ice-ufrag:{ufrag}"] if ufrag else []
    return "\r\n".join([*lines, "m=audio 9 RTP/AVP 0", "a=mid:0",
                        "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", ""])


async def test_options_say_what_endpoints_and_sessions_accept(node_factory, http):  # type: ignore[no-untyped-def]
    node = await node_factory(**ICE)
    stream = await _stream(node)
    whip = f"{node.url}/whip/{stream['id']}"
    async with http.options(whip) as response:
        assert response.status == 204
        assert response.headers["Accept-Post"] == "application/sdp"
        assert "Link" not in response.headers  # TURN credentials only for whoever has the stream key
    async with http.options(whip, headers={"Authorization": f"Bearer {stream['stream_key']}"}) as response:
        assert response.status == 204
        assert response.headers.getall("Link") == LINKS
    async with http.options(f"{node.url}/whep/{stream['id']}") as response:
        assert response.status == 204
        assert response.headers["Accept-Post"] == "application/sdp"
        assert response.headers.getall("Link") == LINKS
    for kind in ("whip", "whep"):
        async with http.options(f"{node.url}/{kind}/{stream['id']}/some-session") as response:
            assert response.status == 204
            assert response.headers["Accept-Patch"] == "application/trickle-ice-sdpfrag"
    publisher = await publish(http, node.url, stream)
    viewer = await watch(http, node.url, stream["id"], decode=False)
    try:
        assert publisher.status == 201 and viewer.status == 201
        for location in (publisher.location, viewer.location):
            async with http.options(f"{node.url}{location}") as response:
                assert response.status == 204
    finally:
        await viewer.close()
        await publisher.pc.close()


async def test_cors_preflights_and_answers_for_other_origins(node_factory, http):  # type: ignore[no-untyped-def]
    node = await node_factory(**ICE)
    stream = await _stream(node)
    whip = f"{node.url}/whip/{stream['id']}"
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    for url in (whip, f"{node.url}/whep/{stream['id']}", f"{whip}/session"):
        async with http.options(url, headers=preflight) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
            assert methods == {"OPTIONS", "POST", "PATCH", "DELETE"}
            allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
            assert {"authorization", "content-type", "if-match"} <= allowed
            assert int(response.headers["Access-Control-Max-Age"]) > 0
    publisher = await publish(http, node.url, stream)
    try:
        assert publisher.status == 201
        headers = {"Origin": "https://shop.example", "Content-Type": "application/sdp"}
        async with http.post(whip, data="v=0\r\n", headers=headers) as response:
            assert response.status == 401  # a refusal a page on another origin can read
            assert response.headers["Access-Control-Allow-Origin"] == "*"
        viewer = await watch(http, node.url, stream["id"], decode=False)
        await viewer.close()
        offer = await _offer()
        async with http.post(f"{node.url}/whep/{stream['id']}", data=offer,
                             headers={"Origin": "https://shop.example", **SDP}) as response:
            assert response.status == 201
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
            assert {"Location", "Link", "ETag"} <= exposed
            assert response.headers["ETag"].startswith('"') and response.headers.getall("Link") == LINKS
            location = response.headers["Location"]
        async with http.delete(f"{node.url}{location}") as response:
            assert response.status == 200
    finally:
        await publisher.pc.close()


async def _offer() -> str:
    from mediapeers import new_pc

    pc = new_pc()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_cors_origins_are_settings_and_the_api_stays_same_origin(node_factory, http):  # type: ignore[no-untyped-def]
    default = await node_factory()
    async with http.get(f"{default.url}/api/live", headers={"Origin": "https://shop.example"}) as response:
        assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    async with http.options(f"{default.url}/api/streams", headers=preflight) as response:
        assert response.status == 405 and "Access-Control-Allow-Origin" not in response.headers

    node = await node_factory(ingest_cors_origins="https://studio.example",
                              playback_cors_origins="https://a.example, https://b.example",
                              api_cors_origins="https://app.example")
    stream = await _stream(node)
    whip, whep = f"/whip/{stream['id']}", f"/whep/{stream['id']}"
    cases = [
        (whip, "https://studio.example", True), (whip, "https://a.example", False),
        (whep, "https://b.example", True), (whep, "https://studio.example", False),
        (f"/hls/{stream['id']}/index.m3u8", "https://a.example", True),
        ("/api/streams", "https://app.example", True), ("/api/streams", "https://a.example", False),
    ]
    for path, origin, allowed in cases:
        async with http.options(f"{node.url}{path}", headers={**preflight, "Origin": origin}) as response:
            if allowed:
                assert response.status == 204, (path, origin)
                assert response.headers["Access-Control-Allow-Origin"] == origin
                assert "Origin" in response.headers.getall("Vary")
            else:
                assert "Access-Control-Allow-Origin" not in response.headers, (path, origin)
    async with http.options(f"{node.url}/api/streams", headers={**preflight, "Origin": "https://app.example"}) as r:
        assert {"OPTIONS", "POST"} <= {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
    async with http.get(f"{node.url}/api/live", headers={"Origin": "https://app.example"}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"


async def test_whip_session_requests_need_the_key_a_session_and_the_right_type(node, http):  # type: ignore[no-untyped-def]
    stream = await _stream(node)
    publisher = await publish(http, node.url, stream)
    session = f"{node.url}{publisher.location}"
    other = f"{node.url}/whip/{stream['id']}/not-a-session"
    key = {"Authorization": f"Bearer {stream['stream_key']}"}
    wrong = {"Authorization": "Bearer sk_wrong"}
    room = node.app[MEDIA].rooms[stream["id"]]
    try:
        assert publisher.status == 201
        for url, headers, status in ((session, {}, 401), (session, wrong, 401), (other, key, 404)):
            async with http.patch(url, data=_candidate_fragment(), headers={**FRAGMENT, **headers}) as response:
                assert response.status == status
                assert response.content_type == "application/problem+json"
            async with http.delete(url, headers=headers) as response:
                assert response.status == status
        async with http.patch(f"{node.url}/whip/999999/x", data="", headers={**FRAGMENT, **key}) as response:
            assert response.status == 404
            assert (await response.json())["type"] == "livecore:stream-not-found"
        async with http.patch(session, data="a=mid:0\r\n", headers={**key, "Content-Type": "text/plain"}) as r:
            assert r.status == 415
        etag = room.upstream_ice.etag
        checks = ((f'"{etag[1:-1]}x"', _candidate_fragment(), 412), ("*", _candidate_fragment(), 422),
                  (None, _candidate_fragment("a-new-ufrag"), 422), (etag, _candidate_fragment(), 204),
                  (None, _candidate_fragment(room.upstream_ice.ufrag), 204))
        for if_match, fragment, status in checks:
            headers = {**FRAGMENT, **key, **({"If-Match": if_match} if if_match else {})}
            async with http.patch(session, data=fragment, headers=headers) as response:
                assert response.status == status, (if_match, fragment, await response.text())
        async with http.delete(session, headers=key) as response:
            assert response.status == 200
        async with http.get(f"{node.url}/api/streams/{stream['id']}") as response:
            assert (await response.json())["state"] == "ended"
    finally:
        await publisher.pc.close()


async def test_whep_session_requests_check_the_session_and_the_type(node, http):  # type: ignore[no-untyped-def]
    stream = await _stream(node)
    async with http.patch(f"{node.url}/whep/999999/nope", data="x",
                          headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 404
        assert (await response.json())["type"] == "livecore:session-not-found"
    publisher = await publish(http, node.url, stream)
    viewer = await watch(http, node.url, stream["id"], decode=False)
    session = f"{node.url}{viewer.location}"
    try:
        assert viewer.status == 201
        async with http.patch(f"{node.url}/whep/{stream['id']}/nope", data=_candidate_fragment(),
                              headers=FRAGMENT) as response:
            assert response.status == 404
        async with http.patch(session, data=_candidate_fragment(), headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415
        async with http.patch(session, data=_candidate_fragment(), headers={**FRAGMENT, "If-Match": "*"}) as r:
            assert r.status == 422
        async with http.patch(session, data=_candidate_fragment(), headers=FRAGMENT) as response:
            assert response.status == 204
        async with http.delete(f"{node.url}/whep/{stream['id']}/nope") as response:
            assert response.status == 404
        room = node.app[MEDIA].rooms[stream["id"]]
        async with http.delete(session) as response:
            assert response.status == 200
        await wait_for(lambda: room.viewer_count == 0, 5)
    finally:
        await viewer.close()
        await publisher.pc.close()
