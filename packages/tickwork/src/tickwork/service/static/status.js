// tickwork status page: polls ./status every second and ./history for the charts of visible rows.
// Every server value is inserted with textContent (task names and errors are untrusted).
"use strict";
(() => {
  const POLL_MS = 1000;         // refresh period
  const TIMEOUT_MS = 4000;      // a request slower than this counts as "disconnected"
  const HISTORY_PER_TICK = 4;   // /history?task= requests per refresh (the route is rate-limited)
  const OVERDUE_AFTER = 1;      // seconds past due before a task counts as overdue
  const KEEP = 100;             // runs per chart (the service keeps 100)
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
  function compact(s) {
    if (!(s >= 60)) return whole(s);
    const [size, unit] = s >= 86400 ? [86400, "d"] : s >= 3600 ? [3600, "h"] : [60, "min"];
    return +(s / size).toFixed(s < 10 * size ? 1 : 0) + " " + unit;
  }
  // A component's scalar details on one line: "lists 3 · movies 180".
  const detailLine = (d) => Object.entries(d || {})
    .filter(([, v]) => typeof v !== "object").map(([k, v]) => k + " " + v).join(" · ").slice(0, 200);

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

  async function tick() {
    let delay = POLL_MS;
    try {
      const res = await get("status");
      if (res.status === 401) {
        setConnection("unauthorized", "");
        text($("login-text"), token ? "The token was refused; enter a valid one."
          : "This service needs a bearer token.");
        $("login").hidden = false;
        $("main").hidden = true;
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
    setTimeout(tick, delay);
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
    renderComponents(doc.services || {});

    const seen = new Set();
    let running = 0, failing = 0, overdue = 0, stuck = 0;
    doc.tasks.forEach((t, index) => {
      let rec = rows.get(t.name);
      if (!rec) rec = addRow(t.name);
      seen.add(t.name);
      rec.index = index;
      update(rec, t, doc.now);
      if (t.state === "running") running++;
      if (t.consecutive_failures > 0) failing++;
      if (rec.attention === "overdue") overdue++;
      if (t.stuck) stuck++;
    });
    for (const [name, rec] of rows) {
      if (!seen.has(name)) { rec.tr.remove(); observer.unobserve(rec.tr); rows.delete(name); }
    }
    text($("svc-tasks"), String(doc.tasks.length));
    text($("svc-summary"), running + " running");
    text($("svc-problems"), [failing + " failing", overdue + " overdue", stuck + " stuck"].join(" · "));
    $("svc-problems").className = "small" + (failing + overdue + stuck ? " summary-bad" : " muted");
    show($("empty"), doc.tasks.length === 0);
    arrange();
  }

  function renderComponents(services) {
    const names = Object.keys(services);
    $("components").hidden = names.length === 0;
    for (const name of names) {
      let c = components.get(name);
      if (!c) {
        const li = el("li", "", $("component-list"));
        c = {
          li,
          name: el("span", "name", li),
          badge: el("span", "badge", li),
          reason: el("span", "muted", li),
          details: el("span", "muted details", li),
        };
        text(c.name, name);
        components.set(name, c);
      }
      const s = services[name] || {};
      const status = String(s.status);
      text(c.badge, status.replace("_", " "));
      c.badge.className = "badge s-" + status.replace(/[^a-z_]/g, "");
      text(c.reason, s.reason ? String(s.reason) : "");
      text(c.details, detailLine(s.details));
    }
    for (const [name, c] of components) {
      if (!Object.hasOwn(services, name)) { c.li.remove(); components.delete(name); }
    }
  }

  function addRow(name) {
    const tr = el("tr");
    const td = (cls) => el("td", cls, tr);
    const rec = {
      name, tr, hist: null, stale: true, fetchedAt: 0, loading: false, dirty: false,
      runs: -1, failures: 0, attention: "", visible: false, painted: false, t: null, now: 0,
      nameCell: td("name"), interval: td("num"), state: el("span", "badge", td("")),
      runsCell: td("num"), failCell: td("num"), rowCell: td("num"), duration: td("num"),
      next: td("num"), chart: td(""), error: td("error"),
    };
    text(rec.nameCell, name);
    rec.nameCell.title = name;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    rec.title = svg.appendChild(document.createElementNS(SVG, "title"));
    for (const cls of ["base", "ok", "bad", "other"]) {
      const p = svg.appendChild(document.createElementNS(SVG, "path"));
      p.setAttribute("class", cls);
      rec[cls] = p;
    }
    rec.base.setAttribute("d", "M0 23.5h100v.5H0Z");
    rec.chart.appendChild(svg);
    rec.details = el("details", "", rec.error);
    rec.summary = el("summary", "", rec.details);
    rec.pre = el("pre", "", rec.details);
    rec.details.hidden = true;
    tr.rec = rec;
    rows.set(name, rec);
    observer.observe(tr);
    return rec;
  }

  // Off-screen rows only keep their data: writing 500 rows' text every second would make the
  // browser lay out the whole table each time. A row is painted when it scrolls into view.
  function update(rec, t, now) {
    let attention = t.stuck ? "stuck" : t.state !== "running" && t.overdue_by >= OVERDUE_AFTER
      ? "overdue" : "";
    if (!attention && t.consecutive_failures > 0) attention = "failing";
    if (attention !== rec.attention) {
      rec.attention = attention;
      rec.tr.className = attention ? "attention a-" + attention : "";
    }
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
          rec.hist.push({ started_at: start, duration: t.last_duration,
            outcome: t.failures > rec.failures ? "failure" : "success" });
          if (rec.hist.length > KEEP) rec.hist.shift();
          rec.dirty = true;
        }
      } else if (t.runs > 0) {
        rec.stale = true;
      }
      rec.runs = t.runs;
      rec.failures = t.failures;
      if (rec.dirty && rec.visible) draw(rec);
    }
  }

  function paint(rec) {
    const t = rec.t, now = rec.now;
    rec.painted = true;
    let state, cls;
    if (t.stuck) {
      state = "stuck, running " + whole(t.running_for); cls = "stuck";
    } else if (t.state === "running") {
      state = "running for " + whole(t.running_for || 0); cls = "busy";
    } else if (rec.attention === "overdue") {
      state = "overdue by " + whole(t.overdue_by); cls = "overdue";
    } else {
      state = "scheduled"; cls = "scheduled";
    }
    text(rec.state, state);
    if (rec.state.className !== "badge s-" + cls) rec.state.className = "badge s-" + cls;
    text(rec.interval, t.interval < 60 ? secs(t.interval) : compact(t.interval));
    text(rec.runsCell, String(t.runs));
    text(rec.failCell, String(t.failures));
    text(rec.rowCell, String(t.consecutive_failures));
    rec.rowCell.classList.toggle("fail", t.consecutive_failures > 0);
    text(rec.duration, secs(t.last_duration));
    let next = "–";
    if (t.state === "scheduled" && t.next_run_at != null) {
      const due = t.next_run_at - now;
      next = due > 0 ? "in " + compact(Math.ceil(due)) : "due";
    }
    text(rec.next, next);
    const error = t.last_error == null ? "" : String(t.last_error);
    show(rec.details, error !== "");
    text(rec.summary, error.split("\n", 1)[0]);
    text(rec.pre, error);
  }

  function draw(rec) {
    rec.dirty = false;
    const runs = rec.hist || [];
    let max = 0, failed = 0;
    for (const r of runs) max = Math.max(max, Number(r.duration) || 0);
    const d = { ok: "", bad: "", other: "" };
    const slot = 100 / Math.max(runs.length, 40);  // few runs: wider bars, newest on the right
    runs.forEach((r, i) => {
      const x = (100 - (runs.length - i) * slot).toFixed(2);
      const kind = r.outcome === "success" ? "ok" : r.outcome === "cancelled" ? "other" : "bad";
      if (kind === "bad") failed++;
      const h = kind === "bad" ? 24 : Math.max(1.5, (22 * (Number(r.duration) || 0)) / (max || 1));
      d[kind] += "M" + x + " " + (24 - h).toFixed(2) + "h" + (slot * 0.8).toFixed(2) + "V24H" + x + "Z";
    });
    for (const k in d) rec[k].setAttribute("d", d[k]);
    const sorted = runs.map((r) => Number(r.duration) || 0).sort((a, b) => a - b);
    text(rec.title, runs.length ? "Last " + runs.length + " runs: median " +
      secs(sorted[sorted.length >> 1]) + ", max " + secs(max) + ", " + failed + " failed" : "No runs yet");
  }

  function loadHistories() {
    const wanted = [];
    for (const rec of rows.values()) if (rec.visible && rec.stale && !rec.loading) wanted.push(rec);
    wanted.sort((a, b) => a.fetchedAt - b.fetchedAt);
    for (const rec of wanted.slice(0, HISTORY_PER_TICK)) loadHistory(rec);
  }

  async function loadHistory(rec) {
    rec.loading = true;
    rec.stale = false;
    rec.fetchedAt = performance.now();
    try {
      const res = await get("history?task=" + encodeURIComponent(rec.name));
      if (!res.ok) { rec.stale = res.status !== 404; return; }
      const doc = await res.json();
      const list = Object.hasOwn(doc, rec.name) ? doc[rec.name] : [];
      rec.hist = Array.isArray(list) ? list.slice(-KEEP) : [];
      rec.dirty = true;
      if (rec.visible) draw(rec);
    } catch (err) {
      rec.stale = true;
    } finally {
      rec.loading = false;
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
    const rank = { stuck: 0, failing: 1, overdue: 2, "": 3 };
    const recs = [...rows.values()];
    recs.sort((a, b) => (attentionFirst ? rank[a.attention] - rank[b.attention] : 0) || a.index - b.index);
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
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem(KEY, token);
    $("token").value = "";
    $("login").hidden = true;
    tick();
  });
  tick();
})();
