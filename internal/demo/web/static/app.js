// keyquorum demo --web: the page's script. It shows what the JSON API
// returns and computes no number it shows, except the audit check, which
// it runs itself (WebCrypto) so as not to trust the server.
"use strict";

const $ = (sel) => document.querySelector(sel);
const SVGNS = "http://www.w3.org/2000/svg";
const DESIGNS = ["no-escrow", "master-key", "split-master-key", "threshold", "threshold-epochs"];
const DESIGN_LABEL = {
  "no-escrow": "no escrow",
  "master-key": "one master key",
  "split-master-key": "split master key",
  "threshold": "threshold (keyquorum)",
  "threshold-epochs": "threshold + retention",
};

let state = null;    // /api/state
let timeline = null; // /api/timeline
let lastWarrant = null;
let lastResult = null;

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const v = await r.json();
  if (!r.ok) throw new Error(v.error || r.statusText);
  return v;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// busy disables a button while an action runs and reports failures.
async function busy(button, fn) {
  if (button) button.disabled = true;
  try { await fn(); } catch (e) { setStatus("Error: " + e.message, true); }
  finally { if (button) button.disabled = false; }
}

function setStatus(text, error) {
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("error", !!error);
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : (many || one + "s")}`;
const day = (iso) => iso.slice(0, 10);

// ---- start-up --------------------------------------------------------

async function start() {
  for (;;) {
    try {
      state = await api("GET", "/api/state");
      if (state.error) { setStatus("The demo could not start: " + state.error, true); return; }
      if (state.ready) break;
    } catch (e) { /* the server is starting */ }
    await new Promise((r) => setTimeout(r, 500));
  }
  const rep = state.report;
  setStatus(`Running: ${rep.trustees} trustee processes (any ${rep.threshold} can decrypt), ${rep.users} users, ` +
    `${rep.sessions} sessions over ${rep.days} days, seed ${state.seed}.`);
  document.querySelectorAll(".t").forEach((e) => (e.textContent = rep.threshold));
  document.querySelectorAll(".n").forEach((e) => (e.textContent = rep.trustees));
  document.querySelectorAll(".n-t").forEach((e) => (e.textContent = rep.trustees - rep.threshold));
  document.querySelectorAll(".sessions").forEach((e) => (e.textContent = rep.sessions));
  timeline = await api("GET", "/api/timeline");
  $("#main").hidden = false;
  setupHook();
  setupCompromise();
  setupWarrant();
  setupTrustees();
  setupEpochs();
  setupAudit();
  setupClipper();
  document.body.dataset.ready = "true";
}

// ---- 1. the hook -----------------------------------------------------

function drawLocks(svgEl, opened) {
  const n = timeline.sessions.length;
  const cols = Math.ceil(Math.sqrt(n * 2));
  const size = 14;
  const rows = Math.ceil(n / cols);
  svgEl.setAttribute("viewBox", `0 0 ${cols * size} ${rows * size}`);
  svgEl.setAttribute("width", String(cols * 22)); // at most; CSS shrinks it to fit
  svgEl.replaceChildren();
  const open = new Set(opened || []);
  for (let i = 0; i < n; i++) {
    const x = (i % cols) * size, y = Math.floor(i / cols) * size;
    const isOpen = open.has(i);
    const g = svg("g", { class: isOpen ? "lock open" : "lock" });
    // shackle: closed, or lifted and swung when opened
    g.append(svg("path", {
      d: isOpen ? `M${x + 4} ${y + 7} V${y + 3} a3 3 0 0 1 6 0` : `M${x + 4} ${y + 7} V${y + 4.5} a3 3 0 0 1 6 0 V${y + 7}`,
      fill: "none", stroke: isOpen ? "#D55E00" : "#0072B2", "stroke-width": 1.4,
    }));
    g.append(svg("rect", {
      x: x + 2.5, y: y + 7, width: 9, height: 6, rx: 1,
      fill: isOpen ? "#fff" : "#0072B2", stroke: isOpen ? "#D55E00" : "#0072B2", "stroke-width": 1.2,
    }));
    svgEl.append(g);
  }
}

function setupHook() {
  drawLocks($("#hook-master"), []);
  drawLocks($("#hook-threshold"), []);
  $("#hook-steal").addEventListener("click", (ev) => busy(ev.target, async () => {
    const res = await api("POST", "/api/compromise", { trustees: [1] });
    const by = Object.fromEntries(res.map((d) => [d.design, d]));
    const total = timeline.sessions.length;
    drawLocks($("#hook-master"), by["master-key"].opened);
    drawLocks($("#hook-threshold"), by["threshold"].opened);
    $("#hook-master-text").textContent = `the agency’s master key was stolen: ${by["master-key"].exposed} of ${total} sessions open.`;
    $("#hook-threshold-text").textContent = `trustee-1’s share was stolen: ${by["threshold"].exposed} of ${total} sessions open.`;
  }));
  $("#hook-reset").addEventListener("click", () => {
    drawLocks($("#hook-master"), []);
    drawLocks($("#hook-threshold"), []);
    $("#hook-master-text").textContent = $("#hook-threshold-text").textContent = "nothing stolen yet";
  });
}

// ---- 2. compromise slider --------------------------------------------

function chosen() {
  return [...document.querySelectorAll("#which input:checked")].map((c) => +c.value);
}

function bars(container, rows, max) {
  container.replaceChildren();
  for (const r of rows) {
    const fill = el("div", { class: "fill " + r.cls });
    fill.style.width = (max ? (100 * r.value) / max : 0) + "%";
    container.append(el("div", { class: "bar" },
      el("span", { text: r.label }), el("div", { class: "track" }, fill), el("span", { class: "num", text: r.text || String(r.value) })));
  }
}

let compromiseSeq = 0;
async function runCompromise() {
  const which = chosen();
  $("#k-out").textContent = which.length;
  const seq = ++compromiseSeq;
  const res = await api("POST", "/api/compromise", { trustees: which });
  if (seq !== compromiseSeq) return; // a newer choice is on its way
  const total = state.report.sessions, t = state.report.threshold;
  const by = Object.fromEntries(res.map((d) => [d.design, d]));
  bars($("#comp-chart"), DESIGNS.map((d) => ({ label: DESIGN_LABEL[d], value: by[d].exposed, cls: "d-" + d })), total);
  const tbody = $("#comp-table tbody");
  tbody.replaceChildren(...DESIGNS.map((d) => el("tr", {},
    el("th", { scope: "row", text: DESIGN_LABEL[d] }),
    el("td", { class: "exposed", "data-design": d, text: String(by[d].exposed) }))));
  const names = which.map((i) => "trustee-" + i).join(", ");
  let s;
  if (which.length === 0) {
    s = "Nobody is compromised: no design leaks anything to an outsider.";
  } else {
    s = `With ${names} compromised: the master-key design exposes ${by["master-key"].exposed} of ${total} sessions` +
      (which.includes(1) ? " (key holder 1 is the agency that holds the master key)" : " (the agency, key holder 1, is safe)") + "; " +
      `the split master key exposes ${by["split-master-key"].exposed}, and threshold escrow ${by["threshold"].exposed}. `;
    s += which.length < t
      ? `Fewer than ${t} shares interpolate to a wrong key: the attacker’s code opens nothing.`
      : `${which.length} ≥ t = ${t}: these trustees together read every session they hold keys for, with no warrant and no log entry. ` +
        `Retention limits that to the epochs still kept: ${by["threshold-epochs"].exposed} sessions.`;
  }
  $("#comp-sentence").textContent = s;
  $("#compromise").dataset.k = String(which.length);
}

function setupCompromise() {
  const n = state.report.trustees;
  const k = $("#k");
  k.max = String(n);
  const fs = $("#which");
  for (let i = 1; i <= n; i++) {
    const cb = el("input", { type: "checkbox", value: String(i), id: "which-" + i });
    cb.addEventListener("change", () => { k.value = String(chosen().length); busy(null, runCompromise); });
    fs.append(el("label", { for: "which-" + i }, cb, "trustee-" + i));
  }
  k.addEventListener("input", () => {
    const v = +k.value;
    document.querySelectorAll("#which input").forEach((c) => (c.checked = +c.value <= v));
    busy(null, runCompromise);
  });
  busy(null, runCompromise);
}

// ---- 3. warrant timeline ---------------------------------------------

function drawTimeline(result) {
  const s = $("#timeline");
  const users = timeline.users;
  const t0 = Date.parse(timeline.epochs[0].from);
  const t1 = Date.parse(timeline.epochs[timeline.epochs.length - 1].until);
  const W = 1000, left = 90, rowH = 22, top = 22, H = top + users.length * rowH + 10;
  const x = (t) => left + ((Date.parse(t) - t0) / (t1 - t0)) * (W - left - 10);
  s.setAttribute("viewBox", `0 0 ${W} ${H}`);
  s.replaceChildren();
  const defs = svg("defs");
  const pat = svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pat.append(svg("rect", { width: 6, height: 6, fill: "#eee" }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#bbb", "stroke-width": 3 }));
  defs.append(pat);
  s.append(defs);
  timeline.epochs.forEach((e, i) => {
    const r = svg("rect", { x: x(e.from), y: top - 4, width: x(e.until) - x(e.from), height: H - top,
      fill: e.destroyed ? "url(#hatch)" : (i % 2 ? "#eaf3fa" : "#f5f9fc") });
    s.append(r);
    const label = svg("text", { x: x(e.from) + 3, y: 14, "font-size": 11, fill: e.destroyed ? "#777" : "#0072B2" });
    label.textContent = `epoch ${e.epoch}${e.destroyed ? " (destroyed)" : ""}`;
    s.append(label);
  });
  const w = lastWarrant;
  if (w) {
    const row = users.indexOf(w.target);
    s.append(svg("rect", { x: x(w.from), y: top + row * rowH, width: Math.max(2, x(w.to) - x(w.from)), height: rowH,
      fill: "none", stroke: "#E69F00", "stroke-width": 2.5, "stroke-dasharray": "6 3" }));
  }
  users.forEach((u, i) => {
    const tx = svg("text", { x: 4, y: top + i * rowH + 15, "font-size": 12 });
    tx.textContent = u;
    s.append(tx, svg("line", { x1: left, x2: W - 10, y1: top + i * rowH + 11, y2: top + i * rowH + 11, stroke: "#ddd" }));
  });
  const covered = new Set(result ? result.covered : []);
  const read = new Set(result ? result.recovered.map((r) => r.index) : []);
  for (const sess of timeline.sessions) {
    for (const who of [sess.sender, sess.recipient]) {
      const row = users.indexOf(who);
      if (row < 0) continue;
      const cx = x(sess.start), cy = top + row * rowH + 11;
      let attrs = { cx, cy, r: 3.2, fill: "#8c8c8c" };
      if (read.has(sess.index)) attrs = { cx, cy, r: 5, fill: "#D55E00", stroke: "#000", "stroke-width": 1 };
      else if (covered.has(sess.index)) attrs = { cx, cy, r: 5, fill: "#fff", stroke: "#D55E00", "stroke-width": 2 };
      const c = svg("circle", attrs);
      c.setAttribute("class", read.has(sess.index) ? "dot read" : covered.has(sess.index) ? "dot covered" : "dot");
      const title = svg("title");
      title.textContent = `${sess.sender} → ${sess.recipient}, ${sess.start.replace("T", " ").slice(0, 16)} (epoch ${sess.epoch})`;
      c.append(title);
      s.append(c);
    }
  }
}

function readWarrantForm() {
  return {
    target: $("#war-target").value,
    from: $("#war-from").value + "T00:00:00Z",
    to: $("#war-to").value + "T00:00:00Z",
    max_sessions: +$("#war-cap").value,
    judge: $("#war-judge").value,
  };
}

function showDecisions(list, res) {
  list.replaceChildren(...res.trustees.map((d) => el("li", { class: d.decision, "data-trustee": d.name },
    el("strong", { text: `${d.name}: ${d.decision}` }),
    d.code ? el("span", { text: ` (${d.code})` }) : "",
    d.reason ? el("div", { text: d.reason }) : "")));
}

async function sendWarrant(outcomeEl) {
  lastWarrant = readWarrantForm();
  const res = await api("POST", "/api/warrant", lastWarrant);
  lastResult = res;
  drawTimeline(res);
  const covered = res.covered.length;
  $("#war-outcome").textContent = `The warrant covers ${plural(covered, "session")}. ${res.outcome}`;
  showDecisions($("#war-trustees"), res);
  $("#war-count").textContent = res.recovered.length;
  const byIndex = Object.fromEntries(timeline.sessions.map((s) => [s.index, s]));
  $("#war-messages").replaceChildren(...res.recovered.map((r) => {
    const s = byIndex[r.index];
    return el("li", {}, el("strong", { text: `${s.sender} → ${s.recipient}, ${day(s.start)}: ` }), r.messages.join(" / "));
  }));
  if (outcomeEl) outcomeEl.textContent = res.outcome;
  $("#warrant").dataset.recovered = String(res.recovered.length);
  $("#warrant").dataset.covered = String(covered);
  busy(null, refreshAudit);
  return res;
}

function setupWarrant() {
  const w = timeline.warrant;
  $("#war-target").replaceChildren(...timeline.users.map((u) => el("option", { value: u, text: u })));
  $("#war-target").value = w.target;
  $("#war-from").value = day(w.from);
  $("#war-to").value = day(w.to);
  $("#war-cap").value = w.max_sessions;
  lastWarrant = readWarrantForm();
  drawTimeline(null);
  $("#war-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy($("#war-send"), () => sendWarrant(null));
  });
}

// ---- 4. trustees -----------------------------------------------------

function drawCards(list) {
  $("#cards").replaceChildren(...list.map((t) => {
    const kill = el("button", { type: "button", class: "danger", "data-action": "kill", text: "Kill" });
    const restart = el("button", { type: "button", "data-action": "restart", text: "Restart" });
    kill.disabled = !t.running;
    restart.disabled = t.running;
    kill.addEventListener("click", () => busy(kill, async () => { drawCards(await api("POST", `/api/trustees/${t.index}/kill`, {})); busy(null, refreshAudit); }));
    restart.addEventListener("click", () => busy(restart, async () => { drawCards(await api("POST", `/api/trustees/${t.index}/restart`, {})); busy(null, refreshAudit); }));
    return el("div", { class: "card" + (t.running ? "" : " down"), "data-trustee": t.name },
      el("h3", { text: t.name }),
      el("p", { class: "state", text: t.running ? `running, pid ${t.pid}` : "killed: not running" }),
      el("p", {}, el("code", { text: t.addr })),
      el("p", {}, kill, " ", restart));
  }));
}

function setupTrustees() {
  api("GET", "/api/trustees").then(drawCards).catch((e) => setStatus(e.message, true));
  $("#rerun").addEventListener("click", (ev) => busy(ev.target, async () => {
    const res = await sendWarrant($("#rerun-outcome"));
    $("#rerun-outcome").textContent = res.outcome;
    $("#trustees").dataset.granted = String(res.granted);
  }));
}

// ---- 5. epochs -------------------------------------------------------

async function runEpochs() {
  const eps = await api("GET", "/api/epochs");
  const tb = $("#ep-table tbody");
  tb.replaceChildren(...eps.map((e) => el("tr", { class: e.held_by.length ? "" : "destroyed", "data-epoch": String(e.epoch) },
    el("td", { text: String(e.epoch) }),
    el("td", { text: `${day(e.from)} to ${day(e.until)}` }),
    el("td", { text: String(e.sessions) }),
    el("td", { text: e.held_by.length ? `${e.held_by.length} (${e.held_by.join(", ")})` : "none: destroyed" }),
    el("td", { class: "opened", text: String(e.opened_by_all) }))));
  const gone = eps.filter((e) => !e.held_by.length);
  const lost = gone.reduce((a, e) => a + e.sessions, 0);
  $("#ep-sentence").textContent = gone.length
    ? `Even with every trustee’s disk and passphrase, the ${plural(lost, "session")} of ${plural(gone.length, "destroyed epoch")} stay unreadable; ` +
      `the epochs still kept open to all of them together.`
    : "No epoch is destroyed yet.";
}

function setupEpochs() {
  busy(null, runEpochs);
  $("#collude").addEventListener("click", (ev) => busy(ev.target, runEpochs));
}

// ---- 6. audit logs, verified here --------------------------------------

const enc = new TextEncoder();
const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const concat = (...as) => { const out = new Uint8Array(as.reduce((n, a) => n + a.length, 0)); let o = 0; for (const a of as) { out.set(a, o); o += a.length; } return out; };
const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
const equal = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

// verifyNote checks a signed note (golang.org/x/mod/sumdb/note) against a
// verifier key name+hash+base64(0x01 || Ed25519 public key) and returns
// its text.
async function verifyNote(noteText, vkey) {
  // The name holds no "+", the key's base64 may.
  const i = vkey.indexOf("+"), j = vkey.indexOf("+", i + 1);
  const [name, hashHex, keyB64] = [vkey.slice(0, i), vkey.slice(i + 1, j), vkey.slice(j + 1)];
  const key = b64(keyB64);
  if (key[0] !== 1 || key.length !== 33) throw new Error("not an Ed25519 note key");
  const kh = (await sha256(concat(enc.encode(name + "\n"), key))).slice(0, 4);
  if (kh.reduce((a, b) => a + b.toString(16).padStart(2, "0"), "") !== hashHex) throw new Error("key hash does not match the key");
  const split = noteText.lastIndexOf("\n\n");
  const text = noteText.slice(0, split + 1);
  for (const line of noteText.slice(split + 2).split("\n")) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const sig = b64(m[2]);
    if (!equal(sig.slice(0, 4), kh)) continue;
    const pub = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
    if (await crypto.subtle.verify({ name: "Ed25519" }, pub, sig.slice(4), enc.encode(text))) return text;
    throw new Error("the signature does not verify");
  }
  throw new Error("no signature by " + name);
}

// verifyInclusion checks an RFC 6962 / RFC 9162 (2.1.3.2) inclusion proof
// with tlog's hashing: leaf SHA-256(0x00 || record), node SHA-256(0x01 || l || r).
async function verifyInclusion(record, index, size, proof, root) {
  let r = await sha256(concat(new Uint8Array([0]), record));
  let fn = index, sn = size - 1;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(new Uint8Array([1]), p, r));
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(concat(new Uint8Array([1]), r, p));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

async function verifyRecord(trustee, index, out) {
  out.className = "verdict";
  out.textContent = "verifying…";
  const inc = await api("GET", `/api/audit/${trustee}/inclusion/${index}`);
  let verdict;
  try {
    const text = await verifyNote(inc.head, inc.log_key);
    const lines = text.split("\n");
    const size = +lines[1], root = b64(lines[2]);
    if (size !== inc.size) throw new Error("head size differs from the proof's");
    const ok = await verifyInclusion(b64(inc.record), inc.index, size, inc.proof.map(b64), root);
    if (!ok) throw new Error("the inclusion proof does not lead to the signed root");
    verdict = `verified in this browser: head signed by ${inc.log_key.split("+")[0]}, record ${inc.index} of ${size} included (${plural(inc.proof.length, "hash", "hashes")} to the root)`;
    out.classList.add("ok");
    out.dataset.ok = "true";
  } catch (e) {
    verdict = "NOT verified in this browser: " + e.message;
    out.classList.add("bad");
    out.dataset.ok = "false";
  }
  out.textContent = `${verdict}. Server’s own check: ${inc.server_check}.`;
}

function describeRecord(bytes) {
  try {
    const r = JSON.parse(new TextDecoder().decode(bytes));
    let s = `${r.time.slice(0, 19).replace("T", " ")} ${r.kind}`;
    if (r.decision) s += ` ${r.decision}`;
    if (r.warrant_id) s += ` ${r.warrant_id}`;
    if (r.sessions) s += `, ${plural(r.sessions.length, "session")}`;
    if (r.refusal) s += ` (${r.refusal.code})`;
    if (r.kind !== "decision" && r.epoch) s += `, epoch ${r.epoch}`;
    return [s, r.decision || ""];
  } catch (e) { return ["(unreadable record)", ""]; }
}

let auditSeq = 0;
async function refreshAudit() {
  const seq = ++auditSeq;
  const logs = await api("GET", "/api/audit");
  if (seq !== auditSeq) return;
  $("#logs").replaceChildren(...logs.map((l) => {
    const box = el("div", { class: "log", "data-trustee": l.trustee });
    box.append(el("h3", { text: `${l.trustee}: ${l.error ? "unreachable" : plural(l.size, "record")}` }));
    if (l.error) { box.append(el("p", { text: l.error })); return box; }
    box.append(el("pre", { text: l.head }));
    // Newest first, numbered as the log numbers them (from 0).
    const ol = el("ol", { reversed: "", start: String(l.records.length - 1), "aria-label": `${l.trustee}'s records, newest first` });
    l.records.slice().reverse().forEach((rec) => {
      const [text, cls] = describeRecord(b64(rec));
      ol.append(el("li", { class: cls, text }));
    });
    box.append(ol);
    const out = el("p", { class: "verdict" });
    const which = el("input", { type: "number", min: "0", max: String(l.size - 1), value: String(l.size - 1), "aria-label": "record number" });
    const v = el("button", { type: "button", "data-action": "verify", text: "Verify" });
    v.addEventListener("click", () => busy(v, () => verifyRecord(l.index, +which.value, out)));
    box.append(el("p", {}, el("label", {}, "record ", which), " ", v), out);
    return box;
  }));
  $("#audit").dataset.refreshed = String(seq);
}

function setupAudit() {
  busy(null, refreshAudit);
  $("#audit-refresh").addEventListener("click", (ev) => busy(ev.target, refreshAudit));
}

// ---- 7. Clipper race -------------------------------------------------

function setupClipper() {
  $("#race").addEventListener("click", (ev) => busy(ev.target, async () => {
    const r = await api("POST", "/api/clipper", {});
    const max = Math.max(r.leaf_tries, r.envelopes.attempted);
    bars($("#race-chart"), [
      { label: "Clipper LEAF: tries to forge", value: r.leaf_tries, cls: "d-master-key" },
      { label: "keyquorum: random envelopes tried", value: r.envelopes.attempted, cls: "d-threshold" },
      { label: "keyquorum: accepted", value: r.envelopes.accepted, cls: "d-threshold-epochs" },
    ], max);
    $("#race-sentence").textContent = `Race ${r.run}: a Clipper receiver accepted a forged LEAF after ${r.leaf_tries.toLocaleString("en")} random tries ` +
      `(2^16 = 65,536 on average). ${r.envelopes.attempted.toLocaleString("en")} random keyquorum envelopes were tried against a recipient: ` +
      `${r.envelopes.accepted} accepted.`;
    $("#clipper").dataset.leaf = String(r.leaf_tries);
    $("#clipper").dataset.accepted = String(r.envelopes.accepted);
  }));
}

start();
