/* BOS dashboard (docs/dashboard.md): plain JavaScript, no build step, nothing from the network.
 *
 * Pages (hash routes): #/ sessions, #/session/NAME a session, #/components components.
 * Data comes from the public API (v2) and two dashboard helpers: the session snapshot
 * and server-sent events (dashboard/api/events), which carry only what changed.
 * The tenant is taken from ?tenant= and sent with every request as the Cray-Tenant-Name header.
 * With auth on (docs/auth.md) the page asks for a bearer token, keeps it in this tab's
 * sessionStorage (never in a URL, a cookie or the server's logs) and sends it as an
 * Authorization header. EventSource cannot send headers, so the event stream is read with
 * fetch() and a ReadableStream.
 */
"use strict";
(function () {
  const TENANT = new URLSearchParams(location.search).get("tenant") || "";
  const BASE = location.pathname.replace(/dashboard\/?$/, "");  // "/" or "/apis/bos/"
  const STATUSES = ["power_off_pending", "power_off_gracefully_called", "power_off_forcefully_called",
    "power_on_pending", "power_on_called", "configuring", "on_hold", "stable", "failed"];
  const COLORS = {
    power_off_pending: "#f6c26b", power_off_gracefully_called: "#f39c34", power_off_forcefully_called: "#c2561a",
    power_on_pending: "#93c5fd", power_on_called: "#2f7fd8", configuring: "#9b6ad6", on_hold: "#9aa0a6",
    stable: "#2fa84f", failed: "#d93b3b",
  };
  const GROUPS = [
    ["powering off", "#f39c34", ["power_off_pending", "power_off_gracefully_called", "power_off_forcefully_called"]],
    ["powering on", "#2f7fd8", ["power_on_pending", "power_on_called"]],
    ["configuring", "#9b6ad6", ["configuring"]],
    ["on hold", "#9aa0a6", ["on_hold"]],
    ["stable", "#2fa84f", ["stable"]],
    ["failed", "#d93b3b", ["failed"]],
  ];
  const XNAME = /^x(\d+)c(\d+)s(\d+)b(\d+)n(\d+)$/;
  const main = document.getElementById("main");
  const TOKEN_KEY = "bos-dashboard-token";
  let live = null;        // the open event stream ({close()})
  let timers = [];        // page timers, cleared on navigation

  // ---------------------------------------------------------------- helpers
  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"})[c]);
  }
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (err) { return ""; }
  }
  function headers(accept) {
    const out = {Accept: accept};
    if (TENANT) out["Cray-Tenant-Name"] = TENANT;
    const bearer = token();
    if (bearer) out.Authorization = "Bearer " + bearer;
    return out;
  }
  function askToken(detail) {  // a 401: show the sign-in form (the token never goes into the URL)
    const form = document.getElementById("signin");
    document.getElementById("signin-why").textContent = detail || "This BOS needs a bearer token.";
    form.hidden = false;
    document.getElementById("signin-token").focus();
  }
  document.getElementById("signin").onsubmit = (e) => {
    e.preventDefault();
    const input = document.getElementById("signin-token");
    const value = input.value.trim().replace(/^Bearer\s+/i, "");
    input.value = "";
    if (!value) return;
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (err) { /* private mode: this page only */ }
    document.getElementById("signin").hidden = true;
    document.getElementById("signout").hidden = false;
    route();
  };
  document.getElementById("signout").onclick = () => {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (err) { /* nothing stored */ }
    document.getElementById("signout").hidden = true;
    route();
  };
  function banner(text) {
    const el = document.getElementById("banner");
    el.textContent = text || "";
    el.hidden = !text;
  }
  async function api(path) {
    const resp = await fetch(BASE + path, {headers: headers("application/json")});
    const body = await resp.json().catch(() => null);
    const detail = (body && (body.detail || body.title)) || ("HTTP " + resp.status);
    if (resp.status === 401) askToken(detail);
    if (!resp.ok) throw new Error(detail);
    return body;
  }
  async function tryApi(path) {
    try { banner(""); return await api(path); } catch (err) { banner(path + ": " + err.message); return null; }
  }
  function age(start) {
    if (!start) return "";
    const s = Math.max(0, (Date.now() - Date.parse(start.endsWith("Z") ? start : start + "Z")) / 1000);
    if (s < 90) return Math.round(s) + "s";
    if (s < 5400) return Math.round(s / 60) + "m";
    if (s < 172800) return Math.round(s / 3600) + "h";
    return Math.round(s / 86400) + "d";
  }
  function setLive(state) {
    const el = document.getElementById("live");
    el.className = "live " + (state === "live" ? "on" : "off");
    el.textContent = state;
  }
  function every(ms, fn) { timers.push(setInterval(fn, ms)); }
  function throttled(ms, fn) {
    let pending = null;
    return function () {
      if (pending) return;
      pending = setTimeout(() => { pending = null; fn(); }, ms);
      timers.push(pending);
    };
  }
  function stopPage() {
    if (live) { live.close(); live = null; }
    timers.forEach((t) => { clearInterval(t); clearTimeout(t); });
    timers = [];
    setLive("offline");
  }
  // Server-sent events over fetch(): the same text/event-stream, read with a ReadableStream so the
  // request carries the Authorization and tenant headers. Reconnects (with a fresh snapshot) when
  // the stream ends, as EventSource would; stops on a 401 and asks for a token.
  function openEvents(query, handlers) {
    const abort = new AbortController();
    let closed = false;
    live = {close() { closed = true; abort.abort(); }};
    function dispatch(block) {
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length && handlers[event]) handlers[event](JSON.parse(data.join("\n")));
    }
    async function follow() {
      const resp = await fetch(BASE + "dashboard/api/events" + query,
        {headers: headers("text/event-stream"), signal: abort.signal, cache: "no-store"});
      if (resp.status === 401) {
        const body = await resp.json().catch(() => null);
        askToken(body && body.detail);
        return false;
      }
      if (!resp.ok || !resp.body) {
        const body = await resp.json().catch(() => null);
        banner("live updates: " + ((body && (body.detail || body.title)) || "HTTP " + resp.status));
        return true;
      }
      setLive("live");
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) return true;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    }
    (async () => {
      while (!closed) {
        let again = true;
        try { again = await follow(); } catch (err) { again = !closed; }
        if (closed || !again) return;
        setLive("reconnecting");
        await new Promise((resolve) => setTimeout(resolve, 1000 + Math.random() * 1000));
      }
    })();
  }
  function progressBar(status) {
    const ok = status ? status.percent_successful || 0 : 0;
    const bad = status ? status.percent_failed || 0 : 0;
    return `<div class="bar" title="${ok}% successful, ${bad}% failed"><span class="ok" style="width:${ok}%"></span>` +
      `<span class="bad" style="left:${ok}%;width:${bad}%"></span></div>`;
  }

  // ---------------------------------------------------------------- history drawer
  async function showHistory(id) {
    const drawer = document.getElementById("drawer");
    const body = document.getElementById("drawer-body");
    drawer.hidden = false;
    body.innerHTML = `<h2>${esc(id)}</h2><p class="muted">loading…</p>`;
    const [component, entries] = await Promise.all([
      tryApi("v2/components/" + encodeURIComponent(id)),
      tryApi("v2/components/" + encodeURIComponent(id) + "/history?page_size=1000")]);
    const now = component ? `<p>status <b>${esc(component.status.status)}</b>, phase ${esc(component.status.phase || "-")},
      session ${esc(component.session || "-")}, enabled ${esc(component.enabled)}
      ${component.error ? `<br><span class="err">${esc(component.error)}</span>` : ""}</p>` : "";
    const rows = (entries || []).map((e) => `<tr><td>${esc(e.time.replace("T", " ").replace("Z", ""))}</td>
      <td><i style="display:inline-block;width:9px;height:9px;background:${COLORS[e.status] || "#ccc"}"></i> ${esc(e.status)}</td>
      <td>${esc(e.phase)}</td><td>${esc(e.last_action)}${e.last_action_failed ? " (failed)" : ""}</td>
      <td>${esc(e.session)}</td><td>${esc(e.reason)}${e.error ? `<br><span class="err">${esc(e.error)}</span>` : ""}</td></tr>`);
    body.innerHTML = `<h2>${esc(id)}</h2>${now}<h3>History (${rows.length} changes, oldest first)</h3>
      <table id="history"><thead><tr><th>time (UTC)</th><th>status</th><th>phase</th><th>last action</th><th>session</th>
      <th>reason</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
  }
  document.getElementById("drawer-close").onclick = () => { document.getElementById("drawer").hidden = true; };

  // ---------------------------------------------------------------- sessions page
  function sessionsPage() {
    main.innerHTML = `<h2>Sessions</h2>
      <form class="filters" id="filters"><label>status<select name="status"><option value="">any</option>
      <option>pending</option><option>running</option><option>complete</option></select></label>
      <label>started within<select name="max_age"><option value="">any time</option><option>1h</option>
      <option>1d</option><option>1w</option></select></label></form>
      <table id="sessions"><thead><tr><th>name</th><th>status</th><th>operation</th><th>template</th><th>progress</th>
      <th class="num">nodes</th><th class="num">failed</th><th>started</th><th>age</th></tr></thead><tbody></tbody></table>`;
    const form = document.getElementById("filters");
    const statuses = {};
    async function load() {
      const q = new URLSearchParams();
      if (form.status.value) q.set("status", form.status.value);
      if (form.max_age.value) q.set("max_age", form.max_age.value);
      const sessions = await tryApi("v2/sessions" + (q.toString() ? "?" + q : ""));
      if (!sessions) return;
      sessions.sort((a, b) => String(b.status.start_time).localeCompare(String(a.status.start_time)));
      await Promise.all(sessions.map(async (s) => {
        if (!statuses[s.name] || s.status.status !== "complete" || statuses[s.name].status !== "complete") {
          statuses[s.name] = await api("v2/sessions/" + encodeURIComponent(s.name) + "/status").catch(() => null);
        }
      }));
      document.querySelector("#sessions tbody").innerHTML = sessions.map((s) => {
        const st = statuses[s.name];
        const total = st ? st.managed_components_count : 0;
        const failed = st ? Math.round(total * st.percent_failed / 100) : 0;
        return `<tr data-session="${esc(s.name)}"><td><a href="#/session/${encodeURIComponent(s.name)}${""}">${esc(s.name)}</a></td>
          <td><span class="badge ${esc(s.status.status)}">${esc(s.status.status)}</span></td>
          <td>${esc(s.operation)}</td><td>${esc(s.template_name)}</td>
          <td>${progressBar(st)} <span class="muted">${st ? st.phases.percent_complete : 0}%</span></td>
          <td class="num">${total}</td><td class="num ${failed ? "err" : ""}">${failed}</td>
          <td>${esc((s.status.start_time || "").replace("T", " "))}</td><td>${age(s.status.start_time)}</td></tr>`;
      }).join("") || `<tr><td colspan="9" class="muted">no sessions</td></tr>`;
    }
    form.onchange = load;
    const reload = throttled(1000, load);
    openEvents("", {session: reload, components: reload});
    every(30000, load);  // ages
    load();
  }

  // ---------------------------------------------------------------- session page
  function sessionPage(name) {
    main.innerHTML = `<h2>Session ${esc(name)} <span id="s-status" class="badge"></span></h2>
      <div class="card"><div id="s-meta" class="muted"></div><div class="stats" id="s-stats"></div>
      <div id="s-errors"></div></div>
      <div class="card"><h3>Progress</h3><canvas id="plot" height="170"></canvas><div class="legend" id="plot-legend"></div></div>
      <div class="card"><h3>Machine view <span class="muted" id="m-summary"></span></h3>
      <div class="legend" id="m-legend"></div><canvas id="machine"></canvas></div>
      <div class="card"><h3>Failed nodes <span class="muted" id="f-count"></span></h3>
      <div id="retry"></div><table id="failed"><thead><tr><th>node</th><th>status</th><th>last action</th>
      <th class="num">attempts</th><th>error</th></tr></thead><tbody></tbody></table></div>`;
    const nodes = new Map();    // id -> {s: status, e: has error, t: ms of the state}
    const samples = [];         // [ms, counts by group]
    const machine = document.getElementById("machine");
    const plot = document.getElementById("plot");
    let geometry = null;
    let session = null;

    document.getElementById("m-legend").innerHTML = STATUSES.map((s) => `<span><i style="background:${COLORS[s]}"></i>${s}</span>`).join("");
    document.getElementById("plot-legend").innerHTML = GROUPS.map(([g, c]) => `<span><i style="background:${c}"></i>${g}</span>`).join("");

    function counts() {
      const out = {};
      for (const n of nodes.values()) out[n.s] = (out[n.s] || 0) + 1;
      return out;
    }
    function publish() {
      const c = counts();
      machine.dataset.counts = JSON.stringify(c);
      machine.dataset.total = String(nodes.size);
      const done = (c.stable || 0) + (c.failed || 0);
      document.getElementById("m-summary").textContent = `${nodes.size} nodes, ${done} done, ${c.failed || 0} failed`;
      const byGroup = GROUPS.map(([, , members]) => members.reduce((sum, s) => sum + (c[s] || 0), 0));
      const last = samples[samples.length - 1];
      const now = Date.now();
      if (last && now - last[0] < 500) samples[samples.length - 1] = [last[0], byGroup];
      else samples.push([now, byGroup]);
      if (samples.length > 3000) samples.splice(0, samples.length - 3000);
      drawPlot();
    }

    // -- machine view: cabinet -> chassis -> slot from the xname, drawn on a canvas --
    function layout() {
      const cabinets = new Map();
      const others = [];
      for (const id of nodes.keys()) {
        const m = XNAME.exec(id);
        if (!m) { others.push(id); continue; }
        const cab = +m[1], ch = +m[2], sl = +m[3];
        if (!cabinets.has(cab)) cabinets.set(cab, new Map());
        const chassis = cabinets.get(cab);
        if (!chassis.has(ch)) chassis.set(ch, new Map());
        const slots = chassis.get(ch);
        if (!slots.has(sl)) slots.set(sl, []);
        slots.get(sl).push([+m[4], +m[5], id]);
      }
      let maxCh = 1, maxSl = 1, maxPer = 1;
      const cabs = [...cabinets.keys()].sort((a, b) => a - b).map((cab) => {
        const chassis = cabinets.get(cab);
        maxCh = Math.max(maxCh, chassis.size);
        return {name: "x" + cab, chassis: [...chassis.keys()].sort((a, b) => a - b).map((ch) => {
          const slots = chassis.get(ch);
          maxSl = Math.max(maxSl, slots.size);
          return [...slots.keys()].sort((a, b) => a - b).map((sl) => {
            const list = slots.get(sl).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
            maxPer = Math.max(maxPer, list.length);
            return list;
          });
        })};
      });
      if (others.length) {  // not xnames: one extra block, 16 to a row
        others.sort();
        const rows = [];
        for (let i = 0; i < others.length; i += 16) rows.push(others.slice(i, i + 16).map((id) => [id]));
        cabs.push({name: "other", chassis: rows});
        maxCh = Math.max(maxCh, rows.length);
        maxSl = Math.max(maxSl, 16);
      }
      const k = Math.ceil(Math.sqrt(maxPer));
      const width = Math.max(600, machine.parentElement.clientWidth - 30);
      let cell = 12, g = null;
      for (; cell >= 1; cell--) {
        g = shape(cell, k, maxCh, maxSl, cabs.length, width);
        if (g.height <= Math.max(360, window.innerHeight * 0.55) || cell === 1) break;
      }
      g.cabs = cabs;
      machine.width = width;
      machine.height = g.height;
      geometry = g;
    }
    function shape(cell, k, maxCh, maxSl, count, width) {
      const slotW = k * cell + Math.max(1, cell >> 1), rowH = k * cell + Math.max(1, cell >> 1);
      const label = cell >= 2 ? 12 : 0, pad = 4;
      const cabW = maxSl * slotW + 2 * pad + 4, cabH = label + maxCh * rowH + 2 * pad + 4;
      const perRow = Math.max(1, Math.floor(width / cabW));
      return {cell, k, slotW, rowH, label, pad, cabW, cabH, perRow, height: Math.ceil(count / perRow) * cabH};
    }
    function origin(ci) {
      const g = geometry;
      return [(ci % g.perRow) * g.cabW, Math.floor(ci / g.perRow) * g.cabH];
    }
    function cellAt(ci, ch, sl, p) {
      const g = geometry, [x0, y0] = origin(ci);
      return [x0 + g.pad + sl * g.slotW + (p % g.k) * g.cell, y0 + g.label + g.pad + ch * g.rowH + Math.floor(p / g.k) * g.cell];
    }
    function drawAll() {
      const g = geometry, ctx = machine.getContext("2d");
      ctx.clearRect(0, 0, machine.width, machine.height);
      ctx.font = "10px system-ui, sans-serif";
      g.where = new Map();
      g.cabs.forEach((cab, ci) => {
        const [x0, y0] = origin(ci);
        ctx.strokeStyle = "#d1d5db";
        ctx.strokeRect(x0 + 0.5, y0 + g.label + 0.5, g.cabW - 4, g.cabH - g.label - 4);
        if (g.label) { ctx.fillStyle = "#6b7280"; ctx.fillText(cab.name, x0 + 2, y0 + 9); }
        cab.chassis.forEach((slots, ch) => slots.forEach((list, sl) => list.forEach((id, p) => {
          g.where.set(id, [ci, ch, sl, p]);
        })));
      });
      for (const id of g.where.keys()) drawCell(ctx, id);
    }
    function drawCell(ctx, id) {
      const g = geometry, at = g.where.get(id), node = nodes.get(id);
      if (!at || !node) return;
      const [x, y] = cellAt(...at);
      const size = g.cell > 3 ? g.cell - 1 : g.cell;
      ctx.fillStyle = COLORS[node.s] || "#ccc";
      ctx.fillRect(x, y, size, size);
      if (node.e && node.s !== "failed" && g.cell >= 4) { ctx.fillStyle = "#7f1d1d"; ctx.fillRect(x, y, 2, 2); }
    }
    function nodeAt(px, py) {
      const g = geometry;
      if (!g) return null;
      const ci = Math.floor(py / g.cabH) * g.perRow + Math.floor(px / g.cabW);
      const cab = g.cabs[ci];
      if (!cab || Math.floor(px / g.cabW) >= g.perRow) return null;
      const [x0, y0] = origin(ci);
      const lx = px - x0 - g.pad, ly = py - y0 - g.label - g.pad;
      const ch = Math.floor(ly / g.rowH), sl = Math.floor(lx / g.slotW);
      const slots = cab.chassis[ch];
      const list = slots && slots[sl];
      if (!list) return null;
      const col = Math.floor((lx - sl * g.slotW) / g.cell), row = Math.floor((ly - ch * g.rowH) / g.cell);
      if (col >= g.k || row >= g.k) return null;
      return list[row * g.k + col] || null;
    }
    const tooltip = document.getElementById("tooltip");
    machine.onmousemove = (e) => {
      const r = machine.getBoundingClientRect();
      const id = nodeAt(e.clientX - r.left, e.clientY - r.top);
      if (!id) { tooltip.hidden = true; return; }
      const n = nodes.get(id);
      tooltip.textContent = `${id}\n${n.s}${n.e ? " (error)" : ""}\nclick for its history`;
      tooltip.style.left = (e.clientX + 14) + "px";
      tooltip.style.top = (e.clientY + 10) + "px";
      tooltip.hidden = false;
    };
    machine.onmouseleave = () => { tooltip.hidden = true; };
    machine.onclick = (e) => {
      const r = machine.getBoundingClientRect();
      const id = nodeAt(e.clientX - r.left, e.clientY - r.top);
      if (id) showHistory(id);
    };

    // -- progress over time --
    function drawPlot() {
      plot.width = Math.max(600, plot.parentElement.clientWidth - 30);
      const ctx = plot.getContext("2d"), W = plot.width, H = plot.height, left = 40, bottom = 18;
      ctx.clearRect(0, 0, W, H);
      const total = Math.max(1, nodes.size);
      ctx.strokeStyle = "#e5e7eb"; ctx.fillStyle = "#6b7280"; ctx.font = "10px system-ui, sans-serif";
      for (const f of [0, 0.5, 1]) {
        const y = (H - bottom) * (1 - f) + 0.5;
        ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(W, y); ctx.stroke();
        ctx.fillText(String(Math.round(total * f)), 2, Math.max(9, y + 3));
      }
      if (!samples.length) return;
      const t0 = samples[0][0], span = Math.max(1000, samples[samples.length - 1][0] - t0);
      ctx.fillText("0s", left, H - 4);
      ctx.fillText(Math.round(span / 1000) + "s", W - 30, H - 4);
      GROUPS.forEach(([, color], gi) => {
        ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
        samples.forEach(([t, values], i) => {
          const x = left + (W - left - 4) * (t - t0) / span, y = (H - bottom) * (1 - values[gi] / total);
          if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
        });
        ctx.stroke(); ctx.lineWidth = 1;
      });
    }

    // -- extended status, failed nodes --
    async function refreshStatus() {
      const [record, status] = await Promise.all([
        tryApi("v2/sessions/" + encodeURIComponent(name)), tryApi("v2/sessions/" + encodeURIComponent(name) + "/status")]);
      if (!record || !status) return;
      session = record;
      const badge = document.getElementById("s-status");
      badge.textContent = record.status.status;
      badge.className = "badge " + record.status.status;
      document.getElementById("s-meta").innerHTML = `operation <b>${esc(record.operation)}</b> · template
        <b>${esc(record.template_name)}</b> · limit ${esc(record.limit || "none")} · started
        ${esc((record.status.start_time || "").replace("T", " "))} · duration ${esc(status.timing.duration)}
        ${record.status.error ? `<br><span class="err">${esc(record.status.error)}</span>` : ""}`;
      const p = status.phases;
      const stats = [["managed", status.managed_components_count], ["complete", p.percent_complete + "%"],
        ["successful", status.percent_successful + "%"], ["failed", status.percent_failed + "%"],
        ["powering off", p.percent_powering_off + "%"], ["powering on", p.percent_powering_on + "%"],
        ["configuring", p.percent_configuring + "%"], ["staged", status.percent_staged + "%"]];
      document.getElementById("s-stats").innerHTML = stats.map(([k, v]) => `<div class="stat"><span class="muted">${k}</span><b>${esc(v)}</b></div>`).join("");
      const errors = Object.entries(status.error_summary || {});
      document.getElementById("s-errors").innerHTML = errors.length ? `<h3>Errors</h3><table><tbody>${errors.map(([text, e]) =>
        `<tr><td class="err">${esc(text)}</td><td class="num">${e.count}</td><td>${esc(e.list)}</td></tr>`).join("")}</tbody></table>` : "";
    }
    async function refreshFailed() {
      const failed = [...nodes.entries()].filter(([, n]) => n.s === "failed" || n.e).map(([id]) => id).sort();
      document.getElementById("f-count").textContent = failed.length ? `(${failed.length})` : "(none)";
      document.getElementById("retry").innerHTML = failed.length ? `<p>Retry the failed nodes of this session:</p>
        <pre class="cmd">bos sessions retry ${esc(name)}</pre>` : "";
      const shown = failed.slice(0, 200);
      const records = shown.length ? await tryApi("v2/components?ids=" + encodeURIComponent(shown.join(","))) : [];
      const rows = (records || []).map((c) => {
        const st = c.event_stats || {};
        const attempts = (st.power_on_attempts || 0) + (st.power_off_graceful_attempts || 0) + (st.power_off_forceful_attempts || 0);
        const action = c.last_action || {};
        return `<tr><td><a href="javascript:void 0" data-node="${esc(c.id)}">${esc(c.id)}</a></td><td>${esc(c.status.status)}</td>
          <td>${esc(action.action || "")}${action.failed ? " (failed)" : ""}</td><td class="num">${attempts}</td>
          <td class="err">${esc(c.error)}</td></tr>`;
      });
      if (failed.length > shown.length) rows.push(`<tr><td colspan="5" class="muted">… and ${failed.length - shown.length} more</td></tr>`);
      document.querySelector("#failed tbody").innerHTML = rows.join("");
    }
    document.getElementById("failed").onclick = (e) => {
      const id = e.target.dataset && e.target.dataset.node;
      if (id) { e.preventDefault(); showHistory(id); }
    };
    const failedLater = throttled(1500, refreshFailed);
    const statusLater = throttled(1000, refreshStatus);

    openEvents("?session=" + encodeURIComponent(name), {
      snapshot(d) {
        nodes.clear();
        for (const [status, ids] of Object.entries(d.statuses)) for (const id of ids) nodes.set(id, {s: status, e: false, t: d.t});
        for (const id of d.errors) if (nodes.has(id)) nodes.get(id).e = true;
        layout(); drawAll(); publish(); refreshStatus(); refreshFailed();
      },
      changes(d) {
        let relayout = false, failedMoved = false;
        const changed = [];
        for (const [id, owner, , status, error] of d.changes) {
          const cur = nodes.get(id);
          if (cur && cur.t > d.t) continue;  // older than what we show
          if (owner !== name) { if (cur) { nodes.delete(id); relayout = true; } continue; }
          if (!cur) { nodes.set(id, {s: status, e: error, t: d.t}); relayout = true; failedMoved = true; continue; }
          failedMoved = failedMoved || cur.s === "failed" || status === "failed" || cur.e !== error;
          cur.s = status; cur.e = error; cur.t = d.t;
          changed.push(id);
        }
        if (relayout) { layout(); drawAll(); } else { const ctx = machine.getContext("2d"); changed.forEach((id) => drawCell(ctx, id)); }
        publish();
        if (failedMoved) failedLater();
        statusLater();
      },
      session: statusLater,
    });
    every(1000, () => { if (session && session.status.status !== "complete") publish(); });  // the plot's time axis moves on
    window.onresize = throttled(300, () => { if (geometry) { layout(); drawAll(); drawPlot(); } });
  }

  // ---------------------------------------------------------------- components page
  function componentsPage() {
    main.innerHTML = `<h2>Components</h2>
      <form class="filters" id="cfilters"><label>ids<input name="ids" placeholder="x1000c0s0b0n0,…" size="30"></label>
      <label>session<input name="session" size="16"></label>
      <label>status<select name="status"><option value="">any</option>${STATUSES.map((s) => `<option>${s}</option>`).join("")}</select></label>
      <label>phase<select name="phase"><option value="">any</option><option>powering_on</option><option>powering_off</option>
      <option>configuring</option></select></label>
      <label>enabled<select name="enabled"><option value="">any</option><option>true</option><option>false</option></select></label>
      <label>page size<input name="page_size" value="100" size="5"></label><button>Search</button></form>
      <table id="components"><thead><tr><th>id</th><th>status</th><th>phase</th><th>enabled</th><th>session</th>
      <th>last action</th><th>error</th></tr></thead><tbody></tbody></table><p><button id="more" hidden>next page</button></p>`;
    const form = document.getElementById("cfilters");
    let after = null;
    async function search(next) {
      const q = new URLSearchParams();
      for (const key of ["ids", "session", "status", "phase", "enabled", "page_size"]) if (form[key].value.trim()) q.set(key, form[key].value.trim());
      if (next && after) q.set("start_after_id", after);
      const found = await tryApi("v2/components?" + q);
      if (!found) return;
      const html = found.map((c) => `<tr><td><a href="javascript:void 0" data-node="${esc(c.id)}">${esc(c.id)}</a></td>
        <td><i style="display:inline-block;width:9px;height:9px;background:${COLORS[c.status.status] || "#ccc"}"></i> ${esc(c.status.status)}</td>
        <td>${esc(c.status.phase)}</td><td>${esc(c.enabled)}</td><td>${esc(c.session)}</td>
        <td>${esc((c.last_action || {}).action || "")}</td><td class="err">${esc(c.error)}</td></tr>`).join("");
      const body = document.querySelector("#components tbody");
      body.innerHTML = (next ? body.innerHTML : "") + html;
      after = found.length ? found[found.length - 1].id : null;
      document.getElementById("more").hidden = !(found.length && found.length === +(form.page_size.value || 0));
    }
    form.onsubmit = (e) => { e.preventDefault(); search(false); };
    document.getElementById("more").onclick = () => search(true);
    document.getElementById("components").onclick = (e) => {
      const id = e.target.dataset && e.target.dataset.node;
      if (id) { e.preventDefault(); showHistory(id); }
    };
    search(false);
  }

  // ---------------------------------------------------------------- routing
  function route() {
    stopPage();
    banner("");
    document.getElementById("drawer").hidden = true;
    const hash = location.hash || "#/";
    document.getElementById("nav-components").className = hash.startsWith("#/components") ? "active" : "";
    document.getElementById("nav-sessions").className = hash.startsWith("#/components") ? "" : "active";
    if (hash.startsWith("#/session/")) sessionPage(decodeURIComponent(hash.slice("#/session/".length)));
    else if (hash.startsWith("#/components")) componentsPage();
    else sessionsPage();
  }
  document.getElementById("tenant").textContent = TENANT ? "tenant " + TENANT : "";
  document.getElementById("signout").hidden = !token();
  window.addEventListener("hashchange", route);
  route();
})();
