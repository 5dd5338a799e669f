"""Labels other contexts put on video cards (e.g. the marketplace's "Paid partnership with ..."), through one hook:
a context registers a labeller, and every feed page's video cards carry what the labellers say of their videos."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Label = dict[str, Any]  # {"kind": ..., "text": ..., and whatever else the labeller adds}
Labeller = Callable[[list[int]], Awaitable[dict[int, list[Label]]]]


class CardLabels:
    """The labellers registered on one node's feeds, asked once per page for all its videos."""

    def __init__(self) -> None:
        self._labellers: list[Labeller] = []

    def add(self, labeller: Labeller) -> None:
        """Ask `labeller` (video ids -> labels by video id) for the labels of every feed page's videos."""
        self._labellers.append(labeller)

    async def label(self, items: list[dict[str, Any]]) -> None:
        """Give each video card of a page its `labels` (empty when no labeller has one)."""
        cards = [item for item in items if item["kind"] == "video"]
        video_ids = [card["video"]["id"] for card in cards]
        found: dict[int, list[Label]] = {}
        for labeller in self._labellers if video_ids else []:
            for video_id, labels in (await labeller(video_ids)).items():
                found.setdefault(video_id, []).extend(labels)
        for card in cards:
            card["labels"] = found.get(card["video"]["id"], [])
