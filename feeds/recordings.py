"""A live stream's recording becomes a video when the stream ends, unless its creator opted out."""

from __future__ import annotations

import logging
from pathlib import Path

from feeds import videos
from feeds.processing import VideoProcessor
from livecore.node import Node
from livecore.streams import recorded_streams

log = logging.getLogger("livecore.feeds.recordings")

RECORDINGS_PER_SWEEP_MAX = 50


async def post_recordings(node: Node, processor: VideoProcessor) -> list[int]:
    """Make videos of the recent recordings this node holds; returns the new video ids."""
    s = node.settings
    ended = await recorded_streams(node.pool, node.clock.now_ms() - s.recording_video_window_s * 1000,
                                   RECORDINGS_PER_SWEEP_MAX)
    local = {stream.id: stream for stream in ended if _recording(s.data_dir, stream.id).is_file()}
    if not local or processor.busy():
        return []
    made = []
    for stream_id in sorted(await videos.streams_without_video(node.pool, list(local))):
        stream = local[stream_id]
        video_id = await videos.create_video(node.pool, stream.creator_id, stream.title, [], None, None, False,
                                             source_stream_id=stream_id, node_id=s.node_id)
        if video_id is None:  # another node made it first
            continue
        log.info("stream %s's recording becomes video %s", stream_id, video_id)
        processor.submit(video_id, _recording(s.data_dir, stream_id), remove_source=False)
        made.append(video_id)
        if processor.busy():
            break
    return made


def _recording(data_dir: Path, stream_id: int) -> Path:
    # Where the media plane records a stream (livecore/media/plane.py: MediaPlane.files).
    return data_dir / "media" / str(stream_id) / "recording.mp4"
