/* report.html's script: draws the payload of #report-data (its keys: eval/html_page.py).
   Every string of the payload reaches the page through textContent or a DOM attribute value; nothing is ever
   parsed as HTML, so a chain holding markup shows that markup as text. */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const ROOT = document.getElementById("report");
  const COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"];
  const SVG = "http://www.w3.org/2000/svg";
  const PAGE = 25;

  function h(tag, props, children) {
    const node = document.createElement(tag);
    setProps(node, props);
    for (const child of children || []) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function setProps(node, props) {
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "cls") node.setAttribute("class", value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function s(tag, props) {
    const node = document.createElementNS(SVG, tag);
    setProps(node, props);
    return node;
  }

  function fmt(value) {
    if (typeof value !== "number") return value === null || value === undefined ? "-" : String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return String(Math.round(value * 10000) / 10000);
  }

  function tick(value) {  // axis labels: three significant digits are enough to place a bar
    return Math.abs(value) >= 100 ? fmt(Math.round(value)) : String(Number(value.toPrecision(3)));
  }

  function pct(value) {
    return (Math.round(value * 1000) / 10) + "%";
  }

  function isPlain(value) {
    return value === null || ["string", "number", "boolean"].includes(typeof value);
  }

  function strings(value, out) {
    if (typeof value === "string") out.push(value);
    else if (value && typeof value === "object") for (const v of Object.values(value)) strings(v, out);
    else if (value !== null && value !== undefined) out.push(String(value));
    return out;
  }

  function haystack(value) {
    return strings(value, []).join("\n").toLowerCase();
  }

  function matchesAll(hay, terms) {
    return terms.every((t) => hay.includes(t));
  }

  function terms(query) {
    return query.toLowerCase().split(/\s+/).filter(Boolean);
  }

  function debounce(fn, ms) {
    let timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  /* ---------- tooltips: every bar carries its numbers in data-tip (and an SVG <title>) ---------- */
  const tip = h("div", { id: "tip" });
  document.body.appendChild(tip);
  document.addEventListener("mouseover", (event) => {
    const target = event.target.closest ? event.target.closest("[data-tip]") : null;
    if (!target) { tip.style.display = "none"; return; }
    tip.textContent = target.getAttribute("data-tip");
    tip.style.display = "block";
  });
  document.addEventListener("mousemove", (event) => {
    tip.style.left = (event.clientX + 12) + "px";
    tip.style.top = (event.clientY + 12) + "px";
  });

  /* ---------- references: ids of the selected items and their chains link to them ---------- */
  const REFS = new Map();

  function refLink(text) {
    const target = REFS.get(text);
    if (target === undefined) return h("code", { text });
    return h("a", { cls: "ref", href: "#item-" + target, text, onclick: (e) => { e.preventDefault(); openItem(target); } });
  }

  function openItem(index) {
    const node = document.getElementById("item-" + index);
    if (!node) return;
    node.hidden = false;
    node.open = true;
    node.scrollIntoView({ block: "start" });
  }

  /* ---------- values: a generic, recursive view of any row ---------- */
  function renderValue(value, depth) {
    if (value === null || value === undefined) return h("span", { cls: "empty", text: "null" });
    if (typeof value === "string") {
      if (value.length > 140 || value.includes("\n")) return h("div", { cls: "text", text: value });
      return refLink(value);
    }
    if (typeof value !== "object") return h("span", { text: typeof value === "number" && Number.isInteger(value) ? String(value) : fmt(value) });
    if (depth > 6) return h("code", { text: JSON.stringify(value) });
    if (Array.isArray(value)) {
      if (value.length === 0) return h("span", { cls: "empty", text: "[]" });
      if (value.every(isPlain) && JSON.stringify(value).length < 400) {
        return h("code", { text: value.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ") });
      }
      return h("div", {}, value.map((v, i) => keyValues([["[" + i + "]", v]], depth + 1)));
    }
    const entries = Object.entries(value);
    if (entries.length === 0) return h("span", { cls: "empty", text: "{}" });
    return keyValues(entries, depth + 1);
  }

  function keyValues(entries, depth) {
    const dl = h("dl", { cls: "kv" });
    for (const [key, value] of entries) {
      dl.appendChild(h("dt", { text: key }));
      dl.appendChild(h("dd", {}, [renderValue(value, depth)]));
    }
    return dl;
  }

  function field(label, content) {
    return h("div", { cls: "field" }, [h("div", { cls: "label", text: label }), content]);
  }

  /* ---------- quality cues: keyword families of the quality score, highlighted in the chain ---------- */
  function cueMatcher(cues) {
    const families = Object.keys(cues || {});
    if (families.length === 0) return null;
    const byWord = new Map();
    const alternatives = [];
    families.forEach((family, index) => {
      for (const word of cues[family]) {
        const key = word.toLowerCase().split(/\s+/).join(" ");
        if (!key || byWord.has(key)) continue;
        byWord.set(key, index);
        alternatives.push(key.split(" ").map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("\\s+"));
      }
    });
    if (alternatives.length === 0) return null;
    alternatives.sort((a, b) => b.length - a.length);
    const edge = "[\\p{L}\\p{N}_'\\-]";
    const regex = new RegExp("(?<!" + edge + ")(?:" + alternatives.join("|") + ")(?!" + edge + ")", "giu");
    return { regex, byWord, families };
  }

  function highlighted(text, matcher) {
    const box = h("div", { cls: "text" });
    if (!matcher) { box.textContent = text; return box; }
    let last = 0;
    for (const match of text.matchAll(matcher.regex)) {
      if (match.index > last) box.appendChild(document.createTextNode(text.slice(last, match.index)));
      const family = matcher.byWord.get(match[0].toLowerCase().split(/\s+/).join(" ")) || 0;
      box.appendChild(h("mark", { cls: "cue" + (family % 5), title: matcher.families[family], text: match[0] }));
      last = match.index + match[0].length;
    }
    if (last < text.length) box.appendChild(document.createTextNode(text.slice(last)));
    return box;
  }

  function cueLegend(matcher) {
    if (!matcher) return null;
    const parts = matcher.families.map((family, index) => h("mark", { cls: "cue" + (index % 5), text: family }));
    const legend = h("p", { cls: "note" }, ["Quality cues highlighted in the chains: "]);
    parts.forEach((part, i) => { legend.appendChild(part); if (i < parts.length - 1) legend.appendChild(document.createTextNode(" ")); });
    legend.appendChild(document.createTextNode(" (the keyword families the quality score counts)."));
    return legend;
  }

  /* ---------- one item ---------- */
  function meter(value) {
    const bar = h("span", { cls: "meter" }, [h("i")]);
    bar.firstChild.style.width = Math.max(0, Math.min(1, value)) * 100 + "%";
    return h("span", {}, [bar, h("span", { text: fmt(value) })]);
  }

  function renderScores(value, matcher, depth, labels) {
    if (typeof value === "number" && value >= 0 && value <= 1) return meter(value);
    if (!value || typeof value !== "object" || Array.isArray(value) || depth > 4) return renderValue(value, depth);
    const dl = h("dl", { cls: "kv" });
    for (const [key, v] of Object.entries(value)) {  // a score that stands in for another is shown by its name
      dl.appendChild(h("dt", { text: (labels || {})[key] || key, title: key }));
      if (key === "keyword_hits" && v && typeof v === "object" && matcher) {
        const chips = h("span", {});
        for (const [family, count] of Object.entries(v)) {
          const index = matcher.families.indexOf(family);
          chips.appendChild(h("mark", { cls: "cue" + ((index < 0 ? 4 : index) % 5), text: family + " " + fmt(count) }));
          chips.appendChild(document.createTextNode(" "));
        }
        dl.appendChild(h("dd", {}, [chips]));
      } else {
        dl.appendChild(h("dd", {}, [renderScores(v, matcher, depth + 1)]));
      }
    }
    return dl;
  }

  function renderDecisions(decisions) {
    const chips = h("div", { cls: "chips" });
    for (const [stage, decision] of Object.entries(decisions)) {
      chips.appendChild(h("span", { cls: decision === "kept" ? "kept" : "other", title: decision, text: stage + ": " + decision }));
    }
    return chips;
  }

  function renderVerdict(verdict) {
    if (!verdict || typeof verdict !== "object") return renderValue(verdict, 1);
    const line = h("div", {}, [badge(verdict.status), " "]);
    if (verdict.reason) line.appendChild(h("span", { text: verdict.reason }));
    if (verdict.extracted !== undefined) line.appendChild(h("span", {}, ["  · extracted: ", h("code", { text: String(verdict.extracted) })]));
    return line;
  }

  function badge(status) {
    if (status === null || status === undefined) return null;
    const text = String(status);
    const tone = ["correct", "kept", "true"].includes(text) ? "good" : ["incorrect", "false"].includes(text) ? "bad" : "warn";
    return h("span", { cls: "badge " + tone, text });
  }

  function renderRow(row, view, matcher) {
    const body = h("div", { cls: "body" });
    const shown = new Set();
    const answers = (view.answers || []).filter((k) => row[k] !== undefined && row[k] !== null);
    if (answers.length) {
      body.appendChild(h("div", { cls: "answers" }, answers.map((k) =>
        h("span", {}, [h("b", { text: (view.labels || {})[k] || k }), ": ", h("code", { text: String(row[k]) })]))));
      answers.forEach((k) => shown.add(k));
    }
    if (!row.verdict && typeof row.status === "string") {  // an evaluation sample: its verdict's fields are top-level
      body.appendChild(field("verdict", renderVerdict({ status: row.status, reason: row.reason })));
      shown.add("status");
      shown.add("reason");
    }
    for (const key of ["verdict", "judge_verdict", "symbolic_verdict"]) {
      if (row[key] && typeof row[key] === "object") {
        body.appendChild(field(key.replace("_", " "), renderVerdict(row[key])));
        shown.add(key);
      }
    }
    for (const key of view.texts || []) {
      if (typeof row[key] !== "string") continue;
      const plain = (view.plain || []).includes(key);
      body.appendChild(field((view.labels || {})[key] || key, plain ? h("div", { cls: "text", text: row[key] }) : highlighted(row[key], matcher)));
      shown.add(key);
    }
    if (row.scores && typeof row.scores === "object") {
      body.appendChild(field("scores", renderScores(row.scores, matcher, 0, view.score_labels)));
      shown.add("scores");
    }
    if (row.decisions && typeof row.decisions === "object" && !Array.isArray(row.decisions)) {
      body.appendChild(field("decisions", renderDecisions(row.decisions)));
      shown.add("decisions");
    }
    const rest = Object.entries(row).filter(([k]) => !shown.has(k));
    if (rest.length) body.appendChild(field("all other fields", keyValues(rest, 1)));
    return body;
  }

  /* ---------- sections ---------- */
  function header() {
    ROOT.appendChild(h("h1", { text: DATA.title || "report" }));
    if (DATA.intro) ROOT.appendChild(h("p", { cls: "intro", text: DATA.intro }));
    if (DATA.headline && DATA.headline.length) {
      ROOT.appendChild(h("div", { cls: "headline" }, DATA.headline.map(([label, value]) =>
        h("div", {}, [h("b", { text: fmt(value) }), h("span", { text: label })]))));
    }
    const toc = h("nav", { cls: "toc" });
    const links = [["funnel", DATA.funnel], ["charts", DATA.charts && DATA.charts.length], ["tables", DATA.tables && DATA.tables.length],
      ["items", DATA.items], ["rejects", DATA.rejects], ["provenance", DATA.footer]];
    for (const [name, present] of links) if (present) toc.appendChild(h("a", { href: "#" + name, text: name === "items" ? DATA.items.title : name }));
    ROOT.appendChild(toc);
  }

  function funnelSection(stages) {
    const section = h("section", { id: "funnel" }, [h("h2", { text: "Funnel" })]);
    const columns = ["stage", "unit", "in", "out", "problems in", "problems out", "dropped (by reason)", "seconds", "notes"];
    const table = h("table", {}, [h("tr", {}, columns.map((c) => h("th", { text: c })))]);
    for (const stage of stages) {
      const dropped = h("td", {});
      for (const [reason, count] of Object.entries(stage.dropped || {})) {
        dropped.appendChild(h("a", { cls: "ref", href: "#rejects", text: reason + ": " + fmt(count),
          onclick: () => showRejects(stage.stage, reason) }));
        dropped.appendChild(h("br"));
      }
      const notes = Object.entries(stage.notes || {}).map(([k, v]) =>
        k + "=" + (Array.isArray(v) ? v.length + " listed" : v && typeof v === "object" ? Object.entries(v).map(([a, b]) => a + ": " + (isPlain(b) ? b : JSON.stringify(b))).join(", ") : v));
      table.appendChild(h("tr", {}, [
        h("td", { text: stage.stage + (stage.enabled === false ? " (off)" : "") }), h("td", { text: stage.unit }),
        h("td", { cls: "num", text: fmt(stage.items_in) }), h("td", { cls: "num", text: fmt(stage.items_out) }),
        h("td", { cls: "num", text: fmt(stage.problems_in) }), h("td", { cls: "num", text: fmt(stage.problems_out) }),
        dropped, h("td", { cls: "num", text: fmt(stage.seconds) }), h("td", { text: notes.join("; ") || "-" })]));
    }
    section.appendChild(table);
    return section;
  }

  function tablesSection(tables) {
    const section = h("section", { id: "tables" });
    for (const table of tables) {
      section.appendChild(h("h2", { text: table.title }));
      const node = h("table", {}, [h("tr", {}, table.columns.map((c) => h("th", { text: c })))]);
      for (const row of table.rows) node.appendChild(h("tr", {}, row.map((v) => h("td", { cls: typeof v === "number" ? "num" : null, text: fmt(v) }))));
      section.appendChild(node);
    }
    return section;
  }

  /* ---------- charts ---------- */
  function chartBox(spec, svg) {
    const legend = h("div", { cls: "legend" });
    spec.series.forEach((series, i) => {
      const swatch = h("i");
      swatch.style.background = COLORS[i % COLORS.length];
      legend.appendChild(swatch);
      legend.appendChild(document.createTextNode(series.label));
    });
    return h("div", { cls: "chart" }, [h("h3", { text: spec.title }), svg, spec.series.length > 1 || spec.kind === "hist" ? legend : null,
      spec.note ? h("p", { cls: "note", text: spec.note }) : null]);
  }

  function bar(x, y, width, height, color, tipText, opacity) {
    const rect = s("rect", { cls: "bar", x, y, width: Math.max(0, width), height: Math.max(0, height), fill: color, "fill-opacity": opacity || 1, "data-tip": tipText });
    const title = s("title");
    title.textContent = tipText;
    rect.appendChild(title);
    return rect;
  }

  function label(svg, x, y, text, anchor) {
    const node = s("text", { x, y, "text-anchor": anchor || "middle" });
    node.textContent = text;
    svg.appendChild(node);
  }

  function histChart(spec) {
    const W = 560, H = 240, L = 48, R = 28, T = 10, B = 36;  // R: half of the last edge's label, centred on it
    const svg = s("svg", { viewBox: "0 0 " + W + " " + H, role: "img" });
    const edges = spec.edges, bins = edges.length - 1;
    const top = Math.max(1, ...spec.series.flatMap((series) => series.values));
    const bw = (W - L - R) / bins;
    const y = (v) => H - B - (v / top) * (H - B - T);
    spec.series.forEach((series, si) => {
      series.values.forEach((count, i) => {
        const tipText = series.label + "\n" + fmt(edges[i]) + " – " + fmt(edges[i + 1]) + ": " + fmt(count);
        svg.appendChild(bar(L + i * bw + 1, y(count), bw - 2, H - B - y(count), COLORS[si % COLORS.length], tipText, spec.series.length > 1 ? 0.6 : 0.9));
      });
    });
    axes(svg, W, H, L, R, T, B, top);
    for (let i = 0; i <= bins; i += Math.max(1, Math.round(bins / 5))) label(svg, L + i * bw, H - B + 14, tick(edges[i]));
    label(svg, (W + L) / 2, H - 4, spec.xlabel || "");
    return chartBox(spec, svg);
  }

  function axes(svg, W, H, L, R, T, B, top, format) {
    svg.appendChild(s("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" }));
    svg.appendChild(s("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" }));
    for (let k = 0; k <= 4; k++) {
      const value = (top * k) / 4;
      const text = format ? format(value) : Number.isInteger(top) && top >= 4 ? fmt(Math.round(value)) : tick(value);
      label(svg, L - 4, H - B - (k / 4) * (H - B - T) + 4, text, "end");
    }
  }

  function barChart(spec) {
    return spec.horizontal ? hbarChart(spec) : vbarChart(spec);
  }

  function vbarChart(spec) {
    const W = 560, H = 260, L = 48, R = 12, T = 10, B = 64;
    const svg = s("svg", { viewBox: "0 0 " + W + " " + H, role: "img" });
    const cats = spec.categories, n = spec.series.length;
    const top = Math.max(spec.percent ? 0.01 : 1, ...spec.series.flatMap((series) => series.values));
    const gw = (W - L - R) / Math.max(1, cats.length), bw = (gw - 6) / n;
    const y = (v) => H - B - (v / top) * (H - B - T);
    cats.forEach((cat, ci) => {
      spec.series.forEach((series, si) => {
        const v = series.values[ci] || 0;
        const shown = spec.percent ? pct(v) : fmt(v);
        svg.appendChild(bar(L + ci * gw + 3 + si * bw, y(v), bw - 1, H - B - y(v), COLORS[si % COLORS.length], cat + " · " + series.label + ": " + shown));
      });
      const text = s("text", { x: L + ci * gw + gw / 2, y: H - B + 12, "text-anchor": "end", transform: "rotate(-30 " + (L + ci * gw + gw / 2) + " " + (H - B + 12) + ")" });
      text.textContent = cat.length > 18 ? cat.slice(0, 17) + "…" : cat;
      svg.appendChild(text);
    });
    axes(svg, W, H, L, R, T, B, top, spec.percent ? pct : null);
    label(svg, (W + L) / 2, H - 4, spec.xlabel || "");
    return chartBox(spec, svg);
  }

  function hbarChart(spec) {
    const cats = spec.categories, n = spec.series.length;
    const rowH = 10 + 9 * n, W = 560, L = 110, R = 60, T = 6, B = 30, H = T + B + rowH * cats.length;
    const svg = s("svg", { viewBox: "0 0 " + W + " " + H, role: "img" });
    const top = Math.max(1, ...spec.series.flatMap((series) => series.values));
    const scale = spec.log ? (v) => (v <= 0 ? 0 : Math.log10(v + 1) / Math.log10(top + 1)) : (v) => v / top;
    cats.forEach((cat, ci) => {
      label(svg, L - 6, T + ci * rowH + rowH / 2 + 4, cat, "end");
      spec.series.forEach((series, si) => {
        const v = series.values[ci];
        if (v === null || v === undefined) return;
        const width = scale(v) * (W - L - R);
        svg.appendChild(bar(L, T + ci * rowH + 4 + si * 9, width, 8, COLORS[si % COLORS.length], cat + " · " + series.label + ": " + fmt(v)));
        label(svg, L + width + 4, T + ci * rowH + 4 + si * 9 + 8, fmt(v), "start");
      });
    });
    svg.appendChild(s("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" }));
    label(svg, (W + L) / 2, H - 8, spec.xlabel || "");
    return chartBox(spec, svg);
  }

  function chartsSection(charts, leftOut) {
    const grid = h("div", { cls: "charts" });
    for (const spec of charts) grid.appendChild(spec.kind === "hist" ? histChart(spec) : barChart(spec));
    const why = (leftOut || []).map((line) => h("p", { cls: "note left-out", text: line }));  // a chart with nothing to show
    return h("section", { id: "charts" }, [h("h2", { text: "Charts" }), h("p", { cls: "note", text: "Hover a bar for its numbers." }), grid, ...why]);
  }

  /* ---------- selected items: every one is an element with data-item-id ---------- */
  function selectOf(id, allLabel, values) {
    const select = h("select", { id }, [h("option", { value: "", text: allLabel })]);
    for (const value of values) select.appendChild(h("option", { value, text: value }));
    return select;
  }

  function itemsSection(spec) {
    const view = spec.view || {};
    const matcher = cueMatcher(view.cues);
    const index = spec.index;
    index.forEach((entry, i) => {
      REFS.set(entry.id, i);
      const chain = spec.rows[i] && spec.rows[i].chain_id;
      if (typeof chain === "string" && !REFS.has(chain)) REFS.set(chain, i);
    });
    const section = h("section", { id: "items" }, [h("h2", { text: spec.title + " (" + fmt(index.length) + ")" })]);
    if (spec.note) section.appendChild(h("p", { cls: "note", text: spec.note }));
    const legend = cueLegend(matcher);
    if (legend) section.appendChild(legend);
    const domains = [...new Set(index.map((e) => e.domain).filter((d) => d !== null && d !== undefined))].sort();
    const statuses = [...new Set(index.map((e) => e.status).filter((d) => d !== null && d !== undefined))].sort();
    const scores = index.map((e) => e.score).filter((v) => typeof v === "number");
    const search = h("input", { type: "search", id: "item-search", placeholder: "search text (all words)", "aria-label": "search items" });
    const domain = domains.length ? selectOf("item-domain", "all domains", domains) : null;
    const status = statuses.length ? selectOf("item-status", "any verdict", statuses) : null;
    const low = scores.length ? h("input", { type: "number", id: "item-score-min", step: "0.01", placeholder: "min", "aria-label": "minimum score" }) : null;
    const high = scores.length ? h("input", { type: "number", id: "item-score-max", step: "0.01", placeholder: "max", "aria-label": "maximum score" }) : null;
    const count = h("span", { cls: "count", id: "item-count" });
    const scoreName = view.score_name || "score";  // named apart from the charts' scores (selection score, ...)
    section.appendChild(h("div", { cls: "filters" }, [search, domain, status, scores.length ? h("span", { text: scoreName, title: view.score_hint || scoreName }) : null, low, high, count]));
    const list = h("div", { id: "item-list" });
    const nodes = index.map((entry, i) => {
      const row = spec.rows[i];
      const summary = h("summary", {}, [
        row && row.rank !== undefined && row.rank !== null ? h("b", { text: "#" + row.rank + " " }) : null,
        h("span", { cls: "id", text: entry.id }),
        entry.domain !== null && entry.domain !== undefined ? h("span", { cls: "badge", text: entry.domain }) : null,
        badge(entry.status),
        typeof entry.score === "number" ? h("span", { cls: "badge", text: scoreName + " " + fmt(entry.score), title: view.score_hint || scoreName }) : null,
        ...(entry.flags || []).map((flag) => h("span", { cls: "badge warn", text: flag }))]);
      const node = h("details", { cls: "item", id: "item-" + i, "data-item-id": entry.id }, [summary]);
      node.addEventListener("toggle", () => {
        if (node.open && !node.dataset.built) { node.appendChild(renderRow(row, view, matcher)); node.dataset.built = "1"; }
      });
      list.appendChild(node);
      return node;
    });
    section.appendChild(list);
    const hay = [];
    const apply = () => {
      const words = terms(search.value);
      const lo = low && low.value !== "" ? Number(low.value) : null;
      const hi = high && high.value !== "" ? Number(high.value) : null;
      let shown = 0;
      index.forEach((entry, i) => {
        let ok = (!domain || !domain.value || entry.domain === domain.value) && (!status || !status.value || entry.status === status.value);
        if (ok && (lo !== null || hi !== null)) ok = typeof entry.score === "number" && (lo === null || entry.score >= lo) && (hi === null || entry.score <= hi);
        if (ok && words.length) {
          if (hay[i] === undefined) hay[i] = haystack(spec.rows[i]) + "\n" + String(entry.id).toLowerCase();
          ok = matchesAll(hay[i], words);
        }
        nodes[i].hidden = !ok;
        shown += ok ? 1 : 0;
      });
      count.textContent = fmt(shown) + " of " + fmt(index.length) + " shown";
    };
    search.addEventListener("input", debounce(apply, 120));
    for (const control of [domain, status, low, high]) if (control) control.addEventListener("input", apply);
    apply();
    return section;
  }

  /* ---------- rejects: grouped by stage and reason, each shown one carrying data-reject-reason ---------- */
  let showRejects = () => {};

  function renderReject(row, problems) {
    const head = h("div", {}, [h("span", { cls: "id", text: row.id }), h("span", { cls: "badge", text: row.kind })]);
    if (row.problem_id && row.problem_id !== row.id) head.appendChild(h("span", {}, ["  problem ", refLink(row.problem_id)]));
    const node = h("div", { cls: "reject", "data-reject-reason": row.reason }, [head]);
    const problem = (problems || {})[row.problem_id];
    if (problem) {  // the problem and its gold beside the evidence, so the decision can be judged here
      const answers = [h("span", {}, [h("b", { text: "gold" }), ": ", h("code", { text: String(problem.gold) })])];
      if (row.detail && row.detail.extracted !== undefined && row.detail.extracted !== null) {
        answers.push(h("span", {}, [h("b", { text: "chain's answer" }), ": ", h("code", { text: String(row.detail.extracted) })]));
      }
      node.appendChild(h("div", { cls: "answers reject-gold" }, answers));
      node.appendChild(field("problem", h("div", { cls: "text reject-problem", text: problem.problem })));
    }
    const detail = row.detail && typeof row.detail === "object" ? Object.entries(row.detail) : [];
    if (detail.length) node.appendChild(keyValues(detail, 1));
    return node;
  }

  function rejectsSection(spec) {
    const section = h("section", { id: "rejects" }, [h("h2", { text: spec.title || "Rejects" })]);
    if (spec.note) section.appendChild(h("p", { cls: "note", text: spec.note }));
    const groups = spec.groups.map((group) => ({ ...group, rows: [] }));
    const byKey = new Map(groups.map((g, i) => [g.stage + "\u0000" + g.reason, i]));
    spec.rows.forEach((row, i) => {
      const g = byKey.get(row.stage + "\u0000" + row.reason);
      if (g !== undefined) groups[g].rows.push(i);
    });
    const search = h("input", { type: "search", id: "reject-search", placeholder: "search ids and evidence", "aria-label": "search rejects" });
    const reason = h("select", { id: "reject-reason" }, [h("option", { value: "", text: "every stage and reason" })]);
    groups.forEach((g, i) => reason.appendChild(h("option", { value: String(i), text: g.stage + " › " + g.reason + " (" + fmt(g.count) + ")" })));
    const count = h("span", { cls: "count", id: "reject-count" });
    section.appendChild(h("div", { cls: "filters" }, [search, reason, count]));
    const hay = [];
    const state = groups.map(() => ({ limit: PAGE }));
    const nodes = groups.map((group, gi) => {
      const shownNote = group.shown < group.count ? fmt(group.shown) + " of them in this report (a seeded sample; all in rejects.jsonl)" : "all in this report";
      const summary = h("summary", {}, [h("b", { text: group.stage + " › " }), h("span", { cls: "id", text: group.reason }),
        h("span", { cls: "badge", text: fmt(group.count) }), h("span", { cls: "note", text: "  " + shownNote })]);
      const body = h("div", { cls: "body" });
      const node = h("details", { cls: "group", id: "rejects-" + gi }, [summary, body]);
      node.addEventListener("toggle", () => { if (node.open) fill(gi); });
      return { node, body };
    });
    const matching = (gi) => {
      const words = terms(search.value);
      if (!words.length) return groups[gi].rows;
      return groups[gi].rows.filter((i) => {
        if (hay[i] === undefined) hay[i] = haystack([spec.rows[i], (spec.problems || {})[spec.rows[i].problem_id]]);
        return matchesAll(hay[i], words);
      });
    };
    const fill = (gi) => {
      const { body } = nodes[gi];
      body.textContent = "";
      const rows = matching(gi);
      for (const i of rows.slice(0, state[gi].limit)) body.appendChild(renderReject(spec.rows[i], spec.problems));
      if (rows.length > state[gi].limit) {
        body.appendChild(h("button", { cls: "more", type: "button", text: "show " + Math.min(PAGE, rows.length - state[gi].limit) + " more (" + fmt(rows.length - state[gi].limit) + " left)",
          onclick: () => { state[gi].limit += PAGE; fill(gi); } }));
      }
      if (!rows.length) body.appendChild(h("p", { cls: "empty", text: "none of this group's rows in the report match" }));
    };
    const apply = () => {
      const words = terms(search.value);
      let rowsShown = 0;
      groups.forEach((group, gi) => {
        const picked = !reason.value || reason.value === String(gi);
        const rows = picked ? matching(gi) : [];
        nodes[gi].node.hidden = !picked || (words.length > 0 && rows.length === 0);
        if (!nodes[gi].node.hidden && (words.length || reason.value)) nodes[gi].node.open = true;
        if (nodes[gi].node.open) fill(gi);
        rowsShown += rows.length;
      });
      count.textContent = fmt(rowsShown) + " of " + fmt(spec.rows.length) + " rows in this report match (" + fmt(spec.total) + " rejected in all)";
    };
    search.addEventListener("input", debounce(apply, 150));
    reason.addEventListener("input", apply);
    showRejects = (stage, name) => {
      const gi = groups.findIndex((g) => g.stage === stage && (g.reason === name || g.reason.split(":")[0] === name));
      if (gi < 0) return;
      reason.value = String(gi);
      apply();
      nodes[gi].node.scrollIntoView({ block: "start" });
    };
    const list = h("div", { id: "reject-list" }, nodes.map((n) => n.node));
    if (!groups.length) list.appendChild(h("p", { cls: "empty", text: "nothing was rejected" }));
    section.appendChild(list);
    apply();
    return section;
  }

  /* ---------- provenance ---------- */
  function footer(spec) {
    const node = h("footer", { id: "provenance" }, [h("h2", { text: "Provenance" })]);
    if (spec.facts && spec.facts.length) node.appendChild(keyValues(spec.facts, 1));
    if (spec.manifest) {
      node.appendChild(h("details", {}, [h("summary", { text: spec.manifest_label || "manifest.json (all of it)" }),
        h("pre", { text: JSON.stringify(spec.manifest, null, 2) })]));
    }
    if (spec.note) node.appendChild(h("p", { text: spec.note }));
    return node;
  }

  header();
  if (DATA.funnel) ROOT.appendChild(funnelSection(DATA.funnel));
  if (DATA.charts && DATA.charts.length) ROOT.appendChild(chartsSection(DATA.charts, DATA.charts_left_out));
  if (DATA.tables && DATA.tables.length) ROOT.appendChild(tablesSection(DATA.tables));
  if (DATA.items) ROOT.appendChild(itemsSection(DATA.items));
  if (DATA.rejects) ROOT.appendChild(rejectsSection(DATA.rejects));
  if (DATA.footer) ROOT.appendChild(footer(DATA.footer));
  const followHash = () => {  // report.html#item-N opens item N: a link to one item can be shared
    const match = /^#item-(\d+)$/.exec(window.location.hash);
    if (match) openItem(Number(match[1]));
  };
  window.addEventListener("hashchange", followHash);
  followHash();
  document.body.setAttribute("data-ready", "1");
})();
