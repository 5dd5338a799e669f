// Picking a sound from the library: search by title or artist (most used first), hear a preview, choose one.
// Titles and artists come from users: textContent only.

import { api } from "./api.js";
import { seconds } from "./timeline.js";

const SEARCH_QUIET_MS = 250;
const RESULTS_MAX = 10;

export class SoundPicker {
  constructor({ search, results, chosen, clear, preview, onChoose }) {
    Object.assign(this, { search, results, chosen, clear, preview, onChoose });
    this.sound = null;
    this.timer = 0;
    search.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.find(), SEARCH_QUIET_MS);
    });
    clear.addEventListener("click", () => this.choose(null));
  }

  async find() {
    const query = new URLSearchParams({ limit: String(RESULTS_MAX) });
    if (this.search.value.trim()) query.set("q", this.search.value.trim());
    const page = await api(`/api/sounds?${query}`);
    this.results.replaceChildren(...page.items.map((sound) => this.item(sound)));
    if (!page.items.length) {
      const none = document.createElement("li");
      none.className = "hint";
      none.textContent = "No sound matches.";
      this.results.append(none);
    }
  }

  item(sound) {
    const li = document.createElement("li");
    li.className = "sound-result";
    li.dataset.soundId = sound.id;
    const name = document.createElement("span");
    name.className = "sound-name";
    name.textContent = `${sound.title} · ${sound.artist}`;
    const facts = document.createElement("span");
    facts.className = "hint";
    facts.textContent = `${seconds(sound.duration_ms)} · ${sound.uses} videos`;
    const listen = document.createElement("button");
    listen.type = "button";
    listen.className = "listen";
    listen.textContent = "Preview";
    listen.setAttribute("aria-label", `Preview ${sound.title}`);
    listen.addEventListener("click", () => this.listen(sound));
    const use = document.createElement("button");
    use.type = "button";
    use.className = "use";
    use.textContent = "Use";
    use.setAttribute("aria-label", `Use ${sound.title}`);
    use.addEventListener("click", () => this.choose(sound));
    li.append(name, facts, listen, use);
    return li;
  }

  listen(sound) {
    this.preview.hidden = false;
    this.preview.src = sound.audio_url;
    this.preview.dataset.soundId = sound.id;
    this.preview.play().catch(() => {}); // a browser that refuses to autoplay still shows the controls
  }

  choose(sound) {
    this.sound = sound;
    this.chosen.textContent = sound ? `${sound.title} · ${sound.artist}` : "none";
    this.chosen.dataset.soundId = sound ? sound.id : "";
    this.clear.hidden = !sound;
    if (sound) {
      this.preview.hidden = false;
      this.preview.src = sound.audio_url;
      this.preview.dataset.soundId = sound.id;
    }
    this.onChoose(sound);
  }
}
