// One chat message as a list item: author and text set with textContent, so chat is never parsed as HTML.
// Shared by the watch and studio pages.

/** An <li data-id> for a chat event, holding `.line > .author + .text`. */
export function chatLineElement(event) {
  const li = document.createElement("li");
  li.dataset.id = String(event.id);
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = event.user?.name ?? "someone";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = event.text;
  const line = document.createElement("span");
  line.className = "line";
  line.append(author, text);
  li.append(line);
  return li;
}
