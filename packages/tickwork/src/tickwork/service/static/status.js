// tickwork status page: polls ./status every second and, in one request per refresh,
// ./history for the charts of the visible rows whose history it does not have yet.
// Each row has Pause/Resume and "Run now" buttons (POST ./tasks/NAME/ACTION) when /status says
// actions are enabled; the answer is shown in the row for a few seconds.
// Every server value is inserted with textContent (task names and errors are untrusted).
"use strict";
(() => {
  const POLL_MS = 1000;         // refresh period
  const TIMEOUT_MS = 4000;      // a request slower than this counts as "disconnected"
  const HISTORY_BATCH = 100;    // task names per /history request (the service's limit)
  const URL_BUDGET = 6000;      // characters of task=... parameters per /history request
  const OVERDUE_AFTER = 1;      // seconds past due before a task counts as overdue
  const KEEP = 100;             // runs per chart (the service keeps 100)
  const RESULT_MS = 4000;       // how long an action's answer stays in its row
  const ERROR_MS = 8000;        // ... and a refusal or failure (longer: it has more to read)
  const KEY = "tickwork.token";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const rows = new Map();       // task name -> row record; a Map, so any name is a safe key
  const components = new Map();
  let token = sessionStorage.getItem(KEY);
  let startedAt = null;
  let lostAt = null;            // when the service stopped answering
  let order = [];
  let filter = "";
  let attentionFirst = sessionStorage.getItem("tickwork.attention") === "1";
  let historyLoading = false;   // one /history request at a time
  let actionsEnabled = false;   // /status.actions.enabled: whether rows get their buttons
  let timer = null;             // the next refresh
  let ticking = false;          // a refresh is in flight
  let again = false;            // refresh again as soon as the one in flight ends
  // Column headings double as the labels of the narrow layout's cards.
  const LABELS = [...document.querySelectorAll("thead th")].map((th) => th.textContent);
  // last_outcome -> the word the page shows.
  const OUTCOMES = { success: "ok", failure: "failed", timeout: "timed out", snoozed: "snoozed",
    cancelled: "cancelled", lease_lost: "lease lost" };
  // Needing attention, most urgent first; a task counts under its first matching kind.
  // Paused is last: an operator chose it, but it must not be forgotten.
  const RANK = { stuck: 0, failing: 1, lease_lost: 2, snoozed: 3, overdue: 4, paused: 5, "": 6 };
  // action -> [the button's word, what the row says once the service accepted it].
  const ACTIONS = { pause: ["Pause", "paused"], resume: ["Resume", "resumed"],
    trigger: ["Run now", "run requested"] };
  // A refusal's `error` code (403) -> why, in words.
  const REFUSALS = { actions_disabled: "actions disabled", cross_origin: "cross-origin request",
    host_not_allowed: "host name not allowed" };

  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.has("token")) {
    token = hash.get("token");
    sessionStorage.setItem(KEY, token);
    history.replaceState(null, "", location.pathname + location.search);  // keep it off screen
  }

  function el(tag, cls, parent) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(node, value) {
    if (node.textContent !== value) node.textContent = value;
  }
  function show(node, visible) {
    if (node.hidden === visible) node.hidden = !visible;
  }
  // A calendar task's next run in its zone: "03:00" (short), or "02/01/2026, 03:00
  // Europe/Rome (2026-01-02 02:00 UTC)".
  function whenIn(epoch, tz, short) {
    const at = new Date(epoch * 1000);
    const fmt = short ? { timeStyle: "short" } : { dateStyle: "short", timeStyle: "short" };
    let local;
    try { local = at.toLocaleString([], Object.assign({ timeZone: tz }, fmt)); }
    catch (e) { local = at.toLocaleString([], fmt); }
    if (short) return local;
    return local + " " + tz + " (" + at.toISOString().slice(0, 16).replace("T", " ") + " UTC)";
  }

  function title(node, value) {
    if (node.title !== value) node.title = value;
  }
  function classes(node, value) {
    if (node.getAttribute("class") !== value) node.setAttribute("class", value);
  }
  function secs(s) {
    if (s == null || !isFinite(s)) return "–";
    if (s < 0.0001) return "<0.1 ms";
    if (s < 0.01) return (s * 1000).toFixed(1) + " ms";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
    const pair = (big, bigUnit, small, smallUnit) =>
      big + " " + bigUnit + (small ? " " + small + " " + smallUnit : "");
    if (s < 3600) return pair(Math.floor(s / 60), "min", Math.floor(s % 60), "s");
    if (s < 86400) return pair(Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "min");
    return pair(Math.floor(s / 86400), "d", Math.floor((s % 86400) / 3600), "h");
  }
  const whole = (s) => Math.max(0, Math.round(s)) + " s";
  // One unit, for narrow cells: "45 s", "59 min", "1.5 h".
  // A value that rounds up to the next unit is shown in it: "1 h", never "60 min".
  const UNITS = [[60, "min", 3600], [3600, "h", 86400], [86400, "d", Infinity]];
  function compact(s) {
    if (!(s >= 59.5)) return whole(s);
    for (const [size, unit, next] of UNITS) {
      const value = +(s / size).toFixed(s < 10 * size ? 1 : 0);
      if (value * size < next) return value + " " + unit;
    }
    return whole(s);
  }
  // "12 s ago", "just now", "in 5 s"; more than a day away: the local date and time.
  function relative(at, now) {
    const age = now - at;
    if (Math.abs(age) >= 86400) return new Date(at * 1000).toLocaleString();
    if (Math.abs(age) < 1) return "just now";
    return age > 0 ? compact(Math.floor(age)) + " ago" : "in " + compact(Math.ceil(-age));
  }
  // "in 0.3 s" below a second (tenths, rounded up), "in 58 min" above.
  function dueIn(seconds) {
    const tenths = Math.ceil(seconds * 10);
    return "in " + (tenths < 10 ? "0." + tenths + " s" : compact(Math.ceil(seconds)));
  }
  // Cut a long value at a word boundary (never mid-word), marking the cut.
  function clip(value, limit) {
    if (value.length <= limit) return value;
    const cut = value.lastIndexOf(" ", limit);
    return value.slice(0, cut > limit / 2 ? cut : limit) + "…";
  }
  const words = (key) => String(key).replace(/_at$/, "").replace(/_/g, " ");
  const isTimeKey = (key) => /_at$/.test(key);
  const isStatusMap = (v) => v && typeof v === "object" && !Array.isArray(v) &&
    Object.keys(v).length > 0 && Object.values(v).every((s) => s && typeof s.status === "string");
  function detailValue(key, v, now) {
    if (typeof v === "number" && isTimeKey(key) && v > 1e8) return relative(v, now);
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (Array.isArray(v)) return v.map(String).join(", ");
    if (v && typeof v === "object") {
      const inner = Object.entries(v).filter(([, x]) => x != null && typeof x !== "object")
        .map(([k, x]) => words(k) + " " + detailValue(k, x, now)).join(", ");
      return inner && "(" + inner + ")";
    }
    return clip(String(v), 300);
  }
  // A component's details in words: "requests 12 · last success 3 s ago". Empty values, the
  // reason repeated, and per-part statuses (shown as their own list) are left out.
  // A deadline (`*_until`) reads "rate limited for 5 s" while it lasts and is left out after.
  function detailLine(d, reason, now) {
    return Object.entries(d || {})
      .filter(([, v]) => v != null && v !== "" && v !== reason && !isStatusMap(v))
      .map(([k, v]) => {
        if (!/_until$/.test(k) || typeof v !== "number" || v <= 1e8) {
          return words(k) + " " + detailValue(k, v, now);
        }
        return v > now ? words(k.slice(0, -6)) + " for " + compact(Math.ceil(v - now)) : "";
      })
      .filter((item) => item && !item.endsWith(" ")).join(" · ");
  }
  // The last run's outcome: the service's last_outcome, or derived from the older fields.
  function outcomeOf(t) {
    if (typeof t.last_outcome === "string") return t.last_outcome;
    if (t.last_finished_at == null) return null;
    const error = t.last_error == null ? "" : String(t.last_error);
    if (!error) return "success";
    return error.startsWith("TimeoutError: execution exceeded its timeout") ? "timeout" : "failure";
  }

  async function get(url) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const headers = token ? { Authorization: "Bearer " + token } : {};
      return await fetch(url, { headers, signal: ctl.signal, cache: "no-store" });
    } finally {
      clearTimeout(timer);
    }
  }

  function setConnection(state, message) {
    document.body.dataset.connection = state;
    text($("conn-text"), state);
    $("banner").hidden = !message;
    text($("banner"), message || "");
  }

  // A POST of an action: a JSON body (never a "simple" cross-origin request) with the token.
  async function post(url) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const headers = { "Content-Type": "application/json" };
      if (token) headers.Authorization = "Bearer " + token;
      return await fetch(url, { method: "POST", headers, body: "{}", signal: ctl.signal,
        cache: "no-store" });
    } finally {
      clearTimeout(timer);
    }
  }

  // Refresh now instead of at the next period (after an action); one refresh at a time.
  function refresh() {
    if (ticking) { again = true; return; }
    clearTimeout(timer);
    tick();
  }

  async function tick() {
    ticking = true;
    timer = null;
    let delay = POLL_MS;
    try {
      const res = await get("status");
      if (res.status === 401) {
        setConnection("unauthorized", "");
        text($("login-text"), token ? "The token was refused; enter a valid one."
          : "This service needs a bearer token.");
        $("login").hidden = false;
        $("main").hidden = true;
        ticking = again = false;
        return;  // polling resumes when a token is submitted
      }
      if (res.status === 429) {
        delay = 1000 * Math.max(1, Number(res.headers.get("Retry-After")) || 1);
      } else if (!res.ok) {
        setConnection("disconnected", "The service answered HTTP " + res.status + "; retrying.");
      } else {
        const doc = await res.json();
        $("login").hidden = true;
        $("main").hidden = false;
        setConnection("connected", "");
        lostAt = null;
        const t0 = performance.now();
        render(doc);
        performance.clearMeasures("tickwork:update");
        performance.measure("tickwork:update", { start: t0 });
        text($("updated"), "· updated " + new Date(doc.now * 1000).toLocaleTimeString());
        loadHistories();
      }
    } catch (err) {
      lostAt = lostAt || new Date();
      setConnection("disconnected", "Disconnected: the service is unreachable since " +
        lostAt.toLocaleTimeString() + ". Retrying every second; the values below are the last known.");
    }
    ticking = false;
    timer = setTimeout(tick, again ? 0 : delay);
    again = false;
  }

  function render(doc) {
    if (doc.started_at !== startedAt) {  // a new process: forget the charts of the old one
      startedAt = doc.started_at;
      for (const rec of rows.values()) { rec.hist = null; rec.stale = true; }
    }
    text($("svc-state"), doc.state);
    $("svc-state").className = "big st-" + String(doc.state).replace(/[^a-z_]/g, "");
    text($("svc-uptime"), secs(doc.uptime));
    text($("svc-lag"), secs(doc.event_loop_lag));
    const stalls = doc.stall_events || {};
    const count = (stalls.stall || 0) + (stalls.suspend || 0) + (stalls.clock_jump || 0);
    const last = doc.last_stall;
    text($("svc-stall"), count && last ? count + " stall event(s); last: " + last.kind + " of " +
      secs(last.seconds) : "no stalls");
    renderComponents(doc.services || {}, doc.now);
    renderCluster(doc.cluster || null);
    // An older service has no `actions`: it has no endpoints either, so no buttons.
    const actions = doc.actions || {};
    actionsEnabled = actions.enabled === true;
    const off = actions.enabled === false ? "Actions are disabled" +
      (actions.reason ? ": " + clip(String(actions.reason), 200) : "") : "";
    text($("actions-off"), off);
    show($("actions-off"), off !== "");

    const seen = new Set();
    let running = 0;
    const counts = { stuck: 0, failing: 0, lease_lost: 0, snoozed: 0, overdue: 0, paused: 0, "": 0 };
    doc.tasks.forEach((t, index) => {
      let rec = rows.get(t.name);
      if (!rec) rec = addRow(t.name);
      seen.add(t.name);
      rec.index = index;
      update(rec, t, doc.now);
      if (t.state === "running") running++;
      counts[rec.attention]++;
    });
    for (const [name, rec] of rows) {
      if (!seen.has(name)) { rec.tr.remove(); observer.unobserve(rec.tr); rows.delete(name); }
    }
    const attention = doc.tasks.length - counts[""];
    text($("svc-tasks"), String(doc.tasks.length));
    text($("svc-summary"), running + " running");
    text($("svc-attention"), attention ? attention + " need" + (attention === 1 ? "s" : "") +
      " attention" : "none needs attention");
    $("svc-attention").className = "small" + (attention ? " summary-bad" : " muted");
    const parts = [counts.failing + " failing", counts.snoozed + " snoozed",
      counts.overdue + " overdue", counts.stuck + " stuck"];
    if (counts.lease_lost) parts.push(counts.lease_lost + " lease lost");
    if (counts.paused) parts.push(counts.paused + " paused");
    text($("svc-problems"), parts.map((part) => part.replaceAll(" ", "\u00a0")).join(" · "));
    show($("empty"), doc.tasks.length === 0);
    arrange();
  }

  const statusClass = (status) => "badge s-" + String(status).replace(/[^a-z_]/g, "");

  function renderComponents(services, now) {
    const names = Object.keys(services);
    $("components").hidden = names.length === 0;
    for (const name of names) {
      let c = components.get(name);
      if (!c) {
        const li = el("li", "", $("component-list"));
        const head = el("div", "head", li);
        c = {
          li,
          name: el("span", "name", head),
          badge: el("span", "badge", head),
          reason: el("p", "reason", li),
          details: el("p", "muted details", li),
          parts: el("ul", "parts", li),
          partsKey: "",
        };
        text(c.name, name);
        components.set(name, c);
      }
      const s = services[name] || {};
      const status = String(s.status);
      text(c.badge, status.replace("_", " "));
      classes(c.badge, statusClass(status));
      const reason = s.reason ? String(s.reason) : "";
      text(c.reason, reason);
      show(c.reason, reason !== "");
      const line = detailLine(s.details, reason, now);
      text(c.details, line);
      show(c.details, line !== "");
      renderParts(c, s.details || {}, now);
    }
    for (const [name, c] of components) {
      if (!Object.hasOwn(services, name)) { c.li.remove(); components.delete(name); }
    }
  }

  // Per-part statuses inside a component's details (miauflix's `trackers`: one per tracker URL),
  // one line each: name, status, and the reason or the part's own details.
  function renderParts(c, details, now) {
    const parts = [];
    for (const v of Object.values(details)) {
      if (!isStatusMap(v)) continue;
      for (const [name, p] of Object.entries(v)) {
        const why = p.reason ? String(p.reason) : detailLine(p.details, "", now);
        parts.push([name, String(p.status), clip(why, 300)]);
      }
    }
    const key = JSON.stringify(parts);
    if (key === c.partsKey) return;
    c.partsKey = key;
    c.parts.replaceChildren();
    for (const [name, status, why] of parts) {
      const li = el("li", "", c.parts);
      text(el("span", "part", li), name);
      const badge = el("span", statusClass(status), li);
      text(badge, status.replace("_", " "));
      if (why) text(el("span", "muted", li), why);
    }
    show(c.parts, parts.length > 0);
  }

  // The cluster a coordinated replica belongs to: its peers and who holds each singleton task.
  let clusterKey = "";
  function renderCluster(c) {
    show($("cluster"), c !== null);
    if (c === null) return;
    const state = !c.reachable ? "unreachable" : c.ready ? "ready" : "starting";
    text($("cluster-head"), c.backend + " · cluster " + c.cluster + " · this replica " +
      c.replica + " · lease " + secs(c.lease_ttl) + " · coordinator " + state);
    const error = c.reachable ? "" : clip(String(c.error || ""), 300);
    text($("cluster-error"), error);
    show($("cluster-error"), error !== "");
    const peers = (c.peers || []).map((p) => [
      p.replica + (p.replica === c.replica ? " (this replica)" : ""),
      p.alive ? "ready" : "error", p.alive ? "alive" : "gone",
      "seen " + compact(p.last_seen_ago) + " ago · " + p.tasks.length + " task(s)"]);
    const tasks = (c.tasks || []).map((t) => [
      t.name,
      t.orphaned ? "degraded" : t.paused ? "paused" : t.holder ? "running" : "scheduled",
      t.orphaned ? "orphaned" : t.paused ? "paused" : t.holder ? "held" : "free",
      (t.paused ? "paused" + (t.paused_by ? " by " + t.paused_by : "") +
        (t.paused_for != null ? " for " + compact(t.paused_for) : "") + " · " : "") +
      (t.run_requested ? "run requested · " : "") +
      (t.holder ? "by " + t.holder + " (token " + t.token + "), lease " +
        dueIn(Math.max(0, t.lease_expires_in)).replace("in ", "for ") :
        "token " + t.token + ", due " + (t.next_due_in > 0 ? dueIn(t.next_due_in) : "now")) +
        " · " + t.runs + " run(s)" + (t.failures ? ", " + t.failures + " failing in a row" : "") +
        (t.last_outcome ? ", last " + String(t.last_outcome).replace("_", " ") : "")]);
    const key = JSON.stringify([peers, tasks]);
    if (key === clusterKey) return;
    clusterKey = key;
    for (const [list, items] of [[$("cluster-peers"), peers], [$("cluster-tasks"), tasks]]) {
      list.replaceChildren();
      for (const [name, status, label, why] of items) {
        const li = el("li", "", list);
        text(el("span", "part", li), name);
        text(el("span", statusClass(status), li), label);
        text(el("span", "muted", li), why);
      }
    }
  }

  function addRow(name) {
    const tr = el("tr");
    const td = (cls) => {
      const cell = el("td", cls, tr);
      cell.dataset.label = LABELS[tr.cells.length - 1] || "";
      return cell;
    };
    const rec = {
      name, tr, hist: null, stale: true, fetchedAt: 0, dirty: false,
      runs: -1, attention: "", visible: false, painted: false, t: null, now: 0,
      nameCell: td("name"), interval: td("num c-interval"), stateCell: td("c-state"),
      runsCell: td("num c-runs"), failCell: td("num c-failures"), rowCell: td("num c-row"),
      lastCell: td("c-last"), duration: td("num c-duration"), next: td("num c-next"),
      chart: td("c-chart"), error: td("error"),
    };
    rec.state = el("span", "badge", rec.stateCell);
    rec.why = el("span", "why", rec.stateCell);
    rec.lastWhen = el("span", "when", rec.lastCell);
    rec.lastOutcome = el("span", "outcome", rec.lastCell);
    text(rec.nameCell, name);
    rec.nameCell.title = name;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    rec.title = svg.appendChild(document.createElementNS(SVG, "title"));
    for (const cls of ["base", "ok", "bad", "snz", "other"]) {
      const p = svg.appendChild(document.createElementNS(SVG, "path"));
      p.setAttribute("class", cls);
      rec[cls] = p;
    }
    rec.base.setAttribute("d", "M0 23.5h100v.5H0Z");
    rec.chart.appendChild(svg);
    rec.details = el("details", "", rec.error);
    rec.summary = el("span", "", el("summary", "", rec.details));
    rec.pre = el("pre", "", rec.details);
    rec.details.hidden = true;
    tr.rec = rec;
    rows.set(name, rec);
    observer.observe(tr);
    return rec;
  }

  // The row's controls, made the first time a row is painted with actions enabled. They are
  // taken out of the DOM (not only hidden) when actions are disabled, so the cell's text is
  // the state alone.
  function controls(rec) {
    if (rec.act) return rec.act;
    const act = el("div", "act");
    act.toggle = el("button", "", act);
    act.toggle.type = "button";
    act.run = el("button", "", act);
    act.run.type = "button";
    act.run.dataset.action = "trigger";
    act.run.setAttribute("aria-label", "Run " + rec.name + " now");
    text(act.run, ACTIONS.trigger[0]);
    act.result = el("span", "result", act);
    act.result.setAttribute("role", "status");
    act.clear = null;
    rec.act = act;
    return act;
  }

  function paintControls(rec, paused) {
    if (!actionsEnabled) {
      if (rec.act && rec.act.parentNode) rec.act.remove();
      return;
    }
    const act = controls(rec);
    if (act.parentNode !== rec.stateCell) rec.stateCell.appendChild(act);
    const action = paused ? "resume" : "pause";
    if (act.toggle.dataset.action !== action) {
      act.toggle.dataset.action = action;
      act.toggle.setAttribute("aria-label", ACTIONS[action][0] + " " + rec.name);
      text(act.toggle, ACTIONS[action][0]);
    }
    const busy = rec.busy === true;
    if (act.toggle.disabled !== busy) act.toggle.disabled = busy;
    if (act.run.disabled !== busy) act.run.disabled = busy;
  }

  // An action's answer in words, shown in its row.
  function showResult(rec, message, kind) {
    const act = controls(rec);
    clearTimeout(act.clear);
    text(act.result, message);
    classes(act.result, "result r-" + kind);
    act.clear = kind === "pending" ? null : setTimeout(() => {
      text(act.result, "");
      classes(act.result, "result");
    }, kind === "ok" ? RESULT_MS : ERROR_MS);
  }

  async function refusal(res) {
    let code = "";
    try {
      const body = await res.json();
      if (body && typeof body.error === "string") code = body.error;
    } catch (err) { /* a body that is not JSON: the status code says enough */ }
    switch (res.status) {
      case 401: return "refused: token missing or wrong (401)";
      case 403: return "refused: " + (REFUSALS[code] || code.replace(/_/g, " ") || "forbidden") + " (403)";
      case 404: return "unknown task: cancelled meanwhile? (404)";
      case 429: {
        const after = Math.max(1, Number(res.headers.get("Retry-After")) || 1);
        return "rate limited: retry in " + after + " s (429)";
      }
      case 503: return "coordinator unreachable: nothing changed (503)";
      default: return "failed: HTTP " + res.status;
    }
  }

  async function act(rec, action, button) {
    if (rec.busy) return;
    rec.busy = true;
    paintControls(rec, isPaused(rec.t));
    showResult(rec, "sending…", "pending");
    try {
      const res = await post("tasks/" + encodeURIComponent(rec.name) + "/" + action);
      if (res.ok) {
        showResult(rec, ACTIONS[action][1], "ok");
        refresh();
      } else {
        showResult(rec, await refusal(res), "error");
      }
    } catch (err) {
      showResult(rec, "no answer from the service", "error");
    } finally {
      rec.busy = false;
      // A disabled button loses the focus: give it back, so a keyboard user stays in place.
      const lost = document.activeElement === null || document.activeElement === document.body;
      if (rec.t) paintControls(rec, isPaused(rec.t));
      if (lost && button.isConnected) button.focus();
    }
  }

  // Paused: the state says so, or a pause is recorded while the run in progress finishes.
  const isPaused = (t) => t.state === "paused" || t.paused_at != null;

  // Off-screen rows only keep their data: writing 500 rows' text every second would make the
  // browser lay out the whole table each time. A row is painted when it scrolls into view.
  function update(rec, t, now) {
    const outcome = outcomeOf(t);
    let attention = "";
    if (t.stuck) attention = "stuck";
    else if (t.state === "paused") attention = "paused";
    else if (t.consecutive_failures > 0 && outcome !== "snoozed") attention = "failing";
    else if (outcome === "lease_lost" && t.state !== "running") attention = "lease_lost";
    else if (t.state === "snoozed" || (t.state === "scheduled" && outcome === "snoozed")) {
      attention = "snoozed";
    } else if (t.state !== "running" && t.overdue_by >= OVERDUE_AFTER) attention = "overdue";
    rec.attention = attention;
    classes(rec.tr, attention ? "attention a-" + attention + (attention === "paused" ? " paused" : "") : "");
    rec.outcome = outcome;
    rec.t = t;
    rec.now = now;
    if (rec.visible || !rec.painted) paint(rec);

    // Extend the chart from /status when exactly one run finished since the last refresh;
    // otherwise the row's history is refetched (when the row is on screen).
    if (t.runs !== rec.runs) {
      const start = t.last_finished_at - t.last_duration;
      const tail = rec.hist && rec.hist[rec.hist.length - 1];
      if (rec.hist && t.runs === rec.runs + 1 && t.last_duration != null) {
        if (!tail || start > tail.started_at + 0.005) {
          rec.hist.push({ started_at: start, duration: t.last_duration, outcome: outcome || "success" });
          if (rec.hist.length > KEEP) rec.hist.shift();
          rec.dirty = true;
        }
      } else if (t.runs > 0) {
        rec.stale = true;
      }
      rec.runs = t.runs;
      if (rec.dirty && rec.visible) draw(rec);
    }
  }

  function paint(rec) {
    const t = rec.t, now = rec.now;
    rec.painted = true;
    let state, cls, why = "";
    const reason = t.last_outcome_reason == null ? "" : String(t.last_outcome_reason);
    if (t.stuck) {
      state = "stuck, running " + whole(t.running_for); cls = "stuck";
    } else if (t.state === "running") {
      state = "running for " + whole(t.running_for || 0); cls = "busy";
    } else if (rec.attention === "snoozed") {
      // The snooze's length: from the end of the run that snoozed to the next start.
      const length = t.next_run_at - t.last_finished_at;
      state = "snoozed" + (length > 0 ? " " + (length < 60 ? secs(length) : compact(length)) : "");
      cls = "snoozed"; why = reason;
    } else if (t.state === "paused") {
      state = "paused"; cls = "paused"; why = pausedBy(t, now) || reason;
    } else if (rec.attention === "lease_lost") {
      state = "lease lost"; cls = "lease_lost"; why = reason;
    } else if (rec.attention === "overdue") {
      state = "overdue by " + whole(t.overdue_by); cls = "overdue";
    } else if (rec.attention === "failing") {
      state = "failing"; cls = "failing";
    } else {
      state = String(t.state || "scheduled"); cls = "scheduled";
    }
    if (t.state !== "paused" && t.paused_at != null) {  // paused while a run was in progress
      const pause = pausedBy(t, now) + "; pauses when this run ends";
      why = why ? why + " · " + pause : pause;
    }
    if (t.run_requested) why = why ? why + " · run requested" : "run requested";
    text(rec.state, state);
    classes(rec.state, "badge s-" + cls);
    text(rec.why, why);
    show(rec.why, why !== "");
    const outcome = rec.outcome;
    if (t.last_finished_at == null) {
      text(rec.lastWhen, "–");
      title(rec.lastCell, "");
    } else {
      text(rec.lastWhen, relative(t.last_finished_at, now));
      title(rec.lastCell, "finished " + new Date(t.last_finished_at * 1000).toLocaleString() +
        (reason && outcome !== "success" ? ": " + reason : ""));
    }
    text(rec.lastOutcome, outcome ? OUTCOMES[outcome] || String(outcome) : "");
    classes(rec.lastOutcome, "outcome o-" + String(outcome).replace(/[^a-z_]/g, ""));
    const cron = t.schedule && t.schedule.kind === "cron" ? t.schedule : null;
    classes(rec.interval, cron ? "num c-interval cron" : "num c-interval");
    classes(rec.next, cron ? "num c-next cron" : "num c-next");
    if (cron) {  // a calendar task: the expression and its zone instead of an interval
      text(rec.interval, cron.expression + " " + cron.tz);
      title(rec.interval, "cron: " + cron.expression + " in " + cron.tz);
    } else {
      text(rec.interval, t.interval < 60 ? secs(t.interval) : compact(t.interval));
      title(rec.interval, "");
    }
    text(rec.runsCell, String(t.runs));
    text(rec.failCell, String(t.failures));
    text(rec.rowCell, String(t.consecutive_failures));
    rec.rowCell.classList.toggle("fail", t.consecutive_failures > 0);
    text(rec.duration, secs(t.last_duration));
    let next = "–";
    if (t.state !== "running" && t.state !== "paused" && t.next_run_at != null) {
      const due = t.next_run_at - now;
      next = due > 0 ? dueIn(due) : "due";
    }
    if (cron && next !== "–") next += " · " + whenIn(t.next_run_at, cron.tz, true);
    text(rec.next, next);
    title(rec.next, cron && next !== "–" ? whenIn(t.next_run_at, cron.tz, false) : "");
    const error = t.last_error == null ? "" : String(t.last_error);
    show(rec.details, error !== "");
    text(rec.summary, clip(error.split("\n", 1)[0], 90));
    text(rec.pre, error);
    paintControls(rec, isPaused(t));
  }

  // "paused by alice@laptop (127.0.0.1), 3 min ago"; the time never split over two lines.
  function pausedBy(t, now) {
    if (t.paused_at == null) return "";
    return "paused" + (t.paused_by ? " by " + clip(String(t.paused_by), 120) : "") + ", " +
      relative(t.paused_at, now).replaceAll(" ", "\u00a0");
  }

  function draw(rec) {
    rec.dirty = false;
    const runs = rec.hist || [];
    let max = 0, failed = 0;
    for (const r of runs) max = Math.max(max, Number(r.duration) || 0);
    const d = { ok: "", bad: "", snz: "", other: "" };
    const slot = 100 / Math.max(runs.length, 40);  // few runs: wider bars, newest on the right
    runs.forEach((r, i) => {
      const x = (100 - (runs.length - i) * slot).toFixed(2);
      const kind = r.outcome === "success" ? "ok" : r.outcome === "snoozed" ? "snz"
        : r.outcome === "failure" || r.outcome === "timeout" ? "bad" : "other";
      if (kind === "bad") failed++;
      const h = kind === "bad" ? 24 : Math.max(1.5, (22 * (Number(r.duration) || 0)) / (max || 1));
      d[kind] += "M" + x + " " + (24 - h).toFixed(2) + "h" + (slot * 0.8).toFixed(2) + "V24H" + x + "Z";
    });
    for (const k in d) rec[k].setAttribute("d", d[k]);
    const sorted = runs.map((r) => Number(r.duration) || 0).sort((a, b) => a - b);
    text(rec.title, runs.length ? "Last " + runs.length + " runs: median " +
      secs(sorted[sorted.length >> 1]) + ", max " + secs(max) + ", " + failed + " failed" : "No runs yet");
  }

  // At most one /history request per refresh, for every visible row that needs its chart
  // (up to HISTORY_BATCH names; the longest-waiting rows first, the rest on the next refresh).
  function loadHistories() {
    if (historyLoading) return;
    const wanted = [];
    for (const rec of rows.values()) if (rec.visible && rec.stale) wanted.push(rec);
    if (wanted.length === 0) return;
    wanted.sort((a, b) => a.fetchedAt - b.fetchedAt);
    const batch = [];
    let length = 0;
    for (const rec of wanted) {
      const part = "task=" + encodeURIComponent(rec.name);
      if (batch.length === HISTORY_BATCH || (batch.length && length + part.length > URL_BUDGET)) break;
      batch.push({ rec, part });
      length += part.length + 1;
    }
    loadHistory(batch);
  }

  async function loadHistory(batch) {
    historyLoading = true;
    const fetchedAt = performance.now();
    for (const { rec } of batch) { rec.stale = false; rec.fetchedAt = fetchedAt; }
    try {
      const res = await get("history?" + batch.map(({ part }) => part).join("&"));
      if (!res.ok) {
        for (const { rec } of batch) rec.stale = res.status !== 404;
        return;
      }
      const doc = await res.json();
      for (const { rec } of batch) {
        const list = Object.hasOwn(doc, rec.name) ? doc[rec.name] : [];
        rec.hist = Array.isArray(list) ? list.slice(-KEEP) : [];
        rec.dirty = true;
        if (rec.visible) draw(rec);
      }
    } catch (err) {
      for (const { rec } of batch) rec.stale = true;
    } finally {
      historyLoading = false;
    }
  }

  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const rec = entry.target.rec;
      rec.visible = entry.isIntersecting;
      if (rec.visible && rec.t) paint(rec);
      if (rec.visible && rec.dirty) draw(rec);
    }
  }, { rootMargin: "300px 0px" });

  function arrange() {
    const recs = [...rows.values()];
    recs.sort((a, b) => (attentionFirst ? RANK[a.attention] - RANK[b.attention] : 0) || a.index - b.index);
    for (const rec of recs) show(rec.tr, filter === "" || rec.name.toLowerCase().includes(filter));
    if (recs.length === order.length && recs.every((r, i) => r === order[i])) return;
    order = recs;
    const body = $("rows");
    for (const rec of recs) body.appendChild(rec.tr);
  }

  $("attention").checked = attentionFirst;
  $("attention").addEventListener("change", (e) => {
    attentionFirst = e.target.checked;
    sessionStorage.setItem("tickwork.attention", attentionFirst ? "1" : "0");
    arrange();
  });
  $("filter").addEventListener("input", (e) => {
    filter = e.target.value.trim().toLowerCase();
    arrange();
  });
  $("rows").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-action]");
    const tr = button && button.closest("tr");
    if (tr && tr.rec) act(tr.rec, button.dataset.action, button);
  });
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem(KEY, token);
    $("token").value = "";
    $("login").hidden = true;
    refresh();
  });
  tick();
})();
