// The agent desktop: pick a customer, see the ranked recommendations with the script to
// read, the offer and its terms, and why; Accept / Decline / Not now record ACCEPT /
// REJECT / DISMISS and the list is decided again, so what the customer said shows at once.
import { decide, record } from "/nba.js";

const params = new URLSearchParams(location.search);
const TOKEN = params.get("token") || undefined;
// An agent can wait a little longer than a page load, but not for a stuck server.
const BUDGET_MS = Number(params.get("budgetMs") || 800);
// What the desk shows when no decision arrives in time: the rule set's call-center fallback
// copy, kept in the page because the server that would send it is the one not answering.
const FALLBACK = {
  actionId: "",
  channel: "call_center",
  name: "Confirm contact details",
  treatment: { script: "While I have you, can I just check we have the right address, phone number and email for you?" },
  reasons: [{ description: "No decision in time: the desk's standing script" }],
};
const BUTTONS = [
  ["Accept", "ACCEPT", "accept"],
  ["Decline", "REJECT", ""],
  ["Not now", "DISMISS", ""],
];

const $ = (id) => document.getElementById(id);
let customers = [];
let current = null; // the request being decided for the customer on the line

function element(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

// A desk request from an example: the customer on the phone now. asOf is dropped (the desk
// decides as of now, so what the agent records counts at once) and the channel is the call center.
function deskRequest(example) {
  const { asOf, ...request } = example.request;
  const touchpoint = { ...(request.touchpoint || {}), channel: "call_center" };
  delete touchpoint.placement;
  return { ...request, touchpoint, explain: true };
}

function label(example) {
  const r = example.request;
  const intent = r.touchpoint && r.touchpoint.intent ? `, ${r.touchpoint.intent}` : "";
  return `${r.customerId}: ${example.name.replaceAll("_", " ")} (${r.lifecycleStage}${intent})`;
}

function listCustomers() {
  const words = $("search").value.toLowerCase().split(/\s+/).filter(Boolean);
  const list = $("customers");
  list.replaceChildren();
  for (const example of customers) {
    const text = label(example);
    if (!words.every((w) => text.toLowerCase().includes(w))) continue;
    const button = element("button", { type: "button", "data-example": example.name, "aria-pressed": "false" }, text);
    button.addEventListener("click", () => {
      for (const b of list.querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-pressed", "true");
      open(deskRequest(example));
    });
    const item = element("li");
    item.append(button);
    list.append(item);
  }
}

// One line of why: what holds now (weights, then the applicable and suitable rules) first.
function whyLine(rec) {
  const order = { weight: 0, applicable: 1, suitable: 2, eligible: 3, lever: 4 };
  const reasons = [...(rec.reasons || [])].sort((a, b) => (order[a.kind] ?? 5) - (order[b.kind] ?? 5));
  const said = [];
  for (const r of reasons) {
    const text = (r.description || "").replace(/^x[\d.]+: /, "");
    if (text && !said.includes(text)) said.push(text);
  }
  return said.slice(0, 3).join("; ");
}

function card(rec, result) {
  const t = rec.treatment || {};
  const node = element("article", { class: "card rec", "data-action-id": rec.actionId || "", "data-rank": String(rec.rank || "") });
  const tags = element("div");
  tags.append(element("span", { class: "tag" }, `#${rec.rank} ${rec.purpose || ""}`));
  if (rec.fallback) tags.append(element("span", { class: "tag fallback" }, result.reason ? `fallback: ${result.reason}` : "fallback"));
  node.append(tags, element("h3", {}, rec.name || rec.actionId));
  if (t.script) node.append(element("p", { class: "script" }, t.script));
  if (rec.offer && rec.offer.code) {
    const offer = element("p", { class: "offer" });
    offer.append(element("strong", {}, `${rec.offer.name} `), element("code", {}, rec.offer.code));
    node.append(offer);
    if (rec.offer.terms) node.append(element("p", { class: "muted terms" }, `Terms: ${rec.offer.terms}`));
  }
  node.append(element("p", { class: "why" }, whyLine(rec)));
  const all = element("details");
  all.append(element("summary", { class: "muted" }, "all reasons"));
  const list = element("ul");
  for (const r of rec.reasons || []) list.append(element("li", { class: "muted" }, `${r.description}${r.file ? ` (${r.file}:${r.line})` : ""}`));
  all.append(list);
  node.append(all);
  if (rec.actionId && result.decisionId) {
    const buttons = element("div", { class: "buttons" });
    for (const [text, outcome, style] of BUTTONS) {
      const button = element("button", { type: "button", class: style, "data-outcome": outcome }, text);
      button.addEventListener("click", () => respond(rec, result, outcome));
      buttons.append(button);
    }
    node.append(buttons);
  }
  return node;
}

async function respond(rec, result, outcome) {
  for (const b of document.querySelectorAll("#recommendations button")) b.disabled = true;
  try {
    await record(
      { customerId: current.customerId, actionId: rec.actionId, channel: rec.channel, outcome, decisionId: result.decisionId },
      { token: TOKEN },
    );
    $("status").textContent = `${outcome} of ${rec.actionId} recorded; deciding again`;
  } catch (error) {
    $("status").textContent = `could not record ${outcome}: ${error.message}`;
  }
  await refresh();
}

function showWho(request) {
  const who = $("who");
  who.replaceChildren(
    element("strong", { id: "who-id" }, request.customerId),
    element("span", {}, `stage: ${request.lifecycleStage}`),
    element("span", {}, `intent: ${(request.touchpoint && request.touchpoint.intent) || "none given"}`),
  );
}

async function refresh() {
  const started = performance.now();
  let result;
  try {
    result = await decide(current, { budgetMs: BUDGET_MS, fallback: FALLBACK, token: TOKEN });
  } catch (error) {
    $("status").textContent = `the request was refused: ${error.message}`;
    $("recommendations").replaceChildren();
    return;
  }
  const box = $("recommendations");
  box.dataset.fallback = String(result.fallback);
  box.dataset.decisionId = result.decisionId;
  box.replaceChildren(...result.recommendations.map((rec) => card(rec, result)));
  const whynot = $("whynot");
  whynot.replaceChildren(
    ...result.excluded.map((e) => element("li", { "data-action-id": e.actionId }, `${e.actionId}: ${e.reason}`)),
  );
  $("status").textContent = result.fallback && result.reason !== "nothing-qualified"
    ? `no decision within ${BUDGET_MS} ms (${result.reason}): showing the standing script`
    : `decided in ${Math.round(performance.now() - started)} ms, rules ${result.rulesetVersion}`;
}

function open(request) {
  current = request;
  showWho(request);
  refresh();
}

$("search").addEventListener("input", listCustomers);
$("custom").addEventListener("submit", (event) => {
  event.preventDefault();
  let profile;
  try {
    profile = JSON.parse($("custom-profile").value || "{}");
  } catch (error) {
    $("status").textContent = `the profile is not JSON: ${error.message}`;
    return;
  }
  const intent = $("custom-intent").value.trim();
  open({
    customerId: $("custom-id").value.trim(),
    lifecycleStage: $("custom-stage").value,
    profile,
    touchpoint: intent ? { channel: "call_center", intent } : { channel: "call_center" },
    explain: true,
  });
});

async function start() {
  const response = await fetch("/desk/examples.json");
  customers = (await response.json()).examples;
  // Callers first: the examples written for the call center lead the list.
  customers.sort((a, b) => Number(!a.name.startsWith("call_center")) - Number(!b.name.startsWith("call_center")));
  listCustomers();
  const wanted = params.get("example");
  if (wanted) document.querySelector(`[data-example="${wanted}"]`)?.click();
}

start();
