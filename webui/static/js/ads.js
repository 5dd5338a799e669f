// The advertiser dashboard (/ads.html): the ad balance, campaigns (pause, resume), a campaign's report as a chart
// and tables, and the form that creates a campaign (budget, schedule, bid, audience, a creative: one of the
// advertiser's videos or a new upload). Names and headlines come from users: textContent only.

import { api, currentUser } from "./api.js";
import { drawChart } from "./adchart.js";
import { $, cents, showBanner } from "./money.js";

const UPLOAD_POLL_MS = 1000;
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
let reportCampaign = null;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function percent(value) { return `${(value * 100).toFixed(2)}%`; }
function dollars(centsValue) { return cents(Math.round(centsValue)); }

async function loadBalance() {
  const balance = await api("/api/ads/balance");
  $("ad-balance").textContent = cents(balance.balance_cents);
  $("ad-held").textContent = cents(balance.held_cents);
}

async function loadCampaigns() {
  const { items } = await api("/api/campaigns");
  const rows = $("campaign-rows");
  rows.replaceChildren();
  $("campaigns-empty").hidden = items.length > 0;
  for (const campaign of items) {
    const tr = document.createElement("tr");
    tr.id = `campaign-${campaign.id}`;
    tr.dataset.state = campaign.state;
    const actions = document.createElement("td");
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "toggle";
    toggle.textContent = campaign.state === "active" ? "Pause" : "Resume";
    toggle.addEventListener("click", () => setState(campaign, toggle));
    const report = document.createElement("button");
    report.type = "button";
    report.className = "show-report";
    report.textContent = "Report";
    report.addEventListener("click", () => showReport(campaign));
    actions.append(toggle, " ", report);
    tr.append(cell(campaign.name), cell(campaign.state),
      cell(`${cents(campaign.budget_daily_cents)} / ${cents(campaign.budget_lifetime_cents)}`),
      cell(cents(campaign.spend_cents)),
      cell(`${dateTime.format(new Date(campaign.starts_at))} – ${dateTime.format(new Date(campaign.ends_at))}`),
      actions);
    rows.append(tr);
  }
}

async function setState(campaign, button) {
  button.disabled = true;
  try {
    await api(`/api/campaigns/${campaign.id}/${campaign.state === "active" ? "pause" : "resume"}`, { method: "POST" });
    await loadCampaigns();
  } catch (error) {
    showBanner(error.detail);
    button.disabled = false;
  }
}

function figures(row) {
  return [String(row.impressions), String(row.viewable), String(row.clicks), percent(row.ctr),
    dollars(row.spend_cents), dollars(row.ecpm_cents), String(row.complete)];
}

async function showReport(campaign) {
  reportCampaign = campaign;
  const period = $("report-period").value;
  const report = await api(`/api/campaigns/${campaign.id}/report?period=${period}`);
  $("report").hidden = false;
  $("report-title").textContent = `Report: ${campaign.name}`;
  drawChart($("report-chart"), report.rows);
  const body = $("report-rows");
  body.replaceChildren();
  for (const row of report.rows) {
    const tr = document.createElement("tr");
    tr.append(cell(dateTime.format(new Date(row.start))), ...figures(row).map(cell));
    body.append(tr);
  }
  const totals = $("report-totals");
  totals.replaceChildren(cell("Total"), ...figures(report.totals).map(cell));
  totals.dataset.impressions = String(report.totals.impressions);
}

async function loadVideos(userId) {
  const { items } = await api(`/api/users/${userId}/videos?limit=50`);
  const select = $("video");
  for (const video of items.filter((v) => v.state === "ready")) {
    const option = document.createElement("option");
    option.value = String(video.id);
    option.textContent = `${video.caption || "Video"} (#${video.id})`;
    select.append(option);
  }
}

async function uploadCreative(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("caption", $("headline").value || "Sponsored video");
  const created = await api("/api/videos", { method: "POST", form });
  for (;;) {
    const video = await api(`/api/videos/${created.id}`);
    if (video.state === "ready") return video.id;
    if (video.state === "failed") throw new Error(`the video was refused: ${video.failure}`);
    await new Promise((resolve) => setTimeout(resolve, UPLOAD_POLL_MS));
  }
}

function list(id) {
  return $(id).value.split(",").map((s) => s.trim()).filter(Boolean);
}

function centsOf(id) { return Math.round(Number($(id).value) * 100); }

async function campaignBody() {
  let videoId = Number($("video").value);
  const file = $("upload").files[0];
  if (!videoId && file) videoId = await uploadCreative(file);
  if (!videoId) throw new Error("choose one of your videos or upload one");
  const frequency = Number($("frequency").value);
  return {
    name: $("name").value,
    budget_daily_cents: centsOf("budget_daily"),
    budget_lifetime_cents: centsOf("budget_lifetime"),
    starts_at: new Date($("starts_at").value).toISOString(),
    ends_at: new Date($("ends_at").value).toISOString(),
    pacing: $("pacing").value,
    ad_groups: [{
      bid: { kind: $("bid_kind").value, cents: centsOf("bid") },
      frequency_per_day_max: frequency || undefined,
      targeting: {
        age_bands: [...document.querySelectorAll('input[name="age_band"]:checked')].map((i) => i.value),
        regions: list("regions"), languages: list("languages"), interests: list("interests"),
      },
      creatives: [{ video_id: videoId, headline: $("headline").value, landing_url: $("landing_url").value || null }],
    }],
  };
}

async function submit(event) {
  event.preventDefault();
  const error = $("form-error");
  error.hidden = true;
  for (const input of document.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const button = $("create-campaign");
  button.disabled = true;
  try {
    const created = await api("/api/campaigns", { method: "POST", body: await campaignBody() });
    $("campaign-form").reset();
    setDefaultSchedule();
    await Promise.all([loadCampaigns(), loadBalance()]);
    await showReport(created);
  } catch (problem) {
    error.textContent = problem.detail || problem.message;
    error.hidden = false;
    const field = problem.field && document.querySelector(`[name="${CSS.escape(problem.field)}"]`);
    if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
  } finally {
    button.disabled = false;
  }
}

function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

function setDefaultSchedule() {
  const now = new Date();
  $("starts_at").value = localInput(now);
  $("ends_at").value = localInput(new Date(now.getTime() + 7 * 24 * 3600 * 1000));
}

async function main() {
  const user = await currentUser();
  if (!user) { $("ads-status").textContent = "Log in with an advertiser account to run ads."; return; }
  if (!user.roles.includes("advertiser")) {
    $("ads-status").textContent = "This account is not an advertiser. Sign up as an advertiser to run ads.";
    return;
  }
  setDefaultSchedule();
  $("campaign-form").addEventListener("submit", submit);
  $("report-period").addEventListener("change", () => reportCampaign && showReport(reportCampaign));
  await Promise.all([loadBalance(), loadCampaigns(), loadVideos(user.id)]);
  $("ads-status").hidden = true;
  $("ads-dashboard").hidden = false;
}

main().catch((error) => showBanner(error.detail || error.message));
