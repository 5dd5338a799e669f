// The editor's timeline: one row per clip, in order, each trimmed with an in and an out handle (two range inputs
// over a bar that shows the part kept), with its speed; rows can move up or go. The owner is told of every change.

const MIN_KEPT_MS = 100; // a clip keeps at least this much between its handles

export function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** How long a clip lasts in the output: its kept span over its speed. */
export function keptMs(clip) {
  return Math.round((clip.outMs - clip.inMs) / clip.speed);
}

export class Timeline {
  constructor(list, template, onChange) {
    this.list = list;
    this.template = template;
    this.onChange = onChange;
    this.clips = [];
  }

  add(clip) {
    this.clips.push(clip);
    this.render();
  }

  totalMs() {
    return this.clips.reduce((sum, clip) => sum + keptMs(clip), 0);
  }

  render() {
    this.list.replaceChildren(...this.clips.map((clip, index) => this.row(clip, index)));
    this.onChange();
  }

  row(clip, index) {
    const row = this.template.content.firstElementChild.cloneNode(true);
    row.dataset.clipId = clip.clipId;
    row.querySelector(".clip-name").textContent = `${index + 1}. ${clip.name} (${seconds(clip.durationMs)})`;
    row.querySelector(".trim").setAttribute("aria-label", `Trim clip ${index + 1}`);
    const handleIn = row.querySelector(".trim-in");
    const handleOut = row.querySelector(".trim-out");
    for (const handle of [handleIn, handleOut]) handle.max = String(clip.durationMs);
    handleIn.value = String(clip.inMs);
    handleOut.value = String(clip.outMs);
    handleIn.setAttribute("aria-label", `In point of clip ${index + 1}`);
    handleOut.setAttribute("aria-label", `Out point of clip ${index + 1}`);
    const show = () => {
      row.querySelector(".in-time").textContent = seconds(clip.inMs);
      row.querySelector(".out-time").textContent = seconds(clip.outMs);
      const kept = row.querySelector(".trim-kept");
      kept.style.left = `${(100 * clip.inMs) / clip.durationMs}%`;
      kept.style.width = `${(100 * (clip.outMs - clip.inMs)) / clip.durationMs}%`;
    };
    handleIn.addEventListener("input", () => {
      clip.inMs = Math.min(Number(handleIn.value), clip.outMs - MIN_KEPT_MS);
      handleIn.value = String(clip.inMs);
      show();
      this.onChange();
    });
    handleOut.addEventListener("input", () => {
      clip.outMs = Math.max(Number(handleOut.value), clip.inMs + MIN_KEPT_MS);
      handleOut.value = String(clip.outMs);
      show();
      this.onChange();
    });
    const speed = row.querySelector(".speed");
    speed.value = String(clip.speed);
    speed.addEventListener("change", () => {
      clip.speed = Number(speed.value);
      this.onChange();
    });
    const up = row.querySelector(".move-up");
    up.disabled = index === 0;
    up.addEventListener("click", () => {
      [this.clips[index - 1], this.clips[index]] = [this.clips[index], this.clips[index - 1]];
      this.render();
    });
    row.querySelector(".remove").addEventListener("click", () => {
      this.clips.splice(index, 1);
      URL.revokeObjectURL(clip.url);
      this.render();
    });
    show();
    return row;
  }
}
