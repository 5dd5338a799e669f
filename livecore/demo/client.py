"""The demo's way in: the node's public HTTP API, as any client calls it. Refusals become `NodeRefusal`."""

from __future__ import annotations

from typing import Any

import aiohttp

REQUEST_S_MAX = 15.0


class NodeRefusal(Exception):
    """The node answered with an error: its status and the problem's `type` slug (e.g. `stream-ended`)."""

    def __init__(self, status: int, slug: str, detail: str) -> None:
        super().__init__(f"{status} {slug}: {detail}")
        self.status = status
        self.slug = slug


class NodeClient:
    """JSON calls and WHIP offers to one node, over one aiohttp session."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http

    def url(self, path: str) -> str:
        return self.base_url + path

    async def call(self, method: str, path: str, token: str | None = None, body: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.url(path), json=body, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=REQUEST_S_MAX)) as response:
            if response.status >= 400:
                raise await _refusal(response)
            return await response.json() if response.content_type.endswith("json") else {}

    async def log_in(self, username: str, password: str) -> str:
        """A session token for the account."""
        answer = await self.call("POST", "/api/sessions", body={"username": username, "password": password})
        return str(answer["token"])

    async def offer_sdp(self, path: str, bearer: str, sdp: str) -> tuple[str, str]:
        """POST an SDP offer (WHIP, RFC 9725): the answer and the session's path from `Location`."""
        headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/sdp"}
        async with self.http.post(self.url(path), data=sdp, headers=headers,
                                  timeout=aiohttp.ClientTimeout(total=REQUEST_S_MAX)) as response:
            if response.status != 201:
                raise await _refusal(response)
            return await response.text(), response.headers.get("Location", "")

    async def delete(self, path: str, bearer: str) -> None:
        """DELETE a session resource (WHIP needs the stream key, as for the POST)."""
        async with self.http.delete(self.url(path), headers={"Authorization": f"Bearer {bearer}"},
                                    timeout=aiohttp.ClientTimeout(total=REQUEST_S_MAX)) as response:
            if response.status >= 400:
                raise await _refusal(response)


async def _refusal(response: aiohttp.ClientResponse) -> NodeRefusal:
    try:
        problem = await response.json(content_type=None)
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    slug = str(problem.get("type", "")).removeprefix("livecore:") or "error"
    return NodeRefusal(response.status, slug, str(problem.get("detail", response.reason)))
