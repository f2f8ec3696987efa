// The website widget: decide at page load within the budget, show the top offer, and
// report what the visitor did: IMPRESSION when shown, CLICK or DISMISS on the buttons.
import { decide, record } from "/nba.js";

const params = new URLSearchParams(location.search);
const PLACEMENT = { channel: "web", placement: "homepage_hero" };
const BUDGET_MS = Number(params.get("budgetMs") || 150);
// What the page shows when no decision arrives in time: its own house banner.
const FALLBACK = {
  actionId: "",
  channel: "web",
  treatment: {
    headline: "Your bank in your pocket",
    body: "Check your balance, pay friends and freeze your card from the app.",
    callToAction: "Get the app",
    url: "/app",
  },
};

const offer = document.getElementById("offer");
const status = document.getElementById("status");

function visitorId() {
  const given = params.get("visitor");
  if (given) localStorage.setItem("nba-visitor", given);
  let id = localStorage.getItem("nba-visitor");
  if (!id) {
    id = `anon-${crypto.randomUUID().slice(0, 13)}`;
    localStorage.setItem("nba-visitor", id);
  }
  return id;
}

const customerId = visitorId();
document.getElementById("visitor").textContent = customerId;
document.getElementById("forget").addEventListener("click", (event) => {
  event.preventDefault();
  localStorage.removeItem("nba-visitor");
  location.search = "";
});

function element(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function show(result) {
  const top = result.recommendations[0];
  offer.replaceChildren();
  offer.dataset.state = "shown";
  offer.dataset.fallback = String(result.fallback);
  offer.dataset.reason = result.reason || "";
  offer.dataset.elapsedMs = String(result.elapsedMs);
  offer.dataset.actionId = top ? top.actionId || "" : "";
  if (!top) {
    offer.dataset.state = "empty";
    offer.append(element("p", { class: "muted" }, "Nothing to show."));
    return null;
  }
  const t = top.treatment || {};
  const tag = result.fallback ? element("span", { class: "tag fallback" }, `fallback: ${result.reason}`)
    : element("span", { class: "tag" }, "recommended for you");
  const actions = element("div", { class: "actions" });
  const cta = element("button", { class: "primary", id: "cta" }, t.callToAction || "Find out more");
  const dismiss = element("button", { id: "dismiss" }, "No thanks");
  actions.append(cta, dismiss);
  offer.append(tag, element("h3", {}, t.headline || top.name || ""), element("p", {}, t.body || ""), actions);
  return { top, cta, dismiss };
}

async function report(result, top, outcome) {
  if (!result.decisionId || !top.actionId) return; // the page's own banner: nothing to report
  try {
    await record({ customerId, actionId: top.actionId, channel: top.channel, outcome, decisionId: result.decisionId });
    status.textContent = `${outcome} of ${top.actionId} recorded`;
    status.dataset.recorded = `${status.dataset.recorded || ""} ${outcome}`.trim();
  } catch (error) {
    status.textContent = `could not record ${outcome}: ${error.message}`;
  }
}

async function load() {
  const request = { customerId, lifecycleStage: "prospect", touchpoint: PLACEMENT };
  const result = await decide(request, { budgetMs: BUDGET_MS, fallback: FALLBACK });
  const shown = show(result);
  status.textContent = result.fallback
    ? `showing the fallback (${result.reason}, ${result.elapsedMs} ms)`
    : `decided in ${result.elapsedMs} ms (decision ${result.decisionId.slice(0, 8)})`;
  if (!shown) return;
  const { top, cta, dismiss } = shown;
  await report(result, top, "IMPRESSION");
  cta.addEventListener("click", async () => {
    cta.disabled = dismiss.disabled = true;
    await report(result, top, "CLICK");
  });
  dismiss.addEventListener("click", async () => {
    cta.disabled = dismiss.disabled = true;
    await report(result, top, "DISMISS");
    offer.dataset.state = "dismissed";
    offer.replaceChildren(element("p", { class: "muted" }, "Thanks, we won't show you that for a while."));
  });
}

load();
