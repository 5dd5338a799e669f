"""The livecore side of a scenario run: a node started here, or nodes already running at given URLs."""

from __future__ import annotations

from pathlib import Path

from loadtest.scenario import Scenario
from loadtest.show import run_tag
from loadtest.target import LivecoreTarget
from loadtest.venue import Venue, livecore_venue

UNLIMITED = str(10**9)


def started_node_settings(scenario: Scenario) -> dict[str, str]:
    """What a started node needs so a handful of accounts can carry the whole scenario."""
    return {
        "chat_per_user_per_10s_max": UNLIMITED,
        "like_taps_per_user_per_s_max": UNLIMITED,
        "connections_per_user_max": UNLIMITED,
        "chat_display_per_s_max": str(scenario.display_per_s),
        "log_level": "WARNING",  # a log line per connection would be measured as server CPU
        "seed_demo": "false",
        **scenario.settings,
    }


class LivecoreServer(LivecoreTarget):
    """livecore under test; with several URLs the viewers spread over all of them."""

    def __init__(self, scenario: Scenario, data_dir: Path | None = None) -> None:
        first = scenario.targets[0] if scenario.targets else None
        super().__init__(first, data_dir, started_node_settings(scenario))
        self.other_nodes = [url.rstrip("/") for url in scenario.targets[1:]]

    async def venue(self, scenario: Scenario) -> Venue:
        return await livecore_venue([self.base_url, *self.other_nodes], scenario, run_tag())
