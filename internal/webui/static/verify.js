// verify.js: checks, in the browser, that an access-log entry is in
// phivault's signed transparency log, without taking the server's word
// for it. For one entry it fetches GET /fhir/AuditEvent/{id}/$proof (the
// session cookie authenticates it; the API serves a patient only the
// events that touched their record, and only their own view of each)
// and then, with WebCrypto only:
//
//  1. takes the leaf hash: a patient's proof carries the entry's leaf
//     hash and the patient's view of the entry, never the leaf itself
//     (it names other patients and staff addresses) nor its salt; a full
//     proof (auditors) carries the event and its salt, and the leaf hash
//     SHA-256(0x00 || salt || event) is recomputed;
//  2. recomputes the root from the inclusion path (RFC 9162 §2.1.3.2);
//  3. parses the C2SP checkpoint (origin, size, base64 root) and checks
//     the computed root equals the signed one;
//  4. verifies the checkpoint's Ed25519 signature (C2SP signed-note)
//     against the verifier key published on the trust page, which this
//     page embeds; a proof that names another key fails;
//  5. checks the proven event is the row shown (time, action, position).
//
// It shows "Verified" or exactly what failed. "Download proof" saves the
// same material as a JSON bundle with instructions for checking it with
// golang.org/x/mod/sumdb/tlog and note. No inline script: CSP-safe.
"use strict";
(function () {
  var enc = new TextEncoder();

  function fail(msg) { var e = new Error(msg); e.verify = true; throw e; }

  function b64(s, what) {
    try {
      var bin = atob(s);
      var out = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
      return out;
    } catch (e) {
      fail(what + " is not valid base64");
    }
  }

  function b64enc(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }

  function concat() {
    var n = 0, i;
    for (i = 0; i < arguments.length; i++) n += arguments[i].length;
    var out = new Uint8Array(n), off = 0;
    for (i = 0; i < arguments.length; i++) { out.set(arguments[i], off); off += arguments[i].length; }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  function optParam(p, name) {
    if (!p || p.resourceType !== "Parameters" || !Array.isArray(p.parameter)) fail("the server's answer is not a proof");
    for (var i = 0; i < p.parameter.length; i++) {
      var x = p.parameter[i];
      if (x.name === name) return x.valueString !== undefined ? x.valueString : x.valueBase64Binary;
    }
    return undefined;
  }

  function param(p, name) {
    var v = optParam(p, name);
    if (v === undefined) fail("the proof has no " + name);
    return v;
  }

  var proofHeader = "c2sp.org/tlog-proof@v1";
  var maxHashes = 128; // a tree of 2^62 leaves needs at most 2·62

  // parseProof reads a C2SP tlog-proof: header, optional extra (the
  // salt), index, the path hashes, an empty line, the checkpoint.
  function parseProof(text) {
    var cut = text.indexOf("\n\n");
    if (cut < 0) fail("the proof has no checkpoint");
    var lines = text.slice(0, cut).split("\n");
    var checkpoint = text.slice(cut + 2);
    if (lines[0] !== proofHeader) fail("the proof does not start with " + proofHeader);
    var i = 1, salt = new Uint8Array(0);
    if (lines[i] && lines[i].indexOf("extra ") === 0) { salt = b64(lines[i].slice(6), "the salt"); i++; }
    var m = /^index (0|[1-9][0-9]{0,18})$/.exec(lines[i] || "");
    if (!m) fail("the proof has no valid index line");
    var index = BigInt(m[1]);
    var path = [];
    for (i++; i < lines.length; i++) {
      var h = b64(lines[i], "a proof hash");
      if (h.length !== 32) fail("a proof hash is not 32 bytes");
      path.push(h);
      if (path.length > maxHashes) fail("the proof has too many hashes");
    }
    return { salt: salt, index: index, path: path, checkpoint: checkpoint };
  }

  // parseCheckpoint reads a C2SP signed note holding a checkpoint.
  function parseCheckpoint(cp) {
    var cut = cp.indexOf("\n\n");
    if (cut < 0) fail("the checkpoint has no signature");
    var text = cp.slice(0, cut + 1);
    var lines = text.split("\n");
    if (lines.length < 4) fail("the checkpoint is too short");
    if (!/^(0|[1-9][0-9]{0,18})$/.test(lines[1])) fail("the checkpoint size is not a number");
    var root = b64(lines[2], "the checkpoint root");
    if (root.length !== 32) fail("the checkpoint root is not 32 bytes");
    var sigs = cp.slice(cut + 2).split("\n").filter(function (l) { return l !== ""; }).map(function (l) {
      var m = /^\u2014 (\S+) (\S+)$/.exec(l);
      if (!m) fail("a checkpoint signature line is malformed");
      return { name: m[1], sig: b64(m[2], "a signature") };
    });
    return { text: text, origin: lines[0], size: BigInt(lines[1]), root: root, sigs: sigs };
  }

  // parseVerifierKey reads "name+hash+base64(0x01||pubkey)" and checks
  // the key hash (the first 4 bytes of SHA-256(name || "\n" || key)).
  async function parseVerifierKey(vk) {
    var a = vk.indexOf("+"), b = vk.indexOf("+", a + 1);
    if (a < 1 || b < 0) fail("the verifier key is malformed");
    var name = vk.slice(0, a), hash = vk.slice(a + 1, b);
    if (!/^[0-9a-f]{8}$/.test(hash)) fail("the verifier key hash is malformed");
    var key = b64(vk.slice(b + 1), "the verifier key");
    if (key.length !== 33 || key[0] !== 1) fail("the verifier key is not an Ed25519 key");
    var h = await sha256(concat(enc.encode(name + "\n"), key));
    var hex = Array.from(h.slice(0, 4), function (x) { return x.toString(16).padStart(2, "0"); }).join("");
    if (hex !== hash) fail("the verifier key's hash does not match the key");
    return { name: name, hash: h.slice(0, 4), pub: key.slice(1) };
  }

  // rootFromPath is RFC 9162 §2.1.3.2: the root of a tree of size
  // leaves computed from a leaf hash, its index and its inclusion path.
  async function rootFromPath(leafHash, index, size, path) {
    if (index >= size) fail("the entry's position is outside the signed log");
    var fn = index, sn = size - 1n, r = leafHash;
    var one = new Uint8Array([1]);
    for (var i = 0; i < path.length; i++) {
      if (sn === 0n) fail("the inclusion proof is too long");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(concat(one, path[i], r));
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
        }
      } else {
        r = await sha256(concat(one, r, path[i]));
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) fail("the inclusion proof is too short");
    return r;
  }

  // check verifies a $proof answer. expected: {id, time, action,
  // verifierKey} from the page (any may be empty). It resolves to
  // {ok: true, message, origin, size} or {ok: false, message}.
  async function check(p, expected) {
    try {
      expected = expected || {};
      var full = optParam(p, "event") !== undefined;
      var event = full ? b64(param(p, "event"), "the event") : b64(param(p, "view"), "your view of the entry");
      var proof = parseProof(param(p, "proof"));
      var vkText = param(p, "verifierKey");
      if (expected.verifierKey && vkText !== expected.verifierKey) fail("the proof names a different signing key from the one this server publishes");
      if (expected.id !== undefined && expected.id !== "" && proof.index !== BigInt(expected.id)) fail("the proof is for another log position");
      var ev;
      try { ev = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(event)); } catch (e) { fail("the event is not valid JSON"); }
      var leaf;
      if (full) {
        leaf = await sha256(concat(new Uint8Array([0]), proof.salt, event));
      } else {
        leaf = b64(param(p, "leafHash"), "the leaf hash");
        if (leaf.length !== 32) fail("the leaf hash is not 32 bytes");
      }
      if (expected.time && Date.parse(ev.time) !== Date.parse(expected.time)) fail("the proven event's time is not the time shown");
      if (expected.action && ev.action !== expected.action) fail("the proven event's action is not the action shown");

      var cp = parseCheckpoint(proof.checkpoint);
      var vk = await parseVerifierKey(vkText);
      var sig = null;
      cp.sigs.forEach(function (s) {
        if (s.name === vk.name && s.sig.length === 68 && equal(s.sig.slice(0, 4), vk.hash)) sig = s.sig.slice(4);
      });
      if (!sig) fail("the checkpoint is not signed by the published key");
      var key;
      try { key = await crypto.subtle.importKey("raw", vk.pub, { name: "Ed25519" }, false, ["verify"]); } catch (e) {
        fail("this browser cannot check Ed25519 signatures; download the proof and check it with the Go tools");
      }
      if (!(await crypto.subtle.verify({ name: "Ed25519" }, key, sig, enc.encode(cp.text)))) fail("the checkpoint signature is not valid");

      var root = await rootFromPath(leaf, proof.index, cp.size, proof.path);
      if (!equal(root, cp.root)) fail("the entry is not in the signed log: the computed root differs from the signed root");
      return { ok: true, message: "Verified: position " + proof.index + " is in the log " + cp.origin + " of " + cp.size + " entries, signed by " + vk.name + ".", origin: cp.origin, size: String(cp.size) };
    } catch (e) {
      if (e && e.verify) return { ok: false, message: "Not verified: " + e.message + "." };
      return { ok: false, message: "Not verified: the check could not run (" + (e && e.name ? e.name : "error") + ")." };
    }
  }

  var readme = [
    "phivault access-log proof bundle",
    "",
    "view_base64 is your view of the audit event (JSON): what it did to your",
    "record, when, why and who did it. The log's entry also names what is not",
    "yours to see (other patients a search touched, staff network addresses), so",
    "you get its leaf hash (leaf_hash_base64, RFC 6962) instead of the entry.",
    "proof is a C2SP tlog-proof (c2sp.org/tlog-proof) whose last part is the",
    "signed checkpoint; verifier_key is the log's note verifier key, also",
    "published on the server's /trust page.",
    "",
    "To check that the entry is in the signed log, in Go:",
    "  v, _ := note.NewVerifier(bundle.VerifierKey)             // golang.org/x/mod/sumdb/note",
    "  n, err := note.Open([]byte(bundle.Checkpoint), note.VerifierList(v))",
    "  // parse n.Text: origin, tree size, base64 root hash",
    "  err = tlog.CheckRecord(proofHashes, size, root, index, leafHash) // golang.org/x/mod/sumdb/tlog",
    "where proofHashes are the base64 lines between the index line and the empty line.",
    "The entry at that position can never change; a privacy officer or auditor",
    "can confirm that your view is that entry's (they see the whole entry)."
  ].join("\n");

  async function fetchProof(id) {
    var resp = await fetch("/fhir/AuditEvent/" + encodeURIComponent(id) + "/$proof", { credentials: "same-origin", headers: { Accept: "application/fhir+json" } });
    if (resp.status === 404) fail("the server has no proof for this entry yet (it may not be signed yet; try again in a few seconds)");
    if (!resp.ok) fail("the server refused the proof (HTTP " + resp.status + ")");
    return resp.json();
  }

  function expectedFor(row, section) {
    return { id: row.dataset.id, time: row.dataset.time, action: row.dataset.action, verifierKey: section.dataset.verifierKey || "" };
  }

  async function onVerify(btn, section) {
    var row = btn.closest("tr");
    var out = document.getElementById("verify-" + btn.dataset.id);
    out.textContent = "Checking…";
    out.className = "verify-result";
    var res;
    try {
      res = await check(await fetchProof(btn.dataset.id), expectedFor(row, section));
    } catch (e) {
      res = { ok: false, message: "Not verified: " + (e && e.verify ? e.message : "the proof could not be fetched") + "." };
    }
    out.textContent = res.message;
    out.className = "verify-result " + (res.ok ? "verified" : "not-verified");
  }

  async function onDownload(btn) {
    var out = document.getElementById("verify-" + btn.dataset.id);
    try {
      var p = await fetchProof(btn.dataset.id);
      var proofText = param(p, "proof");
      var parsed = parseProof(proofText);
      var bundle = {
        index: param(p, "index"),
        proof: proofText,
        checkpoint: parsed.checkpoint,
        verifier_key: param(p, "verifierKey"),
        readme: readme
      };
      if (optParam(p, "event") !== undefined) {
        bundle.event_base64 = param(p, "event");
        bundle.salt_base64 = b64enc(parsed.salt);
      } else {
        bundle.view_base64 = param(p, "view");
        bundle.leaf_hash_base64 = param(p, "leafHash");
      }
      var blob = new Blob([JSON.stringify(bundle, null, 2)], { type: "application/json" });
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "phivault-proof-" + btn.dataset.id + ".json";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
      btn.dataset.download = "saved";
    } catch (e) {
      out.textContent = "The proof could not be downloaded: " + (e && e.verify ? e.message : "error") + ".";
      out.className = "verify-result not-verified";
      btn.dataset.download = "failed";
    }
  }

  window.phivaultVerify = { check: check, parseProof: parseProof, parseCheckpoint: parseCheckpoint, rootFromPath: rootFromPath, b64: b64 };

  document.addEventListener("DOMContentLoaded", function () {
    var section = document.getElementById("portal-access");
    if (!section) return;
    section.addEventListener("click", function (ev) {
      var btn = ev.target.closest("button.verify, button.proof-download");
      if (!btn) return;
      if (btn.classList.contains("verify")) onVerify(btn, section); else onDownload(btn);
    });
  });
})();
