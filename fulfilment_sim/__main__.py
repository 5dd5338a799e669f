"""`python -m fulfilment_sim`: run the print-on-demand simulator alone. Every option can also be set as the
environment variable FULFILMENT_SIM_<OPTION> (secrets belong there rather than on the command line)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path

from aiohttp import web

from fulfilment_sim.world import SimSettings

HELP = {
    "data_dir": "where the order store (SQLite) is kept",
    "webhook_secret": "the Standard Webhooks signing secret (whsec_...); empty makes one and keeps it in the store",
    "api_key": "require `Authorization: Bearer <key>` on every request",
    "time_acceleration": "simulated seconds per real second",
    "manual_clock": "time moves only by POST /v1/simulate/advance (for tests)",
    "failure_percent": "chance (0-100) that an order fails when its production starts",
    "random_seed": "seed of the failures and tracking numbers (default: random)",
    "production_start_s": "simulated seconds from confirmation to production",
    "production_s": "simulated seconds in production before shipping",
    "transit_s": "simulated seconds from shipping to delivery",
    "tick_ms": "how often due steps and callbacks are looked for (real time)",
    "delivery_timeout_s": "how long one callback delivery may take",
    "delivery_attempts_max": "deliveries of one callback before it is given up",
    "delivery_backoff_s_max": "the longest wait between two deliveries of one callback",
    "origin_country": "where parcels ship from (domestic rates inside it)",
    "exit_with_parent": "stop when the process that started this one is gone (a node that crashed)",
}


def parse(argv: list[str] | None = None) -> tuple[str, int, SimSettings]:
    parser = argparse.ArgumentParser(prog="python -m fulfilment_sim", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("FULFILMENT_SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FULFILMENT_SIM_PORT", "8090")))
    for f in dataclasses.fields(SimSettings):
        env = os.environ.get(f"FULFILMENT_SIM_{f.name.upper()}")
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", default=env in ("1", "true", "yes"), help=HELP[f.name])
            continue
        kind = Path if f.name == "data_dir" else int if f.type in ("int", "int | None") else str
        default = kind(env) if env else (Path(".fulfilment_sim") if f.name == "data_dir" else f.default)
        parser.add_argument(flag, type=kind, default=default, help=HELP[f.name])
    args = vars(parser.parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    values = {k: v for k, v in args.items() if v is not None}
    return host, port, SimSettings(**values)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fulfilment_sim %(levelname)s %(message)s")
    host, port, settings = parse(argv)
    from fulfilment_sim.app import build_app

    print(f"fulfilment simulator on http://{host}:{port} (store in {settings.data_dir})", flush=True)
    web.run_app(build_app(settings), host=host, port=port, print=None)


if __name__ == "__main__":
    main()
