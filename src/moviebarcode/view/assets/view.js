// The view page of moviebarcode: a barcode to explore. Vanilla JavaScript, no request:
// everything it shows is in the page (the JSON of #mb-data and #mb-thumbs).
"use strict";
(function () {
  window.mbStart = performance.now(); // the script starts: the page is read and parsed
  const $ = (id) => document.getElementById(id);
  const MODES = ["stacked", "dominant", "least", "equal", "average", "squeeze"];
  const CLUSTER_MODES = new Set(["stacked", "dominant", "least", "equal"]);
  const STRIP_H = 180; // rows of a stacked or equal strip (the barcode's CSS height)
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
    el.dataset.span = `${S.a}-${S.b}`; // the range this axis was drawn for
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
  const thumbs = { meta: JSON.parse($("mb-thumbs").textContent), elements: null, sheets: [] };
  const thumbMeta = () => thumbs.meta;
  function sheet(j) {
    const m = thumbMeta();
    if (!thumbs.sheets[j]) {
      thumbs.elements = thumbs.elements || document.querySelectorAll("script.mb-sheet");
      const img = new Image();
      img.src = `data:${m.type};base64,${thumbs.elements[j].textContent}`;
      thumbs.sheets[j] = { img, ready: false };
      img.decode().then(() => { thumbs.sheets[j].ready = true; if (S.shown >= 0) drawThumb(S.shown); }).catch(() => {});
    }
    return thumbs.sheets[j];
  }
  function drawThumb(i) {
    const m = thumbMeta(), canvas = $("thumb");
    if (!m || !m.count) { canvas.hidden = true; return; }
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
  /** The shown columns' cluster colours, weighted by their shares, merged in 15-bit bins:
   * {x: (m, 3) mean colours, w: (m) weights}. */
  function points(c, lo, hi) {
    const used = [], k = c.k;
    for (let i = lo; i < hi; i++) {
      for (let j = 0; j < k; j++) {
        const u = c.units[i * k + j];
        if (!u) break;
        const o = (i * k + j) * 3, r = c.colours[o], g = c.colours[o + 1], b = c.colours[o + 2];
        const bin = ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3);
        if (!bins.w[bin]) used.push(bin);
        bins.w[bin] += u; bins.r[bin] += u * r; bins.g[bin] += u * g; bins.b[bin] += u * b;
      }
    }
    const x = new Float64Array(used.length * 3), w = new Float64Array(used.length);
    used.forEach((bin, p) => {
      const wt = bins.w[bin];
      x[3 * p] = bins.r[bin] / wt; x[3 * p + 1] = bins.g[bin] / wt; x[3 * p + 2] = bins.b[bin] / wt; w[p] = wt;
      bins.w[bin] = bins.r[bin] = bins.g[bin] = bins.b[bin] = 0;
    });
    return { x, w };
  }
  let nearestD = 0; // the distance of the last nearest() found
  /** The centre of C (kk of them) nearest to point p of x; its squared distance in nearestD. */
  function nearest(x, p, C, kk) {
    let best = 0, bd = Infinity;
    for (let j = 0; j < kk; j++) {
      const dr = x[3 * p] - C[3 * j], dg = x[3 * p + 1] - C[3 * j + 1], db = x[3 * p + 2] - C[3 * j + 2];
      const dd = dr * dr + dg * dg + db * db;
      if (dd < bd) { bd = dd; best = j; }
    }
    nearestD = bd;
    return best;
  }
  /** Weighted k-means++ seeds from a fixed seed (the heaviest point first): (k, 3) centres. */
  function seeds({ x, w }, k) {
    const m = w.length, rand = mulberry32(1), C = new Float64Array(k * 3), d = new Float64Array(m);
    let first = 0;
    for (let p = 1; p < m; p++) if (w[p] > w[first]) first = p;
    C.set(x.subarray(3 * first, 3 * first + 3), 0);
    for (let kk = 1; kk <= k; kk++) {
      let total = 0;
      for (let p = 0; p < m; p++) { nearest(x, p, C, kk); d[p] = nearestD; total += w[p] * d[p]; }
      if (kk === k || total <= 0) return C.subarray(0, 3 * kk);
      let r = rand() * total, p = 0;
      while (p < m - 1 && (r -= w[p] * d[p]) > 0) p++;
      C.set(x.subarray(3 * p, 3 * p + 3), 3 * kk);
    }
    return C;
  }
  /** Weighted k-means of points {x, w}, Lloyd from :func:`seeds`: [{rgb, weight}], heaviest first. */
  function kmeans(P, k) {
    const { x, w } = P, m = w.length;
    if (!m) return [];
    const C = seeds(P, Math.min(k, m)), kk = C.length / 3, label = new Int32Array(m);
    for (let it = 0; it < 30; it++) {
      const sums = new Float64Array(kk * 4);
      for (let p = 0; p < m; p++) {
        const j = (label[p] = nearest(x, p, C, kk));
        sums[4 * j] += w[p] * x[3 * p]; sums[4 * j + 1] += w[p] * x[3 * p + 1]; sums[4 * j + 2] += w[p] * x[3 * p + 2]; sums[4 * j + 3] += w[p];
      }
      let moved = 0;
      for (let j = 0; j < kk; j++) {
        const t = sums[4 * j + 3];
        if (!t) continue;
        for (let ch = 0; ch < 3; ch++) {
          const v = sums[4 * j + ch] / t;
          moved = Math.max(moved, Math.abs(v - C[3 * j + ch]));
          C[3 * j + ch] = v;
        }
      }
      if (moved < 0.1) break;
    }
    const weight = new Float64Array(kk);
    for (let p = 0; p < m; p++) weight[label[p]] += w[p];
    const out = [];
    for (let j = 0; j < kk; j++) {
      if (weight[j] > 0) out.push({ rgb: [0, 1, 2].map((ch) => Math.round(C[3 * j + ch])), weight: weight[j] });
    }
    return out.sort((a, b) => b.weight - a.weight);
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
