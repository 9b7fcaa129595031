// blend serve: the page. Vanilla JavaScript, no build step, no dependencies.
// The mask is painted on an offscreen canvas at the photo's size (at most 4096 px a side),
// shown over the photo with zoom and pan; the job API is described in README.md.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_MASK_SIDE = 4096;
const UNDO_BUDGET_BYTES = 256 * 1024 * 1024;

const state = {
  status: null,          // GET /api/status
  jobs: new Map(),       // id -> job record
  currentJob: null,      // id shown in the job view
  lastPreview: null,     // {job, image}: the newest preview (one job runs at a time), shown when its job is opened
  photo: null,           // {file: Blob, name, image: ImageBitmap|HTMLImageElement, width, height, url}
  tool: "brush",
  brush: 40,
  spaceHeld: false,
};

// ---------------------------------------------------------------- messages

let toastTimer = null;
function hideToast() { $("toast").hidden = true; }

function toast(message, kind = "error") {
  const el = $("toast");
  el.textContent = message;
  el.className = "toast" + (kind === "info" ? " info" : "");
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, kind === "info" ? 3000 : 9000);
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("blend serve cannot be reached: is it still running?");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) message = body.error.message;
    } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("application/json") ? response.json() : response;
}

function formatDuration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

// ---------------------------------------------------------------- server status

function showStatus(status) {
  state.status = status;
  const pill = $("model-status");
  const models = status.models;
  pill.dataset.state = models.state;
  pill.textContent = {
    loading: "loading models…",
    ready: "models ready",
    missing: "model files missing",
    failed: "models failed to load",
  }[models.state] || models.state;
  const banner = $("banner");
  if (models.state === "missing" || models.state === "failed") {
    // What every method needs; when neither generator is there, each method's own file too.
    const noGenerator = (models.missingForPixel || []).length > 0 && (models.missingForLatent || []).length > 0;
    $("banner-text").textContent = models.state === "missing"
      ? "Some model files are missing, so edits cannot run yet. Get them with" +
        (noGenerator ? " (of the pixel and the latent method's models, one is enough):" : ":")
      : models.message;
    const commands = $("banner-commands");
    commands.replaceChildren();
    const listed = [...(models.missing || []).map((file) => [file, ""])];
    if (noGenerator) {
      for (const file of models.missingForPixel) listed.push([file, "pixel method"]);
      for (const file of models.missingForLatent) listed.push([file, "latent method"]);
    }
    for (const [file, method] of listed) {
      const code = document.createElement("code");
      const how = file.command || (file.option ? `# pass ${file.option} ${file.path} to blend serve`
                                               : `# put ${file.expected} at ${file.path}`);
      code.textContent = method ? `${how}    # ${method}` : how;
      commands.appendChild(code);
    }
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  const q = status.queue;
  $("queue-status").textContent = q.running || q.queued.length
    ? `${q.running ? "1 running" : "idle"}${q.queued.length ? `, ${q.queued.length} waiting` : ""}`
    : "";
  if (!settingsFilled && status.defaults) fillSettings(status.defaults);
  showMethod(false);
  updateRunButton();
}

// ---------------------------------------------------------------- settings

let settingsFilled = false;
const settingFields = {
  method: ["set-method", "text"],
  samples: ["set-samples", "int"],
  batch: ["set-batch", "int"],
  steps: ["set-steps", "text"],
  skip: ["set-skip", "int"],
  ddim: ["set-ddim", "bool"],
  invertMask: ["set-invert", "bool"],
  enforceBackground: ["set-background", "bool"],
  clipLambda: ["set-clip-lambda", "float"],
  rangeLambda: ["set-range-lambda", "float"],
  lpipsLambda: ["set-lpips-lambda", "float"],
  l2Lambda: ["set-l2-lambda", "float"],
  augmentations: ["set-augmentations", "int"],
  maskThreshold: ["set-mask-threshold", "float"],
  region: ["set-region", "text"],
  regionPadding: ["set-region-padding", "optional-int"],
  feather: ["set-feather", "int"],
  maskFrom: ["set-mask-from", "text"],
  truncatePrompt: ["set-truncate", "bool"],
  scheduler: ["set-scheduler", "text"],
  strength: ["set-strength", "float"],
  guidanceScale: ["set-guidance-scale", "float"],
  negativePrompt: ["set-negative-prompt", "text"],
  reconstructBackground: ["set-reconstruct-background", "int"],
  init: ["set-init", "text"],
  blendLevel: ["set-blend-level", "text"],
  predictionType: ["set-prediction-type", "optional-text"],
  maskDilations: ["set-mask-dilations", "int"],
};

// The settings whose defaults differ by method (the latent method's: blend edit --method latent).
const latentDefaults = { steps: "25", samples: 4, batch: 1 };

/** Shows the chosen method's settings; with `resetSteps`, puts its defaults in the fields that differ. */
function showMethod(resetSteps) {
  const latent = $("set-method").value === "latent";
  for (const el of document.querySelectorAll(".pixel-only")) el.hidden = latent;
  for (const el of document.querySelectorAll(".latent-only")) el.hidden = !latent;
  if (resetSteps && state.status) fillSettings(latent ? latentDefaults : pixelDefaults(state.status.defaults));
  // The chosen method's absent model file (the SD model for latent, the UNet for the others).
  const models = (state.status && state.status.models) || {};
  const missing = (latent ? models.missingForLatent : models.missingForPixel) || [];
  const warning = $("method-missing");
  warning.hidden = missing.length === 0;
  warning.textContent = missing.map((m) => `missing ${m.path}` + (m.command ? `: get it with ${m.command}` : "")).join("; ");
}

function pixelDefaults(defaults) {
  return { steps: defaults.steps, samples: defaults.samples, batch: defaults.batch };
}

function fillSettings(settings) {
  for (const [key, [id, kind]] of Object.entries(settingFields)) {
    if (!(key in settings)) continue;
    const el = $(id);
    if (kind === "bool") el.checked = !!settings[key]; else el.value = settings[key] == null ? "" : settings[key];
  }
  if ("seed" in settings) $("set-seed").value = settings.seed;
  $("set-seed-random").checked = false;
  $("set-seed").disabled = false;
  settingsFilled = true;
  if ("method" in settings) showMethod(false);
}

function readSettings() {
  const settings = {};
  for (const [key, [id, kind]] of Object.entries(settingFields)) {
    const el = $(id);
    if (kind === "bool") settings[key] = el.checked;
    else if (kind === "int") settings[key] = parseInt(el.value, 10);
    else if (kind === "float") settings[key] = parseFloat(el.value);
    else if (kind === "optional-int") { if (el.value.trim() !== "") settings[key] = parseInt(el.value, 10); }
    else if (kind === "optional-text") { if (el.value.trim() !== "") settings[key] = el.value.trim(); }
    else settings[key] = el.value.trim();
  }
  // Sent as the digits typed: a number above 2^53 would reach the server rounded.
  settings.seed = $("set-seed-random").checked ? "random" : $("set-seed").value.trim();
  return settings;
}

// ---------------------------------------------------------------- the stage: photo + mask

const stage = {
  canvas: null, ctx: null,
  mask: null, maskCtx: null,       // painted = opaque white
  shadow: null, shadowCtx: null,   // the mask as of the last undo step
  tint: null, tintCtx: null,       // the mask coloured for display
  zoom: 1, panX: 0, panY: 0,       // photo px -> css px: x * zoom + pan
  pointers: new Map(),
  stroke: null,                    // {last: {x,y}, rect}
  gesture: null,
  undo: [], redo: [], undoBytes: 0,
  tintDirty: true,
  frame: 0,
};

function maskScale() { return state.photo ? stage.mask.width / state.photo.width : 1; }

function initStage() {
  stage.canvas = $("stage-canvas");
  stage.ctx = stage.canvas.getContext("2d");
  new ResizeObserver(() => { resizeCanvas(); }).observe($("stage"));
  resizeCanvas();
  const c = stage.canvas;
  c.addEventListener("pointerdown", onPointerDown);
  c.addEventListener("pointermove", onPointerMove);
  c.addEventListener("pointerup", onPointerUp);
  c.addEventListener("pointercancel", onPointerUp);
  c.addEventListener("lostpointercapture", onPointerUp);
  c.addEventListener("wheel", onWheel, { passive: false });
  c.addEventListener("contextmenu", (e) => e.preventDefault());
  c.addEventListener("pointerleave", () => { stage.hover = null; requestDraw(); });
}

function resizeCanvas() {
  const rect = $("stage").getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  stage.canvas.width = Math.max(1, Math.round(rect.width * dpr));
  stage.canvas.height = Math.max(1, Math.round(rect.height * dpr));
  if (state.photo && stage.fitOnResize) fitView();
  requestDraw();
}

function requestDraw() {
  if (stage.frame) return;
  stage.frame = requestAnimationFrame(() => { stage.frame = 0; draw(); });
}

function draw() {
  const { ctx, canvas } = stage;
  const dpr = window.devicePixelRatio || 1;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.photo) return;
  ctx.setTransform(dpr * stage.zoom, 0, 0, dpr * stage.zoom, dpr * stage.panX, dpr * stage.panY);
  ctx.imageSmoothingEnabled = stage.zoom < 4;
  ctx.drawImage(state.photo.image, 0, 0, state.photo.width, state.photo.height);
  if (stage.tintDirty) updateTint();
  ctx.globalAlpha = $("overlay-opacity").value / 100;
  ctx.drawImage(stage.tint, 0, 0, state.photo.width, state.photo.height);
  ctx.globalAlpha = 1;
  // Brush outline under the mouse.
  if (stage.hover && (state.tool === "brush" || state.tool === "eraser") && !state.spaceHeld) {
    ctx.beginPath();
    ctx.arc(stage.hover.x, stage.hover.y, state.brush / 2, 0, Math.PI * 2);
    ctx.lineWidth = 1.5 / stage.zoom;
    ctx.strokeStyle = "rgba(255,255,255,.95)";
    ctx.stroke();
    ctx.lineWidth = 0.75 / stage.zoom;
    ctx.strokeStyle = "rgba(0,0,0,.8)";
    ctx.stroke();
  }
}

function updateTint() {
  const t = stage.tintCtx;
  t.globalCompositeOperation = "copy";
  t.drawImage(stage.mask, 0, 0);
  t.globalCompositeOperation = "source-in";
  t.fillStyle = "#ff3b30";
  t.fillRect(0, 0, stage.tint.width, stage.tint.height);
  t.globalCompositeOperation = "source-over";
  stage.tintDirty = false;
}

function makeCanvas(w, h) {
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  return c;
}

function fitView() {
  const rect = $("stage").getBoundingClientRect();
  const pad = 12;
  const zoom = Math.min((rect.width - 2 * pad) / state.photo.width, (rect.height - 2 * pad) / state.photo.height);
  stage.zoom = Math.max(zoom, 0.01);
  stage.panX = (rect.width - state.photo.width * stage.zoom) / 2;
  stage.panY = (rect.height - state.photo.height * stage.zoom) / 2;
  stage.fitOnResize = true;
  showStageInfo();
  requestDraw();
}

function zoomAt(factor, cx, cy) {
  const zoom = Math.min(Math.max(stage.zoom * factor, 0.02), 32);
  stage.panX = cx - (cx - stage.panX) * (zoom / stage.zoom);
  stage.panY = cy - (cy - stage.panY) * (zoom / stage.zoom);
  stage.zoom = zoom;
  stage.fitOnResize = false;
  showStageInfo();
  requestDraw();
}

function zoomCenter(factor) {
  const rect = $("stage").getBoundingClientRect();
  zoomAt(factor, rect.width / 2, rect.height / 2);
}

function showStageInfo() {
  if (!state.photo) { $("stage-info").textContent = ""; return; }
  $("stage-info").textContent = `${state.photo.name} · ${state.photo.width}×${state.photo.height} · ${Math.round(stage.zoom * 100)} %`;
}

/** Page (client) coordinates to photo pixels. */
function toPhoto(event) {
  const rect = stage.canvas.getBoundingClientRect();
  return {
    x: (event.clientX - rect.left - stage.panX) / stage.zoom,
    y: (event.clientY - rect.top - stage.panY) / stage.zoom,
    cx: event.clientX - rect.left,
    cy: event.clientY - rect.top,
  };
}

function onPointerDown(event) {
  if (!state.photo) return;
  stage.canvas.setPointerCapture(event.pointerId);
  const p = toPhoto(event);
  stage.pointers.set(event.pointerId, p);
  if (stage.pointers.size === 2) {
    // Second finger: abandon the stroke (keep what it painted as an undo step) and pinch.
    if (stage.stroke) endStroke();
    const [a, b] = [...stage.pointers.values()];
    stage.gesture = { kind: "pinch", dist: Math.hypot(a.cx - b.cx, a.cy - b.cy), mid: { x: (a.cx + b.cx) / 2, y: (a.cy + b.cy) / 2 } };
    return;
  }
  if (stage.pointers.size > 2) return;
  const panning = state.tool === "pan" || state.spaceHeld || event.button === 1 || event.button === 2;
  if (panning) {
    stage.gesture = { kind: "pan", x: p.cx, y: p.cy };
    $("stage").classList.add("panning");
    return;
  }
  if (event.button !== 0) return;
  beginStroke(p);
}

function onPointerMove(event) {
  const p = toPhoto(event);
  stage.hover = event.pointerType === "mouse" ? p : null;
  if (!stage.pointers.has(event.pointerId)) { requestDraw(); return; }
  stage.pointers.set(event.pointerId, p);
  const g = stage.gesture;
  if (g && g.kind === "pinch" && stage.pointers.size >= 2) {
    const [a, b] = [...stage.pointers.values()];
    const dist = Math.hypot(a.cx - b.cx, a.cy - b.cy);
    const mid = { x: (a.cx + b.cx) / 2, y: (a.cy + b.cy) / 2 };
    stage.panX += mid.x - g.mid.x;
    stage.panY += mid.y - g.mid.y;
    if (g.dist > 0) zoomAt(dist / g.dist, mid.x, mid.y);
    g.dist = dist; g.mid = mid;
    return;
  }
  if (g && g.kind === "pan") {
    stage.panX += p.cx - g.x;
    stage.panY += p.cy - g.y;
    g.x = p.cx; g.y = p.cy;
    stage.fitOnResize = false;
    requestDraw();
    return;
  }
  if (stage.stroke) {
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) continueStroke(toPhoto(e));
  } else {
    requestDraw();
  }
}

function onPointerUp(event) {
  if (!stage.pointers.has(event.pointerId)) return;
  stage.pointers.delete(event.pointerId);
  if (stage.stroke) endStroke();
  if (stage.pointers.size === 0) {
    stage.gesture = null;
    $("stage").classList.remove("panning");
  } else if (stage.gesture && stage.gesture.kind === "pinch") {
    stage.gesture = null;
  }
}

function onWheel(event) {
  if (!state.photo) return;
  event.preventDefault();
  const p = toPhoto(event);
  if (event.ctrlKey || !event.shiftKey) {
    zoomAt(Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015)), p.cx, p.cy);
  } else {
    stage.panX -= event.deltaY;
    requestDraw();
  }
}

function beginStroke(p) {
  stage.stroke = { last: p, rect: null };
  paintSegment(p, p);
}

function continueStroke(p) {
  paintSegment(stage.stroke.last, p);
  stage.stroke.last = p;
}

function paintSegment(a, b) {
  const s = maskScale();
  const ctx = stage.maskCtx;
  ctx.globalCompositeOperation = state.tool === "eraser" ? "destination-out" : "source-over";
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = state.brush * s;
  ctx.beginPath();
  ctx.moveTo(a.x * s, a.y * s);
  ctx.lineTo(b.x * s + (a.x === b.x && a.y === b.y ? 0.01 : 0), b.y * s);
  ctx.stroke();
  ctx.globalCompositeOperation = "source-over";
  const r = state.brush * s / 2 + 2;
  const seg = {
    x0: Math.min(a.x, b.x) * s - r, y0: Math.min(a.y, b.y) * s - r,
    x1: Math.max(a.x, b.x) * s + r, y1: Math.max(a.y, b.y) * s + r,
  };
  const u = stage.stroke.rect;
  stage.stroke.rect = u ? { x0: Math.min(u.x0, seg.x0), y0: Math.min(u.y0, seg.y0), x1: Math.max(u.x1, seg.x1), y1: Math.max(u.y1, seg.y1) } : seg;
  stage.tintDirty = true;
  requestDraw();
}

function endStroke() {
  const r = stage.stroke.rect;
  stage.stroke = null;
  if (r) commitUndoStep(r);
}

/** Records the change between the shadow (before) and the mask (after) inside rect. */
function commitUndoStep(r) {
  const W = stage.mask.width, H = stage.mask.height;
  const x = Math.max(0, Math.floor(r.x0)), y = Math.max(0, Math.floor(r.y0));
  const w = Math.min(W, Math.ceil(r.x1)) - x, h = Math.min(H, Math.ceil(r.y1)) - y;
  if (w <= 0 || h <= 0) return;
  const before = stage.shadowCtx.getImageData(x, y, w, h);
  const after = stage.maskCtx.getImageData(x, y, w, h);
  stage.shadowCtx.putImageData(after, x, y);
  pushUndo({ x, y, before, after });
}

function pushUndo(step) {
  stage.undo.push(step);
  stage.undoBytes += step.before.data.length * 2;
  stage.redo = [];
  while (stage.undoBytes > UNDO_BUDGET_BYTES && stage.undo.length > 1) {
    const dropped = stage.undo.shift();
    stage.undoBytes -= dropped.before.data.length * 2;
  }
  updateUndoButtons();
}

function applyStep(step, data) {
  stage.maskCtx.putImageData(data, step.x, step.y);
  stage.shadowCtx.putImageData(data, step.x, step.y);
  stage.tintDirty = true;
  requestDraw();
}

function undo() {
  const step = stage.undo.pop();
  if (!step) return;
  stage.undoBytes -= step.before.data.length * 2;
  applyStep(step, step.before);
  stage.redo.push(step);
  updateUndoButtons();
}

function redo() {
  const step = stage.redo.pop();
  if (!step) return;
  applyStep(step, step.after);
  stage.undo.push(step);
  stage.undoBytes += step.before.data.length * 2;
  updateUndoButtons();
}

function updateUndoButtons() {
  $("undo").disabled = stage.undo.length === 0;
  $("redo").disabled = stage.redo.length === 0;
}

/** A whole-mask change (clear, invert, load) as one undo step. */
function changeWholeMask(change) {
  if (!state.photo) return;
  change(stage.maskCtx, stage.mask.width, stage.mask.height);
  stage.tintDirty = true;
  commitUndoStep({ x0: 0, y0: 0, x1: stage.mask.width, y1: stage.mask.height });
  requestDraw();
  updateRunButton();
}

function clearMask() {
  changeWholeMask((ctx, w, h) => ctx.clearRect(0, 0, w, h));
}

function invertMask() {
  changeWholeMask((ctx, w, h) => {
    ctx.globalCompositeOperation = "xor";
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    ctx.globalCompositeOperation = "source-over";
  });
}

/** Fraction of the mask painted (sampled). */
function maskCoverage() {
  if (!state.photo) return 0;
  const w = stage.mask.width, h = stage.mask.height;
  const step = Math.max(1, Math.floor(Math.sqrt((w * h) / 250000)));
  const data = stage.maskCtx.getImageData(0, 0, w, h).data;
  let on = 0, all = 0;
  for (let y = 0; y < h; y += step) {
    for (let x = 0; x < w; x += step) {
      all++;
      if (data[4 * (y * w + x) + 3] > 127) on++;
    }
  }
  return all ? on / all : 0;
}

/** Loads a mask image: white (or, for an image with transparency, transparent) = edit. */
async function loadMaskFile(file) {
  if (!state.photo) { toast("Choose a photo first, then load its mask."); return; }
  let image;
  try {
    image = await createImageBitmap(file);
  } catch (_) {
    toast(`${file.name} is not an image the browser can read.`);
    return;
  }
  const photoRatio = state.photo.width / state.photo.height, maskRatio = image.width / image.height;
  if (Math.abs(photoRatio / maskRatio - 1) > 0.02) {
    toast(`The mask is ${image.width}×${image.height} but the photo is ${state.photo.width}×${state.photo.height}: it was made for another image.`);
    return;
  }
  const w = stage.mask.width, h = stage.mask.height;
  const tmp = makeCanvas(w, h).getContext("2d", { willReadFrequently: true });
  tmp.drawImage(image, 0, 0, w, h);
  const pixels = tmp.getImageData(0, 0, w, h);
  const d = pixels.data;
  let hasAlpha = false;
  for (let i = 3; i < d.length; i += 4) if (d[i] < 250) { hasAlpha = true; break; }
  for (let i = 0; i < d.length; i += 4) {
    const edit = hasAlpha ? d[i + 3] < 128 : (d[i] * 0.299 + d[i + 1] * 0.587 + d[i + 2] * 0.114) > 127;
    d[i] = d[i + 1] = d[i + 2] = 255;
    d[i + 3] = edit ? 255 : 0;
  }
  changeWholeMask((ctx) => ctx.putImageData(pixels, 0, 0));
  toast(hasAlpha ? "Mask loaded: its transparent pixels are the region to edit." : "Mask loaded: its white pixels are the region to edit.", "info");
}

/** The mask as a PNG: white = edit, black = keep, binary. */
function maskBlob() {
  const w = stage.mask.width, h = stage.mask.height;
  const out = makeCanvas(w, h);
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, w, h);
  const pixels = stage.maskCtx.getImageData(0, 0, w, h);
  const src = pixels.data;
  const img = ctx.getImageData(0, 0, w, h);
  const dst = img.data;
  for (let i = 0; i < src.length; i += 4) {
    const v = src[i + 3] > 127 ? 255 : 0;
    dst[i] = dst[i + 1] = dst[i + 2] = v;
    dst[i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}

/** Shows a photo (File or Blob) in the editor; keeps the mask when `keepMask` and the size matches. */
async function setPhoto(file, name, { keepMask = false, maskImage = null } = {}) {
  if (!/^image\/(png|jpeg)$/.test(file.type) && !/\.(png|jpe?g)$/i.test(name || file.name || "")) {
    toast(`${name || file.name} is not a PNG or JPEG photo.`);
    return false;
  }
  let image;
  try {
    // Exif orientation applied, as the server applies it.
    image = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (_) {
    toast(`${name || file.name} cannot be read as an image (damaged, or not PNG/JPEG).`);
    return false;
  }
  const old = state.photo && keepMask ? stage.mask : null;
  const sameSize = state.photo && state.photo.width === image.width && state.photo.height === image.height;
  state.photo = { file, name: name || file.name || "photo", image, width: image.width, height: image.height };
  const scale = Math.min(1, MAX_MASK_SIDE / Math.max(image.width, image.height));
  const mw = Math.max(1, Math.round(image.width * scale)), mh = Math.max(1, Math.round(image.height * scale));
  stage.mask = makeCanvas(mw, mh);
  stage.maskCtx = stage.mask.getContext("2d", { willReadFrequently: true });
  stage.shadow = makeCanvas(mw, mh);
  stage.shadowCtx = stage.shadow.getContext("2d", { willReadFrequently: true });
  stage.tint = makeCanvas(mw, mh);
  stage.tintCtx = stage.tint.getContext("2d");
  if (old && sameSize) {
    stage.maskCtx.drawImage(old, 0, 0, mw, mh);
  } else if (maskImage) {
    stage.maskCtx.drawImage(maskImage, 0, 0, mw, mh);
    const data = stage.maskCtx.getImageData(0, 0, mw, mh);
    for (let i = 0; i < data.data.length; i += 4) {
      const on = data.data[i] > 127;
      data.data[i] = data.data[i + 1] = data.data[i + 2] = 255;
      data.data[i + 3] = on ? 255 : 0;
    }
    stage.maskCtx.putImageData(data, 0, 0);
  }
  stage.shadowCtx.drawImage(stage.mask, 0, 0);
  stage.undo = []; stage.redo = []; stage.undoBytes = 0;
  updateUndoButtons();
  stage.tintDirty = true;
  $("drop-hint").hidden = true;
  $("stage").dataset.ready = "true";
  showEditor();
  fitView();
  updateRunButton();
  return true;
}

// ---------------------------------------------------------------- running a job

function updateRunButton() {
  const models = state.status && state.status.models.state;
  const run = $("run");
  let hint = "";
  if (!state.photo) hint = "Choose a photo, paint the region to change, and describe it.";
  else if (models === "loading") hint = "The models are still loading; the edit will start when they are ready.";
  else if (models === "missing" || models === "failed") hint = "The models are not available (see the note above).";
  run.disabled = !state.photo || models === "missing" || models === "failed";
  $("run-hint").textContent = hint;
}

async function runEdit(event) {
  if (event) event.preventDefault();
  if (!state.photo) { toast("Choose a photo first."); return; }
  const prompt = $("prompt").value.trim();
  if (!prompt) { toast("Say what the painted region should become."); $("prompt").focus(); return; }
  const coverage = maskCoverage();
  if (coverage === 0 && !$("set-invert").checked) { toast("Paint the region to change first (or load a mask)."); return; }
  const form = new FormData();
  form.append("photo", state.photo.file, state.photo.name);
  form.append("mask", await maskBlob(), "mask.png");
  form.append("prompt", prompt);
  form.append("settings", JSON.stringify(readSettings()));
  $("run").disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", body: form });
    hideToast();
    upsertJob(job);
    showJob(job.id);
  } catch (error) {
    toast(error.message);
  } finally {
    updateRunButton();
  }
}

// ---------------------------------------------------------------- jobs: list and view

/** Takes a job record from an answer or an event. An answer can cross events about the same
 * job (a quick job may be finished before the answer to its POST is read; a cancel's answer may
 * come after the `cancelled` event): the record with the higher revision wins, else the page
 * would show a stale state for good. (`loadJobs` replaces every record when the event stream
 * (re)connects, as a restarted server counts revisions afresh.) */
function upsertJob(job) {
  const known = state.jobs.get(job.id);
  if (known && (known.revision || 0) > (job.revision || 0)) return;
  state.jobs.set(job.id, job);
  renderJobList();
  if (state.currentJob === job.id) renderJob(job);
}

async function loadJobs() {
  try {
    const { jobs } = await api("/api/jobs");
    state.jobs = new Map(jobs.map((j) => [j.id, j]));
    renderJobList();
    if (state.currentJob) {
      const job = state.jobs.get(state.currentJob);
      if (job) renderJob(job); else showEditor();
    }
  } catch (error) {
    toast(error.message);
  }
}

const stateWords = {
  queued: "waiting", running: "running", finished: "finished", cancelled: "cancelled",
  failed: "failed", interrupted: "interrupted",
};

function renderJobList() {
  const list = $("job-list");
  const jobs = [...state.jobs.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  $("job-list-empty").hidden = jobs.length > 0;
  list.replaceChildren(...jobs.map((job) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.job = job.id;
    if (job.id === state.currentJob) button.classList.add("current");
    const img = document.createElement("img");
    img.loading = "lazy";
    img.alt = "";
    img.src = job.results.length ? job.results[0].url : `/api/jobs/${job.id}/photo`;
    const text = document.createElement("span");
    const prompt = document.createElement("span");
    prompt.className = "job-prompt";
    prompt.textContent = job.prompt;
    const meta = document.createElement("span");
    meta.className = `job-state state-${job.state}`;
    let detail = stateWords[job.state] || job.state;
    if (job.state === "running" && job.progress) detail += ` ${Math.floor(100 * job.progress.completedSteps / job.progress.totalSteps)} %`;
    meta.textContent = `${detail} · ${new Date(job.createdAt).toLocaleString()}`;
    text.append(prompt, meta);
    button.append(img, text);
    button.addEventListener("click", () => { showJob(job.id); closeHistoryDrawer(); });
    li.appendChild(button);
    return li;
  }));
}

function showEditor() {
  state.currentJob = null;
  $("editor-view").hidden = false;
  $("job-view").hidden = true;
  renderJobList();
  requestAnimationFrame(resizeCanvas);
}

function showJob(id) {
  const job = state.jobs.get(id);
  if (!job) return;
  state.currentJob = id;
  $("editor-view").hidden = true;
  $("job-view").hidden = false;
  // The running job's newest preview at once (it may have come before the job was opened).
  const preview = $("preview");
  if (state.lastPreview && state.lastPreview.job === id) preview.src = state.lastPreview.image;
  preview.hidden = !(state.lastPreview && state.lastPreview.job === id);
  renderJob(job);
  renderJobList();
}

function renderJob(job) {
  $("job-title").textContent = `“${job.prompt}”`;
  const s = job.settings;
  const queue = state.status ? state.status.queue.queued : [];
  const position = queue.indexOf(job.id);
  let meta = `${stateWords[job.state] || job.state}${position >= 0 ? ` (number ${position + 1} in the queue)` : ""} · ${job.photo.name}, ${job.photo.width}×${job.photo.height}`
    + (s.method === "latent"
      ? ` · ${s.samples} samples, ${s.steps} steps (strength ${s.strength}, guidance ${s.guidanceScale}), seed ${s.seed}, latent`
        + (s.reconstructBackground ? `, background reconstruction ${s.reconstructBackground} steps` : "")
      : ` · ${s.samples} samples, ${s.steps} steps (skip ${s.skip}), seed ${s.seed}, ${s.method}`)
    + (job.region ? ` · region ${job.region} at ${job.modelSize}×${job.modelSize}` : "");
  if (job.finishedAt && job.startedAt) meta += ` · took ${formatDuration((new Date(job.finishedAt) - new Date(job.startedAt)) / 1000)}`;
  $("job-meta").textContent = meta;
  $("job-view").dataset.state = job.state;
  $("job-cancel").hidden = !(job.state === "queued" || job.state === "running");
  $("job-resume").hidden = !["interrupted", "cancelled", "failed"].includes(job.state);
  $("job-delete").hidden = job.state === "running";
  const zip = $("job-zip");
  zip.hidden = job.results.length === 0;
  zip.href = `/api/jobs/${job.id}/results.zip`;
  const error = $("job-error");
  error.hidden = !job.error;
  error.textContent = job.error || "";
  const notices = $("job-notices");
  notices.hidden = !(job.notices && job.notices.length);
  notices.replaceChildren(...(job.notices || []).map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
  // What the preview shows: the pixel methods' x0 predictions; for the latent method the
  // x0 estimates of the latents through a colour map fitted to the photo (no VAE decode).
  const latent = s.method === "latent";
  $("preview-caption").textContent = latent
    ? "Rough colours of the current predictions of the final image (x₀), read straight from the latent"
      + " (no decoding: a colour map fitted to your photo, at Stable Diffusion's 1/8 resolution), updated every few steps."
      + " The results are decoded in full."
    : "Current predictions of the final image (x₀), updated every few steps.";
  $("preview").alt = latent ? "Rough colours of the current x0 predictions, from the latent" : "Current x0 predictions";
  const running = job.state === "running" || job.state === "queued";
  $("progress-box").hidden = !running && !(job.progress && job.state !== "finished");
  if (job.progress) renderProgress(job.progress);
  else if (running) { $("progress-bar").style.width = "0%"; $("progress-text").textContent = job.state === "queued" ? "Waiting for the job before it…" : "Starting…"; }
  renderResults(job);
}

function renderProgress(p) {
  const fraction = p.totalSteps ? p.completedSteps / p.totalSteps : 0;
  $("progress-bar").style.width = `${(100 * fraction).toFixed(1)}%`;
  $("progress-text").textContent = `Step ${p.step}/${p.steps} of batch ${p.iteration + 1}/${p.iterations} · ${Math.floor(100 * fraction)} %`
    + ` · ETA ${formatDuration(p.etaSeconds)}${p.etaExcludesReconstruction ? " + background reconstruction" : ""}`
    + (p.secondsPerStep ? ` · ${p.secondsPerStep.toFixed(2)} s/step` : "")
    + (p.clipLoss == null ? "" : ` · CLIP loss ${p.clipLoss.toFixed(3)}`)
    + (p.reconstructionSteps
      ? ` · reconstructing the background of sample ${p.reconstructionSample + 1}: step ${p.reconstructionStep}/${p.reconstructionSteps}`
      : "");
}

function renderResults(job) {
  const box = $("results");
  const key = job.id + ":" + job.results.map((r) => r.url + r.distance).join(",");
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.style.setProperty("--aspect", `${job.photo.width} / ${job.photo.height}`);
  box.replaceChildren(...job.results.map((result) => {
    const card = document.createElement("figure");
    card.className = "result-card";
    card.dataset.rank = result.rank;
    card.style.margin = "0";
    const thumb = document.createElement("button");
    thumb.type = "button";
    thumb.className = "thumb";
    thumb.title = "Compare with the original";
    const img = document.createElement("img");
    img.src = result.url;
    img.alt = `Result ${result.rank}`;
    img.loading = "lazy";
    thumb.appendChild(img);
    thumb.addEventListener("click", () => openCompare(job, result));
    const meta = document.createElement("figcaption");
    meta.className = "result-meta";
    const rank = document.createElement("span");
    rank.className = "rank";
    rank.textContent = `#${result.rank}`;
    const distance = document.createElement("span");
    distance.className = "muted";
    distance.title = "CLIP distance to the prompt: lower matches better";
    distance.textContent = result.distance == null ? "diverged" : `distance ${result.distance.toFixed(4)}`;
    const actions = document.createElement("span");
    actions.className = "result-actions";
    const download = document.createElement("a");
    download.className = "button-like";
    download.href = `${result.url}?download=1`;
    download.textContent = "Download";
    download.setAttribute("download", "");
    const use = document.createElement("button");
    use.type = "button";
    use.textContent = "Use";
    use.title = "Use as new input";
    use.addEventListener("click", () => useAsInput(job, result));
    actions.append(download, use);
    meta.append(rank, distance, actions);
    card.append(thumb, meta);
    return card;
  }));
}

async function jobAction(action) {
  const id = state.currentJob;
  if (!id) return;
  try {
    if (action === "delete") {
      if (!confirm("Delete this job, its inputs and its results?")) return;
      await api(`/api/jobs/${id}`, { method: "DELETE" });
      state.jobs.delete(id);
      showEditor();
    } else {
      const job = await api(`/api/jobs/${id}/${action}`, { method: "POST" });
      upsertJob(job);
    }
  } catch (error) {
    toast(error.message);
  }
}

/** Back to the editor with a job's photo, mask, prompt and settings. */
async function editAgain(job) {
  try {
    const [photo, mask] = await Promise.all([
      fetch(`/api/jobs/${job.id}/photo`).then((r) => r.blob()),
      job.mask ? fetch(`/api/jobs/${job.id}/mask`).then((r) => r.blob()) : Promise.resolve(null),
    ]);
    const maskImage = mask ? await createImageBitmap(mask) : null;
    state.photo = null;
    await setPhoto(photo, job.photo.name, { maskImage });
    $("prompt").value = job.prompt;
    fillSettings(job.settings);
  } catch (error) {
    toast(`Cannot load the job's photo: ${error.message}`);
  }
}

/** A result becomes the new photo; the mask stays. */
async function useAsInput(job, result) {
  try {
    const blob = await fetch(result.url).then((r) => { if (!r.ok) throw new Error(r.statusText); return r.blob(); });
    const name = `${job.photo.name.replace(/\.[^.]+$/, "")}-edit${result.rank}.png`;
    const file = new File([blob], name, { type: "image/png" });
    if (state.photo && state.photo.width === job.photo.width && state.photo.height === job.photo.height) {
      await setPhoto(file, name, { keepMask: true });
    } else {
      const mask = job.mask ? await fetch(`/api/jobs/${job.id}/mask`).then((r) => r.blob()) : null;
      await setPhoto(file, name, { maskImage: mask ? await createImageBitmap(mask) : null });
    }
    $("prompt").value = job.prompt;
    closeCompare();
    toast("The result is the new photo: adjust the mask or prompt and run again.", "info");
  } catch (error) {
    toast(`Cannot use the result: ${error.message}`);
  }
}

// ---------------------------------------------------------------- comparison

const compare = { job: null, result: null, split: 50 };

function openCompare(job, result) {
  compare.job = job;
  compare.result = result;
  const distance = result.distance == null ? "diverged" : `distance ${result.distance.toFixed(4)}`;
  $("compare-title").textContent = `#${result.rank} · ${distance} · ${job.photo.width}×${job.photo.height} · “${job.prompt}”`;
  $("compare-frame").style.setProperty("--ratio", `${job.photo.width / job.photo.height}`);
  $("compare-after").src = result.url;
  $("compare-before").src = `/api/jobs/${job.id}/photo`;
  $("compare-download").href = `${result.url}?download=1`;
  setSplit(50);
  $("compare").hidden = false;
  $("compare-handle").focus();
}

function closeCompare() { $("compare").hidden = true; }

function setSplit(percent) {
  compare.split = Math.min(100, Math.max(0, percent));
  $("compare-frame").style.setProperty("--split", `${compare.split}%`);
  $("compare-handle").setAttribute("aria-valuenow", String(Math.round(compare.split)));
}

function initCompare() {
  const frame = $("compare-frame");
  const move = (event) => {
    const rect = frame.getBoundingClientRect();
    setSplit(100 * (event.clientX - rect.left) / rect.width);
  };
  frame.addEventListener("pointerdown", (event) => { frame.setPointerCapture(event.pointerId); move(event); });
  frame.addEventListener("pointermove", (event) => { if (frame.hasPointerCapture(event.pointerId)) move(event); });
  $("compare-close").addEventListener("click", closeCompare);
  $("compare-use").addEventListener("click", () => useAsInput(compare.job, compare.result));
  $("compare-full").addEventListener("change", (e) => $("compare").classList.toggle("full", e.target.checked));
}

// ---------------------------------------------------------------- events from the server

let events = null;
function connectEvents() {
  events = new EventSource("/api/events");
  events.addEventListener("open", () => { loadJobs(); });
  events.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  events.addEventListener("job", (e) => upsertJob(JSON.parse(e.data)));
  events.addEventListener("deleted", (e) => {
    const { id } = JSON.parse(e.data);
    state.jobs.delete(id);
    if (state.currentJob === id) showEditor(); else renderJobList();
  });
  events.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    const job = state.jobs.get(p.job);
    if (job) {
      job.progress = p;
      if (state.currentJob === p.job) renderProgress(p);
    }
  });
  events.addEventListener("preview", (e) => {
    const p = JSON.parse(e.data);
    state.lastPreview = { job: p.job, image: p.image };
    if (state.currentJob !== p.job) return;
    const img = $("preview");
    img.src = p.image;
    img.hidden = false;
  });
}

// ---------------------------------------------------------------- wiring

function setTool(tool) {
  state.tool = tool;
  for (const name of ["brush", "eraser", "pan"]) {
    const b = $(`tool-${name}`);
    b.classList.toggle("active", name === tool);
    b.setAttribute("aria-pressed", String(name === tool));
  }
  $("stage").dataset.tool = tool;
  requestDraw();
}

function setBrush(size) {
  state.brush = Math.min(400, Math.max(2, Math.round(size)));
  $("brush-size").value = state.brush;
  $("brush-size-value").textContent = state.brush;
  requestDraw();
}

function closeHistoryDrawer() {
  $("history").classList.remove("open");
  $("history-toggle").setAttribute("aria-expanded", "false");
}

function pickFile(input, handler) {
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    input.value = "";
    if (file) handler(file);
  });
}

function initPage() {
  initStage();
  initCompare();
  setBrush(state.brush);
  $("edit-form").addEventListener("submit", runEdit);
  pickFile($("photo-input"), (f) => setPhoto(f, f.name));
  pickFile($("photo-input-empty"), (f) => setPhoto(f, f.name));
  pickFile($("mask-input"), loadMaskFile);
  $("tool-brush").addEventListener("click", () => setTool("brush"));
  $("tool-eraser").addEventListener("click", () => setTool("eraser"));
  $("tool-pan").addEventListener("click", () => setTool("pan"));
  $("brush-size").addEventListener("input", (e) => setBrush(+e.target.value));
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("clear-mask").addEventListener("click", clearMask);
  $("invert-mask").addEventListener("click", invertMask);
  $("overlay-opacity").addEventListener("input", requestDraw);
  $("zoom-in").addEventListener("click", () => zoomCenter(1.25));
  $("zoom-out").addEventListener("click", () => zoomCenter(0.8));
  $("zoom-fit").addEventListener("click", () => state.photo && fitView());
  $("set-seed-random").addEventListener("change", (e) => { $("set-seed").disabled = e.target.checked; });
  $("reset-settings").addEventListener("click", () => {
    if (!state.status) return;
    const method = $("set-method").value;
    fillSettings(state.status.defaults);
    $("set-method").value = method;
    showMethod(true);
  });
  $("set-method").addEventListener("change", () => showMethod(true));
  $("models-reload").addEventListener("click", async () => {
    try { showStatus(await api("/api/models/reload", { method: "POST" })); } catch (error) { toast(error.message); }
  });
  $("new-edit").addEventListener("click", () => { showEditor(); closeHistoryDrawer(); });
  $("job-back").addEventListener("click", () => { const job = state.jobs.get(state.currentJob); if (job) editAgain(job); });
  $("job-cancel").addEventListener("click", () => jobAction("cancel"));
  $("job-resume").addEventListener("click", () => jobAction("resume"));
  $("job-delete").addEventListener("click", () => jobAction("delete"));
  $("help-button").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  $("help-close").addEventListener("click", () => { $("help").hidden = true; });
  $("toast").addEventListener("click", hideToast);
  $("history-toggle").addEventListener("click", () => {
    const open = $("history").classList.toggle("open");
    $("history-toggle").setAttribute("aria-expanded", String(open));
  });

  // Drag and drop a photo anywhere on the stage.
  const stageEl = $("stage");
  stageEl.addEventListener("dragover", (e) => { e.preventDefault(); stageEl.classList.add("dragover"); });
  stageEl.addEventListener("dragleave", () => stageEl.classList.remove("dragover"));
  stageEl.addEventListener("drop", (e) => {
    e.preventDefault();
    stageEl.classList.remove("dragover");
    const file = e.dataTransfer.files && e.dataTransfer.files[0];
    if (file) setPhoto(file, file.name);
  });
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  document.addEventListener("keydown", onKey);
  document.addEventListener("keyup", (e) => { if (e.code === "Space") { state.spaceHeld = false; requestDraw(); } });

  api("/api/status").then(showStatus).catch((error) => toast(error.message));
  connectEvents();
}

function onKey(e) {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName) && e.target.type !== "range" && e.target.type !== "checkbox";
  const mod = e.ctrlKey || e.metaKey;
  if (mod && e.key === "Enter") { e.preventDefault(); runEdit(); return; }
  if (e.key === "Escape") { closeCompare(); $("help").hidden = true; closeHistoryDrawer(); return; }
  if (typing) return;
  if (!$("compare").hidden) {
    if (e.key === "ArrowLeft") { setSplit(compare.split - 5); e.preventDefault(); }
    if (e.key === "ArrowRight") { setSplit(compare.split + 5); e.preventDefault(); }
    return;
  }
  if (mod && (e.key === "z" || e.key === "Z")) { e.preventDefault(); if (e.shiftKey) redo(); else undo(); return; }
  if (mod && (e.key === "y" || e.key === "Y")) { e.preventDefault(); redo(); return; }
  if (mod) return;
  switch (e.key) {
    case "[": setBrush(state.brush / 1.25); break;
    case "]": setBrush(state.brush * 1.25); break;
    case "b": case "B": setTool("brush"); break;
    case "e": case "E": setTool("eraser"); break;
    case "h": case "H": setTool("pan"); break;
    case "c": case "C": clearMask(); break;
    case "i": case "I": invertMask(); break;
    case "+": case "=": zoomCenter(1.25); break;
    case "-": zoomCenter(0.8); break;
    case "0": if (state.photo) fitView(); break;
    case "n": case "N": showEditor(); break;
    case "?": $("help").hidden = !$("help").hidden; break;
    case " ":
      if (!state.spaceHeld) { state.spaceHeld = true; requestDraw(); }
      e.preventDefault();
      break;
    default: return;
  }
}

document.addEventListener("DOMContentLoaded", initPage);
