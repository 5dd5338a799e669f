// The report's chart, drawn as inline SVG from the report rows (no library, no CDN): bars of impressions per period
// and a line of clicks on its own scale.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 200;
const PAD = 28;

function node(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

/** Replace `container`'s chart with one of `rows` (report rows: start, impressions, clicks). */
export function drawChart(container, rows) {
  container.replaceChildren();
  const svg = node("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: "100%", class: "ad-chart-svg" });
  const impressionsMax = Math.max(1, ...rows.map((r) => r.impressions));
  const clicksMax = Math.max(1, ...rows.map((r) => r.clicks));
  const step = (WIDTH - 2 * PAD) / Math.max(1, rows.length);
  const y = (value, max) => HEIGHT - PAD - (value / max) * (HEIGHT - 2 * PAD);
  svg.append(node("line", { x1: PAD, y1: HEIGHT - PAD, x2: WIDTH - PAD, y2: HEIGHT - PAD, stroke: "#888" }));
  const points = [];
  rows.forEach((row, i) => {
    const x = PAD + i * step;
    const bar = node("rect", { x: x + step * 0.1, y: y(row.impressions, impressionsMax), width: step * 0.8,
      height: HEIGHT - PAD - y(row.impressions, impressionsMax), fill: "#4f8cff", class: "impressions-bar" });
    const title = node("title", {});
    title.textContent = `${row.start}: ${row.impressions} impressions, ${row.clicks} clicks`;
    bar.append(title);
    svg.append(bar);
    points.push(`${x + step / 2},${y(row.clicks, clicksMax)}`);
  });
  if (points.length) svg.append(node("polyline", { points: points.join(" "), fill: "none", stroke: "#ff5a5f",
    "stroke-width": 2, class: "clicks-line" }));
  const legend = node("text", { x: PAD, y: 16, fill: "currentColor", "font-size": 12 });
  legend.textContent = `bars: impressions (max ${impressionsMax}) · line: clicks (max ${clicksMax})`;
  svg.append(legend);
  container.append(svg);
}
