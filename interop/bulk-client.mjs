// An independent FHIR Bulk Data Access client, written from the text of
// the HL7 FHIR Bulk Data Access IG v2.0.0 (STU 2, "export.md" and
// "authorization.md" of github.com/HL7/bulk-data at the 2.0.0
// publication) and SMART App Launch 2.2.0 ("Backend Services" and
// "Client Authentication: Asymmetric"), not from phivault's code. It drives
// a running server through discovery, a SMART Backend Services token,
// system-, Patient- and Group-level $export kick-offs, status polling,
// the complete-status manifest, the NDJSON downloads and the DELETE of
// each job, and checks every answer against the IG. Each check names the
// section it enforces, e.g. [export#response---complete-status].
//
// Two levels of check:
//
//   IG        a SHALL (or a required field) of the IG or of SMART; a
//             failure is the server's deviation from the standard.
//   phivault  where the IG leaves the server a choice (MAY), what
//             phivault promises instead: refusing a kick-off without
//             "Prefer: respond-async", owner-only jobs, POST kick-off,
//             _typeFilter honoured, requiresAccessToken=true. Skipped
//             with BULK_IG_ONLY=1, so the script can judge any server.
//
// Usage:
//
//   node bulk-client.mjs keygen DIR NAME ALG
//       ALG is ES384 or RS384 (SMART: a client SHALL support both).
//       Writes DIR/NAME.key.json, the private JWK (mode 0600, never
//       overwritten), and DIR/NAME.jwks.json, the public JWK Set to
//       register with the server. Prints only the public file's path.
//
//   node bulk-client.mjs
//       Runs the checks. Environment:
//         PHIVAULT_FHIR_URL        FHIR base URL, e.g. https://127.0.0.1:8443/fhir
//         PHIVAULT_CA_FILE         PEM of the server's CA (the script re-runs
//                                  itself with NODE_EXTRA_CA_CERTS set to it)
//         BULK_CLIENT_ID           client_id of the backend client under test
//         BULK_CLIENT_KEY          its private JWK file (from keygen)
//         BULK_OTHER_CLIENT_ID     a second registered backend client, and
//         BULK_OTHER_CLIENT_KEY    its private JWK file (the cross-client checks)
//         BULK_SCOPE               scopes to request (default "system/*.rs")
//         BULK_PATIENTS            ids of patients known to exist, comma-separated
//         BULK_GROUP_ID            a Group whose members are exactly
//         BULK_GROUP_MEMBERS       these patient ids, comma-separated
//         PHIVAULT_TOKEN           optional: a token that may create an
//                                  Observation, used once, so that _since has
//                                  a change to find (without it the _since
//                                  check only asks for "no change, no output")
//         BULK_IG_ONLY=1           run the IG-level checks only
//         BULK_TIMEOUT_S           bound on one export, kick-off to complete (180)
//         BULK_MAX_WAIT_S          cap on one Retry-After wait (10)
//
// It prints one line per check, then a JSON summary, and exits 1 on any
// failed check (2 on a usage error). It prints ids, counts, statuses and
// the server's OperationOutcome issue codes, never a token, a key or
// resource content.

import { spawnSync } from 'node:child_process';
import { constants as fsc, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import * as jose from 'jose';

const env = process.env;

// ---- keygen ---------------------------------------------------------------

if (process.argv[2] === 'keygen') {
  const [dir, name, alg] = process.argv.slice(3);
  if (!dir || !/^[a-z0-9-]+$/.test(name ?? '') || !['ES384', 'RS384'].includes(alg)) {
    console.error('usage: node bulk-client.mjs keygen DIR NAME ES384|RS384');
    process.exit(2);
  }
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const pub = await jose.exportJWK(publicKey);
  // SMART client-confidential-asymmetric "Registering a client": each JWK
  // SHALL carry kty and kid; kid SHALL be unique within the set. An RFC
  // 7638 thumbprint is unique and says nothing about the key's owner.
  const kid = await jose.calculateJwkThumbprint(pub, 'sha256');
  Object.assign(pub, { kid, alg, use: 'sig' });
  const priv = { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
  const writeNew = (file, data, mode) => {
    // O_EXCL: a key file is never overwritten; 0600: only its owner reads it.
    const fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
    try { writeSync(fd, data); } finally { closeSync(fd); }
  };
  writeNew(path.join(dir, `${name}.key.json`), JSON.stringify(priv), 0o600);
  const pubFile = path.join(dir, `${name}.jwks.json`);
  writeNew(pubFile, JSON.stringify({ keys: [pub] }), 0o644);
  console.log(pubFile);
  process.exit(0);
}

// ---- set-up ---------------------------------------------------------------

if (env.PHIVAULT_CA_FILE && env.NODE_EXTRA_CA_CERTS !== env.PHIVAULT_CA_FILE) {
  // Node reads NODE_EXTRA_CA_CERTS at start-up only.
  const r = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...env, NODE_EXTRA_CA_CERTS: env.PHIVAULT_CA_FILE },
  });
  process.exit(r.status ?? 1);
}

for (const k of ['PHIVAULT_FHIR_URL', 'BULK_CLIENT_ID', 'BULK_CLIENT_KEY', 'BULK_OTHER_CLIENT_ID', 'BULK_OTHER_CLIENT_KEY']) {
  if (!env[k]) {
    console.error(`bulk-client.mjs: ${k} is not set`);
    process.exit(2);
  }
}
const base = env.PHIVAULT_FHIR_URL.replace(/\/+$/, '');
const igOnly = env.BULK_IG_ONLY === '1';
const requestedScope = env.BULK_SCOPE || 'system/*.rs';
const list = (v) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const knownPatients = list(env.BULK_PATIENTS);
const groupID = env.BULK_GROUP_ID ?? '';
const groupMembers = list(env.BULK_GROUP_MEMBERS);
const exportTimeout = 1000 * Number(env.BULK_TIMEOUT_S || 180);
const maxWait = 1000 * Number(env.BULK_MAX_WAIT_S || 10);
const requestTimeout = 60_000;

// Sections of the IG and of SMART, cited by each check.
const IG = 'bulkdata/STU2/export.html';
const SMART_BS = 'smart-app-launch/STU2.2/backend-services.html';
const SMART_ASYM = 'smart-app-launch/STU2.2/client-confidential-asymmetric.html';

// ---- check harness --------------------------------------------------------

const checks = [];
let failures = 0;

/** Abort ends the current scenario; the ones after it still run. */
class Abort extends Error {}

/**
 * check records one check: level "IG" or "phivault", ref the section it
 * enforces. It returns ok. A phivault-level check under BULK_IG_ONLY is
 * recorded as skipped.
 */
function check(level, ref, name, ok, detail = '') {
  if (level === 'phivault' && igOnly) {
    checks.push({ level, ref, name, result: 'skipped' });
    console.log(`skip [${level} ${ref}] ${name}`);
    return true;
  }
  const result = ok ? 'pass' : 'FAIL';
  if (!ok) failures++;
  checks.push({ level, ref, name, result, ...(ok || !detail ? {} : { detail }) });
  console.log(`${ok ? 'ok  ' : 'FAIL'} [${level} ${ref}] ${name}${ok || !detail ? '' : ` -- ${detail}`}`);
  return ok;
}

/** must is check that aborts the scenario on failure. */
function must(level, ref, name, ok, detail) {
  if (!check(level, ref, name, ok, detail)) throw new Abort(name);
}

const scenarios = [];
async function scenario(name, fn) {
  console.log(`-- ${name}`);
  const s = { name, result: 'completed' };
  scenarios.push(s);
  try {
    await fn();
  } catch (e) {
    if (e instanceof Abort) {
      s.result = `aborted at: ${e.message}`;
    } else {
      failures++;
      s.result = `error: ${e.message}`;
      console.log(`FAIL ${name}: unexpected error: ${e.message}`);
    }
  }
}

// ---- HTTP -----------------------------------------------------------------

/**
 * http sends one request and reads the whole answer. It follows no
 * redirect: every URL the IG hands a client is to be used as given.
 */
async function http(method, url, { token, headers = {}, body } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  const res = await fetch(url, { method, headers: h, body, redirect: 'manual', signal: AbortSignal.timeout(requestTimeout) });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

/** mediaType is a Content-Type without its parameters, lower-cased. */
const mediaType = (r) => (r.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();

/** isOutcome reports whether r's body is a FHIR OperationOutcome in JSON. */
const isOutcome = (r) => r.json?.resourceType === 'OperationOutcome' && Array.isArray(r.json.issue) && r.json.issue.length > 0;

/** describe summarises an answer for a failure message: status and issue codes only. */
function describe(r) {
  if (isOutcome(r)) {
    const issues = r.json.issue.map((i) => `${i.severity}/${i.code}${i.diagnostics ? ` "${String(i.diagnostics).slice(0, 120)}"` : ''}`);
    return `HTTP ${r.status} OperationOutcome ${issues.join('; ')}`;
  }
  return `HTTP ${r.status} ${mediaType(r) || 'no content type'}, ${r.text.length} bytes`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- SMART Backend Services -----------------------------------------------

let tokenEndpoint;

/** discover reads token_endpoint from [base]/.well-known/smart-configuration. */
async function discover(algs) {
  const r = await http('GET', `${base}/.well-known/smart-configuration`, { headers: { Accept: 'application/json' } });
  must('IG', `${SMART_BS}#discovery`, 'smart-configuration answers 200 with a JSON object', r.status === 200 && r.json && typeof r.json === 'object', describe(r));
  const c = r.json;
  let ok = false;
  try { ok = new URL(c.token_endpoint).protocol === 'https:'; } catch { ok = false; }
  must('IG', `${SMART_BS}#discovery`, 'smart-configuration names an https token_endpoint', ok, `token_endpoint=${c.token_endpoint}`);
  tokenEndpoint = c.token_endpoint;
  check('IG', `${SMART_ASYM}#discovery`, 'token_endpoint_auth_methods_supported includes private_key_jwt',
    Array.isArray(c.token_endpoint_auth_methods_supported) && c.token_endpoint_auth_methods_supported.includes('private_key_jwt'),
    JSON.stringify(c.token_endpoint_auth_methods_supported));
  for (const alg of algs) {
    check('IG', `${SMART_ASYM}#discovery`, `token_endpoint_auth_signing_alg_values_supported includes ${alg}`,
      Array.isArray(c.token_endpoint_auth_signing_alg_values_supported) && c.token_endpoint_auth_signing_alg_values_supported.includes(alg),
      JSON.stringify(c.token_endpoint_auth_signing_alg_values_supported));
  }
  check('IG', `${SMART_ASYM}#discovery`, 'capabilities include client-confidential-asymmetric',
    Array.isArray(c.capabilities) && c.capabilities.includes('client-confidential-asymmetric'), JSON.stringify(c.capabilities));
}

/** loadClient reads a client's private JWK from the file keygen wrote. */
async function loadClient(id, file) {
  const jwk = JSON.parse(readFileSync(file, 'utf8'));
  if (!['ES384', 'RS384'].includes(jwk.alg) || !jwk.kid) throw new Error(`${path.basename(file)}: not a keygen key`);
  return { id, kid: jwk.kid, alg: jwk.alg, key: await jose.importJWK(jwk, jwk.alg), token: '', expires: 0 };
}

/**
 * assertion is the authentication JWT of SMART client-confidential-
 * asymmetric "Authenticating to the Token endpoint": header alg, kid,
 * typ=JWT; claims iss = sub = client_id, aud = the token URL, exp no
 * more than five minutes ahead (4 here, leaving room for clock skew),
 * and a jti that is never reused.
 */
function assertion(client, { iss = client.id, key = client.key, kid = client.kid, alg = client.alg } = {}) {
  return new jose.SignJWT({})
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuer(iss)
    .setSubject(iss)
    .setAudience(tokenEndpoint)
    .setJti(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime('4m')
    .sign(key);
}

/** tokenRequest posts the client_credentials grant with a signed assertion. */
function tokenRequest(jwt, scope = requestedScope) {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: jwt,
  });
  return http('POST', tokenEndpoint, {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: form.toString(),
  });
}

/**
 * token returns a valid access token of client, asking for a new one
 * when the last has less than 30 seconds left (SMART: tokens are short-
 * lived; "clients can request new access tokens as needed").
 */
async function token(client) {
  if (client.token && Date.now() < client.expires - 30_000) return client.token;
  const r = await tokenRequest(await assertion(client));
  const t = r.json ?? {};
  must('IG', `${SMART_BS}#response`, `token request of ${client.alg} client answers 200 with access_token`,
    r.status === 200 && typeof t.access_token === 'string' && t.access_token.length > 0, describe(r));
  check('IG', `${SMART_BS}#response`, 'token response has token_type "bearer"', String(t.token_type).toLowerCase() === 'bearer', `token_type=${t.token_type}`);
  check('IG', `${SMART_BS}#response`, 'token response has a positive expires_in', Number.isInteger(t.expires_in) && t.expires_in > 0, `expires_in=${t.expires_in}`);
  check('IG', `${SMART_BS}#response`, 'token response has a scope', typeof t.scope === 'string' && t.scope.length > 0);
  // "the expires_in value SHOULD NOT exceed 300": a SHOULD, checked at
  // phivault's level, which promises five minutes (docs/operations.md).
  check('phivault', `${SMART_BS}#response`, 'expires_in is at most 300 seconds', t.expires_in <= 300, `expires_in=${t.expires_in}`);
  client.token = t.access_token;
  client.expires = Date.now() + 1000 * (Number(t.expires_in) || 60);
  return client.token;
}

// ---- the asynchronous request pattern ------------------------------------

/** retryAfter reads Retry-After (seconds or an HTTP-date) in ms, or undefined. */
function retryAfter(r) {
  const v = r.headers.get('retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return 1000 * Number(v.trim());
  const d = Date.parse(v);
  return Number.isNaN(d) ? undefined : Math.max(0, d - Date.now());
}

/**
 * kickOff sends a Bulk Data Kick-off Request [export#bulk-data-kick-off-request]
 * to [base]/endpoint and returns the answer and the URL sent (see
 * started for the success answer). params is a list of [name, value]
 * pairs for GET (so a name may repeat); parameters a FHIR Parameters
 * resource for POST. prefer=false leaves out Prefer, auth=false the token.
 */
async function kickOff(client, endpoint, { params = [], parameters, prefer = true, auth = true } = {}) {
  const url = new URL(`${base}/${endpoint}`);
  for (const [k, v] of params) url.searchParams.append(k, v);
  // [export#headers]: Accept application/fhir+json, Prefer respond-async.
  const headers = { Accept: 'application/fhir+json' };
  if (prefer) headers.Prefer = 'respond-async';
  let body;
  if (parameters) {
    headers['Content-Type'] = 'application/fhir+json';
    body = JSON.stringify(parameters);
  }
  // [export#response---error-eg-unsupported-search-parameter]: a server
  // that wants no new export before one in progress completes SHOULD
  // answer 429 with Retry-After; the client waits and asks again.
  const deadline = Date.now() + exportTimeout;
  for (;;) {
    const r = await http(parameters ? 'POST' : 'GET', url.href, { token: auth ? await token(client) : undefined, headers, body });
    const wait = Math.min(retryAfter(r) ?? 1000, maxWait);
    if (r.status !== 429 || Date.now() + wait >= deadline) return { r, sent: url.href };
    await sleep(wait);
  }
}

/** accepted counts the kick-offs the server accepted in this run. */
let accepted = 0;

/** started requires a kick-off answer to be the IG's success answer. */
function started(what, { r, sent }) {
  if (r.status === 202) accepted++;
  must('IG', `${IG}#response---success`, `${what}: kick-off answers 202 Accepted`, r.status === 202, describe(r));
  let loc;
  try { loc = new URL(r.headers.get('content-location')); } catch { loc = undefined; }
  must('IG', `${IG}#response---success`, `${what}: kick-off gives an absolute Content-Location`, loc !== undefined,
    `Content-Location=${r.headers.get('content-location')}`);
  if (r.text) {
    check('IG', `${IG}#response---success`, `${what}: a kick-off body, when present, is an OperationOutcome`, isOutcome(r), describe(r));
  }
  return { status: loc.href, sent };
}

/** refusedWithOutcome checks an error answer: 4XX/5XX and an OperationOutcome body. */
function refusedWithOutcome(level, ref, what, r, codes = null) {
  const statusOK = codes ? codes.includes(r.status) : r.status >= 400 && r.status < 600;
  check(level, ref, `${what}: refused with ${codes ? codes.join('/') : '4XX/5XX'}`, statusOK, describe(r));
  if (r.status >= 400) {
    check('IG', `${IG}#response---error-eg-unsupported-search-parameter`, `${what}: the error body is an OperationOutcome`, isOutcome(r), describe(r));
  }
}

/**
 * poll polls the status URL until the complete status, honouring
 * Retry-After (capped at BULK_MAX_WAIT_S) and otherwise backing off
 * exponentially [export#bulk-data-status-request], within
 * BULK_TIMEOUT_S. It returns the 200 answer.
 */
async function poll(client, what, status) {
  const deadline = Date.now() + exportTimeout;
  let backoff = 250;
  let polls = 0;
  for (;;) {
    // [export#bulk-data-status-request]: Accept application/json.
    const r = await http('GET', status, { token: await token(client), headers: { Accept: 'application/json' } });
    polls++;
    if (r.status === 200) {
      check('IG', `${IG}#bulk-data-status-request`, `${what}: complete after ${polls} poll(s)`, true);
      return r;
    }
    let wait;
    if (r.status === 202) {
      const progress = r.headers.get('x-progress');
      // [export#response---in-progress-status]: X-Progress, when sent, is
      // a text of less than 100 characters.
      if (progress !== null) {
        check('IG', `${IG}#response---in-progress-status`, `${what}: X-Progress is shorter than 100 characters`, progress.length < 100, `${progress.length} characters`);
      }
      wait = retryAfter(r);
    } else if (r.status === 429) {
      // Polling too often: the server SHOULD send Retry-After; wait it out.
      wait = retryAfter(r);
    } else {
      // [export#response---error-status]: an error SHOULD be an
      // OperationOutcome; a "transient" issue asks to retry later.
      const transient = isOutcome(r) && r.json.issue.some((i) => i.code === 'transient');
      must('IG', `${IG}#response---error-status`, `${what}: status request answers 202 or 200`, transient, describe(r));
      wait = retryAfter(r);
    }
    if (wait === undefined) {
      wait = backoff;
      backoff = Math.min(backoff * 2, maxWait);
    }
    wait = Math.min(wait, maxWait);
    // The client's own bound (BULK_TIMEOUT_S), not an IG rule: a job
    // that never completes is a failure all the same.
    must('IG', `${IG}#bulk-data-status-request`, `${what}: completes within ${exportTimeout / 1000}s (the client's bound)`, Date.now() + wait < deadline,
      `still ${r.status} after ${polls} polls`);
    await sleep(wait);
  }
}

const instant = /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;
const resourceType = /^[A-Z][A-Za-z]+$/;

/**
 * manifest validates the complete-status body
 * [export#response---complete-status] and returns it.
 */
function manifest(what, r, { sent, post }) {
  check('IG', `${IG}#response---complete-status`, `${what}: complete status has Content-Type application/json`,
    mediaType(r) === 'application/json', `Content-Type=${r.headers.get('content-type')}`);
  const m = r.json;
  must('IG', `${IG}#response---complete-status`, `${what}: complete status body is a JSON object`, m && typeof m === 'object' && !Array.isArray(m), describe(r));
  must('IG', `${IG}#response---complete-status`, `${what}: transactionTime is a FHIR instant`, typeof m.transactionTime === 'string' && instant.test(m.transactionTime),
    `transactionTime=${m.transactionTime}`);
  // request: "the full URL of the original bulk data kick-off request. In
  // the case of a POST request, this URL will not include the request
  // parameters." Compared parsed, so encoding choices do not matter.
  let req;
  try { req = new URL(m.request); } catch { req = undefined; }
  const want = new URL(sent);
  const sameQuery = (a, b) => JSON.stringify([...a.searchParams].sort()) === JSON.stringify([...b.searchParams].sort());
  check('IG', `${IG}#response---complete-status`, `${what}: request is the kick-off URL`,
    req !== undefined && req.origin === want.origin && decodeURIComponent(req.pathname) === decodeURIComponent(want.pathname) &&
      (post ? req.search === '' : sameQuery(req, want)),
    `request=${m.request}`);
  must('IG', `${IG}#response---complete-status`, `${what}: requiresAccessToken is a boolean`, typeof m.requiresAccessToken === 'boolean',
    `requiresAccessToken=${m.requiresAccessToken}`);
  // The IG allows false for file servers outside OAuth; phivault serves
  // the files itself behind its bearer tokens, so SHALL be true there.
  check('phivault', `${IG}#response---complete-status`, `${what}: requiresAccessToken is true`, m.requiresAccessToken === true);
  must('IG', `${IG}#response---complete-status`, `${what}: output is an array`, Array.isArray(m.output), `output=${typeof m.output}`);
  must('IG', `${IG}#response---complete-status`, `${what}: error is an array`, Array.isArray(m.error), `error=${typeof m.error}`);
  const items = [['output', m.output], ['error', m.error]];
  if (m.deleted !== undefined) {
    must('IG', `${IG}#response---complete-status`, `${what}: deleted, when present, is an array`, Array.isArray(m.deleted));
    items.push(['deleted', m.deleted]);
  }
  if (m.extension !== undefined) {
    check('IG', `${IG}#response---complete-status`, `${what}: extension, when present, is a JSON object`,
      m.extension !== null && typeof m.extension === 'object' && !Array.isArray(m.extension));
  }
  for (const [field, arr] of items) {
    arr.forEach((it, i) => {
      let abs = false;
      try { abs = Boolean(new URL(it?.url)); } catch { abs = false; }
      must('IG', `${IG}#response---complete-status`, `${what}: ${field}[${i}] has a resource type and an absolute url`,
        typeof it?.type === 'string' && resourceType.test(it.type) && abs, JSON.stringify({ type: it?.type, url: it?.url }));
      if (it.count !== undefined) {
        check('IG', `${IG}#response---complete-status`, `${what}: ${field}[${i}].count is a non-negative integer`, Number.isInteger(it.count) && it.count >= 0, `count=${it.count}`);
      }
      if (field === 'error') check('IG', `${IG}#response---complete-status`, `${what}: error[${i}].type is OperationOutcome`, it.type === 'OperationOutcome', `type=${it.type}`);
      if (field === 'deleted') check('IG', `${IG}#response---complete-status`, `${what}: deleted[${i}].type is Bundle`, it.type === 'Bundle', `type=${it.type}`);
    });
  }
  return m;
}

/**
 * download fetches one file item [export#bulk-data-output-file-request]
 * with Accept application/fhir+ndjson and, when requiresAccessToken is
 * true, the bearer token; it parses every line and checks each resource
 * is of the item's type and the number of lines is its count. It
 * returns the resources.
 */
async function download(client, what, m, field, item) {
  const r = await http('GET', item.url, {
    token: m.requiresAccessToken ? await token(client) : undefined,
    headers: { Accept: 'application/fhir+ndjson' },
  });
  const name = `${what}: ${field} ${item.type} file`;
  must('IG', `${IG}#response---success-1`, `${name} answers 200`, r.status === 200, describe(r));
  check('IG', `${IG}#response---success-1`, `${name} has Content-Type application/fhir+ndjson`,
    mediaType(r) === 'application/fhir+ndjson', `Content-Type=${r.headers.get('content-type')}`);
  const resources = [];
  const lines = r.text.split('\n');
  let bad = 0;
  let wrongType = 0;
  for (const line of lines) {
    // ndjson: one JSON value per line; a parser may skip empty lines
    // (the last one, after the final newline, in particular).
    if (line.trim() === '') continue;
    let res;
    try { res = JSON.parse(line); } catch { bad++; continue; }
    if (res === null || typeof res !== 'object' || Array.isArray(res)) { bad++; continue; }
    if (res.resourceType !== item.type) wrongType++;
    resources.push(res);
  }
  check('IG', `${IG}#response---success-1`, `${name}: every line is a JSON object`, bad === 0, `${bad} bad line(s)`);
  // [export#response---complete-status] output.type: "Each file SHALL
  // contain resources of only one type".
  check('IG', `${IG}#response---complete-status`, `${name}: every resource is a ${item.type}`, wrongType === 0, `${wrongType} of another type`);
  if (item.count !== undefined) {
    check('IG', `${IG}#response---complete-status`, `${name}: count ${item.count} equals the ${resources.length} lines`, item.count === resources.length);
  }
  return resources;
}

/**
 * fetchAll downloads every output, error and deleted file of m and
 * returns the output resources by type. It checks the deleted and error
 * files' shapes and that no resource appears twice
 * [export#bulk-data-output-file-request]: "only the most recent version".
 */
async function fetchAll(client, what, m) {
  const byType = new Map();
  for (const item of m.output) {
    const rs = await download(client, what, m, 'output', item);
    byType.set(item.type, [...(byType.get(item.type) ?? []), ...rs]);
  }
  for (const item of m.error) {
    const rs = await download(client, what, m, 'error', item);
    check('IG', `${IG}#response---complete-status`, `${what}: error file holds OperationOutcomes`, rs.every((x) => x.resourceType === 'OperationOutcome'));
  }
  const deletedKeys = new Set();
  for (const item of m.deleted ?? []) {
    const rs = await download(client, what, m, 'deleted', item);
    const ok = rs.every((b) => b.resourceType === 'Bundle' && b.type === 'transaction' && Array.isArray(b.entry) && b.entry.length > 0 &&
      b.entry.every((e) => e.request?.method === 'DELETE' && typeof e.request?.url === 'string'));
    check('IG', `${IG}#response---complete-status`, `${what}: deleted files hold transaction Bundles of DELETE entries`, ok);
    for (const b of rs) for (const e of b.entry ?? []) deletedKeys.add(e.request?.url);
  }
  let dup = 0;
  let deletedToo = 0;
  for (const [type, rs] of byType) {
    const seen = new Set();
    for (const x of rs) {
      const k = `${type}/${x.id}`;
      if (seen.has(k)) dup++;
      seen.add(k);
      if (deletedKeys.has(k)) deletedToo++;
    }
  }
  check('IG', `${IG}#bulk-data-output-file-request`, `${what}: no resource is exported twice (latest version only)`, dup === 0, `${dup} duplicate(s)`);
  if (m.deleted) {
    check('IG', `${IG}#response---complete-status`, `${what}: no resource is both in deleted and in output`, deletedToo === 0, `${deletedToo}`);
  }
  return byType;
}

/**
 * cancel deletes the job [export#bulk-data-delete-request]: 202, after
 * which the status URL SHALL answer 404 with an OperationOutcome.
 */
async function cancel(client, what, status) {
  const r = await http('DELETE', status, { token: await token(client), headers: { Accept: 'application/fhir+json' } });
  must('IG', `${IG}#bulk-data-delete-request`, `${what}: DELETE of the job answers 202`, r.status === 202, describe(r));
  if (r.text) check('IG', `${IG}#bulk-data-delete-request`, `${what}: a DELETE body, when present, is an OperationOutcome`, isOutcome(r), describe(r));
  const after = await http('GET', status, { token: await token(client), headers: { Accept: 'application/json' } });
  check('IG', `${IG}#bulk-data-delete-request`, `${what}: after DELETE the status URL answers 404`, after.status === 404, describe(after));
  check('IG', `${IG}#bulk-data-delete-request`, `${what}: the 404 after DELETE is an OperationOutcome in JSON`, isOutcome(after), describe(after));
}

/** ref returns the id a reference names for type, or undefined. */
function refID(ref, type) {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref?.reference ?? '');
  return m && m[1] === type ? m[2] : undefined;
}

/** typesWithin checks every output type is one _type asked for. */
function typesWithin(what, m, wanted) {
  const extra = [...new Set(m.output.map((o) => o.type))].filter((t) => !wanted.includes(t));
  // [export#query-parameters] _type: "The response SHALL be filtered to
  // only include resources of the specified resource types(s)."
  check('IG', `${IG}#query-parameters`, `${what}: output holds only the _type types ${wanted.join(',')}`, extra.length === 0, `also ${extra.join(',')}`);
}

// ---- the run --------------------------------------------------------------

const a = await loadClient(env.BULK_CLIENT_ID, env.BULK_CLIENT_KEY);
const b = await loadClient(env.BULK_OTHER_CLIENT_ID, env.BULK_OTHER_CLIENT_KEY);
const summary = { base, igOnly, clients: [a.alg, b.alg], exports: {} };
let firstTransactionTime;

await scenario('SMART Backend Services token', async () => {
  await discover([...new Set([a.alg, b.alg])]);
  await token(a);
  await token(b);
  // [SMART asymmetric "Signature Verification"]: the server SHALL check
  // that a jti was not seen before for the iss.
  const jwt = await assertion(a);
  const first = await tokenRequest(jwt);
  check('IG', `${SMART_BS}#response`, 'a fresh assertion is accepted', first.status === 200, describe(first));
  const replay = await tokenRequest(jwt);
  check('IG', `${SMART_ASYM}#signature-verification`, 'a replayed assertion (same jti) is refused', replay.status === 400 || replay.status === 401, describe(replay));
  check('IG', `${SMART_BS}#response`, 'the refusal is an OAuth 2.0 error response', typeof replay.json?.error === 'string', describe(replay));
  // RFC 7523 section 3 (SMART asymmetric: the server SHALL validate the
  // JWT so): an assertion for client A signed with client B's key fails.
  const forged = await tokenRequest(await assertion(a, { key: b.key, kid: a.kid, alg: b.alg }));
  check('IG', `${SMART_ASYM}#signature-verification`, "an assertion signed with another client's key is refused", forged.status === 400 || forged.status === 401, describe(forged));
});

await scenario('system-level export ($export, GET)', async () => {
  const what = 'system $export';
  const types = ['Patient', 'Observation'];
  const k = started(what, await kickOff(a, '$export', { params: [['_type', types.join(',')]] }));
  const r = await poll(a, what, k.status);
  const m = manifest(what, r, k);
  firstTransactionTime = m.transactionTime;
  typesWithin(what, m, types);
  const got = await fetchAll(a, what, m);
  const patients = new Set((got.get('Patient') ?? []).map((p) => p.id));
  const missing = knownPatients.filter((id) => !patients.has(id));
  // [export#endpoint---system-level-export]: data "whether or not it is
  // associated with a patient": every patient the test loaded is in it.
  check('IG', `${IG}#endpoint---system-level-export`, `${what}: all ${knownPatients.length} known patients are exported`, missing.length === 0, `missing ${missing.join(',')}`);
  summary.exports.system = { transactionTime: m.transactionTime, output: Object.fromEntries([...got].map(([t, rs]) => [t, rs.length])) };

  // [export#privacy-and-security-considerations]: status and file
  // requests with requiresAccessToken=true "SHALL be protected the same
  // way" as the kick-off: without a token they are refused.
  const noTok = await http('GET', k.status, { headers: { Accept: 'application/json' } });
  check('IG', `${IG}#privacy-and-security-considerations`, `${what}: status request without a token is refused (401)`, noTok.status === 401, describe(noTok));
  if (m.requiresAccessToken && m.output.length > 0) {
    const f = await http('GET', m.output[0].url, { headers: { Accept: 'application/fhir+ndjson' } });
    check('IG', `${IG}#privacy-and-security-considerations`, `${what}: file download without a token is refused (401)`, f.status === 401, describe(f));
    const forged = await http('GET', m.output[0].url, { token: 'not-a-token', headers: { Accept: 'application/fhir+ndjson' } });
    check('IG', `${IG}#privacy-and-security-considerations`, `${what}: file download with an invalid token is refused (401)`, forged.status === 401, describe(forged));
  }
  // "Servers MAY additionally restrict Bulk Data Status Request and Bulk
  // Data Output File Requests by limiting them to the client that
  // originated the export": phivault does; another client, with the same
  // scopes, reads neither the job nor its files (nor may it cancel it).
  const other = await token(b);
  const bs = await http('GET', k.status, { token: other, headers: { Accept: 'application/json' } });
  check('phivault', `${IG}#privacy-and-security-considerations`, `${what}: another client's token cannot read the job status`, bs.status >= 400 && bs.status < 500, describe(bs));
  if (m.output.length > 0) {
    const bf = await http('GET', m.output[0].url, { token: other, headers: { Accept: 'application/fhir+ndjson' } });
    check('phivault', `${IG}#privacy-and-security-considerations`, `${what}: another client's token cannot download the job's files`, bf.status >= 400 && bf.status < 500, describe(bf));
  }
  const bd = await http('DELETE', k.status, { token: other, headers: { Accept: 'application/fhir+json' } });
  check('phivault', `${IG}#privacy-and-security-considerations`, `${what}: another client's token cannot delete the job`, bd.status >= 400 && bd.status < 500, describe(bd));
  await cancel(a, what, k.status);
});

await scenario('system-level export with _since', async () => {
  const what = 'system $export?_since';
  must('IG', `${IG}#response---complete-status`, `${what}: a transactionTime from the first export to start from`, Boolean(firstTransactionTime));
  let changed;
  if (env.PHIVAULT_TOKEN && knownPatients.length > 0) {
    // One change after the first export's transactionTime.
    const obs = {
      resourceType: 'Observation', status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
      subject: { reference: `Patient/${knownPatients[0]}` },
      effectiveDateTime: new Date().toISOString(),
      valueQuantity: { value: 71, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    };
    const c = await http('POST', `${base}/Observation`, { token: env.PHIVAULT_TOKEN, headers: { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' }, body: JSON.stringify(obs) });
    must('IG', 'set-up', `${what}: set-up creates one Observation after the first export`, c.status === 201 && typeof c.json?.id === 'string', describe(c));
    changed = c.json.id;
  }
  const types = ['Patient', 'Observation'];
  const k = started(what, await kickOff(a, '$export', { params: [['_type', types.join(',')], ['_since', firstTransactionTime]] }));
  const m = manifest(what, await poll(a, what, k.status), k);
  typesWithin(what, m, types);
  const got = await fetchAll(a, what, m);
  // [export#query-parameters] _since: resources are included "if their
  // state has changed after the supplied time". At system level the
  // IG's allowance for referenced resources does not apply, so every
  // resource with a meta.lastUpdated has one after _since.
  const since = Date.parse(firstTransactionTime);
  let older = 0;
  let total = 0;
  for (const rs of got.values()) {
    for (const x of rs) {
      total++;
      if (x.meta?.lastUpdated && Date.parse(x.meta.lastUpdated) <= since) older++;
    }
  }
  check('IG', `${IG}#query-parameters`, `${what}: no resource last updated at or before _since (${total} exported)`, older === 0, `${older} older`);
  if (changed) {
    const obs = (got.get('Observation') ?? []).map((x) => x.id);
    check('IG', `${IG}#query-parameters`, `${what}: the Observation created after _since is exported`, obs.includes(changed), `${obs.length} Observation(s), not ${changed}`);
  } else {
    check('IG', `${IG}#query-parameters`, `${what}: nothing changed since the first export, nothing exported`, total === 0, `${total} resource(s)`);
  }
  summary.exports.since = { since: firstTransactionTime, output: Object.fromEntries([...got].map(([t, rs]) => [t, rs.length])) };
  await cancel(a, what, k.status);
});

await scenario('Patient-level export (Patient/$export, GET, _type repeated)', async () => {
  const what = 'Patient/$export';
  const types = ['Patient', 'Condition'];
  // [export#bulk-data-kick-off-request]: a client MAY repeat a
  // comma-delimited parameter; the server SHALL treat the values as one
  // comma-delimited list.
  const k = started(what, await kickOff(a, 'Patient/$export', { params: types.map((t) => ['_type', t]) }));
  const m = manifest(what, await poll(a, what, k.status), k);
  typesWithin(what, m, types);
  const got = await fetchAll(a, what, m);
  const patients = new Set((got.get('Patient') ?? []).map((p) => p.id));
  check('IG', `${IG}#endpoint---all-patients`, `${what}: all ${knownPatients.length} known patients are exported`, knownPatients.every((id) => patients.has(id)),
    `missing ${knownPatients.filter((id) => !patients.has(id)).join(',')}`);
  check('IG', `${IG}#bulk-data-kick-off-request`, `${what}: both repeated _type values were honoured`, got.has('Condition') && got.has('Patient'), `types ${[...got.keys()].join(',')}`);
  summary.exports.patient = { output: Object.fromEntries([...got].map(([t, rs]) => [t, rs.length])) };
  await cancel(a, what, k.status);
});

await scenario('Patient-level export (Patient/$export, POST Parameters)', async () => {
  const what = 'POST Patient/$export';
  const types = ['Patient', 'Encounter'];
  // [export#bulk-data-kick-off-request]: "Servers ... MAY support POST
  // requests that supply parameters using the FHIR Parameters Resource";
  // phivault does.
  const parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: '_outputFormat', valueString: 'application/fhir+ndjson' },
      { name: '_type', valueString: types.join(',') },
    ],
  };
  const sent = await kickOff(a, 'Patient/$export', { parameters });
  if (sent.r.status !== 202) {
    refusedWithOutcome('IG', `${IG}#response---error-eg-unsupported-search-parameter`, `${what}: POST kick-off`, sent.r);
    check('phivault', `${IG}#bulk-data-kick-off-request`, `${what}: POST kick-off is supported`, false, describe(sent.r));
    return;
  }
  const k = started(what, sent);
  const m = manifest(what, await poll(a, what, k.status), { ...k, post: true });
  typesWithin(what, m, types);
  const got = await fetchAll(a, what, m);
  check('IG', `${IG}#query-parameters`, `${what}: the _type of the Parameters body was honoured`, got.has('Encounter') && got.has('Patient'), `types ${[...got.keys()].join(',')}`);
  summary.exports.patientPost = { output: Object.fromEntries([...got].map(([t, rs]) => [t, rs.length])) };
  await cancel(a, what, k.status);
});

await scenario('Group-level export (Group/[id]/$export, GET, _typeFilter)', async () => {
  const what = 'Group/$export';
  must('IG', 'set-up', `${what}: BULK_GROUP_ID and BULK_GROUP_MEMBERS are set`, Boolean(groupID) && groupMembers.length > 0);
  const types = ['Patient', 'Observation'];
  // [export#_typefilter-experimental-query-parameter]: a FHIR search per
  // type; this one keeps the vital signs among the Observations.
  const filter = 'Observation?category=vital-signs';
  const endpoint = `Group/${encodeURIComponent(groupID)}/$export`;
  let sent = await kickOff(a, endpoint, { params: [['_type', types.join(',')], ['_typeFilter', filter]] });
  // A server that does not support _typeFilter SHOULD refuse with an
  // OperationOutcome (IG) rather than ignore it; phivault supports it.
  // After a refusal the Group export is asked for without it, so the
  // Group checks still run.
  let filtered = true;
  if (sent.r.status !== 202) {
    refusedWithOutcome('IG', `${IG}#query-parameters`, `${what}: _typeFilter`, sent.r);
    check('phivault', `${IG}#_typefilter-experimental-query-parameter`, `${what}: _typeFilter is supported`, false, describe(sent.r));
    filtered = false;
    sent = await kickOff(a, endpoint, { params: [['_type', types.join(',')]] });
  }
  const k = started(what, sent);
  const m = manifest(what, await poll(a, what, k.status), k);
  typesWithin(what, m, types);
  const got = await fetchAll(a, what, m);
  const members = new Set(groupMembers);
  const pats = (got.get('Patient') ?? []).map((p) => p.id);
  // [export#endpoint---group-of-patients]: the resources "pertaining to all
  // members of a specified Group"; Patient resources SHOULD be returned.
  check('IG', `${IG}#endpoint---group-of-patients`, `${what}: only the group's members are exported as Patients`, pats.every((id) => members.has(id)), `${pats.length} Patient(s)`);
  check('phivault', `${IG}#bulk-data-kick-off-request`, `${what}: every member's Patient is exported`, groupMembers.every((id) => pats.includes(id)), `${pats.length} of ${groupMembers.length}`);
  const obs = got.get('Observation') ?? [];
  const outside = obs.filter((o) => !members.has(refID(o.subject, 'Patient'))).length;
  check('IG', `${IG}#endpoint---group-of-patients`, `${what}: every Observation is about a member (${obs.length})`, outside === 0, `${outside} about others`);
  const unfiltered = obs.filter((o) => !(o.category ?? []).some((c) => (c.coding ?? []).some((x) => x.code === 'vital-signs'))).length;
  // "servers with support for the parameter and requested search queries
  // SHALL filter the data in the response".
  if (filtered) check('IG', `${IG}#query-parameters`, `${what}: every Observation matches ${filter}`, unfiltered === 0, `${unfiltered} do not`);
  check('phivault', `${IG}#query-parameters`, `${what}: the members' vital signs are exported`, obs.length > 0);
  summary.exports.group = { output: Object.fromEntries([...got].map(([t, rs]) => [t, rs.length])) };
  await cancel(a, what, k.status);
});

await scenario('_outputFormat abbreviations', async () => {
  // [export#query-parameters] _outputFormat: servers SHALL accept
  // application/fhir+ndjson, application/ndjson and ndjson. Each job is
  // cancelled at once; a DELETE may come at any time.
  for (const f of ['application/ndjson', 'ndjson']) {
    const what = `$export?_outputFormat=${f}`;
    const k = started(what, await kickOff(a, '$export', { params: [['_type', 'Patient'], ['_outputFormat', f]] }));
    await cancel(a, what, k.status);
  }
});

await scenario('kick-off refusals', async () => {
  // [export#privacy-and-security-considerations] with SMART Backend
  // Services: the kick-off needs a valid access token.
  const what = 'kick-off without a token';
  const r = (await kickOff(a, '$export', { params: [['_type', 'Patient']], auth: false })).r;
  check('IG', `${SMART_BS}#step-4`, `${what}: refused with 401`, r.status === 401, describe(r));

  // [export#headers] Prefer: "If omitted, a server MAY return an error or
  // MAY process the request as if respond-async was supplied." Either is
  // conformant; anything else (a synchronous 200) is not. phivault
  // promises the refusal.
  const w2 = 'kick-off without Prefer: respond-async';
  // A refusal proves something only from a server that accepts the same
  // kick-off with the header (a server without $export refuses both).
  must('IG', `${IG}#headers`, `${w2}: judged after ${accepted} accepted kick-off(s) with Prefer`, accepted > 0, 'no kick-off was accepted in this run');
  const r2 = await kickOff(a, '$export', { params: [['_type', 'Patient']], prefer: false });
  if (r2.r.status === 202) {
    check('IG', `${IG}#headers`, `${w2}: processed as respond-async (202 with Content-Location)`, Boolean(r2.r.headers.get('content-location')), describe(r2.r));
    check('phivault', `${IG}#headers`, `${w2}: refused`, false, describe(r2.r));
    await cancel(a, w2, started(w2, r2).status);
  } else {
    refusedWithOutcome('IG', `${IG}#headers`, w2, r2.r, null);
    check('phivault', `${IG}#headers`, `${w2}: refused with 4XX`, r2.r.status >= 400 && r2.r.status < 500, describe(r2.r));
  }
});

const failed = checks.filter((c) => c.result === 'FAIL');
summary.checks = { total: checks.length, passed: checks.filter((c) => c.result === 'pass').length, failed: failures, skipped: checks.filter((c) => c.result === 'skipped').length };
summary.scenarios = scenarios;
summary.failures = failed.map((c) => ({ level: c.level, ref: c.ref, name: c.name, detail: c.detail }));
console.log(JSON.stringify(summary, null, 2));
if (failures > 0) {
  const ig = failed.filter((c) => c.level === 'IG').length;
  console.log(`bulk-client: ${failures} check(s) failed (${ig} against the IG or SMART, ${failed.length - ig} against phivault's own promises); first: ${failed[0] ? `[${failed[0].level} ${failed[0].ref}] ${failed[0].name}${failed[0].detail ? ` -- ${failed[0].detail}` : ''}` : scenarios.find((s) => s.result.startsWith('error'))?.result}`);
  process.exit(1);
}
console.log(`bulk-client: all checks passed (${summary.checks.passed} passed, ${summary.checks.skipped} skipped)`);
