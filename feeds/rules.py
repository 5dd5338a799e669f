"""What a viewer may be shown: the rules every feed applies after its sources, whatever ranked a video."""

from __future__ import annotations

from feeds.catalogue import CatalogueVideo
from feeds.viewers import Viewer


def may_see(viewer: Viewer, video: CatalogueVideo, *, following: bool) -> bool:
    """Never an author the viewer reported or blocked; mature videos to adults only. For You (not `following`)
    also leaves out authors the viewer is not interested in, and does not recommend minors' videos to people who
    do not follow them."""
    if video.author_id in viewer.blocked or (video.mature and not viewer.adult):
        return False
    if following:
        return True
    if video.author_id in viewer.excluded:
        return False
    return not video.author_minor or video.author_id in viewer.following or video.author_id == viewer.id
