// A grid of videos (the sound and challenge pages): each a thumbnail linking to it in the feed, its author and
// caption; captions and names come from users: textContent only.

export function videoTile(video, extra) {
  const li = document.createElement("li");
  li.className = "video-tile";
  li.dataset.videoId = video.id;
  const link = document.createElement("a");
  link.href = `/feed.html?video=${video.id}`;
  link.setAttribute("aria-label", `Video by @${video.author.username}: ${video.caption || "no caption"}`);
  if (video.thumbnail_url) {
    const img = document.createElement("img");
    img.src = video.thumbnail_url;
    img.alt = "";
    img.loading = "lazy";
    link.append(img);
  }
  const caption = document.createElement("span");
  caption.className = "tile-caption";
  caption.textContent = video.caption || " ";
  const author = document.createElement("span");
  author.className = "tile-author";
  author.textContent = `@${video.author.username}`;
  link.append(caption, author);
  li.append(link);
  if (extra) li.append(extra);
  return li;
}

/** Pages of `load(offset)` ({videos, next_offset}) into `list`, with a "Show more" button. */
export class VideoPages {
  constructor({ list, more, status, empty, load, tile }) {
    Object.assign(this, { list, more, status, empty, load, tile });
    this.offset = 0;
    more.addEventListener("click", () => this.next());
  }

  show(page) {
    for (const video of page.videos) this.list.append(this.tile(video, this.list.children.length));
    this.offset = page.next_offset;
    this.more.hidden = page.next_offset === null;
    this.status.textContent = this.list.children.length ? "" : this.empty;
    this.status.hidden = !this.status.textContent;
  }

  async next() {
    this.more.disabled = true;
    try {
      this.show(await this.load(this.offset));
    } finally {
      this.more.disabled = false;
    }
  }
}
