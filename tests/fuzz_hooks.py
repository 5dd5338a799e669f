"""Schemathesis hooks for test_openapi_fuzz.py (loaded by the CLI through SCHEMATHESIS_HOOKS): what a real client of
the node under test adds to a generated request. The node's world (token, ids, webhook secret) comes as JSON in the
file named by LIVECORE_FUZZ_WORLD."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import requests
import schemathesis
import stripe

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


class Bearer(requests.auth.AuthBase):
    """The fuzzer's account: an adult creator (and admin), as its bearer token."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {WORLD['token']}"
        return request


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if "Stripe-Signature" in (case.headers or {}):
        kwargs["auth"] = Signed()
    elif case.operation.definition.raw.get("security"):
        kwargs["auth"] = Bearer()


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half the ids name something that exists (streams, users, purchases), so the fuzzer gets past the 404s."""
    path = context.operation.path
    known = next((ids for prefix, ids in WORLD["ids"].items() if path.startswith(prefix)), [])
    if not path_parameters or "id" not in path_parameters or not known:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.sampled_from(known).map(lambda i: {**path_parameters, "id": i}))


schemathesis.serializer.alias("application/trickle-ice-sdpfrag", "text/plain")  # an SDP fragment is text
