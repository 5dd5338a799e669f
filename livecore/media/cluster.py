"""Requests between media nodes: session ids that name their node, the signed mark on a node's own requests, and
passing a request on to the node that can answer it.

Nodes reach each other at their internal URLs (`internal_url`, kept in the media registry), never through the load
balancer at the public URL, so a node's request cannot come back to itself through the balancer. A request a node
sends carries `X-Livecore-Node` (its id) and `X-Livecore-Node-Proof` (an HMAC of the id under the secret every node
shares); a node answers a marked request itself, never passing it on again, and a marked WHEP offer is a relay.

A WHIP or WHEP session's id starts with its node's id (base64url, then a dot, then the random part), so a PATCH or
DELETE that a load balancer sends to another node finds its way without a lookup per session.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from livecore.accounts import Tokens
from livecore.http import Problem
from livecore.media.registry import MediaRegistry

log = logging.getLogger("livecore.media.cluster")

NODE_HEADER = "X-Livecore-Node"
PROOF_HEADER = "X-Livecore-Node-Proof"
NODE_TAG_CHARS_MAX = 400  # a session id's node part; longer is not one of ours
CHUNK_BYTES = 64 * 1024
# What a passed-on request keeps of the client's headers, and what its answer keeps of the other node's.
_REQUEST_HEADERS = ("Content-Type", "Authorization", "If-Match", "Accept")
_ANSWER_HEADERS = ("Content-Type", "ETag", "Cache-Control", "Location", "Link", "Accept-Patch", "Allow")


def new_session_id(node_id: str) -> str:
    """A WHIP/WHEP session id that names the node holding the session."""
    tag = base64.urlsafe_b64encode(node_id.encode()).rstrip(b"=").decode()
    return f"{tag}.{secrets.token_urlsafe(12)}"


def session_node(session: str) -> str | None:
    """The id of the node holding a session, from its id; None for an id that names no node."""
    tag, dot, rest = session.partition(".")
    if not dot or not tag or not rest or len(tag) > NODE_TAG_CHARS_MAX:
        return None
    try:
        node_id = base64.b64decode(tag + "=" * (-len(tag) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    return node_id or None


@dataclass(frozen=True)
class NodeAnswer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class NodeLink:
    """This node's requests to other nodes, at their internal URLs, and the check of theirs to it."""

    def __init__(self, node_id: str, tokens: Tokens, registry: MediaRegistry, timeout_ms: int,
                 answer_bytes_max: int) -> None:
        self.node_id = node_id
        self._tokens = tokens
        self._registry = registry
        self._timeout_s = timeout_ms / 1000
        self._answer_bytes_max = answer_bytes_max
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # No decompression: an answer passed on keeps its bytes and its Content-Type.
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                                           auto_decompress=False)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()

    def mark(self) -> dict[str, str]:
        """The headers that say a request comes from this node."""
        return {NODE_HEADER: self.node_id, PROOF_HEADER: self._tokens.node_proof(self.node_id)}

    def sender(self, request: web.Request) -> str | None:
        """The node a request comes from, when it carries a valid node mark; None for a client's request."""
        node_id = request.headers.get(NODE_HEADER)
        proof = request.headers.get(PROOF_HEADER, "")
        if node_id and hmac.compare_digest(proof.encode(), self._tokens.node_proof(node_id).encode()):
            return node_id
        return None

    async def node_url(self, node_id: str) -> str | None:
        """Where a live node is reached (its internal URL), or None once it stopped refreshing its registration."""
        return await self._registry.node_url(node_id)

    async def send(self, method: str, url: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
                   timeout_s: float | None = None) -> NodeAnswer:
        """One marked request to another node; a 502 Problem when it cannot be reached or does not answer in time."""
        assert self._http is not None, "NodeLink.start() first"
        timeout = aiohttp.ClientTimeout(total=timeout_s or self._timeout_s)
        try:
            async with self._http.request(method, url, data=body or None, headers={**(headers or {}), **self.mark()},
                                          timeout=timeout, allow_redirects=False) as response:
                return NodeAnswer(response.status, response.headers, await self._read(response))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Problem(502, "node-unreachable", f"another node at {url} did not answer ({_reason(exc)})") from exc

    async def pass_on(self, request: web.Request, node_id: str, timeout_s: float | None = None
                      ) -> web.Response | None:
        """Send a client's request as it came to node `node_id` and answer with what that node answered; None when
        `node_id` is not a live node."""
        base = await self.node_url(node_id)
        if base is None:
            return None
        headers = {name: request.headers[name] for name in _REQUEST_HEADERS if name in request.headers}
        answer = await self.send(request.method, f"{base.rstrip('/')}{request.path_qs}", body=await request.read(),
                                 headers=headers, timeout_s=timeout_s)
        kept: CIMultiDict[str] = CIMultiDict()
        for name in _ANSWER_HEADERS:
            for value in answer.headers.getall(name, []):
                kept.add(name, value)
        return web.Response(status=answer.status, body=answer.body, headers=kept)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The answer's body, refused (502) above `node_answer_bytes_max`."""
        limit = self._answer_bytes_max
        if (response.content_length or 0) > limit:
            raise Problem(502, "node-answer-too-large", f"another node's answer is over {limit} bytes "
                          "(node_answer_bytes_max)")
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise Problem(502, "node-answer-too-large", f"another node's answer is over {limit} bytes "
                              "(node_answer_bytes_max)")
            chunks.append(chunk)
        return b"".join(chunks)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
