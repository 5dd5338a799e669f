"""Render jobs on one node: submitted edits go into PostgreSQL and onto the Redis Streams queue; this node takes
entries while it has a free render process, renders each in a process of its own, stores and publishes progress,
retries a render whose process died, and turns the result into a feed video exactly once.

Exactly once: the video is created in the same transaction that records it on the edit (locked), so a retried or
re-claimed render reuses it; it becomes ready through the feeds' own processing (check, thumbnail, fan-out).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
from prometheus_client import Counter, Gauge

from editor import edits, plans, uploads
from editor.decisions import EditDecisions, EditLimits, check_limits, hashtag_words
from editor.renderer import Outcome, RenderProcesses
from editor.renderqueue import PROGRESS_CHANNEL, Entry, QueueMissing, RenderQueue
from editor.sounds import SoundLibrary
from editor.uploads import UploadFiles
from feeds import Feeds, videos
from feeds.videoholders import holder_of
from livecore.http import Problem
from livecore.media.cluster import NodeLink
from livecore.node import Node
from livecore.outage import unreachable_part
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.editor.rendering")

READ_BLOCK_MS = 1000
OUTAGE_PAUSE_S = 1.0


class RenderMetrics:
    def __init__(self, registry: object) -> None:
        self.renders = Counter("livecore_editor_renders", "Renders that ended, by how (done, failed, died, "
                               "cancelled)", ["ending"], registry=registry)
        self.claimed = Counter("livecore_editor_renders_claimed", "Renders taken over from a node that stopped "
                               "touching them", registry=registry)
        self.running = Gauge("livecore_editor_renders_running", "Render processes running on this node",
                             registry=registry)


class Renders:
    def __init__(self, node: Node, feeds: Feeds, sound_library: SoundLibrary, link: NodeLink | None) -> None:
        s = node.settings
        self.node = node
        self.feeds = feeds
        self.sounds = sound_library
        self.link = link
        self.files = UploadFiles(s.data_dir / "editor")
        self.queue = RenderQueue(node.redis, s.node_id)
        self.processes = RenderProcesses(s.edit_render_processes)
        self.metrics = RenderMetrics(node.registry)
        self.limits = EditLimits(s.edit_clips_max, s.edit_overlays_max, s.edit_duration_ms_max, s.edit_stitch_ms_max,
                                 s.edit_crossfade_ms_max)
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        try:
            await self._ensure_queue()
        except Exception as exc:  # Redis down at start: the reading loop sets the group up once it is back
            if unreachable_part(exc) is None:
                raise
        self._tasks += [asyncio.create_task(self._take_new(), name="editor-renders"),
                        asyncio.create_task(self._take_abandoned(), name="editor-renders-claim")]

    def rendering(self) -> int:
        """Renders this node has taken and not finished."""
        return len(self._jobs)

    async def stop(self) -> None:
        await stop_tasks(*self._tasks, *self._jobs)
        self.processes.stop()

    async def submit(self, author_id: int, edit: EditDecisions) -> edits.Edit:
        """Check the edit and queue it: stored, then on the stream; taken back when the stream cannot have it."""
        length_ms = check_limits(edit, self.limits)
        credits = await plans.check_references(self.node.pool, author_id, edit)
        queue_max = self.node.settings.edit_queue_max
        if await edits.queued_count(self.node.pool) >= queue_max:
            raise Problem(503, "edits-busy", f"{queue_max} edits are waiting to be rendered (edit_queue_max); "
                          "try again shortly", headers={"Retry-After": "10"})
        # Committed before it is queued: a node may take the entry at once and must find the edit.
        made = await edits.create_edit(self.node.pool, author_id, edit.model_dump(mode="json"), length_ms, credits)
        try:
            await self.queue.add(made.id)
        except BaseException:
            await edits.delete_unqueued(self.node.pool, made.id)  # the client hears 503 and sends it again
            raise
        return made

    async def cancel(self, edit_id: int) -> edits.Edit | None:
        """Cancel a queued or rendering edit (None when it was neither) and stop its render if it runs here;
        another node rendering it stops at its next progress report."""
        cancelled = await edits.cancel(self.node.pool, edit_id)
        if cancelled is not None:
            self.processes.cancel(edit_id)
        return cancelled

    async def _set_up_queue_again(self) -> None:
        try:
            await self._ensure_queue()
        except Exception as exc:
            await self._pause_after(exc)

    async def _ensure_queue(self) -> None:
        if await self.queue.ensure_group():
            unfinished = await edits.unfinished_ids(self.node.pool)
            for edit_id in unfinished:  # Redis lost the stream: PostgreSQL still knows what to render
                await self.queue.add(edit_id)
            if unfinished:
                log.warning("render queue was missing; queued %d unfinished edits again", len(unfinished))

    async def _take_new(self) -> None:
        while True:
            await self.processes.slots.acquire()
            try:
                entry = await self.queue.read(READ_BLOCK_MS)
            except QueueMissing:
                self.processes.slots.release()
                await self._set_up_queue_again()
                continue
            except Exception as exc:
                self.processes.slots.release()
                await self._pause_after(exc)
                continue
            if entry is None:
                self.processes.slots.release()
                continue
            self._start_job(entry)

    async def _take_abandoned(self) -> None:
        s = self.node.settings
        while True:
            await asyncio.sleep(s.edit_claim_interval_ms / 1000)
            if not self.processes.free():
                continue
            try:
                await self._ensure_queue()
                entry = await self.queue.claim_abandoned(s.edit_claim_idle_ms)
            except Exception as exc:
                await self._pause_after(exc)
                continue
            if entry is not None and self.processes.free():
                self.metrics.claimed.inc()
                await self.processes.slots.acquire()
                self._start_job(entry)

    async def _pause_after(self, exc: Exception) -> None:
        if unreachable_part(exc) is None:
            log.exception("taking renders failed")
        else:
            log.warning("render queue unreachable: %r", exc)
        await asyncio.sleep(OUTAGE_PAUSE_S)

    def _start_job(self, entry: Entry) -> None:
        task = asyncio.create_task(self._run_job(entry), name=f"edit-{entry.edit_id}")
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _run_job(self, entry: Entry) -> None:
        try:
            await self.render_edit(entry)
        except asyncio.CancelledError:
            raise
        except Exception:  # left unacknowledged: another attempt claims it once it has been idle long enough
            log.exception("render of edit %s failed", entry.edit_id)
        finally:
            self.processes.slots.release()

    async def render_edit(self, entry: Entry) -> None:
        """Render the entry's edit (again, after a dead process, up to edit_render_attempts_max), then acknowledge."""
        pool = self.node.pool
        attempts_max = self.node.settings.edit_render_attempts_max
        while True:
            edit = await edits.start_attempt(pool, entry.edit_id, self.node.settings.node_id)
            if edit is None:  # finished, cancelled, or never committed
                break
            if edit.attempts > attempts_max:
                await edits.finish(pool, edit.id, "failed", f"gave up after {attempts_max} attempts")
                break
            outcome = await self._attempt(entry, edit)
            self.metrics.renders.labels(ending=outcome.ending).inc()
            if outcome.ending != "died":
                break
            log.warning("render of edit %s died (%s); trying again", edit.id, outcome.detail)
        await self.queue.done(entry.entry_id)

    async def _attempt(self, entry: Entry, edit: edits.Edit) -> Outcome:
        decisions = EditDecisions.model_validate(edit.decisions)
        output = self.files.render_output(edit.id, edit.attempts)
        try:
            try:
                plan = await plans.build_plan(decisions, self._upload_file, self._video_file, self.sounds.audio_path,
                                              output)
            except (FileNotFoundError, Problem) as exc:
                await self._finish(edit.id, "failed", f"a source cannot be read here: {exc}")
                return Outcome("failed", str(exc))
            self.metrics.running.inc()
            try:
                outcome = await self.processes.run(edit.id, plan, self._progress_reporter(entry, edit.id))
            finally:
                self.metrics.running.dec()
            if outcome.ending == "done":
                await self._publish(edit, decisions, output)
            elif outcome.ending == "failed":
                await self._finish(edit.id, "failed", outcome.detail)
            return outcome
        finally:
            output.unlink(missing_ok=True)

    def _progress_reporter(self, entry: Entry, edit_id: int):  # type: ignore[no-untyped-def]
        clock = self.node.clock
        interval_ms = self.node.settings.edit_progress_interval_ms
        last_ms = [-interval_ms]
        pending: set[asyncio.Task[None]] = set()

        def report(fraction: float) -> None:
            now_ms = clock.now_ms()
            if now_ms - last_ms[0] < interval_ms or pending:
                return
            last_ms[0] = now_ms
            task = asyncio.create_task(self._store_progress(entry, edit_id, fraction))
            pending.add(task)
            task.add_done_callback(pending.discard)

        return report

    async def _store_progress(self, entry: Entry, edit_id: int, fraction: float) -> None:
        try:
            if not await edits.record_progress(self.node.pool, edit_id, fraction):
                self.processes.cancel(edit_id)  # cancelled (maybe on another node): stop rendering
                return
            await self.queue.touch(entry.entry_id)
            await self._announce(edit_id, "rendering", fraction)
        except Exception as exc:  # progress is best effort; the render goes on
            log.warning("progress of edit %s not stored: %r", edit_id, exc)

    async def _announce(self, edit_id: int, state: str, progress: float) -> None:
        await self.node.redis.publish(PROGRESS_CHANNEL.format(id=edit_id),
                                      orjson.dumps({"id": edit_id, "state": state, "progress": progress}))

    async def _finish(self, edit_id: int, state: edits.State, error: str | None = None) -> None:
        if await edits.finish(self.node.pool, edit_id, state, error):
            try:
                await self._announce(edit_id, state, 1.0 if state == "done" else 0.0)
            except Exception as exc:
                log.warning("end of edit %s not announced: %r", edit_id, exc)

    async def _publish(self, edit: edits.Edit, decisions: EditDecisions, output: Path) -> None:
        """Make the rendered file the edit's video (created once, whatever the attempt) and wait until it is ready."""
        pool = self.node.pool
        async with pool.acquire() as conn, conn.transaction():
            state, video_id = await edits.attach_video(conn, edit.id)
            if state != "rendering":
                return  # cancelled while rendering
            if video_id is None:
                caption = " ".join(part for part in (decisions.caption, f"({edit.credits})" if edit.credits else "")
                                   if part)
                video_id = await videos.create_video(
                    conn, edit.author_id, caption, hashtag_words(decisions),
                    decisions.music.sound_id if decisions.music else None, decisions.challenge_id, decisions.mature,
                    node_id=self.node.settings.node_id)
                assert video_id is not None
                await edits.set_video(conn, edit.id, video_id)
        await self.feeds.processor.process(video_id, output, remove_source=True)
        video = await videos.get_video(pool, video_id)
        if video is not None and video.state == "ready":
            await self._finish(edit.id, "done")
        else:
            await self._finish(edit.id, "failed", video.failure if video else "the video is gone")

    async def _upload_file(self, upload_id: int) -> Path:
        upload = await uploads.upload_by_id(self.node.pool, upload_id)
        if upload is None:
            raise FileNotFoundError(f"upload {upload_id} is gone")
        path = self.files.upload(upload.file_name)
        if not path.is_file():
            raise FileNotFoundError(f"upload {upload_id} is kept on node {upload.node_id}")
        return path

    async def _video_file(self, video_id: int) -> Path:
        own = self.feeds.files.video(video_id)
        if own.is_file():
            return own
        ready, holder = await holder_of(self.node.pool, video_id)
        if not ready or holder is None or self.link is None:
            raise FileNotFoundError(f"video {video_id} has no file this node can reach")
        return await self.feeds.holders.local_copy(self.link, holder, video_id, "video.mp4")
