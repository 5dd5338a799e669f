"""Checking an answer against `GET /api/openapi.json`, for the operations the fuzzer cannot reach over plain HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp

from livecore.http import PROBLEM_TYPE


async def api_document(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(f"{url}/api/openapi.json") as response:
        assert response.status == 200
        return await response.json()


async def assert_documented(spec: dict[str, Any], method: str, path: str,
                            response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    """That `path`'s `method` documents `response`'s status, media type, headers (every CORS header it carries
    among them) and (for a problem) its type; the problem."""
    answers = spec["paths"][path][method.lower()]["responses"]
    documented = answers.get(str(response.status))
    assert documented is not None, f"{method} {path} answered {response.status}; documented: {sorted(answers)}"
    headers = documented.get("headers", {})
    for header, described in headers.items():
        assert not described["required"] or header in response.headers, f"{response.status} without {header}"
        values = described["schema"].get("enum")
        for value in response.headers.getall(header, []) if values else []:
            assert value in values, f"{method} {path}: {header}: {value!r} is not one of {values}"
    cors = {name for name in response.headers if name.lower().startswith("access-control-")}
    assert cors <= set(headers), f"{method} {path} {response.status}: {sorted(cors - set(headers))} undocumented"
    if response.status == 101 or "content" not in documented:
        return None
    media_types = {media.split(";")[0] for media in documented["content"]}
    assert response.content_type in media_types, (response.content_type, media_types)
    if response.content_type != PROBLEM_TYPE:
        return None
    problem = await response.json(content_type=None)
    schema = documented["content"][PROBLEM_TYPE]["schema"]["properties"]
    assert problem["status"] == response.status == schema["status"]["const"]
    assert problem["type"] in schema["type"]["enum"], (problem, schema["type"]["enum"])
    return problem
