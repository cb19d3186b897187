// The dashboard page's script: renders the snapshots this node streams on
// /dashboard/events (Server-Sent Events, 2.5 a second), and runs the controls
// through this node's /dashboard/* routes (a browser cannot call the other
// nodes' ports itself). When the cluster has an admin or client token, it asks
// once, keeps it in sessionStorage and sends it as Authorization: Bearer.
// The DOM is built once per region and node and then updated in place, so a
// button is never replaced under the pointer. Text goes in as textContent only.
"use strict";

(() => {
  const COLORS = ["#2f6fdb", "#d64545", "#1f9d55", "#c77700", "#8e44ad", "#16a2b8"];
  /** How long a write is watched for its arrival in every region. */
  const WATCH_MS = 120000;
  const WATCH_EVERY_MS = 250;
  const TOAST_MS = 8000;
  const TOKEN_KEYS = { admin: "geokv.adminToken", client: "geokv.clientToken" };

  const $ = (sel) => document.querySelector(sel);
  /** The latest snapshot. */
  let view = null;
  let updates = 0;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  function clock(ms) {
    const d = new Date(ms);
    const p = (n, w = 2) => String(n).padStart(w, "0");
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  /** "000001763812345678-00003" -> its wall-clock milliseconds. */
  const hlcMs = (hlc) => Number(String(hlc).slice(0, 15));
  const versionText = (v) => (v ? `${v.node} @ ${clock(hlcMs(v.hlc))}` : "");
  const sameVersion = (a, b) => Boolean(a && b && a.hlc === b.hlc && a.node === b.node);

  let toastTimer;

  /** Says what a control did, for a while. */
  function toast(text, isError) {
    const t = $("#toast");
    t.textContent = text;
    t.classList.toggle("error", Boolean(isError));
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      t.textContent = "";
    }, TOAST_MS);
  }

  // ---- tokens and calls ------------------------------------------------------

  /** The token a call of `kind` needs: undefined when the cluster needs none, null when the user declined. */
  function tokenFor(kind, askAgain) {
    if (!view || !view.auth[kind]) return undefined;
    let t = askAgain ? null : sessionStorage.getItem(TOKEN_KEYS[kind]);
    if (t === null) {
      t = window.prompt(`This cluster needs its ${kind} token (GEOKV_${kind.toUpperCase()}_TOKEN) for this:`);
      if (!t) return null;
      sessionStorage.setItem(TOKEN_KEYS[kind], t);
    }
    return t;
  }

  /** One call to this node; asks for the token again once when it is refused. */
  async function api(method, path, body, kind) {
    for (let attempt = 0; ; attempt++) {
      const headers = {};
      const t = kind ? tokenFor(kind, attempt > 0) : undefined;
      if (t === null) throw new Error(`this needs the ${kind} token`);
      if (t !== undefined) headers.authorization = `Bearer ${t}`;
      if (body !== undefined) headers["content-type"] = "application/json";
      const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      if ((res.status === 401 || res.status === 403) && kind && attempt === 0) {
        sessionStorage.removeItem(TOKEN_KEYS[kind]);
        continue;
      }
      const data = await res.json().catch(() => null);
      return { status: res.status, ok: res.ok, data };
    }
  }

  const errorText = (r) => (r.data && r.data.error ? `${r.data.error.code}: ${r.data.error.message}` : `HTTP ${r.status}`);

  // ---- regions and nodes -------------------------------------------------------

  const cards = new Map();

  function buildCard(region) {
    const rows = new Map();
    const tbody = el("tbody");
    for (const n of region.nodes) {
      const cells = {
        id: el("td", {}, el("a", { href: `${n.url}/`, text: n.id, title: `${n.id}'s own dashboard` })),
        role: el("span", { class: "role" }),
        epoch: el("td", { class: "num" }),
        leader: el("td"),
        link: el("td", { class: "link" }),
        lagOps: el("td", { class: "num" }),
        lagMs: el("td", { class: "num" }),
        contact: el("td", { class: "num" }),
      };
      const tr = el("tr", { "data-node": n.id }, cells.id, el("td", {}, cells.role), cells.epoch, cells.leader, cells.link, cells.lagOps, cells.lagMs, cells.contact);
      tbody.append(tr);
      rows.set(n.id, { tr, cells });
    }
    const leader = el("b");
    const meta = el("span", { class: "meta" });
    const state = el("span", { class: "link" });
    const card = el(
      "article",
      { class: "region", "data-region": region.region },
      el("div", { class: "head" }, el("h3", { text: region.region }), meta, state),
      el(
        "div",
        { class: "controls" },
        el("button", { class: "danger", "data-action": "cut", text: `Cut ${region.region} off` }),
        el("button", { "data-action": "heal", text: "Heal" }),
        el("button", { "data-action": "stepdown", text: "Step down its leader" }),
      ),
      el(
        "table",
        { class: "grid nodes" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...[
              ["node", ""],
              ["role", "the role it last claimed"],
              ["epoch", ""],
              ["leader", "who it says leads its region"],
              ["link", "the link from this node"],
              ["lag ops", "ops this node has that it lacks"],
              ["lag ms", "how long the oldest op it lacks has waited"],
              ["heard", "ms since this node last heard from it"],
            ].map(([h, title]) => el("th", { text: h, title })),
          ),
        ),
        tbody,
      ),
    );
    $("#regions").append(card);
    return { card, rows, leader, meta, state };
  }

  function renderRegions(v) {
    for (const r of v.regions) {
      const c = cards.get(r.region) || cards.set(r.region, buildCard(r)).get(r.region);
      let leaders = 0;
      const peers = [];
      for (const n of r.nodes) {
        const row = c.rows.get(n.id);
        if (!row) continue;
        if (n.role === "leader") leaders++;
        if (n.link !== "self") peers.push(n);
        row.tr.dataset.role = n.role;
        row.tr.dataset.link = n.link;
        row.tr.className = n.link;
        row.cells.role.textContent = n.role;
        row.cells.role.className = `role ${n.role}`;
        row.cells.epoch.textContent = String(n.epoch);
        row.cells.leader.textContent = n.leader || "—";
        row.cells.link.textContent = n.link;
        row.cells.link.className = `link ${n.link}`;
        row.cells.lagOps.textContent = n.lagOps === null ? "" : String(n.lagOps);
        row.cells.lagMs.textContent = n.lagMs === null ? (n.link === "self" ? "" : "?") : String(n.lagMs);
        row.cells.contact.textContent = n.lastContactMs === null ? "" : String(n.lastContactMs);
      }
      // Cut off, as this node sees it: no link to any node of that region (or, for
      // this node's own region, to any node of the others).
      const mine = r.region === v.region;
      const links = mine ? v.regions.filter((x) => x.region !== v.region).flatMap((x) => x.nodes) : peers;
      const up = links.filter((n) => n.link === "up").length;
      const cut = links.length > 0 && up === 0;
      c.card.dataset.leaderCount = String(leaders);
      c.card.dataset.leader = r.leader || "";
      c.card.dataset.links = cut ? "down" : up === links.length ? "up" : "partial";
      c.card.classList.toggle("cut", cut);
      c.meta.textContent = `leader ${r.leader || "none"} · epoch ${r.epoch} · failover ${r.failover}${mine ? " · this node's region" : ""}`;
      c.state.textContent = cut ? (mine ? "cut off from the other regions" : "cut off: no link") : up === links.length ? "" : `${up}/${links.length} links up`;
      c.state.className = `link ${cut ? "down" : "up"}`;
    }
  }

  // ---- write rate chart ----------------------------------------------------------

  let plot = null;

  function renderChart(rate) {
    const regions = Object.keys(rate.regions);
    if (regions.length === 0) return;
    const first = rate.regions[regions[0]];
    const xs = first.map((_, i) => rate.fromS + i);
    const data = [xs, ...regions.map((r) => rate.regions[r])];
    if (plot === null) {
      const box = $("#chart");
      plot = new uPlot(
        {
          width: Math.max(300, box.clientWidth),
          height: 200,
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, Math.ceil(max * 1.1))] } },
          axes: [{}, { label: "writes/s", size: 50 }],
          legend: { live: false },
          series: [{}, ...regions.map((r, i) => ({ label: r, stroke: COLORS[i % COLORS.length], width: 2, points: { show: false } }))],
        },
        data,
        box,
      );
      new ResizeObserver(() => plot.setSize({ width: Math.max(300, box.clientWidth), height: 200 })).observe(box);
    } else {
      plot.setData(data);
    }
  }

  // ---- conflicts and role changes ---------------------------------------------------

  let conflictsSeen;

  async function refreshConflicts() {
    const r = await api("GET", "/conflicts?limit=20", undefined, "client");
    const tbody = $("#conflicts tbody");
    tbody.replaceChildren();
    const items = r.ok && r.data ? r.data.items : [];
    if (!r.ok) tbody.append(el("tr", {}, el("td", { colspan: "4", class: "empty", text: errorText(r) })));
    else if (items.length === 0) tbody.append(el("tr", {}, el("td", { colspan: "4", class: "empty", text: "none recorded" })));
    for (const c of items) {
      tbody.append(
        el(
          "tr",
          { "data-key": c.key, "data-winner": c.winner.node, "data-loser": c.loser.node },
          el("td", { class: "mono", text: c.key }),
          el("td", { text: versionText(c.winner) }),
          el("td", { text: versionText(c.loser) }),
          el("td", { text: clock(hlcMs(c.at)) }),
        ),
      );
    }
  }

  function maybeRefreshConflicts(v) {
    const seen = JSON.stringify(v.newestConflict);
    if (seen === conflictsSeen) return;
    conflictsSeen = seen;
    refreshConflicts().catch((err) => {
      conflictsSeen = undefined;
      toast(`conflicts: ${err.message}`, true);
    });
  }

  let rolesSeen = "";

  function renderRoleChanges(changes) {
    const seen = changes.length === 0 ? "" : `${changes.length}:${changes[0].atMs}`;
    if (seen === rolesSeen && seen !== "") return;
    rolesSeen = seen;
    const tbody = $("#role-changes tbody");
    tbody.replaceChildren();
    if (changes.length === 0) tbody.append(el("tr", {}, el("td", { colspan: "5", class: "empty", text: "none yet" })));
    for (const e of changes.slice(0, 12)) {
      tbody.append(
        el(
          "tr",
          { "data-role": e.role },
          el("td", { class: "mono", text: clock(e.atMs) }),
          el("td", {}, el("span", { class: `role ${e.role}`, text: e.role })),
          el("td", { text: e.leader || "—" }),
          el("td", { class: "num", text: String(e.epoch) }),
          el("td", { class: "reason", text: e.reason }),
        ),
      );
    }
  }

  // ---- the snapshot -------------------------------------------------------------------

  function render(v) {
    view = v;
    updates++;
    document.body.dataset.updates = String(updates);
    document.body.dataset.node = v.node;
    const self = v.regions.find((r) => r.region === v.region);
    const me = self && self.nodes.find((n) => n.id === v.node);
    $("#viewpoint").textContent = `the cluster as ${v.node} (${v.region}) sees it${me ? ` · ${v.node} is ${me.role}, epoch ${me.epoch}` : ""}`;
    $("#live").textContent = `live · ${clock(v.atMs)}`;
    $("#faults").textContent = v.faults.blocked.length > 0 ? `this node blocks: ${v.faults.blocked.join(", ")}` : "";
    renderRegions(v);
    renderChart(v.writeRate);
    renderRoleChanges(v.roleChanges);
    maybeRefreshConflicts(v);
  }

  function connect() {
    const es = new EventSource("/dashboard/events");
    const live = $("#live");
    es.onopen = () => {
      live.className = "live on";
    };
    es.onmessage = (e) => {
      live.className = "live on";
      render(JSON.parse(e.data));
    };
    // The browser reconnects by itself (the stream asks for a retry after 1 s).
    es.onerror = () => {
      live.className = "live off";
      live.textContent = "reconnecting…";
    };
  }

  // ---- controls ------------------------------------------------------------------------

  $("#regions").addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    const card = button && button.closest("[data-region]");
    if (!card) return;
    const region = card.dataset.region;
    const action = button.dataset.action;
    button.disabled = true;
    try {
      if (action === "stepdown") {
        const r = await api("POST", "/dashboard/stepdown", { region }, "admin");
        toast(r.ok ? `${region}: ${r.data.steppedDown} stepped down; the region elects another leader` : `${region}: stepdown refused: ${errorText(r)}`, !r.ok);
      } else {
        const r = await api("POST", "/dashboard/partition", { region, action }, "admin");
        if (!r.ok) return toast(`${region}: ${errorText(r)}`, true);
        const failed = r.data.nodes.filter((n) => !n.ok).map((n) => `${n.node} (${n.error || `HTTP ${n.status}`})`);
        const done = action === "cut" ? `${region} cut off from the other regions` : `${region} healed`;
        toast(failed.length === 0 ? done : `${done}, except on ${failed.join(", ")}`, failed.length > 0);
      }
    } catch (err) {
      toast(`${region}: ${err.message}`, true);
    } finally {
      button.disabled = false;
    }
  });

  let watch = 0;

  $("#write-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("#write-key").value;
    const text = $("#write-value").value;
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    const status = $("#write-status");
    status.className = "status";
    status.textContent = `writing ${key}…`;
    const mine = ++watch;
    let r;
    try {
      r = await api("PUT", `/kv/${encodeURIComponent(key)}`, value, "client");
    } catch (err) {
      status.className = "status error";
      status.textContent = err.message;
      return;
    }
    if (!r.ok) {
      status.className = "status error";
      status.textContent = `not written: ${errorText(r)}`;
      return;
    }
    const version = r.data.version;
    const started = performance.now();
    status.textContent = `written through ${view ? view.node : "this node"} as ${versionText(version)}; watching every region…`;
    status.dataset.key = key;
    const arrived = new Map();
    while (mine === watch && performance.now() - started < WATCH_MS) {
      const a = await api("GET", `/dashboard/key/${encodeURIComponent(key)}`, undefined, "client").catch(() => null);
      if (mine !== watch) return;
      if (a && a.ok) renderArrivals(a.data.regions, version, arrived, started);
      const all = a && a.ok && a.data.regions.every((x) => x.ok && x.body && sameVersion(x.body.version, a.data.regions[0].body.version));
      if (all) {
        const winner = a.data.regions[0].body.version;
        status.textContent = sameVersion(winner, version) ? `${key} arrived in every region` : `every region holds ${key} as ${versionText(winner)}: a concurrent write won`;
        return;
      }
      await new Promise((done) => setTimeout(done, WATCH_EVERY_MS));
    }
  });

  function renderArrivals(regions, version, arrived, started) {
    const tbody = $("#arrivals tbody");
    tbody.replaceChildren();
    for (const x of regions) {
      let state;
      let text;
      if (x.ok && sameVersion(x.body.version, version)) {
        if (!arrived.has(x.region)) arrived.set(x.region, Math.round(performance.now() - started));
        state = "arrived";
        text = `arrived (${arrived.get(x.region)} ms)`;
      } else if (x.ok) {
        state = "other";
        text = `holds another version: ${versionText(x.body.version)}`;
      } else if (x.status === 404) {
        state = "missing";
        text = "not there yet";
      } else {
        state = "error";
        text = x.error || (x.body && x.body.error ? x.body.error.message : `HTTP ${x.status}`);
      }
      tbody.append(el("tr", { "data-region": x.region, "data-state": state }, el("td", { text: x.region }), el("td", { text: x.node || "" }), el("td", { class: state === "arrived" ? "arrived" : state === "other" ? "other" : "", text })));
    }
  }

  connect();
})();
