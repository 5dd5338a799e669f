// A creator card as the marketplace pages show it: the figures and the audience shares (aggregates only; the
// server has already left out groups too small to show). Names come from users: textContent only.

import { numbers } from "./money.js";

const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function figures(card) {
  const list = element("dl", "figures");
  const rows = [
    ["Followers", numbers.format(card.followers)],
    ["Median views", numbers.format(card.median_views)],
    ["Engagement rate", percent.format(card.engagement_rate)],
    ["Growth (30 days)", `+${numbers.format(card.growth.followers_gained)} (${percent.format(card.growth.rate)})`],
  ];
  for (const [name, value] of rows) {
    const row = element("div");
    row.append(element("dt", "", name), element("dd", "", value));
    list.append(row);
  }
  return list;
}

function shares(title, values) {
  const section = element("section", "audience");
  section.append(element("h3", "", title));
  const entries = Object.entries(values);
  if (!entries.length) {
    section.append(element("p", "notice", "No group large enough to show."));
    return section;
  }
  const list = element("ul", "shares");
  list.setAttribute("aria-label", title);
  for (const [name, share] of entries) {
    const item = element("li");
    const meter = element("meter");
    meter.min = 0;
    meter.max = 1;
    meter.value = share;
    item.append(element("span", "group", name), meter, element("span", "share", percent.format(share)));
    list.append(item);
  }
  section.append(list);
  return section;
}

/** The card's figures, and with `full` its audience split too. */
export function renderCard(card, { full = false, link = false } = {}) {
  const article = element(link ? "li" : "article", "creator-card");
  article.dataset.creatorId = card.creator.id;
  const heading = element(link ? "h2" : "h2");
  if (link) {
    const anchor = element("a", "", card.creator.display_name);
    anchor.href = `/creator.html?id=${card.creator.id}`;
    heading.append(anchor);
  } else {
    heading.textContent = card.creator.display_name;
  }
  article.append(heading, element("p", "notice", `@${card.creator.username}`), figures(card));
  if (full) {
    article.append(shares("Age of followers", card.audience.age_bands), shares("Regions", card.audience.regions),
      shares("Interests", card.audience.interests));
  }
  return article;
}
