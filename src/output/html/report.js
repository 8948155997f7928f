
"use strict";
// Renders the phonehome report embedded in #report-data. Every value comes
// from the network and is hostile: it only ever reaches the page through
// textContent, attribute values set on elements built here, or SVG numbers;
// nothing is parsed as HTML. Every field is optional (older and newer
// reports render too).
(function () {
  var started = performance.now();
  var SVG = "http://www.w3.org/2000/svg";
  var PAGE_ROWS = 500;
  var PURPOSES = ["update", "telemetry", "activation", "management", "web", "other"];
  var PALETTE = ["#c62828", "#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#6d4c41",
    "#ad1457", "#827717", "#283593", "#00695c", "#4e342e", "#5d4037", "#37474f"];
  var WATCH_COLOUR = "#8a6d00";

  // ---- small helpers ------------------------------------------------------
  function failure(text) {
    var p = el("p", "error", text);
    p.id = "render-error";
    add(document.getElementById("summary"), p);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function arr(v) { return Array.isArray(v) ? v : []; }
  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
  function str(v) { return v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)); }
  function obj(v) { return v && typeof v === "object" && !Array.isArray(v) ? v : null; }
  function parseTime(v) { var t = typeof v === "string" ? Date.parse(v) : NaN; return isFinite(t) ? t : NaN; }
  function fmtTime(ms) {
    if (!isFinite(ms)) return "";
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  function fmtDur(s) {
    s = num(s);
    if (s === null) return "";
    if (s < 120) return (Math.round(s * 10) / 10) + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    if (s < 172800) return (Math.round(s / 360) / 10) + " h";
    return (Math.round(s / 8640) / 10) + " d";
  }
  function fmtNum(n) { n = num(n); return n === null ? "" : n.toLocaleString("en-US"); }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      parent.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return parent;
  }
  function tags(list, cls) {
    var span = el("span");
    arr(list).forEach(function (v) { add(span, el("span", "tag" + (cls ? " " + cls : ""), str(v))); });
    return span;
  }
  function ipKey(ip) {
    var m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
    if (m) return "4" + [m[1], m[2], m[3], m[4]].map(function (o) { return ("00" + o).slice(-3); }).join(".");
    return "6" + ip;
  }
  // A server may be an address string or an object {ip, country, city, asn, org, watched}.
  function server(s) {
    var o = obj(s);
    if (o) return { ip: str(o.ip), country: str(o.country), city: str(o.city), asn: o.asn, org: str(o.org), watched: !!o.watched, raw: o };
    return { ip: str(s), country: "", city: "", asn: null, org: "", watched: false, raw: null };
  }
  // A beacon is null or an object such as {period_s, jitter, score, count}.
  function beaconOf(c) {
    var b = obj(c.beacon);
    if (!b) return null;
    if (b.confirmed === false) return null;
    return b;
  }

  // ---- the data -----------------------------------------------------------
  var R = {};
  try {
    R = JSON.parse(document.getElementById("report-data").textContent) || {};
  } catch (e) {
    failure("The embedded report is not valid JSON: " + e.message);
    throw e;
  }
  var S = obj(R.summary) || {};
  var hosts = arr(R.hosts);

  var vendorIds = [];
  var rows = [];
  hosts.forEach(function (h) {
    h = obj(h);
    if (!h) return;
    var ip = str(h.ip);
    arr(h.contacts).forEach(function (c) {
      c = obj(c);
      if (!c) return;
      var watched = c.vendor === null || c.vendor === undefined;
      var vid = watched ? "" : str(c.vendor);
      if (!watched && vendorIds.indexOf(vid) < 0) vendorIds.push(vid);
      var b = beaconOf(c);
      rows.push({
        host: h, c: c, ip: ip, key: ipKey(ip), vid: vid, watched: watched,
        vendor: watched ? (str(c.vendor_name) || "watched place") : (str(c.vendor_name) || vid),
        purposes: arr(c.purposes).map(str), evidence: arr(c.evidence).map(str),
        names: arr(c.names).map(str), servers: arr(c.servers).map(server),
        first: parseTime(c.first_seen), last: parseTime(c.last_seen),
        conns: num(c.connections), dns: num(c.dns_queries),
        beacon: b, period: b ? num(b.period_s) : null,
        times: Array.isArray(c.connection_times) ? c.connection_times : null,
        text: null, tr: null
      });
    });
  });
  vendorIds.sort();
  var colours = {};
  vendorIds.forEach(function (v, i) { colours[v] = PALETTE[i % PALETTE.length]; });
  function colour(r) { return r.watched ? WATCH_COLOUR : (colours[r.vid] || "#555"); }
  function searchText(r) {
    if (r.text === null) {
      r.text = [r.ip, str(r.host.vlan), str(r.host.mac), r.vid, r.vendor, r.purposes.join(" "), r.evidence.join(" "),
        r.names.join(" "), r.servers.map(function (s) { return s.ip + " " + s.country + " " + s.city + " " + s.org; }).join(" ")
      ].join("\n").toLowerCase();
    }
    return r.text;
  }

  // The capture span, for every timeline.
  var span0 = parseTime(S.first_packet), span1 = parseTime(S.last_packet);
  rows.forEach(function (r) {
    if (isFinite(r.first) && !(r.first >= span0)) span0 = r.first;
    if (isFinite(r.last) && !(r.last <= span1)) span1 = r.last;
  });

  // ---- summary --------------------------------------------------------------
  function card(n, label, bad) {
    var d = el("div", "card" + (bad ? " bad" : ""));
    add(d, el("div", "n", n), el("div", "l", label));
    return d;
  }
  function renderSummary() {
    var sec = document.getElementById("summary");
    var spanText = isFinite(span0) ? fmtTime(span0) + " \u2013 " + fmtTime(span1) : "no packets";
    document.getElementById("span").textContent = spanText + (num(S.duration_s) !== null ? " (" + fmtDur(S.duration_s) + ")" : "") +
      "; " + fmtNum(S.files) + " file(s), " + fmtNum(S.packets) + " packets, " + fmtNum(S.bytes) + " bytes";

    var vendorHosts = new Set(), watchedHosts = new Set(), beacons = 0;
    rows.forEach(function (r) {
      (r.watched ? watchedHosts : vendorHosts).add(r.ip);
      if (r.beacon) beacons++;
    });
    var drops = 0;
    Object.keys(S).forEach(function (k) {
      if (/(dropped|refused|abandoned|evicted)$/.test(k) && num(S[k]) !== null) drops += S[k];
    });
    var inputErrors = arr(S.input_errors);
    var cards = el("div", "cards");
    add(cards,
      card(isFinite(span0) ? fmtDur((span1 - span0) / 1000) : "\u2013", "capture span"),
      num(S.hosts_seen) !== null ? card(fmtNum(S.hosts_seen), "hosts seen") : null,
      card(fmtNum(vendorHosts.size), "hosts phoning home"),
      watchedHosts.size ? card(fmtNum(watchedHosts.size), "hosts contacting watched places") : null,
      card(fmtNum(beacons), "beacons confirmed"),
      card(fmtNum(num(S.malformed_packets) || 0), "malformed packets", num(S.malformed_packets) > 0),
      card(fmtNum(drops), "dropped (flows, streams, fragments, contacts, DNS entries)", drops > 0),
      inputErrors.length ? card(fmtNum(inputErrors.length), "damaged inputs", true) : null);
    add(sec, cards);

    // Hosts per vendor and purpose.
    var purposes = PURPOSES.slice();
    rows.forEach(function (r) { r.purposes.forEach(function (p) { if (purposes.indexOf(p) < 0) purposes.push(p); }); });
    var used = purposes.filter(function (p) { return rows.some(function (r) { return r.purposes.indexOf(p) >= 0; }); });
    var groups = vendorIds.map(function (v) { return { id: v, watched: false }; });
    if (watchedHosts.size) groups.push({ id: "", watched: true });
    if (groups.length) {
      var t = el("table", "", null);
      t.id = "vendor-table";
      var hr = el("tr");
      add(hr, el("th", "", "vendor"), el("th", "num", "hosts"));
      used.forEach(function (p) { add(hr, el("th", "num", p)); });
      add(hr, el("th", "num", "beacons"), el("th", "num", "connections"));
      add(add(t, el("thead")), hr);
      var tb = el("tbody");
      var stats = new Map();
      groups.forEach(function (g) { stats.set(g.watched ? "\u0000watched" : g.id, { label: g.id, hosts: new Set(), per: new Map(), beacons: 0, conns: 0 }); });
      rows.forEach(function (r) {
        var st = stats.get(r.watched ? "\u0000watched" : r.vid);
        st.label = r.watched ? "watched places" : r.vendor;
        st.hosts.add(r.ip);
        r.purposes.forEach(function (p) {
          var set = st.per.get(p);
          if (!set) st.per.set(p, set = new Set());
          set.add(r.ip);
        });
        if (r.beacon) st.beacons++;
        st.conns += r.conns || 0;
      });
      groups.forEach(function (g) {
        var st = stats.get(g.watched ? "\u0000watched" : g.id);
        var tr = el("tr");
        var name = el("td");
        var sw = el("span", "swatch");
        sw.style.background = g.watched ? WATCH_COLOUR : colours[g.id];
        add(name, sw, st.label);
        add(tr, name, el("td", "num", fmtNum(st.hosts.size)));
        used.forEach(function (p) { add(tr, el("td", "num", fmtNum(st.per.has(p) ? st.per.get(p).size : 0))); });
        add(tr, el("td", "num", fmtNum(st.beacons)), el("td", "num", fmtNum(st.conns)));
        add(tb, tr);
      });
      add(sec, el("h3", "", "Hosts per vendor and purpose"), add(t, tb));
    }

    if (inputErrors.length) {
      var ul = el("ul");
      inputErrors.forEach(function (e) {
        e = obj(e) || {};
        add(ul, el("li", "error", str(e.file) + (e.offset !== undefined && e.offset !== null ? " at byte " + str(e.offset) : "") +
          ": " + str(e.error) + " (" + fmtNum(e.frames_read) + " frames read before it are included)"));
      });
      add(sec, el("h3", "", "Damaged inputs"), ul);
    }

    // Every counter, as written by the analysis.
    var det = el("details");
    add(det, el("summary", "", "All counters"));
    var ct = el("table");
    var cb = el("tbody");
    Object.keys(S).forEach(function (k) {
      var v = S[k];
      if (k === "input_errors") return;
      var tr = el("tr");
      add(tr, el("th", "", k), el("td", typeof v === "number" ? "num" : "mono", typeof v === "number" ? fmtNum(v) : str(v)));
      add(cb, tr);
    });
    add(sec, add(det, add(ct, cb)));
  }

  // ---- the host table -------------------------------------------------------
  var COLUMNS = [
    { id: "host", label: "host", key: function (r) { return r.key; } },
    { id: "vendor", label: "vendor", key: function (r) { return r.vendor.toLowerCase(); } },
    { id: "purposes", label: "purposes", key: function (r) { return r.purposes.join(","); } },
    { id: "evidence", label: "evidence", key: function (r) { return r.evidence.join(","); } },
    { id: "names", label: "names", key: function (r) { return (r.names[0] || "").toLowerCase(); } },
    { id: "first", label: "first seen", key: function (r) { return isFinite(r.first) ? r.first : -Infinity; } },
    { id: "last", label: "last seen", key: function (r) { return isFinite(r.last) ? r.last : -Infinity; } },
    { id: "conns", label: "connections", num: true, key: function (r) { return r.conns === null ? -1 : r.conns; } },
    { id: "period", label: "beacon period", num: true, key: function (r) { return r.period === null ? Infinity : r.period; } }
  ];
  var state = { sort: 0, dir: 1, query: "", vendor: "", purpose: "", beaconsOnly: false, limit: PAGE_ROWS, open: {} };
  var tbody, countLine, moreBox, headCells = [];

  function rowElement(r, index) {
    if (r.tr) return r.tr;
    var tr = el("tr", "row");
    var hostCell = el("td", "mono");
    var btn = el("button", "toggle", "+");
    btn.type = "button";
    btn.setAttribute("aria-expanded", "false");
    btn.setAttribute("aria-label", "timeline and evidence");
    btn.addEventListener("click", function () { toggle(index); });
    add(hostCell, btn, r.ip);
    if (r.host.vlan !== undefined && r.host.vlan !== null) add(hostCell, el("span", "muted", " vlan " + str(r.host.vlan)));
    var v = el("td");
    var sw = el("span", "swatch");
    sw.style.background = colour(r);
    add(v, sw, r.vendor);
    var names = el("td", "names mono", r.names.join(", "));
    var omitted = num(r.c.omitted);
    if (omitted) add(names, el("span", "muted", " (+" + omitted + " more)"));
    add(tr, hostCell, v, el("td", "", r.purposes.join(", ")), el("td", "", r.evidence.join(", ")), names,
      el("td", "mono", fmtTime(r.first)), el("td", "mono", fmtTime(r.last)),
      el("td", "num", r.conns === null ? "" : fmtNum(r.conns)),
      el("td", "num", r.period === null ? "" : fmtDur(r.period)));
    r.tr = tr;
    r.btn = btn;
    return tr;
  }

  function matches(r) {
    if (state.vendor && (state.vendor === "\u0000watched" ? !r.watched : r.vid !== state.vendor || r.watched)) return false;
    if (state.purpose && r.purposes.indexOf(state.purpose) < 0) return false;
    if (state.beaconsOnly && !r.beacon) return false;
    if (state.query && searchText(r).indexOf(state.query) < 0) return false;
    return true;
  }

  var order = rows.map(function (_, i) { return i; });
  function sortOrder() {
    var col = COLUMNS[state.sort], dir = state.dir;
    var keys = rows.map(col.key);
    order.sort(function (a, b) {
      var x = keys[a], y = keys[b];
      if (x < y) return -dir;
      if (x > y) return dir;
      return rows[a].key < rows[b].key ? -1 : rows[a].key > rows[b].key ? 1 : a - b;
    });
    headCells.forEach(function (th, i) {
      if (i === state.sort) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }

  function renderRows() {
    var shown = 0, total = 0;
    var frag = document.createDocumentFragment();
    for (var k = 0; k < order.length; k++) {
      var i = order[k], r = rows[i];
      if (!matches(r)) continue;
      total++;
      if (shown >= state.limit) continue;
      shown++;
      frag.appendChild(rowElement(r, i));
      if (state.open[i]) frag.appendChild(detailRow(r));
    }
    tbody.textContent = "";
    tbody.appendChild(frag);
    countLine.textContent = total + " of " + rows.length + " rows" + (shown < total ? ", first " + shown + " shown" : "");
    moreBox.textContent = "";
    if (shown < total) {
      var more = el("button", "", "show " + Math.min(PAGE_ROWS, total - shown) + " more");
      more.type = "button";
      more.addEventListener("click", function () { state.limit += PAGE_ROWS; renderRows(); });
      var all = el("button", "", "show all " + total);
      all.type = "button";
      all.addEventListener("click", function () { state.limit = Infinity; renderRows(); });
      add(moreBox, more, " ", all);
    }
  }

  function toggle(i) {
    var r = rows[i];
    if (state.open[i]) delete state.open[i]; else state.open[i] = true;
    r.btn.textContent = state.open[i] ? "\u2212" : "+";
    r.btn.setAttribute("aria-expanded", state.open[i] ? "true" : "false");
    r.tr.classList.toggle("open", !!state.open[i]);
    if (state.open[i]) r.tr.parentNode.insertBefore(detailRow(r), r.tr.nextSibling);
    else if (r.detail && r.detail.parentNode) r.detail.parentNode.removeChild(r.detail);
  }

  function renderHosts() {
    var sec = document.getElementById("hosts");
    var bar = el("div", "filters");
    var q = el("input");
    q.type = "search";
    q.placeholder = "filter: address, name, server, evidence\u2026";
    q.setAttribute("aria-label", "filter rows");
    q.id = "filter";
    q.addEventListener("input", function () { state.query = q.value.trim().toLowerCase(); state.limit = PAGE_ROWS; renderRows(); });
    var vs = el("select");
    vs.id = "vendor-filter";
    vs.setAttribute("aria-label", "vendor");
    add(vs, option("", "all vendors"));
    vendorIds.forEach(function (v) {
      var first = rows.find(function (r) { return r.vid === v && !r.watched; });
      add(vs, option(v, first ? first.vendor : v));
    });
    if (rows.some(function (r) { return r.watched; })) add(vs, option("\u0000watched", "watched places"));
    vs.addEventListener("change", function () { state.vendor = vs.value; state.limit = PAGE_ROWS; renderRows(); });
    var ps = el("select");
    ps.id = "purpose-filter";
    ps.setAttribute("aria-label", "purpose");
    add(ps, option("", "all purposes"));
    var purposes = [];
    rows.forEach(function (r) { r.purposes.forEach(function (p) { if (purposes.indexOf(p) < 0) purposes.push(p); }); });
    purposes.sort(function (a, b) { return rank(a) - rank(b) || (a < b ? -1 : 1); });
    purposes.forEach(function (p) { add(ps, option(p, p)); });
    ps.addEventListener("change", function () { state.purpose = ps.value; state.limit = PAGE_ROWS; renderRows(); });
    var bl = el("label");
    var bc = el("input");
    bc.type = "checkbox";
    bc.addEventListener("change", function () { state.beaconsOnly = bc.checked; state.limit = PAGE_ROWS; renderRows(); });
    add(bl, bc, " beacons only");
    countLine = el("span", "muted");
    countLine.id = "row-count";
    add(bar, q, vs, ps, bl, countLine);

    var t = el("table");
    t.id = "host-table";
    var hr = el("tr");
    COLUMNS.forEach(function (c, i) {
      var th = el("th", c.num ? "num" : "", c.label);
      th.tabIndex = 0;
      th.dataset.col = c.id;
      var go = function () {
        if (state.sort === i) state.dir = -state.dir; else { state.sort = i; state.dir = 1; }
        sortOrder();
        renderRows();
      };
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
      headCells.push(th);
      add(hr, th);
    });
    add(add(t, el("thead")), hr);
    tbody = el("tbody");
    add(t, tbody);
    moreBox = el("div", "more");
    add(sec, el("p", "muted", "One row per host and vendor. Click a column to sort; + shows the host's contacts on a timeline, with the evidence."),
      bar, t, moreBox);
    if (!rows.length) add(sec, el("p", "", "No host contacted a vendor."));
    sortOrder();
    // "#open=ADDRESS" opens that host's rows (a link to one host's
    // timeline); "#all" lists every row at once. Joined with "&".
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (part === "all") state.limit = Infinity;
      var m = /^open=(.+)$/.exec(part);
      if (!m) return;
      var want = m[1];
      try { want = decodeURIComponent(want); } catch (e) { /* keep it raw */ }
      // Its first row in table order (the detail shows all its contacts).
      var first = order.find(function (i) { return rows[i].ip === want; });
      if (first !== undefined) state.open[first] = true;
    });
    renderRows();
    Object.keys(state.open).forEach(function (i) {
      var r = rows[i];
      if (r.btn) { r.btn.textContent = "\u2212"; r.btn.setAttribute("aria-expanded", "true"); r.tr.classList.add("open"); }
    });
  }
  function option(value, label) {
    var o = el("option", "", label);
    o.value = value;
    return o;
  }
  function rank(p) { var i = PURPOSES.indexOf(p); return i < 0 ? PURPOSES.length : i; }

  // ---- per-host detail: timelines and evidence ---------------------------------
  function detailRow(r) {
    if (r.detail) return r.detail;
    var tr = el("tr", "detail");
    var td = el("td");
    td.colSpan = COLUMNS.length;
    var mine = rows.filter(function (x) { return x.host === r.host; });
    add(td, el("h3", "", "Host " + r.ip + (r.host.mac ? " (" + str(r.host.mac) + ")" : "")));
    mine.forEach(function (x) { add(td, contactDetail(x)); });
    r.detail = add(tr, td);
    return tr;
  }

  function contactDetail(r) {
    var box = el("div", "contact");
    var h = el("h3");
    var sw = el("span", "swatch");
    sw.style.background = colour(r);
    add(h, sw, r.vendor + (r.vid && r.vid !== r.vendor ? " (" + r.vid + ")" : ""));
    add(box, h, timeline(r));
    var dl = el("dl");
    function row(k, v) { if (v !== null && v !== undefined && v !== "") add(dl, el("dt", "", k), typeof v === "object" ? add(el("dd"), v) : el("dd", "", v)); }
    row("purposes", r.purposes.join(", "));
    row("evidence", r.evidence.join(", "));
    row("names", r.names.length ? tags(r.names, "mono") : null);
    if (r.servers.length) {
      var sv = el("span");
      r.servers.forEach(function (s) {
        var place = [s.city, s.country].filter(Boolean).join(", ");
        var extra = [place, s.asn !== null && s.asn !== undefined && s.asn !== "" ? "AS" + str(s.asn) : "", s.org].filter(Boolean).join(" \u00b7 ");
        add(sv, el("span", "tag mono" + (s.watched ? " watch" : ""), s.ip + (extra ? " (" + extra + ")" : "") + (s.watched ? " watched" : "")));
      });
      row("servers", sv);
    }
    row("connections", r.conns === null ? null : fmtNum(r.conns));
    row("DNS queries", r.dns === null ? null : fmtNum(r.dns));
    row("first seen", fmtTime(r.first));
    row("last seen", fmtTime(r.last));
    if (r.beacon) {
      var parts = Object.keys(r.beacon).map(function (k) { return k + " " + str(r.beacon[k]); });
      row("beacon", parts.join(", "));
    }
    if (num(r.c.omitted)) row("left out", fmtNum(r.c.omitted) + " names/servers beyond the caps");
    // Other fields a newer report may carry (places, ...), shown as text.
    var known = ["vendor", "vendor_name", "purposes", "evidence", "names", "servers", "connections", "dns_queries",
      "first_seen", "last_seen", "beacon", "rules", "omitted", "connection_times", "connection_times_every"];
    Object.keys(r.c).forEach(function (k) { if (known.indexOf(k) < 0) row(k, str(r.c[k])); });
    add(box, dl);
    var rules = arr(r.c.rules);
    if (rules.length) {
      var t = el("table");
      var hr = el("tr");
      ["rule", "value", "purpose", "confidence", "source"].forEach(function (k) { add(hr, el("th", "", k)); });
      add(add(t, el("thead")), hr);
      var tb = el("tbody");
      rules.forEach(function (u) {
        u = obj(u) || {};
        var tr = el("tr");
        var src = el("td", "mono");
        var s = str(u.source);
        if (/^https?:\/\//i.test(s)) {
          var a = el("a", "", s);
          a.href = s;
          a.rel = "noopener noreferrer";
          add(src, a);
        } else src.textContent = s;
        add(tr, el("td", "", str(u.kind)), el("td", "mono", str(u.value)), el("td", "", str(u.purpose)), el("td", "", str(u.confidence)), src);
        add(tb, tr);
      });
      add(box, add(t, tb));
    }
    return box;
  }

  // One SVG per contact: the capture span on x, one mark per (sampled)
  // connection, the beacon period as a faint grid from the first connection.
  function timeline(r) {
    var W = 960, H = 52, PAD = 8, top = 8, bottom = 32;
    var t0 = span0, t1 = span1;
    var s = svg("svg", { "class": "timeline", viewBox: "0 0 " + W + " " + H, role: "img" });
    var x = function (ms) {
      if (!(t1 > t0)) return W / 2;
      return PAD + Math.max(0, Math.min(1, (ms - t0) / (t1 - t0))) * (W - 2 * PAD);
    };
    var label = [];
    add(s, svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#ffffff" }));
    if (isFinite(r.first) && isFinite(r.last)) {
      add(s, svg("line", { x1: x(r.first), x2: Math.max(x(r.last), x(r.first) + 1), y1: (top + bottom) / 2, y2: (top + bottom) / 2,
        stroke: "#b0bac4", "stroke-width": 2 }));
    }
    var c = colour(r);
    var times = r.times ? r.times.map(num).filter(function (t) { return t !== null; }) : null;
    var base = isFinite(r.first) ? Math.floor(r.first / 1000) * 1000 : NaN;
    if (r.period !== null && r.period > 0 && times && times.length && isFinite(base)) {
      var startMs = base + times[0] * 1000, endMs = isFinite(r.last) ? r.last : t1;
      var n = Math.floor((endMs - startMs) / (r.period * 1000));
      if (n >= 0 && n <= 2000) {
        for (var k = 0; k <= n; k++) {
          var gx = x(startMs + k * r.period * 1000);
          add(s, svg("line", { x1: gx, x2: gx, y1: top - 4, y2: bottom + 4, stroke: c, "stroke-opacity": 0.28, "stroke-dasharray": "2 2" }));
        }
        label.push("dashed: beacon period " + fmtDur(r.period));
      } else label.push("beacon period " + fmtDur(r.period) + " (too dense to draw)");
    }
    if (times && isFinite(base)) {
      times.forEach(function (t) {
        var ms = base + t * 1000, mx = x(ms);
        var m = svg("line", { x1: mx, x2: mx, y1: top, y2: bottom, stroke: c, "stroke-width": 2 });
        var tt = svg("title", {});
        tt.textContent = fmtTime(ms);
        add(m, tt);
        add(s, m);
      });
      var every = num(r.c.connection_times_every) || 1;
      label.push(times.length + " connection mark(s)" + (every > 1 ? ", one per " + every + " connections" : ""));
    } else if (isFinite(r.first)) {
      [r.first, r.last].forEach(function (ms) {
        if (isFinite(ms)) add(s, svg("circle", { cx: x(ms), cy: (top + bottom) / 2, r: 4, fill: "none", stroke: c, "stroke-width": 2 }));
      });
      label.push("first and last contact (no connection times in this report)");
    }
    if (r.conns === 0) label.push("no connection: DNS evidence only");
    var axis = svg("text", { x: PAD, y: H - 6 });
    axis.textContent = fmtTime(t0);
    var axis2 = svg("text", { x: W - PAD, y: H - 6, "text-anchor": "end" });
    axis2.textContent = fmtTime(t1);
    var mid = svg("text", { x: W / 2, y: H - 6, "text-anchor": "middle" });
    mid.textContent = label.join("; ");
    add(s, axis, axis2, mid);
    var ttl = svg("title", {});
    ttl.textContent = "contacts of " + r.ip + " with " + r.vendor;
    s.insertBefore(ttl, s.firstChild);
    return s;
  }

  // ---- servers by place -------------------------------------------------------
  function renderPlaces() {
    var sec = document.getElementById("places");
    var places = new Map(), located = 0, servers = new Map();
    rows.forEach(function (r) {
      r.servers.forEach(function (s) {
        var sv = servers.get(s.ip);
        if (!sv) servers.set(s.ip, sv = { ip: s.ip, key: ipKey(s.ip), hosts: new Set(), vendors: new Set(), watched: false });
        sv.hosts.add(r.ip);
        sv.vendors.add(r.vendor);
        sv.watched = sv.watched || s.watched;
        if (!s.country && !s.city) return;
        located++;
        var pk = s.country + "\u0000" + s.city;
        var p = places.get(pk);
        if (!p) places.set(pk, p = { country: s.country, city: s.city, key: pk, servers: new Set(), hosts: new Set(), vendors: new Set(), watched: false });
        p.servers.add(s.ip);
        p.hosts.add(r.ip);
        p.vendors.add(r.vendor);
        p.watched = p.watched || s.watched;
      });
    });
    function byWatchedHostsKey(a, b) {
      return (b.watched - a.watched) || (b.hosts.size - a.hosts.size) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    }
    function names(set) { return Array.from(set).sort().join(", "); }
    var t = el("table");
    var hr = el("tr");
    var body = el("tbody");
    var list, more = 0;
    if (located) {
      ["country", "city", "servers", "hosts", "vendors", ""].forEach(function (k, i) { add(hr, el("th", i >= 2 && i <= 3 ? "num" : "", k)); });
      list = Array.from(places.values()).sort(byWatchedHostsKey);
      list.forEach(function (p) {
        var tr = el("tr", p.watched ? "watched" : "");
        add(tr, el("td", "", p.country || "unknown"), el("td", "", p.city || "unknown"), el("td", "num", fmtNum(p.servers.size)),
          el("td", "num", fmtNum(p.hosts.size)), el("td", "", names(p.vendors)), el("td", "", p.watched ? "watched place" : ""));
        add(body, tr);
      });
      add(sec, el("p", "muted", "Where the contacted servers are (watched places first, highlighted)."));
    } else {
      ["server", "hosts", "vendors", ""].forEach(function (k, i) { add(hr, el("th", i === 1 ? "num" : "", k)); });
      list = Array.from(servers.values()).sort(byWatchedHostsKey);
      if (list.length > PAGE_ROWS) { more = list.length - PAGE_ROWS; list = list.slice(0, PAGE_ROWS); }
      list.forEach(function (s) {
        var tr = el("tr", s.watched ? "watched" : "");
        add(tr, el("td", "mono", s.ip), el("td", "num", fmtNum(s.hosts.size)), el("td", "", names(s.vendors)),
          el("td", "", s.watched ? "watched place" : ""));
        add(body, tr);
      });
      add(sec, el("p", "muted", "This report carries no server locations; servers by address."));
    }
    t.id = "places-table";
    add(add(t, el("thead")), hr);
    add(sec, add(t, body));
    if (more) add(sec, el("p", "muted", more + " more servers not listed (most contacted first)."));
  }

  try {
    renderSummary();
    renderHosts();
    renderPlaces();
  } catch (e) {
    failure("The report could not be drawn completely: " + e.message);
    throw e;
  }
  var done = performance.now();
  document.body.setAttribute("data-render-ms", (done - started).toFixed(1));
  document.body.setAttribute("data-load-ms", done.toFixed(1));
  document.body.setAttribute("data-rendered", "1");
})();
