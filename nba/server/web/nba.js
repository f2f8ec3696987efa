// nba.js: the browser client of nba's HTTP face (Connect unary JSON). An ES module, no build:
//
//   import { decide, record } from "/nba.js";
//   const result = await decide(
//     { customerId, lifecycleStage: "prospect", touchpoint: { channel: "web", placement: "homepage_hero" } },
//     { budgetMs: 150, fallback: { headline: "Your bank in your pocket", ... } },
//   );
//   result.recommendations   // what to show (the server's, or the page's fallback)
//   result.fallback          // true when it is a fallback; result.reason says which
//   await record({ customerId, actionId, channel: "web", outcome: "IMPRESSION", decisionId: result.decisionId });
//
// Budget: a page load cannot wait for a slow decision. `decide` aborts the call (fetch with an
// AbortController) once `budgetMs` (default 150) has passed, tells the server the same deadline
// (`connect-timeout-ms`), and answers with the fallback the page gave. The page gives it
// because only the page knows what it can show without a decision (its own copy, a house
// banner); a client that fetched one from the server would need the server that is slow.
// Without one, the result is an empty list with `fallback: true`.
//
// reason: "budget" (the budget ran out), "unavailable" (network failure, 5xx, 429: the server
// could not answer), "nothing-qualified" (the server's own fallback for the touchpoint, marked
// by the rule set). A malformed request (a 4xx Connect error) throws NbaError instead: it is a
// bug in the page, not a slow server, and a fallback would hide it.

export const DEFAULT_BUDGET_MS = 150;
const SERVICE = "/nba.v1.DecisionService/";
const OUTCOMES = ["IMPRESSION", "CLICK", "ACCEPT", "DISMISS", "REJECT", "COMPLAINT"];

/** A Connect error answered by the server: `code` ("invalid_argument", ...) and `message`. */
export class NbaError extends Error {
  constructor(code, message, status) {
    super(`${code}: ${message}`);
    this.name = "NbaError";
    this.code = code;
    this.status = status;
  }
}

/** A client bound to a base URL and a bearer token (both optional). */
export function client({ baseUrl = "", token } = {}) {
  return {
    decide: (request, options = {}) => decide(request, { baseUrl, token, ...options }),
    record: (outcome, options = {}) => record(outcome, { baseUrl, token, ...options }),
    call: (method, body, options = {}) => call(method, body, { baseUrl, token, ...options }),
  };
}

/**
 * Decide within a budget. Returns { recommendations, decisionId, rulesetVersion, excluded,
 * fallback, reason, elapsedMs }.
 */
export async function decide(request, { budgetMs = DEFAULT_BUDGET_MS, fallback, ...options } = {}) {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const budget = new AbortController();
  const timer = setTimeout(() => budget.abort(), budgetMs);
  try {
    const response = await call("Decide", request, { ...options, signal: budget.signal, timeoutMs: budgetMs });
    const recommendations = response.recommendations || [];
    const serverFallback = recommendations.length > 0 && recommendations.every((r) => r.fallback);
    return {
      recommendations,
      decisionId: response.decisionId || "",
      rulesetVersion: response.rulesetVersion || "",
      excluded: response.excluded || [],
      fallback: serverFallback,
      reason: serverFallback ? "nothing-qualified" : undefined,
      elapsedMs: elapsed(),
    };
  } catch (error) {
    if (error instanceof NbaError && !isUnavailable(error)) throw error;
    const reason = budget.signal.aborted || isDeadline(error) ? "budget" : "unavailable";
    return pageFallback(fallback, reason, elapsed(), error);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Report what the customer did with a recommendation: IMPRESSION, CLICK, DISMISS, ACCEPT,
 * REJECT (or COMPLAINT). `interactionId` makes a retry count once; one is made up if absent.
 */
export async function record(
  { customerId, actionId, channel, outcome, decisionId = "", interactionId, at },
  options = {},
) {
  const name = String(outcome || "").toUpperCase();
  if (!OUTCOMES.includes(name)) {
    throw new NbaError("invalid_argument", `outcome: got ${JSON.stringify(outcome)}; expected one of ${OUTCOMES.join(", ")}`, 0);
  }
  const interaction = { actionId, channel, outcome: name };
  if (at) interaction.at = at instanceof Date ? at.toISOString() : at;
  return call(
    "RecordOutcome",
    { customerId, interaction, decisionId, interactionId: interactionId || newId() },
    { timeoutMs: 5000, ...options },
  );
}

/** One unary Connect call with a JSON body; NbaError on a Connect error. */
export async function call(method, body, { baseUrl = "", token, signal, timeoutMs } = {}) {
  const headers = { "content-type": "application/json", "connect-protocol-version": "1" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (timeoutMs) headers["connect-timeout-ms"] = String(Math.max(1, Math.round(timeoutMs)));
  const response = await fetch(`${baseUrl}${SERVICE}${method}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal,
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : {};
  if (!response.ok) {
    throw new NbaError(parsed.code || "unknown", parsed.message || response.statusText, response.status);
  }
  return parsed;
}

function pageFallback(fallback, reason, elapsedMs, error) {
  const given = fallback === undefined || fallback === null ? [] : [].concat(fallback);
  const recommendations = given.map((item, i) => ({ rank: i + 1, fallback: true, ...item }));
  return { recommendations, decisionId: "", rulesetVersion: "", excluded: [], fallback: true, reason, elapsedMs, error };
}

function isDeadline(error) {
  return error instanceof NbaError && error.code === "deadline_exceeded";
}

function isUnavailable(error) {
  return error.status >= 500 || error.status === 429 || isDeadline(error);
}

function newId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
