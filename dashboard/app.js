// The Journeys dashboard: the marketer's view of the statistics API (see README, "Dashboard").
//
// Plain ES module, no build step and nothing fetched from elsewhere, so the same files work
// when the local stack serves them and from any static host in front of the AWS API.
//
// Choices worth knowing before changing this file:
// - Every API string reaches the page through textContent or setAttribute, never innerHTML.
//   The one exception is the graph's SVG, which our compiler draws: it is parsed as SVG
//   (DOMParser), stripped of anything executable, and imported.
// - Views build their skeleton once and then only update text and attributes in place, rows
//   keyed by id, so the two-second refresh never flickers, loses the scroll position or
//   steals focus.
// - Nothing on the page reads the browser's clock: times are the API's (journey time on the
//   local stack, which runs faster than real time), so the same scenario always renders the
//   same page. Durations are measured between API times, never to "now".

const POLL_MS = 2000;
const REQUEST_TIMEOUT_MS = 15000;
const OUTBOX_ROWS = 500;
const STORAGE = { api: "journeys.dashboard.api", key: "journeys.dashboard.key" };
const SVG_NS = "http://www.w3.org/2000/svg";

// --- Settings: API address and key --------------------------------------------------------

const memoryStore = new Map(); // when localStorage is refused (file://, strict privacy modes)

function stored(name) {
  try {
    return window.localStorage.getItem(STORAGE[name]) || "";
  } catch {
    return memoryStore.get(name) || "";
  }
}

function store(name, value) {
  try {
    if (value) window.localStorage.setItem(STORAGE[name], value);
    else window.localStorage.removeItem(STORAGE[name]);
  } catch {
    memoryStore.set(name, value);
  }
}

/** Moves `?api=` and `?key=` from the address into storage: keys do not belong in history. */
function adoptQueryParameters() {
  const url = new URL(window.location.href);
  let changed = false;
  for (const name of ["api", "key"]) {
    if (url.searchParams.has(name)) {
      store(name, (url.searchParams.get(name) || "").trim());
      url.searchParams.delete(name);
      changed = true;
    }
  }
  if (changed) {
    const query = url.searchParams.toString();
    window.history.replaceState(null, "", url.pathname + (query ? `?${query}` : "") + url.hash);
  }
}

function apiBase() {
  const configured = stored("api").replace(/\/+$/, "");
  if (configured) return configured;
  return window.location.protocol.startsWith("http") ? window.location.origin : "";
}

// --- Talking to the API -------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, details = [], path = "") {
    super(message);
    this.status = status;
    this.details = details;
    this.path = path;
  }
}

async function api(path) {
  const base = apiBase();
  if (!base) throw new ApiError(0, "No API address is set.", [], path);
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(base + path, {
      headers: { "x-api-key": stored("key"), accept: "application/json" },
      cache: "no-store",
      signal: controller.signal,
    });
  } catch {
    throw new ApiError(0, `Cannot reach the API at ${base}.`, [], path);
  } finally {
    window.clearTimeout(timer);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body && typeof body.message === "string" ? body.message : response.statusText;
    const list = body && (Array.isArray(body.errors) ? body.errors : body.detail);
    const details = Array.isArray(list) ? list : [];
    throw new ApiError(response.status, message || `HTTP ${response.status}`, details, path);
  }
  if (body === null || typeof body !== "object") {
    throw new ApiError(response.status, "The API answered something that is not JSON.", [], path);
  }
  return body;
}

const enc = encodeURIComponent;

// --- Small DOM helpers --------------------------------------------------------------------

/** h("td", {class: "num", dataset: {metric: "sent"}}, "3") -> <td class="num" data-metric="sent">3</td> */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "text") element.textContent = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function setText(element, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (element.textContent !== value) element.textContent = value;
}

function setAttr(element, name, value) {
  if (value === null || value === undefined || value === false) {
    if (element.hasAttribute(name)) element.removeAttribute(name);
    return;
  }
  const text = value === true ? "" : String(value);
  if (element.getAttribute(name) !== text) element.setAttribute(name, text);
}

function setClass(element, name, on) {
  if (element.classList.contains(name) !== Boolean(on)) element.classList.toggle(name, Boolean(on));
}

/**
 * Makes `parent`'s children match `items`, in order, one element per key: existing elements
 * are updated in place (and moved only when the order changed), new ones created, the rest
 * removed. `parent` must hold only elements made here.
 */
function reconcile(parent, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of Array.from(parent.children)) existing.set(child.jKey, child);
  const keep = new Set();
  items.forEach((item, index) => {
    const key = keyOf(item, index);
    let element = existing.get(key);
    if (!element || keep.has(key)) {
      element = create(item, index);
      element.jKey = key;
    }
    keep.add(key);
    update(element, item, index);
    const there = parent.children[index];
    if (there !== element) parent.insertBefore(element, there || null);
  });
  for (const child of Array.from(parent.children)) {
    if (!keep.has(child.jKey)) child.remove();
  }
}

function safeHttpsUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// --- Formatting (deterministic: fixed locale, UTC) ----------------------------------------

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function formatCount(value) {
  return typeof value === "number" ? integer.format(value) : "–";
}

function formatRate(value) {
  return typeof value === "number" ? `${(value * 100).toFixed(1)} %` : "–";
}

/** Milliseconds since the epoch of an API time ("2026-11-23T08:05:00.123456Z"), or null. */
function parseTime(text) {
  if (typeof text !== "string" || !text) return null;
  const normal = text.replace(/(\.\d{3})\d+/, "$1").replace(/\+00:00$/, "Z");
  const ms = Date.parse(normal);
  return Number.isNaN(ms) ? null : ms;
}

const pad = (n) => String(n).padStart(2, "0");

/** To the nearest minute (or second): journey times a few milliseconds apart between runs
 * of the same scenario, on either side of a minute, read the same. */
function nearest(ms, unit = 60000) {
  return Math.round(ms / unit) * unit;
}

function formatTime(text, { seconds = false, year = true } = {}) {
  const ms = parseTime(text);
  if (ms === null) return "–";
  const d = new Date(nearest(ms, seconds ? 1000 : 60000));
  const clock = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${seconds ? `:${pad(d.getUTCSeconds())}` : ""}`;
  const day = `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}${year ? ` ${d.getUTCFullYear()}` : ""}`;
  return `${day}, ${clock} UTC`;
}

function formatDuration(ms) {
  if (typeof ms !== "number" || ms < 0) return "";
  const minutes = Math.floor(ms / 60000);
  if (minutes < 1) return "under a minute";
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  if (days) return hours ? `${days} d ${hours} h` : `${days} d`;
  if (hours) return rest ? `${hours} h ${rest} min` : `${hours} h`;
  return `${rest} min`;
}

/** Milliseconds from one API time to another, both to the minute as the page shows them
 * (so durations agree with the times beside them). */
function between(from, to) {
  const a = parseTime(from);
  const b = parseTime(to);
  return a === null || b === null ? null : nearest(b) - nearest(a);
}

function timeElement(text, options) {
  return h("time", { datetime: text || null }, formatTime(text, options));
}

function updateTime(element, text, options) {
  setAttr(element, "datetime", text || null);
  setText(element, formatTime(text, options));
}

const STATUS_LABELS = {
  running: "Running",
  completed: "Completed",
  goal_reached: "Goal reached",
  exited: "Exited",
  failed: "Failed",
  aborted: "Stopped",
  timed_out: "Timed out",
  sent: "Sent",
};

function statusLabel(status) {
  const text = String(status || "unknown");
  if (STATUS_LABELS[text]) return STATUS_LABELS[text];
  const plain = text.replace(/_/g, " ");
  return plain.charAt(0).toUpperCase() + plain.slice(1);
}

/** The chip colour family of a status ("failed: ConnectionError: ..." is a failure). */
function statusTone(status) {
  const text = String(status || "");
  if (text === "running") return "running";
  if (text === "completed" || text === "sent") return "done";
  if (text === "goal_reached") return "goal";
  if (text === "exited" || text === "aborted") return "neutral";
  if (text.startsWith("failed") || text === "timed_out") return "bad";
  return "neutral";
}

// Text glyphs, not images: they travel with the font and need no files.
const CHANNEL_GLYPHS = {
  email: "✉",
  sms: "✆",
  push: "⚑",
  web_push: "⚑",
  in_app: "▣",
  on_site: "▣",
  whatsapp: "✆",
  team: "☷",
  webhook: "⇄",
  fetch: "⇣",
  audience: "◎",
};

function channelOf(kind) {
  return String(kind || "").replace(/^send_/, "").replace(/^notify_/, "");
}

// --- Page chrome: navigation, error, last update -----------------------------------------

const main = document.getElementById("main");
const errorBox = document.querySelector("[data-testid=error]");
const updatedBox = document.querySelector("[data-testid=updated]");
const searchForm = document.querySelector("[data-testid=contact-search]");
const searchInput = searchForm.querySelector("input");

function explain(error) {
  if (!(error instanceof ApiError)) return [String(error && error.message ? error.message : error)];
  if (error.status === 0) {
    return [error.message, " Is ", h("code", {}, "journeys up"), " still running?"];
  }
  if (error.status === 403 && /missing authentication token/i.test(error.message)) {
    return [`This API has no route for ${error.path.split("?")[0]}.`];
  }
  if (error.status === 403) {
    return ["The API key was refused — open the address ", h("code", {}, "journeys up"), " printed."];
  }
  const details = error.details
    .map((item) => (item && typeof item === "object" ? item.msg || item.message || "" : String(item)))
    .filter(Boolean);
  const prefix = error.status >= 500 ? `The API failed (${error.status}): ` : "";
  return [prefix + error.message + (details.length ? ` (${details.join("; ")})` : "")];
}

function explainText(error) {
  return h("span", {}, ...explain(error)).textContent;
}

function showError(error) {
  if (!error) {
    if (!errorBox.hidden) {
      errorBox.hidden = true;
      errorBox.replaceChildren();
    }
    return;
  }
  const message = h("span", {}, ...explain(error));
  const parts = [message];
  if (error instanceof ApiError && error.status === 403 && !/missing authentication/i.test(error.message)) {
    parts.push(" ", h("button", { type: "button", class: "link", dataset: { action: "settings" } }, "Enter another key"));
  }
  const signature = message.textContent;
  if (errorBox.hidden || errorBox.dataset.signature !== signature) {
    errorBox.replaceChildren(...parts);
    errorBox.dataset.signature = signature;
    errorBox.hidden = false;
  }
}

errorBox.addEventListener("click", (event) => {
  if (event.target instanceof HTMLElement && event.target.dataset.action === "settings") {
    showSettings();
  }
});

/**
 * The header's "Updated ..." line: the API's generated_at, journey time (the local stack
 * runs it faster than real time, or frozen in tests). Answers without one say only that
 * the page is live: this computer's clock would contradict journey time, and change the
 * pictures of the same scenario from run to run.
 */
function showUpdated(generatedAt) {
  if (!generatedAt) {
    setText(updatedBox, "Live · refreshed every 2 s");
    return;
  }
  let time = updatedBox.querySelector("time");
  if (!time) {
    time = h("time");
    updatedBox.replaceChildren("Updated ", time);
  }
  updateTime(time, generatedAt, { seconds: true });
}

function markNavigation(routeName) {
  for (const link of document.querySelectorAll("nav a[data-route]")) {
    const current =
      link.dataset.route === routeName || (link.dataset.route === "workflows" && routeName === "workflow");
    setAttr(link, "aria-current", current ? "page" : null);
  }
}

searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const id = searchInput.value.trim();
  if (id) window.location.hash = `#/contacts/${enc(id)}`;
});

// --- View: every workflow ---------------------------------------------------------------

class WorkflowsView {
  constructor() {
    this.title = "Workflows";
  }

  mount(root) {
    this.body = h("tbody");
    this.empty = h("p", { class: "empty", hidden: true }, "No workflows are deployed yet.");
    root.append(
      h("div", { class: "page-head" },
        h("h1", {}, "Workflows"),
        h("p", { class: "lead" }, "Every deployed workflow. Conversion is goal reached ÷ entered.")),
      h("div", { class: "panel table-scroll" },
        h("table", { class: "data", "data-testid": "workflows" },
          h("caption", { class: "visually-hidden" }, "Workflows and how many contacts are in each"),
          h("thead", {},
            h("tr", {},
              h("th", { scope: "col" }, "Workflow"),
              h("th", { scope: "col", class: "num" }, "Entered"),
              h("th", { scope: "col", class: "num" }, "In journey"),
              h("th", { scope: "col", class: "num" }, "Completed"),
              h("th", { scope: "col", class: "num" }, "Goal reached"),
              h("th", { scope: "col", class: "num" }, "Exited"),
              h("th", { scope: "col", class: "num" }, "Conversion"))),
          this.body)),
      this.empty,
    );
  }

  load() {
    return api("/v1/stats");
  }

  render(data) {
    const workflows = (Array.isArray(data.workflows) ? data.workflows : []).slice();
    workflows.sort((a, b) =>
      String(a.name || a.workflow_id).localeCompare(String(b.name || b.workflow_id), "en") ||
      String(a.workflow_id).localeCompare(String(b.workflow_id), "en"));
    this.empty.hidden = workflows.length > 0;
    reconcile(this.body, workflows, (w) => w.workflow_id, () => this.row(), (row, w) => this.update(row, w));
  }

  row() {
    const cell = (metric) => h("td", { class: "num", dataset: { metric } });
    const link = h("a", { class: "name" });
    const id = h("span", { class: "sub" });
    const fill = h("span", { class: "fill" });
    const rateText = h("span", { class: "rate" });
    const rate = h("td", { class: "num conversion", dataset: { metric: "conversion_rate" } },
      h("span", { class: "meter", "aria-hidden": "true" }, fill), rateText);
    const row = h("tr", {},
      h("th", { scope: "row" }, link, id),
      cell("entered"), cell("active"), cell("completed"), cell("goal_reached"), cell("exited"), rate);
    row.parts = { link, id, fill, rateText, rate };
    return row;
  }

  update(row, workflow) {
    const { link, id, fill, rateText, rate } = row.parts;
    const totals = workflow.totals || {};
    setAttr(row, "data-workflow", workflow.workflow_id);
    setAttr(link, "href", `#/workflows/${enc(workflow.workflow_id)}`);
    setText(link, workflow.name || workflow.workflow_id);
    setText(id, workflow.workflow_id);
    for (const metric of ["entered", "active", "completed", "goal_reached", "exited"]) {
      const td = row.querySelector(`td[data-metric="${metric}"]`);
      setText(td, formatCount(totals[metric] ?? 0));
      setAttr(td, "data-value", totals[metric] ?? 0);
    }
    const conversion = workflow.conversion_rate;
    setText(rateText, formatRate(conversion));
    setAttr(rate, "data-value", typeof conversion === "number" ? conversion : null);
    setAttr(rate, "title", workflow.has_goal === false ? "This workflow has no goal" : null);
    const width = typeof conversion === "number" ? `${Math.min(100, Math.max(0, conversion * 100))}%` : "0%";
    if (fill.style.width !== width) fill.style.width = width;
    setClass(rate, "no-rate", typeof conversion !== "number");
  }
}

// --- View: one workflow ----------------------------------------------------------------

const graphCache = new Map(); // workflow id -> SVG text: static per deployment

const TOTAL_CARDS = [
  ["entered", "Entered", "Contacts who started the journey"],
  ["active", "In journey", "Running now"],
  ["completed", "Completed", "Reached an end of the journey"],
  ["goal_reached", "Goal reached", "Converted: the goal ended their journey"],
  ["exited", "Exited", "Left through an exit criterion"],
  ["failed", "Failed", "The journey failed or was stopped"],
  ["unsubscribed", "Unsubscribed", "From this workflow's emails"],
  ["conversion_rate", "Conversion", "Goal reached ÷ entered"],
];

const MESSAGE_COLUMNS = [
  ["sent", "Sent", "count"],
  ["delivered", "Delivered", "count"],
  ["open_rate", "Open rate", "rate"],
  ["click_rate", "Click rate", "rate"],
  ["bounce_rate", "Bounce rate", "rate"],
  ["unsubscribe_rate", "Unsubscribe rate", "rate"],
];

function rateTitle(messages, metric) {
  const basis = messages.engagement_denominator === "delivered" ? "delivered" : "sent";
  const of = (part, name, over) => `${formatCount(messages[part] ?? 0)} ${name} of ${formatCount(messages[over] ?? 0)} ${over}`;
  switch (metric) {
    case "open_rate": return of("opened", "opened", basis);
    case "click_rate": return of("clicked", "clicked", basis);
    case "bounce_rate": return of("bounced", "bounced", "sent");
    case "unsubscribe_rate": return of("unsubscribed", "unsubscribed", basis);
    case "delivered": return messages.sent ? `${formatRate(messages.delivery_rate)} of sent` : null;
    case "sent": return messages.skipped ? `${formatCount(messages.skipped)} skipped (consent, channel, cap)` : null;
    default: return null;
  }
}

class WorkflowView {
  constructor(workflowId) {
    this.workflowId = workflowId;
    this.title = workflowId;
    this.fit = true;
    this.svg = null;
    this.badges = new Map();
  }

  mount(root) {
    this.heading = h("h1", {}, this.workflowId);
    this.crumb = h("span", { "aria-current": "page" }, this.workflowId);
    this.cards = new Map();
    const totals = h("dl", { class: "cards", "data-testid": "totals" });
    for (const [metric, label, hint] of TOTAL_CARDS) {
      const value = h("dd", { dataset: { metric } }, "–");
      this.cards.set(metric, value);
      totals.append(h("div", { class: `card card-${metric}`, title: hint }, h("dt", {}, label), value));
    }
    this.graph = h("div", { class: "graph", "data-testid": "graph" });
    this.graphNote = h("p", { class: "empty" }, "Drawing the graph…");
    this.fitButton = h("button", { type: "button", class: "toggle", "aria-pressed": "true", hidden: true }, "Fit to width");
    this.fitButton.addEventListener("click", () => this.toggleFit());
    this.stepsBody = h("tbody");
    this.noSteps = h("p", { class: "empty", hidden: true }, "This workflow sends no messages.");
    this.hereBody = h("tbody");
    this.hereCount = h("span", { class: "count" });
    this.hereNote = h("p", { class: "note", hidden: true });
    this.nobodyHere = h("p", { class: "empty", hidden: true }, "Nobody is in this journey right now.");
    root.append(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "Workflows"), h("span", { "aria-hidden": "true" }, " / "), this.crumb),
      h("div", { class: "page-head" }, this.heading, h("p", { class: "lead sub" }, this.workflowId)),
      totals,
      this.layout = h("div", { class: "workflow-grid" },
        h("section", { class: "panel graph-panel", "aria-labelledby": "graph-title" },
          h("div", { class: "panel-head" },
            h("h2", { id: "graph-title" }, "Journey"),
            h("div", { class: "legend" },
              h("span", { class: "legend-badge" }, "passed · waiting"),
              h("span", { class: "legend-badge waiting" }, "contacts waiting here now")),
            this.fitButton),
          h("div", { class: "graph-scroll" }, this.graph, this.graphNote)),
        h("div", { class: "side" },
          h("section", { class: "panel", "aria-labelledby": "steps-title" },
            h("div", { class: "panel-head" }, h("h2", { id: "steps-title" }, "Messages")),
            h("div", { class: "table-scroll" },
              h("table", { class: "data", "data-testid": "steps" },
                h("caption", { class: "visually-hidden" }, "Message metrics of each send step"),
                h("thead", {}, h("tr", {},
                  h("th", { scope: "col" }, "Step"),
                  ...MESSAGE_COLUMNS.map(([, label]) => h("th", { scope: "col", class: "num" }, label)))),
                this.stepsBody)),
            this.noSteps),
          h("section", { class: "panel", "aria-labelledby": "here-title" },
            h("div", { class: "panel-head" }, h("h2", { id: "here-title" }, "In the journey now ", this.hereCount)),
            h("div", { class: "table-scroll" },
              h("table", { class: "data", "data-testid": "contacts-here" },
                h("caption", { class: "visually-hidden" }, "Contacts in this journey and the step each is at"),
                h("thead", {}, h("tr", {},
                  h("th", { scope: "col" }, "Contact"),
                  h("th", { scope: "col" }, "At step"),
                  h("th", { scope: "col" }, "Since"))),
                this.hereBody)),
            this.nobodyHere,
            this.hereNote))),
    );
  }

  async load() {
    const path = `/v1/workflows/${enc(this.workflowId)}`;
    const report = api(`${path}/stats`);
    let graph = null;
    if (!graphCache.has(this.workflowId)) {
      // A graph that fails to load must not hide the numbers: say so, try again next time.
      graph = api(`${path}/graph`).then(
        (answer) => {
          if (typeof answer.svg === "string") graphCache.set(this.workflowId, answer.svg);
        },
        (error) => {
          if (!this.svg) setText(this.graphNote, `The graph could not be loaded: ${explainText(error)}`);
        },
      );
    }
    const [data] = await Promise.all([report, graph]);
    return data;
  }

  render(data) {
    const name = data.name || this.workflowId;
    this.title = name;
    setText(this.heading, name);
    setText(this.crumb, name);
    document.title = `${name} · Journeys`;
    const totals = data.totals || {};
    for (const [metric, value] of this.cards) {
      if (metric === "conversion_rate") setText(value, formatRate(data.conversion_rate));
      else setText(value, formatCount(totals[metric] ?? 0));
    }
    const funnel = Array.isArray(data.funnel) ? data.funnel : [];
    this.drawGraph();
    this.placeBadges(funnel);
    if (this.svg && !this.laidOut) {
      this.chooseLayout();
      this.laidOut = true;
    }
    this.renderSteps(funnel);
    this.renderContacts(data, funnel);
  }

  drawGraph() {
    if (this.svg || !graphCache.has(this.workflowId)) return;
    const svg = importSvg(graphCache.get(this.workflowId));
    if (!svg) {
      setText(this.graphNote, "The graph could not be drawn.");
      return;
    }
    svg.removeAttribute("id");
    svg.setAttribute("focusable", "false");
    this.svg = svg;
    this.graph.replaceChildren(svg);
    this.graphNote.hidden = true;
    this.applyFit();
  }

  /**
   * The graph's column is as wide as the drawing (shrunk at most a little), the tables get
   * the rest; a drawing too wide for that gets the whole width, the tables go below it.
   */
  chooseLayout() {
    const natural = Number.parseFloat(this.svg.getAttribute("width")) || 0;
    const chrome = 26; // the panel's padding and border around the drawing
    const room = this.layout.clientWidth - 20 - SIDE_MIN_WIDTH - chrome;
    if (natural * 0.85 <= room) {
      this.layout.style.setProperty("--graph-column", `${Math.ceil(Math.min(natural, room) + chrome)}px`);
    } else {
      this.layout.classList.add("wide");
    }
    // Fitting only matters for a drawing wider than the room it got.
    this.fitButton.hidden = natural <= this.graph.clientWidth + 1;
  }

  /**
   * One badge per funnel box at the box's top-right corner, drawn over everything else:
   * reaching out to the right of the box when that space is free (the incoming arrow stays
   * visible), else tucked over the corner.
   */
  placeBadges(funnel) {
    if (!this.svg) return;
    const boxes = [];
    for (const box of funnel) {
      const node = this.svg.querySelector(`g.node[data-key="${CSS.escape(String(box.key))}"]`);
      if (node) boxes.push({ box, node, shape: node.getBBox() });
    }
    const taken = boxes.map(({ shape }) => shape);
    // Also in the way: boxes without counts, the notes, and the edges' label backgrounds
    // (rects drawn straight into the diagram's group).
    const others = Array.from(this.svg.querySelectorAll("g.node, g.note, g[transform]:not(.badge) > rect"))
      .filter((element) => !boxes.some(({ node }) => node === element))
      .map((element) => element.getBBox());
    taken.push(...others);
    let moved = false;
    for (const { box, node, shape } of boxes) {
      let badge = this.badges.get(box.key);
      if (!badge) {
        badge = makeBadge(box.key);
        this.badges.set(box.key, badge);
        node.parentNode.append(badge.group);
      }
      const passed = Number(box.passed) || 0;
      const waiting = Number(box.waiting) || 0;
      setAttr(badge.group, "data-passed", passed);
      setAttr(badge.group, "data-waiting", waiting);
      setClass(badge.group, "waiting", waiting > 0);
      setText(badge.title, `${box.label || box.key}: ${passed} passed, ${waiting} waiting now`);
      const text = `${formatCount(passed)} passed · ${formatCount(waiting)} waiting`;
      if (badge.text.textContent !== text) {
        badge.text.textContent = text;
        badge.width = Math.ceil(badge.text.getComputedTextLength()) + 2 * BADGE_PAD;
        setAttr(badge.rect, "width", badge.width);
        moved = true;
      }
    }
    if (!moved) return;
    // Positions depend on every badge's width: place them all again, top to bottom.
    const placed = [];
    for (const { box, shape } of boxes) {
      const badge = this.badges.get(box.key);
      const y = shape.y - BADGE_HEIGHT / 2 - 1;
      const outside = { x: shape.x + shape.width - 18, y, width: badge.width, height: BADGE_HEIGHT };
      const inside = { x: shape.x + shape.width + 6 - badge.width, y, width: badge.width, height: BADGE_HEIGHT };
      const free = (spot) => ![...taken, ...placed].some((other) => other !== shape && overlaps(spot, other));
      const spot = free(outside) ? outside : inside;
      placed.push(spot);
      setAttr(badge.group, "transform", `translate(${round1(spot.x)},${round1(spot.y)})`);
    }
    this.growViewBox();
  }

  /** Widens the drawing's viewBox (never narrows it, so it does not jitter) to fit badges. */
  growViewBox() {
    const box = this.svg.getBBox();
    const [vx, vy, vw, vh] = (this.svg.getAttribute("viewBox") || "0 0 0 0").split(/[\s,]+/).map(Number);
    const left = box.x < vx ? Math.floor(box.x - 4) : vx;
    const top = box.y < vy ? Math.floor(box.y - 4) : vy;
    const right = box.x + box.width > vx + vw ? Math.ceil(box.x + box.width + 4) : vx + vw;
    const bottom = box.y + box.height > vy + vh ? Math.ceil(box.y + box.height + 4) : vy + vh;
    if (left === vx && top === vy && right === vx + vw && bottom === vy + vh) return;
    this.svg.setAttribute("viewBox", `${left} ${top} ${right - left} ${bottom - top}`);
    this.svg.setAttribute("width", String(right - left));
    this.svg.setAttribute("height", String(bottom - top));
  }

  toggleFit() {
    this.fit = !this.fit;
    this.applyFit();
  }

  applyFit() {
    setAttr(this.fitButton, "aria-pressed", this.fit ? "true" : "false");
    setClass(this.graph, "fit", this.fit);
  }

  renderSteps(funnel) {
    const sends = funnel.filter((box) => box.messages && typeof box.messages === "object");
    this.noSteps.hidden = sends.length > 0 || funnel.length === 0;
    reconcile(this.stepsBody, sends, (box) => box.key, () => {
      const label = h("span", { class: "step-label" });
      const kind = h("span", { class: "sub" });
      const row = h("tr", {}, h("th", { scope: "row" }, label, kind),
        ...MESSAGE_COLUMNS.map(([metric]) => h("td", { class: "num", dataset: { metric } })));
      row.parts = { label, kind };
      return row;
    }, (row, box) => {
      const messages = box.messages;
      setAttr(row, "data-step", box.key);
      setText(row.parts.label, box.label || box.key);
      const channel = channelOf(box.kind);
      setText(row.parts.kind, `${CHANNEL_GLYPHS[channel] || "•"} ${channel.replace(/_/g, " ")}`);
      for (const [metric, , type] of MESSAGE_COLUMNS) {
        const cell = row.querySelector(`td[data-metric="${metric}"]`);
        const value = messages[metric];
        setText(cell, type === "rate" ? formatRate(value) : formatCount(value ?? 0));
        setAttr(cell, "title", rateTitle(messages, metric));
      }
    });
  }

  renderContacts(data, funnel) {
    const positions = data.positions;
    const order = new Map(funnel.map((box, index) => [box.key, index]));
    const labels = new Map(funnel.map((box) => [box.key, box.label]));
    const contacts = positions && Array.isArray(positions.contacts) ? positions.contacts.slice() : [];
    contacts.sort((a, b) =>
      (order.get(a.step) ?? 1e9) - (order.get(b.step) ?? 1e9) ||
      String(a.contact_id).localeCompare(String(b.contact_id), "en") ||
      String(a.state).localeCompare(String(b.state), "en"));
    reconcile(this.hereBody, contacts, (c) => c.execution_arn || `${c.contact_id}\u0000${c.state}`, () => {
      const link = h("a");
      const step = h("span");
      const since = h("time");
      const stay = h("span", { class: "sub" });
      const row = h("tr", {}, h("th", { scope: "row" }, link), h("td", {}, step), h("td", { class: "when" }, since, stay));
      row.parts = { link, step, since, stay };
      return row;
    }, (row, contact) => {
      const { link, step, since, stay } = row.parts;
      const id = contact.contact_id;
      setAttr(link, "data-contact", id ?? null);
      setAttr(link, "href", id ? `#/contacts/${enc(id)}` : null);
      setText(link, id || "(unknown contact)");
      setText(step, labels.get(contact.step) || contact.state || "–");
      setAttr(step, "title", contact.state || null);
      updateTime(since, contact.since, { year: false });
      const held = between(contact.since, data.generated_at);
      setText(stay, held === null || held < 60000 ? "" : `for ${formatDuration(held)}`);
    });
    const count = positions ? contacts.length : null;
    setText(this.hereCount, count === null ? "" : `(${formatCount(count)})`);
    this.nobodyHere.hidden = !positions || contacts.length > 0;
    const notes = [];
    if (!positions) notes.push("Where contacts are now is not available.");
    else {
      if (positions.truncated) notes.push(`More journeys are running than inspected: showing the newest ${formatCount(positions.executions)}.`);
      if (positions.unknown) notes.push(`${formatCount(positions.unknown)} running journey(s) could not be placed on a step.`);
    }
    setText(this.hereNote, notes.join(" "));
    this.hereNote.hidden = notes.length === 0;
  }
}

const SIDE_MIN_WIDTH = 460;
const BADGE_HEIGHT = 18;
const BADGE_PAD = 7;
const round1 = (n) => Math.round(n * 10) / 10;

function overlaps(a, b) {
  const gap = 3;
  return a.x < b.x + b.width + gap && b.x < a.x + a.width + gap && a.y < b.y + b.height + gap && b.y < a.y + a.height + gap;
}

function makeBadge(key) {
  const group = document.createElementNS(SVG_NS, "g");
  group.setAttribute("class", "badge");
  group.setAttribute("data-testid", "step-count");
  group.setAttribute("data-key", key);
  const title = document.createElementNS(SVG_NS, "title");
  const rect = document.createElementNS(SVG_NS, "rect");
  rect.setAttribute("height", String(BADGE_HEIGHT));
  rect.setAttribute("rx", String(BADGE_HEIGHT / 2));
  const text = document.createElementNS(SVG_NS, "text");
  text.setAttribute("x", String(BADGE_PAD));
  text.setAttribute("y", "12.6");
  group.append(title, rect, text);
  return { group, title, rect, text, width: 0 };
}

/** Parses the compiler's SVG and removes anything that could run (it never should have). */
function importSvg(text) {
  const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = parsed.documentElement;
  if (!root || root.namespaceURI !== SVG_NS || root.localName !== "svg" || parsed.querySelector("parsererror")) {
    return null;
  }
  for (const element of Array.from(root.querySelectorAll("script, foreignObject, iframe"))) element.remove();
  for (const element of [root, ...root.querySelectorAll("*")]) {
    for (const attribute of Array.from(element.attributes)) {
      const name = attribute.name.toLowerCase();
      const value = attribute.value.trim().toLowerCase();
      if (name.startsWith("on") || ((name === "href" || name.endsWith(":href")) && !value.startsWith("#"))) {
        element.removeAttribute(attribute.name);
      }
    }
  }
  return document.importNode(root, true);
}

// --- View: one contact ------------------------------------------------------------------

const DECISION_KINDS = new Set(["decision", "split", "ab_split", "wait_for_event"]);

class ContactView {
  constructor(contactId) {
    this.contactId = contactId;
    this.title = contactId;
  }

  mount(root) {
    this.timeline = h("div", { class: "timeline", "data-testid": "timeline" });
    this.empty = h("p", { class: "empty", hidden: true }, "This contact has not entered any journey yet.");
    root.append(
      h("div", { class: "page-head" },
        h("p", { class: "eyebrow" }, "Contact"),
        h("h1", {}, this.contactId),
        h("p", { class: "lead" }, "Every journey this contact entered, newest first, with the steps taken.")),
      this.timeline,
      this.empty,
    );
    searchInput.value = this.contactId;
    document.title = `${this.contactId} · Journeys`;
  }

  load() {
    return api(`/v1/contacts/${enc(this.contactId)}/timeline`);
  }

  render(data) {
    const journeys = (Array.isArray(data.journeys) ? data.journeys : []).slice();
    journeys.sort((a, b) => (parseTime(b.entered_at) ?? 0) - (parseTime(a.entered_at) ?? 0));
    this.empty.hidden = journeys.length > 0;
    reconcile(this.timeline, journeys, (j) => `${j.workflow_id}\u0000${j.entry_id}`,
      () => this.journey(), (section, journey) => this.updateJourney(section, journey));
  }

  journey() {
    const link = h("a");
    const chip = h("span", { class: "chip" });
    const entered = h("time");
    const ended = h("span");
    const consoleLink = h("a", { class: "external", target: "_blank", rel: "noopener noreferrer" }, "Open in the Step Functions console");
    const steps = h("ol", { class: "steps" });
    const noSteps = h("p", { class: "empty", hidden: true }, "No steps recorded yet.");
    const section = h("section", { class: "panel journey", "data-testid": "journey" },
      h("header", { class: "journey-head" },
        h("h2", {}, link), chip,
        h("p", { class: "meta" }, "Entered ", entered, ended, " ", consoleLink)),
      steps, noSteps);
    section.parts = { link, chip, entered, ended, consoleLink, steps, noSteps };
    return section;
  }

  updateJourney(section, journey) {
    const { link, chip, entered, ended, consoleLink, steps, noSteps } = section.parts;
    setAttr(section, "data-workflow", journey.workflow_id);
    setAttr(section, "data-status", journey.status);
    setAttr(link, "href", `#/workflows/${enc(journey.workflow_id)}`);
    setText(link, journey.workflow_name || journey.workflow_id);
    setText(chip, statusLabel(journey.status));
    setAttr(chip, "data-tone", statusTone(journey.status));
    updateTime(entered, journey.entered_at);
    const took = between(journey.entered_at, journey.ended_at);
    setText(ended, journey.ended_at ? ` · ended ${formatTime(journey.ended_at)}${took === null ? "" : ` after ${formatDuration(took)}`}` : "");
    const url = journey.console_url ? safeHttpsUrl(journey.console_url) : null;
    setAttr(consoleLink, "href", url);
    consoleLink.hidden = !url;
    const list = Array.isArray(journey.steps) ? journey.steps : [];
    noSteps.hidden = list.length > 0;
    const running = journey.status === "running";
    reconcile(steps, list, (step, index) => `${index}\u0000${step.state}`, () => {
      const label = h("span", { class: "step-label" });
      const kind = h("span", { class: "kind" });
      const outcome = h("span", { class: "outcome" });
      const at = h("time");
      const after = h("span", { class: "sub" });
      const li = h("li", { "data-testid": "timeline-step" },
        h("div", { class: "step-line" }, label, kind, outcome),
        h("div", { class: "step-time" }, at, after));
      li.parts = { label, kind, outcome, at, after };
      return li;
    }, (li, step, index) => {
      const parts = li.parts;
      setAttr(li, "data-state", step.state);
      setAttr(li, "data-key", step.key ?? null);
      setText(parts.label, step.label || step.state);
      setText(parts.kind, kindLabel(step.kind));
      const outcome = step.outcome ? outcomeText(step) : "";
      setText(parts.outcome, outcome);
      parts.outcome.hidden = !outcome;
      setAttr(parts.outcome, "data-tone", step.outcome ? statusTone(String(step.outcome).split(":")[0]) : null);
      updateTime(parts.at, step.entered_at, { year: false });
      const since = between(journey.entered_at, step.entered_at);
      const stayed = between(step.entered_at, step.left_at);
      const notes = [];
      if (since !== null) notes.push(since < 60000 ? "at entry" : `+${formatDuration(since)} after entry`);
      if (stayed !== null && stayed >= 60000) notes.push(`stayed ${formatDuration(stayed)}`);
      const current = running && index === list.length - 1 && !step.left_at;
      if (current) notes.push("here now");
      setText(parts.after, notes.length ? ` · ${notes.join(" · ")}` : "");
      setClass(li, "current", current);
      setClass(li, "ending", step.kind === "ending" || step.kind === "end");
    });
  }
}

function kindLabel(kind) {
  const text = String(kind || "");
  if (!text || text === "ending" || text === "state") return "";
  return text.replace(/^send_/, "").replace(/_/g, " ");
}

function outcomeText(step) {
  const outcome = String(step.outcome);
  if (DECISION_KINDS.has(step.kind) && !outcome.startsWith("→")) return `→ ${outcome}`;
  return outcome;
}

// --- View: the outbox (local stack only) ------------------------------------------------

class OutboxView {
  constructor() {
    this.title = "Outbox";
    this.lastSeq = 0;
  }

  mount(root) {
    this.body = h("tbody");
    this.empty = h("p", { class: "empty", hidden: true }, "Nothing was sent yet.");
    root.append(
      h("div", { class: "page-head" },
        h("h1", {}, "Outbox"),
        h("p", { class: "lead" }, "Every email, SMS, push and web call the local stack's journeys made, newest first.")),
      h("div", { class: "panel table-scroll" },
        h("table", { class: "data outbox", "data-testid": "outbox" },
          h("caption", { class: "visually-hidden" }, "Messages sent, newest first"),
          h("thead", {}, h("tr", {},
            h("th", { scope: "col", class: "num" }, "#"),
            h("th", { scope: "col" }, "Time"),
            h("th", { scope: "col" }, "Channel"),
            h("th", { scope: "col" }, "Contact"),
            h("th", { scope: "col" }, "Workflow · step"),
            h("th", { scope: "col" }, "Message"),
            h("th", { scope: "col" }, "Status"))),
          this.body)),
      this.empty,
    );
  }

  /**
   * Only what is new since the last answer (`after`), asked from one before the newest row
   * seen: an answer without that row means the stack restarted, so start over.
   */
  async load() {
    if (this.lastSeq > 0) {
      const answer = await api(`/local/outbox?after=${this.lastSeq - 1}`);
      const messages = Array.isArray(answer.messages) ? answer.messages : [];
      if (messages.length && seqOf(messages[0]) === this.lastSeq) return { messages, reset: false };
    }
    const answer = await api("/local/outbox");
    return { messages: Array.isArray(answer.messages) ? answer.messages : [], reset: true };
  }

  render({ messages, reset }) {
    if (reset) {
      this.body.replaceChildren();
      this.lastSeq = 0;
    }
    const fresh = messages.filter((m) => seqOf(m) > this.lastSeq).sort((a, b) => seqOf(b) - seqOf(a));
    const rows = fresh.map((message) => this.row(message));
    if (rows.length) this.body.prepend(...rows);
    for (const message of fresh) this.lastSeq = Math.max(this.lastSeq, seqOf(message));
    while (this.body.children.length > OUTBOX_ROWS) this.body.lastElementChild.remove();
    this.empty.hidden = this.body.children.length > 0;
  }

  row(message) {
    const seq = seqOf(message);
    const channel = String(message.channel || message.kind || "");
    const contact = String(message.contact_id || "");
    const workflow = String(message.workflow_id || "");
    const step = String(message.step_label || message.step || message.step_id || "");
    const body = String(message.body || "").replace(/\s+/g, " ").trim();
    const preview = body.length > 160 ? `${body.slice(0, 159)}…` : body;
    const status = String(message.status || "");
    const to = String(message.to || "");
    return h("tr", { "data-seq": seq },
      h("td", { class: "num seq" }, String(seq)),
      h("td", { class: "when" }, timeElement(message.at, { year: false })),
      h("td", { class: "channel" },
        h("span", { class: "glyph", "aria-hidden": "true" }, CHANNEL_GLYPHS[channel] || "•"), " ",
        channel.replace(/_/g, " ")),
      h("td", {},
        contact ? h("a", { href: `#/contacts/${enc(contact)}`, "data-contact": contact }, contact) : "–",
        h("span", { class: "sub to", title: to }, to)),
      h("td", {},
        workflow ? h("a", { href: `#/workflows/${enc(workflow)}` }, workflow) : "–",
        h("span", { class: "sub" }, step)),
      h("td", { class: "message" },
        message.subject && message.subject !== channel ? h("strong", {}, String(message.subject)) : null,
        h("span", { class: "preview", title: body.length > preview.length ? body.slice(0, 2000) : null }, preview)),
      h("td", {}, h("span", { class: "chip", "data-tone": statusTone(status), title: status }, statusLabel(status.split(":")[0]))));
  }
}

function seqOf(message) {
  return Number(message.seq ?? message.sequence) || 0;
}

// --- Settings form -----------------------------------------------------------------------

class SettingsView {
  constructor(reason) {
    this.title = "Connect";
    this.reason = reason;
  }

  mount(root) {
    const apiInput = h("input", { id: "settings-api", name: "api", type: "url", value: stored("api"),
      placeholder: window.location.protocol.startsWith("http") ? window.location.origin : "https://…", autocomplete: "url", spellcheck: "false" });
    const keyInput = h("input", { id: "settings-key", name: "key", type: "password", value: stored("key"),
      autocomplete: "off", spellcheck: "false", required: true });
    const form = h("form", { class: "panel settings", "data-testid": "settings" },
      h("h1", {}, "Connect to the Journeys API"),
      h("p", { class: "lead" }, this.reason),
      h("p", {}, "On your machine, open the dashboard address that ", h("code", {}, "journeys up"),
        " prints: it carries the key. On AWS, use the API's URL with its stage and an API key from API Gateway."),
      h("label", { for: "settings-api" }, "API address"),
      apiInput,
      h("p", { class: "hint" }, "Leave empty when the dashboard is served by the API itself."),
      h("label", { for: "settings-key" }, "API key"),
      keyInput,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Connect")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      store("api", apiInput.value.trim());
      store("key", keyInput.value.trim());
      showError(null);
      route();
    });
    root.append(form);
    document.title = "Connect · Journeys";
    (stored("key") ? apiInput : keyInput).focus({ preventScroll: true });
  }
}

// --- Routing and the refresh loop --------------------------------------------------------

function parseRoute() {
  const path = window.location.hash.replace(/^#\/?/, "");
  const [head, ...rest] = path.split("/");
  const id = rest.length ? safeDecode(rest.join("/")) : "";
  if (head === "workflows" && id) return { name: "workflow", view: () => new WorkflowView(id) };
  if (head === "contacts" && id) return { name: "contact", view: () => new ContactView(id) };
  if (head === "outbox") return { name: "outbox", view: () => new OutboxView() };
  return { name: "workflows", view: () => new WorkflowsView() };
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

let current = null;
let generation = 0;
let timer = null;

function stopPolling() {
  generation += 1;
  if (timer !== null) window.clearTimeout(timer);
  timer = null;
}

async function refresh() {
  stopPolling();
  const view = current;
  if (!view || !view.load || document.hidden) return;
  const mine = generation;
  try {
    const data = await view.load();
    if (mine !== generation) return;
    view.render(data);
    showError(null);
    showUpdated(data.generated_at || null);
  } catch (error) {
    if (mine !== generation) return;
    if (view instanceof OutboxView && error instanceof ApiError && (error.status === 404 || /missing authentication/i.test(error.message))) {
      showError(new ApiError(error.status, "The outbox exists only on the local stack (journeys up): this API has none."));
    } else {
      showError(error);
    }
    if (!(error instanceof ApiError)) console.error(error); // a defect here, not the API's
  }
  if (mine === generation && !document.hidden) timer = window.setTimeout(refresh, POLL_MS);
}

function show(view, routeName) {
  stopPolling();
  current = view;
  markNavigation(routeName);
  main.replaceChildren();
  if (routeName !== "contact") searchInput.value = "";
  view.mount(main);
  if (view.title && !(view instanceof ContactView) && !(view instanceof SettingsView)) {
    document.title = view.title === "Workflows" ? "Journeys" : `${view.title} · Journeys`;
  }
  window.scrollTo(0, 0);
  refresh();
}

function showSettings(reason = "The dashboard needs the API's address and key.") {
  show(new SettingsView(reason), "settings");
}

function route() {
  if (!stored("key")) {
    showSettings("No API key is set yet.");
    return;
  }
  const target = parseRoute();
  show(target.view(), target.name);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) stopPolling();
  else refresh();
});

window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true });
});

adoptQueryParameters();
route();
