"""Videos for the demo seed: a few short clips by the demo creator, so the feed page has something to show on a
fresh node. Drawn with Pillow, encoded with PyAV (H.264/AAC, vertical) in a worker thread, then posted through
the same processing as any upload."""

from __future__ import annotations

import asyncio
import logging
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from feeds import videos
from feeds.service import Feeds

log = logging.getLogger("livecore.feeds.demo")

WIDTH, HEIGHT, FPS, SECONDS = 360, 640, 15, 3
AUDIO_RATE_HZ = 44100
_SEED_LOCK = 0x66656564  # one advisory lock id for every node seeding the demo clips
DEMO_CLIPS = (  # caption, hashtags, background colour
    ("Morning light", ["music", "chill"], (40, 70, 140)),
    ("New drop: the sunset tee", ["fashion", "merch"], (190, 80, 40)),
    ("Speedrun practice", ["gaming"], (30, 120, 70)),
    ("Sketching live tonight", ["art"], (120, 50, 130)),
    ("Beat of the day", ["music"], (150, 30, 60)),
    ("Behind the scenes", ["fashion"], (60, 60, 60)),
)


async def seed_videos(feeds: Feeds, author_id: int) -> list[int]:
    """Post the demo clips as `author_id` unless they are posted already; the new video ids. Two nodes starting
    together take turns (an advisory lock), so the clips are posted once."""
    async with feeds.node.pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _SEED_LOCK)
        try:
            posted = await conn.fetchval("SELECT count(*) FROM videos WHERE author_id = $1 AND caption = ANY($2)",
                                         author_id, [caption for caption, _, _ in DEMO_CLIPS])
            return [] if posted else await _post_clips(feeds, author_id)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _SEED_LOCK)


async def _post_clips(feeds: Feeds, author_id: int) -> list[int]:
    made = []
    for index, (caption, hashtags, colour) in enumerate(DEMO_CLIPS):
        source = feeds.files.staging(f"demo-{author_id}-{index}.mp4")
        await asyncio.to_thread(draw_clip, source, caption, hashtags, colour)
        video_id = await videos.create_video(feeds.node.pool, author_id, caption, hashtags, None, None, False,
                                             node_id=feeds.node.settings.node_id)
        assert video_id is not None
        feeds.processor.submit(video_id, source, remove_source=True)
        made.append(video_id)
    log.info("posted %d demo videos", len(made))
    return made


def draw_clip(path: Path, caption: str, hashtags: list[str], colour: tuple[int, int, int]) -> None:
    """A vertical clip: the colour, a bouncing dot, the caption and hashtags, and a soft tone (blocking)."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "ultrafast"}
        audio = container.add_stream("aac", rate=AUDIO_RATE_HZ)
        audio.layout = "mono"
        for index in range(FPS * SECONDS):
            image = Image.new("RGB", (WIDTH, HEIGHT), colour)
            draw = ImageDraw.Draw(image)
            y = HEIGHT / 2 + math.sin(index / FPS * math.pi) * HEIGHT / 4
            draw.ellipse((WIDTH / 2 - 30, y - 30, WIDTH / 2 + 30, y + 30), fill=(255, 255, 255))
            draw.text((20, 40), caption, fill=(255, 255, 255))
            draw.text((20, 60), " ".join(f"#{t}" for t in hashtags), fill=(255, 220, 120))
            frame = av.VideoFrame.from_image(image)
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = 1024
        for start in range(0, AUDIO_RATE_HZ * SECONDS, samples):
            t = np.arange(start, start + samples) / AUDIO_RATE_HZ
            tone = (0.05 * np.sin(2 * np.pi * 330 * t)).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE_HZ, start, Fraction(1, AUDIO_RATE_HZ)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
