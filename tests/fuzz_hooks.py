"""Schemathesis hooks for test_openapi_fuzz.py (loaded by the CLI through SCHEMATHESIS_HOOKS): what a real client of
the node under test adds to a generated request. The node's world (token, ids, webhook secret) comes as JSON in the
file named by LIVECORE_FUZZ_WORLD."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import requests
import schemathesis
import stripe
from standardwebhooks.webhooks import Webhook

WORLD = json.loads(Path(os.environ["LIVECORE_FUZZ_WORLD"]).read_text())


class Signed(requests.auth.AuthBase):
    """A webhook body signed with the node's webhook secret, the way Stripe signs (over the exact bytes sent)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        try:
            text = body.decode()
        except UnicodeDecodeError:  # Stripe signs text; the node refuses such a body before it checks a signature
            return request
        request.headers["Stripe-Signature"] = stripe.WebhookSignature.generate_signature_header(
            text, WORLD["webhook_secret"], timestamp=int(time.time()))
        return request


class StandardSigned(requests.auth.AuthBase):
    """A fulfilment callback signed per Standard Webhooks with the node's fulfilment secret (its generated webhook-id
    kept, the timestamp now), the way the fulfilment provider signs."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        try:
            text = body.decode()
        except UnicodeDecodeError:  # signatures are over text; such a body fails verification, as documented
            return request
        if "webhook-id" not in request.headers:  # a case without the header: refused before any signature check
            return request
        now = dt.datetime.now(tz=dt.UTC)
        request.headers["webhook-timestamp"] = str(int(now.timestamp()))
        request.headers["webhook-signature"] = Webhook(WORLD["fulfilment_webhook_secret"]).sign(
            request.headers["webhook-id"], now, text)
        return request


class Bearer(requests.auth.AuthBase):
    """A bearer token: the fuzzer's account (an adult creator and admin), or a stream's key."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.query and "cursor" in case.query:  # a page cursor is the server's to make (opaque): leave it out.
        del case.query["cursor"]  # Bad cursors are refused as 400 bad-cursor, tested in tests/feeds.
    security = case.operation.definition.raw.get("security") or []
    if "Stripe-Signature" in (case.headers or {}):
        kwargs["auth"] = Signed()
    elif "webhook-signature" in (case.headers or {}):
        kwargs["auth"] = StandardSigned()
    elif any("stream_key" in scheme for scheme in security):  # the key of the stream named, else a wrong one
        stream_id = str((case.path_parameters or {}).get("id"))
        kwargs["auth"] = Bearer(WORLD["stream_keys"].get(stream_id, WORLD["token"]))
    elif security:
        kwargs["auth"] = Bearer(WORLD["token"])


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half the ids name something that exists (streams, users, purchases), so the fuzzer gets past the 404s."""
    path = context.operation.path
    known = next((ids for prefix, ids in WORLD["ids"].items() if path.startswith(prefix)), [])
    if not path_parameters or "id" not in path_parameters or not known:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.sampled_from(known).map(lambda i: {**path_parameters, "id": i}))


schemathesis.serializer.alias("application/trickle-ice-sdpfrag", "text/plain")  # an SDP fragment is text



# A stream or video whose files are on a node that has stopped (another test's, in the shared database) is
# answered `503` naming that node: the documented answer for a holder that is down, not a server error.
HOLDER_DOWN = {"livecore:media-node-gone", "livecore:media-node-unreachable", "livecore:video-node-gone",
               "livecore:video-node-unreachable"}


@schemathesis.check
def not_a_server_error_but_a_holder_down(ctx: Any, response: Any, case: Any) -> None:
    """Any 5xx fails, except a 503 saying the node holding the files asked for is down."""
    if response.status_code < 500:
        return
    try:
        kind = json.loads(response.content).get("type")
    except (ValueError, AttributeError):
        kind = None
    if response.status_code == 503 and kind in HOLDER_DOWN:
        return
    raise AssertionError(f"server error {response.status_code}: {response.content[:500]!r}")
