// Drives a running phivault with independently written FHIR clients:
// fhir-kit-client (Vermonster), fhirclient (SMART on FHIR's client-js)
// and, when installed, @medplum/core. Each check prints one line; the
// process exits 1 if any check failed.
//
// Environment:
//
//	PHIVAULT_FHIR_URL  FHIR base URL, e.g. https://127.0.0.1:8443/fhir
//	PHIVAULT_TOKEN     API bearer token (never printed)
//	PHIVAULT_CA_FILE   PEM file of the CA that signed the server's certificate;
//	                   the script re-runs itself with NODE_EXTRA_CA_CERTS
//	                   pointing at it (Node reads that variable at start-up only)
//	PHIVAULT_BUNDLES   Synthea bundles to load, in order, separated by the path
//	                   delimiter (":"): the hospital and practitioner batch
//	                   bundles first, then one patient transaction bundle last
//
// The data it loads is synthetic (Synthea); it still prints only ids,
// counts and statuses, never resource content or the token.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';

const env = process.env;
if (env.PHIVAULT_CA_FILE && env.NODE_EXTRA_CA_CERTS !== env.PHIVAULT_CA_FILE) {
  const r = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...env, NODE_EXTRA_CA_CERTS: env.PHIVAULT_CA_FILE },
  });
  process.exit(r.status ?? 1);
}

for (const k of ['PHIVAULT_FHIR_URL', 'PHIVAULT_TOKEN', 'PHIVAULT_BUNDLES']) {
  if (!env[k]) {
    console.error(`clients.mjs: ${k} is not set`);
    process.exit(2);
  }
}
const base = env.PHIVAULT_FHIR_URL.replace(/\/+$/, '');
const token = env.PHIVAULT_TOKEN;
const bundleFiles = env.PHIVAULT_BUNDLES.split(path.delimiter).filter(Boolean);

const require = createRequire(import.meta.url);
const { Client: FhirKitClient, CapabilityTool } = await import('fhir-kit-client');
const smart = require('fhirclient');

// ---- check harness ------------------------------------------------------

let failures = 0;

async function check(client, name, fn) {
  const start = Date.now();
  try {
    const detail = await fn();
    console.log(`ok   ${client.padEnd(15)} ${name}${detail ? ` (${detail})` : ''} ${Date.now() - start}ms`);
  } catch (err) {
    failures++;
    console.log(`FAIL ${client.padEnd(15)} ${name}: ${describe(err)}`);
  }
}

// describe renders an error of any of the clients without the token:
// the status and the OperationOutcome diagnostics are enough.
function describe(err) {
  const status = err?.response?.status ?? err?.status ?? err?.statusCode;
  const body = err?.response?.data ?? err?.outcome ?? err?.body;
  let out = String(err?.message ?? err);
  if (status) out += ` [status ${status}]`;
  if (body?.resourceType === 'OperationOutcome') {
    out += ' ' + body.issue.map((i) => `${i.severity}/${i.code}: ${i.diagnostics ?? ''}`).join('; ');
  }
  return out.split(token).join('<token>');
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// failure awaits a request that must fail and returns the HTTP status and
// body of its failure.
async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    return {
      status: err?.response?.status ?? err?.status,
      body: err?.response?.data ?? err?.outcome,
    };
  }
  throw new Error('the request succeeded; it should have failed');
}

const need = (v, what) => {
  if (v === undefined || v === null) throw new Error(`skipped: ${what} is not available (an earlier check failed)`);
  return v;
};

// ---- what the loaded data should contain -------------------------------

const bundles = bundleFiles.map((f) => ({ file: f, json: JSON.parse(readFileSync(f, 'utf8')) }));
const patientBundle = bundles.findLast((b) => b.json.entry.some((e) => e.resource.resourceType === 'Patient'));
assert(patientBundle, 'PHIVAULT_BUNDLES has no patient bundle');
const inPatient = patientBundle.json.entry.find((e) => e.resource.resourceType === 'Patient').resource;
const family = inPatient.name[0].family;
const synthId = inPatient.identifier.find((i) => i.system === 'https://github.com/synthetichealth/synthea');

// The patient's most frequent Observation coding, and how many of its
// Observations carry it.
const codeCounts = new Map();
for (const e of patientBundle.json.entry) {
  if (e.resource.resourceType !== 'Observation') continue;
  const seen = new Set(e.resource.code.coding.map((c) => `${c.system}|${c.code}`));
  for (const k of seen) codeCounts.set(k, (codeCounts.get(k) ?? 0) + 1);
}
const [obsCode, obsCount] = [...codeCounts].sort((a, b) => b[1] - a[1])[0];

// ---- fhir-kit-client ----------------------------------------------------

const fkc = new FhirKitClient({ baseUrl: base, bearerToken: token });
const state = {};
const K = 'fhir-kit-client';

await check(K, 'capabilityStatement', async () => {
  const cs = await fkc.capabilityStatement();
  assert(cs.resourceType === 'CapabilityStatement', `got ${cs.resourceType}`);
  assert(cs.fhirVersion === '4.0.1', `fhirVersion ${cs.fhirVersion}`);
  assert(cs.format?.some((f) => /json/.test(f)), 'no JSON format');
  const types = cs.rest?.[0]?.resource?.map((r) => r.type) ?? [];
  for (const t of ['Patient', 'Observation', 'Encounter']) assert(types.includes(t), `no ${t} in rest.resource`);
  // What this script is about to use must be advertised.
  const tool = new CapabilityTool(cs);
  for (const i of ['transaction', 'batch']) assert(tool.serverCan(i), `server interaction ${i} not advertised`);
  for (const i of ['read', 'vread', 'update', 'delete', 'create', 'search-type', 'history-instance']) {
    assert(tool.resourceCan('Patient', i), `Patient ${i} not advertised`);
  }
  for (const [t, p] of [['Patient', 'family'], ['Patient', 'identifier'], ['Observation', 'patient'], ['Observation', 'code']]) {
    assert(tool.resourceSearch(t, p), `${t}?${p} not advertised`);
  }
  return `${types.length} resource types; used interactions and parameters advertised`;
});

for (const b of bundles) {
  const name = path.basename(b.file);
  const kind = b.json.type; // "batch" (hospital, practitioners) or "transaction" (a patient)
  await check(K, `${kind} ${name}`, async () => {
    const isPatient = b === patientBundle;
    // The patient transaction is answered with full representations, as
    // a client gets by default; the large directory batches minimally.
    const options = isPatient ? {} : { headers: { Prefer: 'return=minimal' } };
    const out = kind === 'batch'
      ? await fkc.batch({ body: b.json, options })
      : await fkc.transaction({ body: b.json, options });
    assert(out.resourceType === 'Bundle' && out.type === `${kind}-response`, `answer is ${out.resourceType} ${out.type}`);
    assert(out.entry?.length === b.json.entry.length, `${out.entry?.length} response entries for ${b.json.entry.length}`);
    const bad = out.entry
      .map((e, i) => [i, e.response?.status ?? ''])
      .filter(([, s]) => !/^2\d\d/.test(s));
    assert(bad.length === 0, `non-2xx entries: ${bad.slice(0, 5).map(([i, s]) => `#${i} ${s}`).join(', ')}`);
    if (isPatient) {
      state.created = out.entry.map((e, i) => {
        assert(e.resource?.id, `entry ${i} has no resource with an id`);
        const loc = e.response.location ?? '';
        assert(loc.includes(`${e.resource.resourceType}/${e.resource.id}/_history/`), `entry ${i} location ${loc}`);
        return `${e.resource.resourceType}/${e.resource.id}`;
      });
      state.patientId = out.entry.find((e) => e.resource.resourceType === 'Patient').resource.id;
      state.obsIds = out.entry.filter((e) => e.resource.resourceType === 'Observation').map((e) => e.resource.id);
    }
    return `${out.entry.length} entries, all 2xx`;
  });
}

await check(K, 'search Patient?family', async () => {
  const pid = need(state.patientId, 'the patient');
  const b = await fkc.search({ resourceType: 'Patient', searchParams: { family } });
  const ids = (b.entry ?? []).map((e) => e.resource.id);
  assert(ids.includes(pid), `patient ${pid} not among ${ids.length} results`);
  return `${ids.length} match`;
});

await check(K, 'search Patient?identifier=system|value', async () => {
  const pid = need(state.patientId, 'the patient');
  const b = await fkc.search({
    resourceType: 'Patient',
    searchParams: { identifier: `${synthId.system}|${synthId.value}`, _total: 'accurate' },
  });
  const ids = (b.entry ?? []).map((e) => e.resource.id);
  assert(b.total === 1 && ids.length === 1 && ids[0] === pid, `total ${b.total}, ids ${ids}`);
  return 'exactly the patient';
});

await check(K, 'search Patient via POST _search (form body)', async () => {
  const pid = need(state.patientId, 'the patient');
  const b = await fkc.search({
    resourceType: 'Patient',
    searchParams: { identifier: `${synthId.system}|${synthId.value}` },
    options: { postSearch: true },
  });
  const ids = (b.entry ?? []).map((e) => e.resource.id);
  assert(ids.length === 1 && ids[0] === pid, `ids ${ids}`);
  return 'exactly the patient';
});

await check(K, 'read and vread Patient', async () => {
  const id = need(state.patientId, 'the patient');
  const p = await fkc.read({ resourceType: 'Patient', id });
  assert(p.id === id && p.meta?.versionId === '1', `read id ${p.id} version ${p.meta?.versionId}`);
  const etag = FhirKitClient.httpFor(p).response?.headers.get('etag');
  assert(etag === 'W/"1"', `ETag ${etag}`);
  const v = await fkc.vread({ resourceType: 'Patient', id, version: '1' });
  assert(v.id === id && v.meta?.versionId === '1', `vread version ${v.meta?.versionId}`);
  assert(v.name?.[0]?.family === family, 'vread returned another name');
  state.patient = p;
  return `ETag ${etag}`;
});

await check(K, 'update Patient with If-Match', async () => {
  const p = need(state.patient, 'the read patient');
  const body = { ...p, telecom: [...(p.telecom ?? []), { system: 'email', value: 'interop@example.org' }] };
  const u = await fkc.update({ resourceType: 'Patient', id: p.id, body, options: { headers: { 'If-Match': 'W/"1"' } } });
  assert(u.meta?.versionId === '2', `version after update ${u.meta?.versionId}`);
  assert(u.telecom?.some((t) => t.value === 'interop@example.org'), 'update not applied');
  const stale = await failure(fkc.update({ resourceType: 'Patient', id: p.id, body, options: { headers: { 'If-Match': 'W/"1"' } } }));
  assert(stale.status === 409 || stale.status === 412, `stale If-Match answered ${stale.status}`);
  const r = await fkc.read({ resourceType: 'Patient', id: p.id });
  assert(r.meta?.versionId === '2', `read after update: version ${r.meta?.versionId}`);
  return `version 2; stale If-Match ${stale.status}`;
});

await check(K, 'resourceHistory Patient', async () => {
  const id = need(state.patient?.id, 'the read patient');
  const h = await fkc.resourceHistory({ resourceType: 'Patient', id });
  const versions = (h.entry ?? []).map((e) => e.resource?.meta?.versionId);
  assert(h.type === 'history' && versions.join() === '2,1', `history ${h.type} versions ${versions}`);
  return 'versions 2,1';
});

// pages follows next links with the client's pagination helper.
async function allPages(first) {
  const pages = [first];
  for (let b = first; ;) {
    const next = fkc.nextPage({ bundle: b });
    if (!next) return pages;
    b = await next;
    pages.push(b);
    assert(pages.length <= 500, 'more than 500 pages');
  }
}

await check(K, 'search Observation?patient&code, nextPage through all pages', async () => {
  const pid = need(state.patientId, 'the patient');
  const first = await fkc.search({
    resourceType: 'Observation',
    searchParams: { patient: pid, code: obsCode, _count: 5, _total: 'accurate' },
  });
  const pages = await allPages(first);
  const ids = pages.flatMap((p) => (p.entry ?? []).filter((e) => e.search?.mode !== 'include').map((e) => e.resource.id));
  assert(first.total === obsCount, `_total ${first.total}, the bundle has ${obsCount}`);
  assert(ids.length === obsCount, `${ids.length} resources over ${pages.length} pages, want ${obsCount}`);
  assert(new Set(ids).size === ids.length, 'a resource appeared on two pages');
  for (const id of ids) assert(state.obsIds.includes(id), `Observation/${id} is not one of the patient's`);
  state.pagedObs = ids;
  return `${ids.length} on ${pages.length} pages = _total`;
});

await check(K, 'Patient/{id}/$everything', async () => {
  const pid = need(state.patientId, 'the patient');
  const created = need(state.created, 'the loaded resources');
  const first = await fkc.operation({ name: '$everything', resourceType: 'Patient', id: pid, method: 'GET', input: { _count: 100 } });
  assert(first.resourceType === 'Bundle' && first.type === 'searchset', `answer ${first.resourceType} ${first.type}`);
  const pages = await allPages(first);
  const got = new Set(pages.flatMap((p) => (p.entry ?? []).map((e) => `${e.resource.resourceType}/${e.resource.id}`)));
  const missing = created.filter((r) => !got.has(r));
  assert(missing.length === 0, `${missing.length} loaded resources missing, e.g. ${missing.slice(0, 3)}`);
  return `${got.size} resources on ${pages.length} pages`;
});

await check(K, 'delete Observation, read is 410', async () => {
  const pid = need(state.patientId, 'the patient');
  const id = need(state.pagedObs?.[0], 'a paged Observation');
  await fkc.delete({ resourceType: 'Observation', id });
  const gone = await failure(fkc.read({ resourceType: 'Observation', id }));
  assert(gone.status === 410, `read after delete answered ${gone.status}`);
  const b = await fkc.search({ resourceType: 'Observation', searchParams: { patient: pid, code: obsCode, _total: 'accurate', _count: 0 } });
  assert(b.total === obsCount - 1, `_total after delete ${b.total}, want ${obsCount - 1}`);
  return `410; _total ${b.total}`;
});

await check(K, 'invalid resources get an OperationOutcome', async () => {
  const cases = [
    ['birthDate not a date', { resourceType: 'Patient', birthDate: 'yesterday' }],
    ['unknown element', { resourceType: 'Patient', colour: 'blue' }],
    ['Observation without status', { resourceType: 'Observation', code: { text: 'x' } }],
  ];
  const seen = [];
  for (const [what, body] of cases) {
    const f = await failure(fkc.create({ resourceType: body.resourceType, body })).catch((err) => {
      throw new Error(`${what}: ${err.message}`);
    });
    assert(f.status === 400 || f.status === 422, `${what}: status ${f.status}`);
    assert(f.body?.resourceType === 'OperationOutcome' && f.body.issue?.length > 0, `${what}: no OperationOutcome`);
    seen.push(f.status);
  }
  return `statuses ${seen}`;
});

// ---- fhirclient (SMART client-js) ----------------------------------------

const F = 'fhirclient';
// Node adapter without an HTTP request of our own: the client is built
// from a server URL and a token response, as after a SMART launch.
const fc = smart({}, {}).client({ serverUrl: base, tokenResponse: { access_token: token } });

await check(F, 'create with application/json', async () => {
  const { body, response } = await fc.request({
    url: 'Patient',
    method: 'POST',
    body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Interop', given: ['Smart'] }], birthDate: '1970-01-01' }),
    headers: { 'content-type': 'application/json' },
    includeResponse: true,
  });
  assert(response.status === 201, `status ${response.status}`);
  assert(body?.resourceType === 'Patient' && body.id, 'no created Patient in the answer');
  const ct = response.headers.get('content-type') ?? '';
  assert(ct.startsWith('application/json'), `answered ${ct} to Accept: application/json`);
  state.smartId = body.id;
  return `Patient/${body.id}, ${ct}`;
});

await check(F, 'create (client.create)', async () => {
  const p = await fc.create({ resourceType: 'Patient', name: [{ family: 'Interop', given: ['Second'] }] });
  assert(p?.resourceType === 'Patient' && p.id, `answer ${JSON.stringify(p)?.slice(0, 80)}`);
  return `Patient/${p.id}`;
});

await check(F, 'read', async () => {
  const id = need(state.smartId, 'the created patient');
  const p = await fc.request(`Patient/${id}`);
  assert(p.id === id && p.name?.[0]?.family === 'Interop', 'another patient came back');
  return `Patient/${id}`;
});

await check(F, 'search Patient?family', async () => {
  const b = await fc.request('Patient?family=Interop&_total=accurate');
  assert(b.resourceType === 'Bundle' && b.total === 2, `total ${b.total}`);
  return `${b.total} matches`;
});

await check(F, 'search Observation, all pages (pageLimit 0, flat)', async () => {
  const pid = need(state.patientId, 'the patient');
  const q = new URLSearchParams({ patient: pid, code: obsCode, _count: '4' });
  const obs = await fc.request(`Observation?${q}`, { pageLimit: 0, flat: true });
  assert(Array.isArray(obs) && obs.length === obsCount - 1, `${obs?.length} Observations, want ${obsCount - 1}`);
  return `${obs.length} Observations`;
});

await check(F, 'read with resolveReferences subject', async () => {
  const pid = need(state.patientId, 'the patient');
  const id = need(state.pagedObs?.[1], 'a paged Observation');
  const o = await fc.request(`Observation/${id}`, { resolveReferences: ['subject'] });
  assert(o.subject?.resourceType === 'Patient' && o.subject.id === pid, 'subject was not resolved to the patient');
  return `subject -> Patient/${pid}`;
});

await check(F, 'update with application/json', async () => {
  const id = need(state.smartId, 'the created patient');
  const p = await fc.request(`Patient/${id}`);
  const u = await fc.update({ ...p, gender: 'unknown' });
  assert(u.meta?.versionId === '2' && u.gender === 'unknown', `version ${u.meta?.versionId}`);
  return 'version 2';
});

// ---- @medplum/core (optional) --------------------------------------------

const M = '@medplum/core';
let medplum;
try {
  medplum = await import('@medplum/core');
} catch (err) {
  console.log(`skip ${M.padEnd(15)} not installed: ${err.code ?? err.message}`);
}
if (medplum) {
  const u = new URL(base + '/');
  const mc = new medplum.MedplumClient({
    baseUrl: u.origin + '/',
    fhirUrlPath: u.pathname.replace(/^\//, ''),
    fetch: (url, init) => fetch(url, init),
    cacheTime: 0,
    autoBatchTime: 0,
  });
  mc.setAccessToken(token);

  await check(M, 'readResource Patient', async () => {
    const pid = need(state.patientId, 'the patient');
    const p = await mc.readResource('Patient', pid);
    assert(p.id === pid && p.meta?.versionId === '2', `id ${p.id} version ${p.meta?.versionId}`);
    return `Patient/${pid} version 2`;
  });

  await check(M, 'searchResources Observation', async () => {
    const pid = need(state.patientId, 'the patient');
    const obs = await mc.searchResources('Observation', { patient: pid, code: obsCode, _count: '100' });
    assert(obs.length === obsCount - 1, `${obs.length} Observations, want ${obsCount - 1}`);
    assert(obs.every((o) => o.subject?.reference === `Patient/${pid}`), 'an Observation of another subject');
    return `${obs.length} Observations`;
  });

  await check(M, 'createResource and readHistory', async () => {
    const c = await mc.createResource({ resourceType: 'Patient', name: [{ family: 'Medplum' }] });
    assert(c.id && c.meta?.versionId === '1', 'no id or version');
    const h = await mc.readHistory('Patient', c.id);
    assert(h.resourceType === 'Bundle' && h.type === 'history' && h.entry?.length === 1, `history ${h.type} ${h.entry?.length}`);
    return `Patient/${c.id}`;
  });
}

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
