"""The editor's renderer against the FFmpeg command line on the same 15 s 720x1280 edit, in the same run.

The edit: three clips (6 s as it is, 6 s at 1.5x, 5 s as it is: 15 s), music mixed under their sound at 0.4, a text
and a sticker over the whole of it, exported as H.264 (veryfast, CRF 23) and AAC in a faststart MP4. The sources are
made first with PyAV (a textured moving pattern, so the encoders have real work, and a tone). The editor renders in a
process of its own exactly as a node renders (editor.renderer: a process forked from a warm forkserver that has
PyAV loaded, progress over a pipe); FFmpeg gets the equivalent
filter graph (trim, setpts, scale, atempo, concat, amix, overlay of the same text and sticker PNGs drawn with Pillow,
since the editor draws its text with Pillow too). Each is run `--runs` times, alternating; the medians are compared.

Printed: wall time of each (median), the ratio editor / FFmpeg (target <= 1.15), the editor's speed in x realtime
(target >= 1.3) and the peak resident memory of the render process (target < 300 MB): its VmHWM, read from
/proc while it runs (wait4's ru_maxrss would count the memory of the process that started it).
Needs the `ffmpeg` program (Debian: `apt-get install -y --no-install-recommends ffmpeg`); the tests do not.
Run: `.venv/bin/python benchmarks/editor_render.py --runs 3`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing.forkserver
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from editor.overlays import StickerSpec, TextSpec, sticker_picture, text_picture
from editor.render import PartnerSpec, PieceSpec, RenderPlan
from editor.renderer import RenderProcesses

WIDTH, HEIGHT, FPS, RATE_HZ = 720, 1280, 30, 48_000
LENGTH_MS = 15_000
CLIPS = [(6000, 1.0), (6000, 1.5), (5000, 1.0)]  # (source span from 0, speed)
MUSIC_VOLUME = 0.4
TEXT = TextSpec("Fifteen seconds", 60, 1000, 72, "#ffffff", 0, LENGTH_MS)
STICKER_XY = (440, 120)
POLL_S = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def make_clip(path: Path, seconds: float, hue: int, tone_hz: float) -> None:
    """A 720x1280 clip of a moving textured pattern (noise over a gradient, scrolling) and a tone."""
    rng = np.random.default_rng(hue)
    texture = rng.integers(0, 60, size=(HEIGHT, WIDTH), dtype=np.uint8)
    gradient = np.linspace(0, 160, WIDTH, dtype=np.float32)[None, :].repeat(HEIGHT, axis=0)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "20"}
        audio = out.add_stream("aac", rate=RATE_HZ, layout="stereo")
        for index in range(int(seconds * FPS)):
            luma = (gradient + np.roll(texture, index * 3, axis=0)).clip(0, 255).astype(np.uint8)
            rgb = np.stack([luma, np.roll(luma, hue, axis=1), np.full_like(luma, hue % 256)], axis=2)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        total = int(seconds * RATE_HZ)
        for start in range(0, total, 1024):
            t = np.arange(start, min(total, start + 1024)) / RATE_HZ
            tone = (0.2 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE_HZ, start, Fraction(1, RATE_HZ)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))


def make_music(path: Path, seconds: float) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        audio = out.add_stream("aac", rate=RATE_HZ, layout="stereo")
        total = int(seconds * RATE_HZ)
        for start in range(0, total, 1024):
            t = np.arange(start, min(total, start + 1024)) / RATE_HZ
            tune = (0.3 * np.sin(2 * np.pi * (220 + 110 * (t // 0.5 % 4)) * t)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.stack([tune, tune]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE_HZ, start, Fraction(1, RATE_HZ)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))


def make_sticker(path: Path) -> None:
    size = 200
    yy, xx = np.mgrid[0:size, 0:size]
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[(xx - 100) ** 2 + (yy - 100) ** 2 < 80 ** 2] = (250, 200, 30, 255)
    Image.fromarray(rgba, "RGBA").save(path)


def editor_plan(work: Path, output: Path) -> RenderPlan:
    pieces, start = [], 0
    for index, (span_ms, speed) in enumerate(CLIPS):
        length = round(span_ms / speed)
        pieces.append(PieceSpec(str(work / f"clip{index}.mp4"), 0, speed, 1.0, start, length))
        start += length
    assert start == LENGTH_MS
    return RenderPlan(pieces=pieces, length_ms=LENGTH_MS, output=str(output),
                      music=PartnerSpec(str(work / "music.m4a"), 0, MUSIC_VOLUME), texts=[TEXT],
                      stickers=[StickerSpec(str(work / "sticker.png"), *STICKER_XY, None, 0, LENGTH_MS)])


def ffmpeg_command(work: Path, output: Path) -> list[str]:
    """The same edit as one FFmpeg filter graph (the text as the PNG Pillow draws for the editor)."""
    text_png = work / "text.png"
    text_picture(TEXT).save(text_png)
    sticker_picture(StickerSpec(str(work / "sticker.png"), 0, 0, None, 0, 0)).save(work / "sticker-rgba.png")
    graph = []
    for index, (span_ms, speed) in enumerate(CLIPS):
        span_s = span_ms / 1000
        graph.append(f"[{index}:v]trim=0:{span_s},setpts=(PTS-STARTPTS)/{speed},scale={WIDTH}:{HEIGHT},"
                     f"fps={FPS},format=yuv420p[v{index}]")
        tempo = f",atempo={speed}" if speed != 1 else ""
        graph.append(f"[{index}:a]atrim=0:{span_s},asetpts=PTS-STARTPTS{tempo},aresample={RATE_HZ},"
                     f"aformat=sample_fmts=fltp:channel_layouts=stereo[a{index}]")
    graph.append("[v0][a0][v1][a1][v2][a2]concat=n=3:v=1:a=1[v][a]")
    graph.append(f"[3:a]atrim=0:{LENGTH_MS / 1000},volume={MUSIC_VOLUME}[m]")
    graph.append("[a][m]amix=inputs=2:duration=first:normalize=0[aout]")
    graph.append(f"[v][4:v]overlay={STICKER_XY[0]}:{STICKER_XY[1]}[vs]")
    graph.append(f"[vs][5:v]overlay={TEXT.x}:{TEXT.y},format=yuv420p[vout]")
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            *[arg for index in range(3) for arg in ("-i", str(work / f"clip{index}.mp4"))],
            "-i", str(work / "music.m4a"), "-i", str(work / "sticker-rgba.png"), "-i", str(text_png),
            "-filter_complex", ";".join(graph), "-map", "[vout]", "-map", "[aout]",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-r", str(FPS),
            "-c:a", "aac", "-b:a", "128k", "-ar", str(RATE_HZ), "-movflags", "+faststart", str(output)]


@dataclass
class Usage:
    """What was seen of a process while it ran: its resident high-water mark and the CPU it had used."""

    peak_mb: float = 0.0
    cpu_s: float = 0.0

    def look(self, pid: int) -> None:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return  # gone already
        hwm = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)
        self.peak_mb = max(self.peak_mb, hwm)
        self.cpu_s = max(self.cpu_s, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)  # utime + stime


def timed_ffmpeg(command: list[str]) -> tuple[float, Usage]:
    """(wall seconds, usage) of the FFmpeg command."""
    started = time.perf_counter()
    child = subprocess.Popen(command)
    usage = Usage()
    while child.poll() is None:
        usage.look(child.pid)
        time.sleep(POLL_S)
    wall = time.perf_counter() - started
    if child.returncode:
        raise SystemExit(f"ffmpeg failed with {child.returncode}")
    return wall, usage


async def timed_editor(plan: RenderPlan) -> tuple[float, Usage]:
    """(wall seconds, usage) of one render as a node runs it."""
    processes = RenderProcesses(1)
    started = time.perf_counter()
    job = asyncio.create_task(processes.run(1, plan, lambda fraction: None))
    usage = Usage()
    while not job.done():
        process = processes.running.get(1)
        if process is not None and process.pid is not None:
            usage.look(process.pid)
        await asyncio.sleep(POLL_S)
    outcome = job.result()
    if outcome.ending != "done":
        raise SystemExit(f"the render {outcome.ending}: {outcome.detail}")
    return time.perf_counter() - started, usage


def duration_s(path: Path) -> float:
    with av.open(str(path)) as container:
        return container.duration / 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the ffmpeg program is needed: apt-get install -y --no-install-recommends ffmpeg")
    with tempfile.TemporaryDirectory(prefix="editor-bench-") as folder:
        work = Path(folder)
        print("making the sources ...", flush=True)
        for index, ((span_ms, _), tone) in enumerate(zip(CLIPS, (330, 440, 550), strict=True)):
            make_clip(work / f"clip{index}.mp4", span_ms / 1000, 40 + 70 * index, tone)
        make_music(work / "music.m4a", LENGTH_MS / 1000)
        make_sticker(work / "sticker.png")
        plan = editor_plan(work, work / "editor.mp4")
        ffmpeg = ffmpeg_command(work, work / "ffmpeg.mp4")
        multiprocessing.forkserver.ensure_running()  # a node's forkserver is up long before its first render
        results: dict[str, list[tuple[float, Usage]]] = {"editor": [], "ffmpeg": []}
        for run in range(args.runs):
            results["editor"].append(asyncio.run(timed_editor(plan)))
            results["ffmpeg"].append(timed_ffmpeg(ffmpeg))
            print(f"run {run + 1}: " + ", ".join(f"{name} {wall:.2f} s wall, {usage.cpu_s:.2f} s CPU, "
                                                   f"{usage.peak_mb:.0f} MB" for name, [*_, (wall, usage)]
                                                   in results.items()), flush=True)
        print(f"output: editor {duration_s(work / 'editor.mp4'):.3f} s, ffmpeg {duration_s(work / 'ffmpeg.mp4'):.3f} s"
              f" (the edit: {LENGTH_MS / 1000:.0f} s); load average now {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores")
        wall = {name: statistics.median(w for w, _ in runs) for name, runs in results.items()}
        cpu = {name: statistics.median(u.cpu_s for _, u in runs) for name, runs in results.items()}
        peak = {name: max(u.peak_mb for _, u in runs) for name, runs in results.items()}
        for name in results:
            print(f"{name}: {wall[name]:.2f} s wall, {cpu[name]:.2f} s CPU (medians of {args.runs}), peak memory "
                  f"{peak[name]:.0f} MB")
        print(f"editor / ffmpeg wall time: {wall['editor'] / wall['ffmpeg']:.2f}x (target <= 1.15); "
              f"CPU time: {cpu['editor'] / cpu['ffmpeg']:.2f}x")
        print(f"editor speed: {LENGTH_MS / 1000 / wall['editor']:.2f}x realtime (target >= 1.3)")
        print(f"editor render process peak memory: {peak['editor']:.0f} MB (target < 300)")


if __name__ == "__main__":
    main()
