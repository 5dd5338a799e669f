"""localstripe (a stateful fake Stripe: the one third party the tests may not reach) out of process on loopback."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from livecore.embedded import free_port

LOCALSTRIPE_START_S_MAX = 20.0
SERVE_LOCALSTRIPE = "import sys; from aiohttp import web; from localstripe.server import app; " \
                    "web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None)"


def run_localstripe(serve: str = SERVE_LOCALSTRIPE, *extra_args: str) -> Iterator[str]:
    """Run `python -c serve PORT *extra_args` (a localstripe server) on a free loopback port until the generator is
    closed; yields its URL once it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", serve, str(port), *extra_args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + LOCALSTRIPE_START_S_MAX
    while True:
        try:
            urllib.request.urlopen(f"{url}/v1/balance", timeout=1)
            break
        except urllib.error.HTTPError:  # 401 without a key is still an answer
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "localstripe did not start"
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
