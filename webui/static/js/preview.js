// The editor's preview, in the page, before anything is rendered: the clips (the files picked, never uploaded
// again) play one after another from their in point to their out point at their speed, the chosen sound under
// them, the texts and stickers where the render will draw them.

const FRAME_WIDTH = 720;
const FRAME_HEIGHT = 1280;

export class Preview {
  constructor({ video, overlays, play, time, music }) {
    Object.assign(this, { video, overlays, play, time, music });
    this.clips = [];
    this.index = -1;
    this.elapsedMs = 0;
    this.playing = false;
    video.addEventListener("timeupdate", () => this.tick());
    video.addEventListener("ended", () => this.next());
    play.addEventListener("click", () => (this.playing ? this.stop() : this.start()));
  }

  /** The clips, texts and stickers to show (the editor's current decisions). */
  update(clips, overlays) {
    this.clips = clips;
    this.play.disabled = !clips.length;
    this.overlays.replaceChildren(...overlays.map((overlay) => this.overlay(overlay)));
    if (!clips.length) this.stop();
  }

  overlay(item) {
    const element = item.kind === "text" ? document.createElement("p") : document.createElement("img");
    element.className = `preview-${item.kind}`;
    if (item.kind === "text") {
      element.textContent = item.text;
      element.style.color = item.colour;
      element.style.fontSize = `${(100 * item.size_px) / FRAME_WIDTH}cqw`;
    } else {
      element.src = item.url;
      element.alt = "";
      element.style.width = `${(100 * item.width_px) / FRAME_WIDTH}%`;
    }
    element.style.left = `${(100 * item.x) / FRAME_WIDTH}%`;
    element.style.top = `${(100 * item.y) / FRAME_HEIGHT}%`;
    return element;
  }

  start() {
    if (!this.clips.length) return;
    this.playing = true;
    this.play.textContent = "Stop preview";
    this.elapsedMs = 0;
    this.index = -1;
    if (this.music.src) {
      this.music.currentTime = 0;
      this.music.play().catch(() => {});
    }
    this.next();
  }

  stop() {
    this.playing = false;
    this.play.textContent = "Play preview";
    this.video.pause();
    this.music.pause();
  }

  next() {
    if (!this.playing) return;
    if (this.index >= 0) {
      const done = this.clips[this.index];
      this.elapsedMs += Math.round((done.outMs - done.inMs) / done.speed);
    }
    this.index += 1;
    if (this.index >= this.clips.length) {
      this.stop();
      return;
    }
    const clip = this.clips[this.index];
    if (this.video.src !== clip.url) this.video.src = clip.url;
    this.video.currentTime = clip.inMs / 1000;
    this.video.playbackRate = clip.speed;
    this.video.preservesPitch = true;
    this.video.play().catch(() => this.stop());
  }

  tick() {
    const clip = this.clips[this.index];
    if (!this.playing || !clip) return;
    const intoClipMs = this.video.currentTime * 1000 - clip.inMs;
    this.time.textContent = `${((this.elapsedMs + intoClipMs / clip.speed) / 1000).toFixed(1)} s`;
    if (this.video.currentTime * 1000 >= clip.outMs) this.next();
  }
}
