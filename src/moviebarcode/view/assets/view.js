// The view page of moviebarcode: a barcode to explore. Vanilla JavaScript, no request:
// everything it shows is in the page (the JSON of #mb-data and #mb-thumbs).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const MODES = ["stacked", "dominant", "least", "equal", "average", "squeeze"];
  const CLUSTER_MODES = new Set(["stacked", "dominant", "least", "equal"]);
  const STRIP_H = 128; // rows of a stacked or equal strip
  const TILE = 4096; // columns of a strip canvas
  const UNITS = 10000; // shares come in 1/10000
  const TICK_STEPS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 18000];

  // ---------------------------------------------------------------- the data
  function bytes(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  const f64 = (s) => new Float64Array(bytes(s).buffer);
  const u16 = (s) => new Uint16Array(bytes(s).buffer);

  const D = JSON.parse($("mb-data").textContent);
  const n = D.n;
  const times = f64(D.times);
  const frames = f64(D.indices);
  const cuts = D.cuts ? f64(D.cuts) : null;
  const average = bytes(D.average);
  const clusterings = D.clusterings.map((c) => ({ ...c, colours: bytes(c.colours), units: u16(c.units) }));
  const minSpan = Math.min(n, 5);

  const S = { mode: D.initial.mode, cl: D.initial.clustering, a: 0, b: n, hover: -1, pinned: -1, shown: -1, marks: false };

  // ---------------------------------------------------------------- time
  const pad = (v) => String(v).padStart(2, "0");
  /** h:mm:ss.s, the tenth truncated (a time code says which tenth the frame is in). */
  function timecode(t) {
    const d = Math.max(0, Math.floor(t * 10 + 1e-6));
    const s = Math.floor(d / 10);
    return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}.${d % 10}`;
  }
  function axisLabel(t, step) {
    const d = Math.round(t * 10);
    const s = Math.floor(d / 10);
    const h = Math.floor(s / 3600);
    const base = h || D.end >= 3600 ? `${h}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}` : `${Math.floor(s / 60)}:${pad(s % 60)}`;
    return step < 1 ? `${base}.${d % 10}` : base;
  }
  const nextTime = (i) => (i + 1 < n ? times[i + 1] : D.end);
  /** The time at position p (columns, 0..n): column i spans [times[i], times[i + 1]). */
  function timeAt(p) {
    const i = Math.min(n - 1, Math.max(0, Math.floor(p)));
    return times[i] + (Math.min(p, n) - i) * (nextTime(i) - times[i]);
  }
  /** The last column at or before time t. */
  function columnAtTime(t) {
    let lo = 0, hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (times[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
  function positionAt(t) {
    const i = columnAtTime(t);
    const span = nextTime(i) - times[i];
    return i + (span > 0 ? Math.min(1, Math.max(0, (t - times[i]) / span)) : 0);
  }

  // ---------------------------------------------------------------- shots
  const cutColumns = cuts ? Array.from(cuts, (c) => { const i = columnAtTime(c); return times[i] < c ? i + 1 : i; }) : [];
  function shotOf(i) {
    let lo = 0, hi = cuts.length; // the number of cuts at or before column i's time
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cuts[mid] <= times[i]) lo = mid + 1; else hi = mid; }
    return lo;
  }

  // ---------------------------------------------------------------- colours
  const hex = (r, g, b) => "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");
  /** Column i's colours of clustering c: [{rgb, units}], largest first, zero shares left out. */
  function swatchesOf(c, i) {
    const out = [];
    for (let j = 0; j < c.k; j++) {
      const u = c.units[i * c.k + j];
      if (!u) break;
      const o = (i * c.k + j) * 3;
      out.push({ rgb: [c.colours[o], c.colours[o + 1], c.colours[o + 2]], units: u });
    }
    return out;
  }
  /** Heights of bands of weights w summing to h: largest remainder, ties to the larger weight, then the earlier. */
  function split(w, h) {
    const total = w.reduce((s, v) => s + v, 0) || 1;
    const quota = w.map((v) => (v * h) / total);
    const out = quota.map(Math.floor);
    let left = h - out.reduce((s, v) => s + v, 0);
    const order = w.map((_, j) => j).sort((x, y) => (quota[y] - out[y]) - (quota[x] - out[x]) || w[y] - w[x] || x - y);
    for (let j = 0; left > 0; j++, left--) out[order[j % order.length]]++;
    return out;
  }

  // ---------------------------------------------------------------- strips: the barcode at one column per frame
  const strips = new Map();
  function clusterStrip(mode, c, lo, hi, h) {
    const img = new ImageData(hi - lo, h);
    const px = img.data, w = hi - lo;
    for (let x = 0; x < w; x++) {
      const sw = swatchesOf(c, lo + x);
      if (!sw.length) continue;
      let bands;
      if (mode === "dominant") bands = [[sw[0], h]];
      else if (mode === "least") bands = [[sw[sw.length - 1], h]];
      else {
        const hs = split(sw.map((s) => (mode === "equal" ? 1 : s.units)), h);
        bands = sw.map((s, j) => [s, hs[j]]);
      }
      let y = 0;
      for (const [s, bh] of bands) {
        for (let r = 0; r < bh; r++, y++) {
          const o = (y * w + x) * 4;
          px[o] = s.rgb[0]; px[o + 1] = s.rgb[1]; px[o + 2] = s.rgb[2]; px[o + 3] = 255;
        }
      }
    }
    return img;
  }
  function averageStrip(lo, hi) {
    const img = new ImageData(hi - lo, 1);
    for (let i = lo; i < hi; i++) {
      const o = (i - lo) * 4;
      img.data[o] = average[i * 3]; img.data[o + 1] = average[i * 3 + 1]; img.data[o + 2] = average[i * 3 + 2]; img.data[o + 3] = 255;
    }
    return img;
  }
  function squeezeTiles() {
    return D.squeeze.map((t) => {
      const img = new Image();
      const tile = { start: t.start, width: t.width, height: 1, source: img, ready: false };
      img.src = t.src;
      img.decode().then(() => {
        tile.height = img.naturalHeight; tile.ready = true;
        if (S.mode === "squeeze") draw();
      }).catch(() => {});
      return tile;
    });
  }
  function buildStrips(mode) {
    if (mode === "squeeze") return squeezeTiles();
    const h = mode === "stacked" || mode === "equal" ? STRIP_H : 1;
    const out = [];
    for (let lo = 0; lo < n; lo += TILE) {
      const hi = Math.min(n, lo + TILE);
      const canvas = document.createElement("canvas");
      canvas.width = hi - lo; canvas.height = h;
      const img = mode === "average" ? averageStrip(lo, hi) : clusterStrip(mode, clusterings[S.cl], lo, hi, h);
      canvas.getContext("2d").putImageData(img, 0, 0);
      out.push({ start: lo, width: hi - lo, height: h, source: canvas, ready: true });
    }
    return out;
  }
  function stripsOf(mode) {
    const key = CLUSTER_MODES.has(mode) ? `${mode}/${S.cl}` : mode;
    if (!strips.has(key)) strips.set(key, buildStrips(mode));
    return strips.get(key);
  }

  // ---------------------------------------------------------------- drawing
  function fit(canvas) {
    const r = canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    return canvas.getContext("2d");
  }
  function paint(ctx, a, b) {
    const W = ctx.canvas.width, H = ctx.canvas.height, span = b - a;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, W, H);
    ctx.imageSmoothingEnabled = span > W;
    ctx.imageSmoothingQuality = "high";
    for (const t of stripsOf(S.mode)) {
      const lo = Math.max(a, t.start), hi = Math.min(b, t.start + t.width);
      if (!t.ready || hi <= lo) continue;
      ctx.drawImage(t.source, lo - t.start, 0, hi - lo, t.height, ((lo - a) / span) * W, 0, ((hi - lo) / span) * W, H);
    }
  }
  function paintCuts(ctx, a, b, lane) {
    const W = ctx.canvas.width, H = ctx.canvas.height, span = b - a;
    const dpr = window.devicePixelRatio || 1;
    if (lane) {
      const edges = [0, ...cutColumns, n];
      for (let s = 0; s + 1 < edges.length; s++) {
        const lo = Math.max(a, edges[s]), hi = Math.min(b, edges[s + 1]);
        if (hi <= lo) continue;
        ctx.fillStyle = s % 2 ? "#55555f" : "#2a2a30";
        ctx.fillRect(((lo - a) / span) * W, 0, Math.max(1, ((hi - lo) / span) * W), H);
      }
      return;
    }
    ctx.fillStyle = "rgba(255, 255, 255, 0.8)";
    for (const c of cutColumns) {
      if (c >= a && c < b) ctx.fillRect(Math.floor(((c - a) / span) * W), 0, Math.max(1, Math.round(dpr)), H);
    }
  }
  function drawAxis() {
    const el = $("axis");
    const t0 = timeAt(S.a), t1 = timeAt(S.b);
    const slots = Math.max(1, Math.floor((el.clientWidth || 600) / 90));
    const step = TICK_STEPS.find((s) => (t1 - t0) / s <= slots) || TICK_STEPS[TICK_STEPS.length - 1];
    el.textContent = "";
    for (let j = Math.ceil(t0 / step - 1e-9); j * step <= t1 + 1e-9; j++) {
      const t = j * step, x = (positionAt(t) - S.a) / (S.b - S.a);
      if (x < 0 || x > 1 || t < times[0] - 1e-9) continue;
      const tick = document.createElement("span");
      tick.className = x < 0.03 ? "tick first" : x > 0.97 ? "tick last" : "tick";
      tick.style.left = `${x * 100}%`;
      tick.dataset.t = String(Math.round(t * 1000) / 1000);
      tick.textContent = axisLabel(t, step);
      el.appendChild(tick);
    }
    el.dataset.step = String(step);
  }
  function draw() {
    const ctx = fit($("barcode"));
    paint(ctx, S.a, S.b);
    if (cuts && S.marks) paintCuts(ctx, S.a, S.b, false);
    if (cuts) paintCuts(fit($("shots")), S.a, S.b, true);
    const mini = fit($("minimap"));
    paint(mini, 0, n);
    const win = $("mini-window");
    win.style.left = `${(S.a / n) * 100}%`;
    win.style.width = `${((S.b - S.a) / n) * 100}%`;
    drawAxis();
    placeMarkers();
    showRange();
    $("stage").dataset.mode = S.mode;
    $("stage").dataset.draws = String(Number($("stage").dataset.draws || 0) + 1);
    schedulePalette();
  }
  let pending = 0;
  const redraw = () => { if (!pending) pending = requestAnimationFrame(() => { pending = 0; draw(); }); };

  // ---------------------------------------------------------------- the range shown
  const first = () => Math.max(0, Math.floor(S.a));
  const last = () => Math.min(n, Math.ceil(S.b)); // exclusive
  function setRange(a, b) {
    let span = Math.min(n, Math.max(minSpan, b - a));
    a = Math.max(0, Math.min(n - span, a));
    S.a = a; S.b = a + span;
    redraw();
  }
  function zoom(factor, centre) {
    const c = centre === undefined ? (S.a + S.b) / 2 : centre;
    const span = Math.min(n, Math.max(minSpan, (S.b - S.a) * factor));
    setRange(c - ((c - S.a) / (S.b - S.a)) * span, c - ((c - S.a) / (S.b - S.a)) * span + span);
  }
  function showRange() {
    const lo = first(), hi = last();
    const whole = lo === 0 && hi === n;
    $("range").textContent = `${timecode(times[lo])} – ${timecode(timeAt(S.b))} · columns ${lo}–${hi - 1} of ${n}` + (whole ? " (the whole film)" : "");
    $("zoom-reset").disabled = whole;
  }
  function ensureVisible(i) {
    if (i < S.a) setRange(i, i + (S.b - S.a));
    else if (i + 1 > S.b) setRange(i + 1 - (S.b - S.a), i + 1);
  }

  // ---------------------------------------------------------------- the column shown
  function columnAt(clientX) {
    const r = $("stage").getBoundingClientRect();
    const f = Math.min(0.999999, Math.max(0, (clientX - r.left) / r.width));
    return Math.min(n - 1, Math.floor(S.a + f * (S.b - S.a)));
  }
  function placeMarker(el, i) {
    if (i < 0 || i + 1 <= S.a || i >= S.b) { el.hidden = true; return; }
    const span = S.b - S.a;
    el.hidden = false;
    el.style.left = `${((i - S.a) / span) * 100}%`;
    el.style.width = `${(1 / span) * 100}%`;
  }
  function placeMarkers() {
    placeMarker($("hover-line"), S.pinned < 0 ? -1 : S.hover);
    placeMarker($("pin-line"), S.pinned >= 0 ? S.pinned : S.hover);
  }
  function swatchList(el, items) {
    el.textContent = "";
    for (const s of items) {
      const li = document.createElement("li");
      const code = hex(...s.rgb), pct = ((100 * s.units) / UNITS).toFixed(1);
      li.dataset.hex = code;
      li.dataset.share = String(s.units / UNITS);
      li.innerHTML = `<span class="chip" style="background:${code}"></span><code>${code}</code>` +
        `<span class="bar"><span style="width:${pct}%"></span></span><span class="share">${pct}%</span>`;
      li.setAttribute("aria-label", `${code}, ${pct} percent`);
      el.appendChild(li);
    }
  }
  function show(i, thumb = true) {
    S.shown = i;
    const t = times[i];
    const el = $("d-time");
    el.textContent = timecode(t);
    el.dataset.seconds = String(t);
    $("d-frame").textContent = String(frames[i]);
    $("d-column").textContent = `${i} of ${n}`;
    $("d-column").dataset.index = String(i);
    if (cuts) {
      const s = shotOf(i);
      const start = s ? cuts[s - 1] : times[0], end = s < cuts.length ? cuts[s] : D.end;
      $("d-shot").textContent = `${s + 1} of ${cuts.length + 1} (${timecode(start)} – ${timecode(end)})`;
    }
    swatchList($("swatches"), swatchesOf(clusterings[S.cl], i));
    const stage = $("stage");
    stage.setAttribute("aria-valuenow", String(i));
    stage.setAttribute("aria-valuetext", `${timecode(t)}, frame ${frames[i]}`);
    if (thumb) drawThumb(i);
  }
  function pin(i) {
    S.pinned = i;
    $("unpin").hidden = i < 0;
    $("pin-text").textContent = i < 0 ? "Hover over the barcode; click to pin a column." : `Column ${i} is pinned.`;
    if (i >= 0) { show(i); $("status").textContent = `Column ${i}, ${timecode(times[i])}, frame ${frames[i]}`; }
    placeMarkers();
  }

  // ---------------------------------------------------------------- thumbnails
  const thumbs = { meta: undefined, sheets: [] };
  function thumbMeta() {
    if (thumbs.meta === undefined) thumbs.meta = JSON.parse($("mb-thumbs").textContent);
    return thumbs.meta;
  }
  function sheet(j) {
    const m = thumbMeta();
    if (!thumbs.sheets[j]) {
      const img = new Image();
      img.src = `data:${m.type};base64,${m.sheets[j]}`;
      thumbs.sheets[j] = { img, ready: false };
      img.decode().then(() => { thumbs.sheets[j].ready = true; if (S.shown >= 0) drawThumb(S.shown); }).catch(() => {});
    }
    return thumbs.sheets[j];
  }
  function drawThumb(i) {
    const m = thumbMeta(), canvas = $("thumb");
    if (!m || !m.sheets.length) { canvas.hidden = true; return; }
    canvas.style.width = `${Math.min(320, Math.max(192, 2 * m.width))}px`; // twice its size at most
    const s = sheet(Math.floor(i / m.per_sheet));
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(canvas.clientWidth * dpr) || m.width, h = Math.round((w * m.height) / m.width);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    canvas.dataset.index = s.ready ? String(i) : "";
    if (!s.ready) return;
    const r = i % m.per_sheet;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(s.img, (r % m.per_row) * m.width, Math.floor(r / m.per_row) * m.height, m.width, m.height, 0, 0, w, h);
  }

  // ---------------------------------------------------------------- the palette of the range
  const BINS = 1 << 15;
  const bins = { w: new Float64Array(BINS), r: new Float64Array(BINS), g: new Float64Array(BINS), b: new Float64Array(BINS) };
  function mulberry32(seed) {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  /** The shown columns' cluster colours, weighted by their shares, merged in 15-bit bins. */
  function points(c, lo, hi) {
    const used = [];
    for (let i = lo; i < hi; i++) {
      for (const s of swatchesOf(c, i)) {
        const [r, g, b] = s.rgb, bin = ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3);
        if (!bins.w[bin]) used.push(bin);
        bins.w[bin] += s.units; bins.r[bin] += s.units * r; bins.g[bin] += s.units * g; bins.b[bin] += s.units * b;
      }
    }
    const pts = used.map((bin) => {
      const w = bins.w[bin], p = [bins.r[bin] / w, bins.g[bin] / w, bins.b[bin] / w, w];
      bins.w[bin] = bins.r[bin] = bins.g[bin] = bins.b[bin] = 0;
      return p;
    });
    return pts;
  }
  const dist2 = (p, q) => (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 + (p[2] - q[2]) ** 2;
  /** Weighted k-means (k-means++ seeding from a fixed seed, then Lloyd): [{rgb, weight}]. */
  function kmeans(pts, k) {
    const rand = mulberry32(1), d = new Float64Array(pts.length).fill(Infinity);
    const centres = [];
    while (centres.length < Math.min(k, pts.length)) {
      const c = centres.length ? null : pts.reduce((x, y) => (y[3] > x[3] ? y : x));
      let pick = c;
      if (!pick) {
        let total = 0;
        pts.forEach((p, i) => { total += p[3] * d[i]; });
        let r = rand() * total, i = 0;
        while (i < pts.length - 1 && (r -= pts[i][3] * d[i]) > 0) i++;
        pick = pts[i];
      }
      centres.push(pick.slice(0, 3));
      pts.forEach((p, i) => { d[i] = Math.min(d[i], dist2(p, pick)); });
    }
    const label = new Int32Array(pts.length);
    for (let it = 0; it < 30; it++) {
      const sums = centres.map(() => [0, 0, 0, 0]);
      pts.forEach((p, i) => {
        let best = 0, bd = Infinity;
        centres.forEach((c, j) => { const dd = dist2(p, c); if (dd < bd) { bd = dd; best = j; } });
        label[i] = best;
        const s = sums[best]; s[0] += p[3] * p[0]; s[1] += p[3] * p[1]; s[2] += p[3] * p[2]; s[3] += p[3];
      });
      let moved = 0;
      sums.forEach((s, j) => {
        if (!s[3]) return;
        const c = [s[0] / s[3], s[1] / s[3], s[2] / s[3]];
        moved = Math.max(moved, dist2(c, centres[j]));
        centres[j] = c;
      });
      if (moved < 0.01) break;
    }
    const weight = centres.map(() => 0);
    pts.forEach((p, i) => { weight[label[i]] += p[3]; });
    return centres.map((c, j) => ({ rgb: c.map((v) => Math.round(v)), weight: weight[j] })).filter((c) => c.weight > 0).sort((x, y) => y.weight - x.weight);
  }
  function rangePalette() {
    const c = clusterings[S.cl], lo = first(), hi = last();
    const found = kmeans(points(c, lo, hi), c.k);
    const total = found.reduce((s, x) => s + x.weight, 0) || 1;
    const units = split(found.map((x) => x.weight), UNITS);
    return { lo, hi, colours: found.map((x, j) => ({ rgb: x.rgb, units: units[j] })), total };
  }
  let paletteTimer = 0;
  function schedulePalette() {
    clearTimeout(paletteTimer);
    paletteTimer = setTimeout(() => {
      const p = rangePalette();
      const whole = p.lo === 0 && p.hi === n;
      $("palette-heading").textContent = whole ? "Palette of the whole film" : `Palette of ${timecode(times[p.lo])} – ${timecode(timeAt(p.hi))}`;
      swatchList($("palette"), p.colours.filter((s) => s.units > 0));
      $("palette").dataset.range = `${p.lo}-${p.hi}`;
    }, 60);
  }

  // ---------------------------------------------------------------- exports
  function download(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  function baseName() {
    const c = clusterings[S.cl];
    const slug = (D.title || "barcode").replace(/[^\w.-]+/g, "_");
    const what = CLUSTER_MODES.has(S.mode) ? `${S.mode}-k${c.k}${c.space === "lab" ? "-lab" : ""}` : S.mode;
    const lo = first(), hi = last();
    return lo === 0 && hi === n ? `${slug}-${what}` : `${slug}-${what}-${lo}-${hi - 1}`;
  }
  function exportPng() {
    $("barcode").toBlob((blob) => download(blob, `${baseName()}.png`), "image/png");
  }
  function exportJson() {
    const c = clusterings[S.cl], p = rangePalette();
    const list = (items) => ({ colors: items.map((s) => s.rgb), shares: items.map((s) => s.units / UNITS) });
    const doc = {
      k: c.k, space: c.space, title: D.title,
      range: { start: times[p.lo], end: timeAt(p.hi), columns: [p.lo, p.hi] },
      palette: list(p.colours.filter((s) => s.units > 0)),
      frames: [],
    };
    for (let i = p.lo; i < p.hi; i++) {
      doc.frames.push({ index: frames[i], time: Math.round(times[i] * 1e6) / 1e6, ...list(swatchesOf(c, i)) });
    }
    download(new Blob([JSON.stringify(doc)], { type: "application/json" }), `${baseName()}-palette.json`);
  }
  function copyTime() {
    if (S.shown < 0) return;
    const text = timecode(times[S.shown]);
    const done = () => { $("status").textContent = `Copied ${text}`; $("copy-time").textContent = "Copied"; setTimeout(() => { $("copy-time").textContent = "Copy"; }, 1200); };
    const fallback = () => {
      const ta = document.createElement("textarea");
      ta.value = text; document.body.appendChild(ta); ta.select();
      try { document.execCommand("copy"); done(); } finally { ta.remove(); }
    };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  }

  // ---------------------------------------------------------------- input
  function bindStage() {
    const stage = $("stage"), sel = $("sel");
    let drag = null;
    stage.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, c: columnAt(e.clientX), moved: false, touch: e.pointerType === "touch" };
      stage.setPointerCapture(e.pointerId);
    });
    stage.addEventListener("pointermove", (e) => {
      const i = columnAt(e.clientX);
      if (drag && !drag.touch && Math.abs(e.clientX - drag.x) > 4) {
        drag.moved = true;
        const lo = Math.min(drag.c, i), hi = Math.max(drag.c, i) + 1, span = S.b - S.a;
        sel.hidden = false;
        sel.style.left = `${((lo - S.a) / span) * 100}%`;
        sel.style.width = `${((hi - lo) / span) * 100}%`;
        return;
      }
      S.hover = i;
      if (S.pinned < 0 && S.shown !== i) show(i);
      placeMarkers();
    });
    stage.addEventListener("pointerup", (e) => {
      if (!drag) return;
      const i = columnAt(e.clientX);
      if (drag.moved) setRange(Math.min(drag.c, i), Math.max(drag.c, i) + 1);
      else pin(S.pinned === i ? -1 : i);
      sel.hidden = true;
      drag = null;
    });
    stage.addEventListener("pointercancel", () => { drag = null; sel.hidden = true; });
    stage.addEventListener("pointerleave", () => { S.hover = -1; placeMarkers(); });
    stage.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = stage.getBoundingClientRect(), f = (e.clientX - r.left) / r.width;
      if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) setRange(S.a + (e.deltaX / r.width) * (S.b - S.a), S.b + (e.deltaX / r.width) * (S.b - S.a));
      else zoom(Math.exp(Math.max(-1, Math.min(1, e.deltaY * 0.002))), S.a + f * (S.b - S.a));
    }, { passive: false });
    stage.addEventListener("keydown", onKey);
  }
  function onKey(e) {
    const cur = S.pinned >= 0 ? S.pinned : S.shown >= 0 ? S.shown : Math.floor(S.a);
    const step = e.shiftKey ? 10 : 1;
    const go = (i) => { i = Math.max(0, Math.min(n - 1, i)); pin(i); ensureVisible(i); };
    const keys = {
      ArrowRight: () => go(cur + step), ArrowLeft: () => go(cur - step),
      Home: () => go(0), End: () => go(n - 1),
      PageDown: () => go(cur + Math.max(1, Math.round((S.b - S.a) / 2))),
      PageUp: () => go(cur - Math.max(1, Math.round((S.b - S.a) / 2))),
      "+": () => zoom(0.5, cur + 0.5), "=": () => zoom(0.5, cur + 0.5), "-": () => zoom(2, cur + 0.5),
      0: () => setRange(0, n), Escape: () => pin(-1),
    };
    if (keys[e.key] && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); keys[e.key](); }
  }
  function bindMinimap() {
    const mini = $("mini");
    let on = false;
    const move = (e) => {
      const r = mini.getBoundingClientRect(), c = ((e.clientX - r.left) / r.width) * n, span = S.b - S.a;
      setRange(c - span / 2, c + span / 2);
    };
    mini.addEventListener("pointerdown", (e) => { on = true; mini.setPointerCapture(e.pointerId); move(e); });
    mini.addEventListener("pointermove", (e) => { if (on) move(e); });
    mini.addEventListener("pointerup", () => { on = false; });
  }
  function bindControls() {
    const mode = $("mode"), cl = $("clustering");
    for (const m of MODES) mode.add(new Option(m, m, false, m === S.mode));
    clusterings.forEach((c, j) => cl.add(new Option(c.label, String(j), false, j === S.cl)));
    mode.addEventListener("change", () => { S.mode = mode.value; redraw(); });
    cl.addEventListener("change", () => { S.cl = Number(cl.value); if (S.shown >= 0) show(S.shown); redraw(); });
    $("zoom-in").addEventListener("click", () => zoom(0.5, S.pinned >= 0 ? S.pinned + 0.5 : undefined));
    $("zoom-out").addEventListener("click", () => zoom(2, S.pinned >= 0 ? S.pinned + 0.5 : undefined));
    $("zoom-reset").addEventListener("click", () => setRange(0, n));
    $("export-png").addEventListener("click", exportPng);
    $("export-json").addEventListener("click", exportJson);
    $("copy-time").addEventListener("click", copyTime);
    $("unpin").addEventListener("click", () => pin(-1));
    if (cuts) {
      $("cuts-toggle").hidden = false;
      $("shots").hidden = false;
      for (const el of document.querySelectorAll(".shot-only")) el.hidden = false;
      $("cuts").addEventListener("change", () => { S.marks = $("cuts").checked; redraw(); });
    }
    window.addEventListener("resize", redraw);
  }

  // ---------------------------------------------------------------- start
  $("facts").textContent = D.facts.join(" · ");
  $("stage").setAttribute("aria-valuemax", String(n - 1));
  bindControls();
  bindStage();
  bindMinimap();
  draw();
  show(0, false); // its thumbnail once the page is ready: the sheets are parsed on first use
  setTimeout(() => { if (S.shown >= 0) drawThumb(S.shown); }, 0);
  window.moviebarcode = {
    get state() { return { mode: S.mode, clustering: S.cl, a: S.a, b: S.b, hover: S.hover, pinned: S.pinned, shown: S.shown }; },
    setRange, n,
  };
  window.mbReady = performance.now();
  document.documentElement.dataset.ready = "true";
  document.dispatchEvent(new Event("moviebarcode-ready"));
})();
