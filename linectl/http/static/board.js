/* The board: fragments and live values from /board/events (server-sent events).
 * `frag` events replace an element by id with HTML the server rendered once for
 * every browser of this language and role; `live` events carry a station's live
 * values (brake forces, emission readings, lamp results), drawn here, against the
 * limit bands where the page gives them (level 3: data-bands). When the stream
 * drops, or says nothing for three heartbeats (the server sends a `ping` each),
 * the board says how old its data is, greys it out and reconnects until it is
 * back; old values are never shown as live. A read-only page (the overview, the
 * wall screen) asks for the fragments without controls. */
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const board = document.getElementById("board");
  if (!board) return;
  const scale = parseFloat(board.dataset.scale || "1") || 1;
  let siteMs = parseInt(board.dataset.now || "0", 10);
  let syncedAt = performance.now();
  let lastMessage = Date.now();
  let connected = false;
  const heartbeat = parseInt(board.dataset.heartbeat || "15000", 10) || 15000;
  const loadedAt = Date.now();

  function siteNow() { return siteMs + (performance.now() - syncedAt) * scale; }
  function sync(ms) { if (ms) { siteMs = ms; syncedAt = performance.now(); } }
  function pad(n) { return String(n).padStart(2, "0"); }
  function fmt(text, args) { return text.replace(/%\((\w+)\)s/g, function (_, k) { return args[k]; }); }

  // --- connection and clock -------------------------------------------------------------
  const conn = document.getElementById("conn");
  const clock = document.getElementById("clock");
  const notice = document.getElementById("stale-notice");
  function showConn() {
    // "As of" in site time, as the clock showed it then; the age in real seconds.
    const at = new Date(siteNow() - (Date.now() - lastMessage) * scale);
    const args = {
      t: pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds()),
      age: Math.round((Date.now() - lastMessage) / 1000),
    };
    if (conn) {
      const text = conn.querySelector(".conn-text");
      if (connected) {
        conn.dataset.state = "live";
        conn.querySelector("b").textContent = "●";
        text.textContent = board.dataset.tLive;
      } else {
        conn.dataset.state = "stale";
        conn.querySelector("b").textContent = "⚠";
        text.textContent = fmt(board.dataset.tStale, args);
      }
    }
    // The first second of a page is its own render, not stale data.
    const stale = !connected && Date.now() - loadedAt > 1000;
    if (notice) {
      notice.hidden = !stale;
      if (stale) notice.textContent = "⚠ " + fmt(board.dataset.tStaleLong, args);
    }
    document.body.classList.toggle("stale", stale);
  }
  function tick() {
    const now = siteNow();
    if (clock && connected) {
      const d = new Date(now);
      clock.textContent = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    }
    document.querySelectorAll(".wait[data-since]").forEach(function (el) {
      const s = Math.max(0, Math.floor((now - parseInt(el.dataset.since, 10)) / 1000));
      el.textContent = Math.floor(s / 60) + ":" + pad(s % 60);
    });
    if (connected && Date.now() - lastMessage > 3 * heartbeat) {
      // Nothing, not even a ping, for three heartbeats: a stream that is gone
      // without the browser seeing it close. Say so, and open a new one.
      connected = false;
      reconnect();
    }
    if (!connected) showConn();
  }
  setInterval(tick, 500);

  // --- fragments ------------------------------------------------------------------------------
  function swap(id, html) {
    const old = document.getElementById(id);
    if (!old) return;
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const el = tpl.content.firstElementChild;
    if (!el) return;
    old.replaceWith(el);
    if (window.linectl) window.linectl.fillCsrf(el);
    if (el.classList.contains("control")) markMine(el);
    if (el.classList.contains("st-info")) {
      const live = el.parentElement && el.parentElement.querySelector(".live");
      if (live && (el.dataset.state === "free" || live.dataset.inspection !== el.dataset.inspection)) {
        if (el.dataset.state === "free" || !el.dataset.inspection) resetLive(live);
      }
    }
  }

  // Control of a line: the holder's own page offers giving it up, the others taking over.
  function markMine(el) {
    const mine = !!el.dataset.session && el.dataset.session === document.body.dataset.session;
    el.classList.toggle("mine", mine);
  }
  document.querySelectorAll(".control").forEach(markMine);

  // --- live values ----------------------------------------------------------------------------
  function resetLive(live) {
    live.dataset.inspection = "";
    live.dataset.view = "";
    live.replaceChildren();
    const none = document.createElement("span");
    none.className = "none";
    none.textContent = live.dataset.tNone || "–";
    live.appendChild(none);
    live._trace = null;
    live._lamps = null;
    live._rpm = null;
    live._gasTrend = null;
    live._k = null;
  }
  document.querySelectorAll(".live").forEach(function (el) {
    el.dataset.tNone = el.textContent.trim();
  });

  function el(tag, attrs, text) {
    const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function niceTop(v) {
    const mag = Math.pow(10, Math.floor(Math.log10(Math.max(v, 1))));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= v) return m * mag;
    return 10 * mag;
  }

  function view(live, name, build) {
    if (live.dataset.view !== name) {
      live.replaceChildren();
      live.dataset.view = name;
      build(live);
    }
  }

  const W = 300, H = 120, L = 34, R = 6, T = 8, B = 18;
  function brake(live, d) {
    if (d.start || !live._trace || live._trace.axle !== d.axle || live._trace.parking !== d.parking) {
      live._trace = { axle: d.axle, parking: d.parking, t: [], l: [], r: [] };
      live.dataset.view = "";
    }
    const tr = live._trace;
    for (let i = 0; i < d.left_n.length; i++) {
      tr.t.push(d.t0_s + i * d.dt_s); tr.l.push(d.left_n[i]); tr.r.push(d.right_n[i]);
    }
    view(live, "brake", function (root) {
      const head = el("div", { class: "live-head" });
      head.appendChild(el("span", { class: "what" }, fmt(live.dataset.tAxle, { n: d.axle }) + (d.parking ? " · " + live.dataset.tParking : "")));
      head.appendChild(el("span", { class: "lv num" }));
      root.appendChild(head);
      const svg = el("svg:svg", { viewBox: "0 0 " + W + " " + H, class: "trace", role: "img" });
      svg.appendChild(el("svg:rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "frame" }));
      svg.appendChild(el("svg:g", { class: "grid" }));
      svg.appendChild(el("svg:polyline", { class: "left" }));
      svg.appendChild(el("svg:polyline", { class: "right" }));
      root.appendChild(svg);
      const key = el("div", { class: "key" });
      key.appendChild(el("span", { class: "k-left" }, "━ " + live.dataset.tLeft));
      key.appendChild(el("span", { class: "k-right" }, "┅ " + live.dataset.tRight));
      root.appendChild(key);
    });
    const tMax = Math.max(8, tr.t.length ? tr.t[tr.t.length - 1] : 0);
    const fMax = niceTop(Math.max(1000, Math.max.apply(null, tr.l.concat(tr.r, [0])) * 1.1));
    const px = function (t) { return L + t / tMax * (W - L - R); };
    const py = function (f) { return H - B - f / fMax * (H - T - B); };
    const svg = live.querySelector("svg");
    const grid = svg.querySelector(".grid");
    grid.replaceChildren();
    for (let i = 0; i <= 4; i++) {
      const f = fMax * i / 4, y = py(f);
      grid.appendChild(el("svg:line", { x1: L, x2: W - R, y1: y, y2: y }));
      grid.appendChild(el("svg:text", { x: L - 3, y: y + 3, "text-anchor": "end" }, (f / 1000).toFixed(f % 1000 ? 1 : 0)));
    }
    for (let s = 0; s <= tMax; s += 2) grid.appendChild(el("svg:text", { x: px(s), y: H - 5, "text-anchor": "middle" }, s + " s"));
    grid.appendChild(el("svg:text", { x: 2, y: T + 8, "text-anchor": "start" }, "kN"));
    const pts = function (ys) { return ys.map(function (f, i) { return px(tr.t[i]).toFixed(1) + "," + py(f).toFixed(1); }).join(" "); };
    svg.querySelector(".left").setAttribute("points", pts(tr.l));
    svg.querySelector(".right").setAttribute("points", pts(tr.r));
    const n = tr.l.length;
    if (n) live.querySelector(".lv").textContent =
      "L " + (tr.l[n - 1] / 1000).toFixed(2) + " · R " + (tr.r[n - 1] / 1000).toFixed(2) + " kN";
    const bands = live.dataset.bands ? JSON.parse(live.dataset.bands) : null;
    if (bands && bands.imbalance_max_pct && n) {
      // Level 3: left-right difference as a share of the larger maximum so far,
      // against the largest imbalance allowed (the judge decides on the full run).
      if (!live.querySelector(".t-imb")) trend(live, "t-imb", live.dataset.tImbalance || "ΔF", "%");
      // A floor of 1 kN: before the brake is applied the drag alone says nothing.
      const top = Math.max(Math.max.apply(null, tr.l), Math.max.apply(null, tr.r), 1000);
      const imb = tr.l.map(function (f, i) { return Math.abs(f - tr.r[i]) / top * 100; }).slice(-60);
      drawTrend(live.querySelector(".t-imb svg"), imb, bands.imbalance_max_pct, live.dataset.tLimit);
    }
  }

  function metric(root, cls, label, unit) {
    const m = el("div", { class: "metric " + cls });
    m.appendChild(el("span", { class: "label" }, label));
    m.appendChild(el("span", { class: "value num" }, "–"));
    if (unit) m.appendChild(el("span", { class: "unit" }, unit));
    root.appendChild(m);
  }

  function gas(live, d) {
    view(live, "gas", function (root) {
      const head = el("div", { class: "live-head" });
      head.appendChild(el("span", { class: "what" }));
      head.appendChild(el("span", { class: "band" }));
      root.appendChild(head);
      const row = el("div", { class: "metrics" });
      metric(row, "rpm", "n", "r/min");
      metric(row, "co", "CO", "%");
      metric(row, "hc", "HC", "ppm");
      root.appendChild(row);
      root.appendChild(el("svg:svg", { viewBox: "0 0 " + W + " 46", class: "spark", role: "img" }));
      live._rpm = [];
    });
    const phase = d.phase === "high_idle" ? live.dataset.tHighIdle : live.dataset.tIdle;
    live.querySelector(".what").textContent = phase;
    const inBand = d.band && d.rpm >= d.band[0] && d.rpm <= d.band[1];
    const band = live.querySelector(".band");
    band.textContent = (inBand ? "✓ " + live.dataset.tIn : "⚠ " + live.dataset.tOut) + " " + d.band[0] + "–" + d.band[1];
    band.className = "band " + (inBand ? "in" : "out");
    live.querySelector(".rpm .value").textContent = Math.round(d.rpm);
    live.querySelector(".co .value").textContent = Number(d.co_pct).toFixed(2);
    live.querySelector(".hc .value").textContent = Math.round(d.hc_ppm);
    if (live._rpm.phase !== d.phase) { live._rpm = []; live._rpm.phase = d.phase; }
    live._rpm.push(d.rpm);
    if (live._rpm.length > 60) live._rpm.shift();
    const bands = live.dataset.bands ? JSON.parse(live.dataset.bands) : null;
    if (bands && bands.co) gasTrends(live, d, bands);
    const svg = live.querySelector(".spark");
    const top = Math.max(d.band[1] * 1.15, Math.max.apply(null, live._rpm));
    const bottom = Math.min(d.band[0] * 0.8, Math.min.apply(null, live._rpm));
    const y = function (v) { return 44 - (v - bottom) / (top - bottom) * 42; };
    svg.replaceChildren(
      el("svg:rect", { x: 0, y: y(d.band[1]), width: W, height: y(d.band[0]) - y(d.band[1]), class: "bandfill" }),
      el("svg:polyline", { class: "rpm", points: live._rpm.map(function (v, i) { return (i * W / 59).toFixed(1) + "," + y(v).toFixed(1); }).join(" ") })
    );
  }

  // Level 3: CO and HC of this phase as trends, each against its limit (a band up to it).
  function trend(root, cls, label, unit) {
    const box = el("div", { class: "trend " + cls });
    box.appendChild(el("span", { class: "label" }, label + " (" + unit + ")"));
    box.appendChild(el("span", { class: "limit-text" }));
    box.appendChild(el("svg:svg", { viewBox: "0 0 " + W + " 60", class: "spark", role: "img", preserveAspectRatio: "none" }));
    root.appendChild(box);
  }
  function drawTrend(svg, values, limit, limitText) {
    const top = Math.max(limit * 1.3, Math.max.apply(null, values.concat([0])) * 1.1) || 1;
    const y = function (v) { return 58 - v / top * 56; };
    const over = values.length && values[values.length - 1] > limit;
    svg.replaceChildren(
      el("svg:rect", { x: 0, y: y(limit), width: W, height: 58 - y(limit), class: "bandfill" }),
      el("svg:line", { x1: 0, x2: W, y1: y(limit), y2: y(limit), class: "limit", "vector-effect": "non-scaling-stroke" }),
      el("svg:polyline", { class: "value" + (over ? " over" : ""), "vector-effect": "non-scaling-stroke", points: values.map(function (v, i) { return (i * W / 59).toFixed(1) + "," + y(v).toFixed(1); }).join(" ") })
    );
    svg.parentElement.dataset.over = over ? "true" : "false";
    svg.parentElement.querySelector(".limit-text").textContent = " · " + limitText + " " + limit;
  }
  function gasTrends(live, d, bands) {
    if (!live._gasTrend || live._gasTrend.phase !== d.phase) {
      const old = live.querySelector(".trends");
      if (old) old.remove();
      const box = el("div", { class: "trends" });
      trend(box, "t-co", "CO", "%");
      trend(box, "t-hc", "HC", "ppm");
      live.appendChild(box);
      live._gasTrend = { phase: d.phase, co: [], hc: [] };
    }
    const t = live._gasTrend;
    t.co.push(Number(d.co_pct)); t.hc.push(Number(d.hc_ppm));
    if (t.co.length > 60) { t.co.shift(); t.hc.shift(); }
    const phase = d.phase === "high_idle" ? "high_idle" : "idle";
    drawTrend(live.querySelector(".t-co svg"), t.co, bands.co[phase], live.dataset.tLimit);
    drawTrend(live.querySelector(".t-hc svg"), t.hc, bands.hc[phase], live.dataset.tLimit);
  }

  function smoke(live, d) {
    view(live, "smoke", function (root) {
      const row = el("div", { class: "metrics" });
      metric(row, "rpm", "n", "r/min");
      metric(row, "k", "k", "m⁻¹");
      root.appendChild(row);
    });
    live.querySelector(".rpm .value").textContent = Math.round(d.rpm);
    live.querySelector(".k .value").textContent = Number(d.k_per_m).toFixed(2);
    const bands = live.dataset.bands ? JSON.parse(live.dataset.bands) : null;
    if (bands && bands.k) {
      if (!live._k) {
        trend(live, "t-k", "k", "m⁻¹");
        live._k = [];
      }
      live._k.push(Number(d.k_per_m));
      if (live._k.length > 60) live._k.shift();
      drawTrend(live.querySelector(".t-k svg"), live._k, bands.k, live.dataset.tLimit);
    }
  }

  function lamp(live, d) {
    view(live, "lamp", function (root) {
      root.appendChild(el("table", { class: "grid lamps" }));
      live._lamps = {};
    });
    live._lamps[d.lamp + " " + d.beam] = d;
    const table = live.querySelector("table");
    table.replaceChildren();
    Object.keys(live._lamps).sort().forEach(function (k) {
      const x = live._lamps[k];
      const tr = el("tr");
      tr.appendChild(el("td", { class: "code" }, x.lamp));
      tr.appendChild(el("td", {}, x.beam === "H" ? live.dataset.tHigh : live.dataset.tLow));
      tr.appendChild(el("td", { class: "num" }, x.beam === "H" ? Math.round(x.intensity_cd) + " cd" : ""));
      tr.appendChild(el("td", { class: "num" }, "↔ " + x.h_mm + " ↕ " + x.v_mm + " mm"));
      table.appendChild(tr);
    });
  }

  const DRAW = { brake: brake, gas: gas, smoke: smoke, lamp: lamp };
  function onLive(d) {
    const live = document.getElementById("live-" + d.line + "-" + d.station);
    if (!live || !DRAW[d.kind]) return;
    if (live.dataset.inspection !== (d.inspection_id || "")) {
      resetLive(live);
      live.dataset.inspection = d.inspection_id || "";
    }
    DRAW[d.kind](live, d);
  }

  // --- the stream ------------------------------------------------------------------------
  const url = "/board/events" + (board.dataset.readonly === "true" ? "?view=ro" : "");
  let es = null;
  let retryTimer = null;
  function open() {
    es = new EventSource(url);
    es.onopen = function () { connected = true; lastMessage = Date.now(); showConn(); };
    es.onerror = function () {
      connected = false;
      showConn();
      // The browser retries by itself unless it gave up (an HTTP error): then so do we.
      if (es.readyState === EventSource.CLOSED) reconnect();
    };
    es.addEventListener("frag", function (e) {
      lastMessage = Date.now();
      const d = JSON.parse(e.data);
      sync(d.now);
      swap(d.id, d.html);
    });
    es.addEventListener("live", function (e) {
      lastMessage = Date.now();
      const d = JSON.parse(e.data);
      if (d.ts) sync(Date.parse(d.ts));
      onLive(d);
    });
    es.addEventListener("ping", function (e) {
      lastMessage = Date.now();
      sync(JSON.parse(e.data).now);
      if (!connected) { connected = true; showConn(); }
    });
    es.addEventListener("reload", function () { es.close(); window.location.reload(); });
    es.addEventListener("session_expired", function () {
      es.close();
      window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    });
    window.linectlBoard = { source: es };
  }
  function reconnect() {
    if (retryTimer) return;
    if (es) es.close();
    retryTimer = setTimeout(function () { retryTimer = null; open(); }, 2000);
  }
  open();
})();
