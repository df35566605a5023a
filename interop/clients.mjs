// Drives a running phivault with independently written FHIR clients,
// each through its own public API and unmodified: fhir-kit-client
// (Vermonster), fhirclient (SMART on FHIR's client-js) and @medplum/core.
// fhir-kit-client loads the Synthea bundles; then each client runs CRUD
// and vread, PATCH, conditional create/update/delete, instance and type
// history, transaction and batch Bundles, and searches with _include,
// _revinclude, a chain and _has, following next links, and checks what
// came back. Each client writes its own Patients under a fresh identifier,
// so the suites are independent of each other and of earlier runs. Each
// check prints one line; the process exits 1 if any check failed.
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
  for (const i of ['patch', 'history-type', 'search-type']) assert(tool.resourceCan('Patient', i), `Patient ${i} not advertised`);
  for (const [t, p] of [['Patient', 'family'], ['Patient', 'identifier'], ['Observation', 'patient'], ['Observation', 'code'], ['Observation', 'subject']]) {
    assert(tool.resourceSearch(t, p), `${t}?${p} not advertised`);
  }
  for (const c of ['conditionalCreate', 'conditionalUpdate']) {
    assert(tool.capabilityContents({ resourceType: 'Patient', capabilityType: c }) === true, `Patient ${c} not advertised`);
  }
  const condDelete = tool.capabilityContents({ resourceType: 'Patient', capabilityType: 'conditionalDelete' });
  assert(condDelete === 'single' || condDelete === 'multiple', `Patient conditionalDelete ${condDelete}`);
  const inc = tool.capabilityContents({ resourceType: 'Observation', capabilityType: 'searchInclude' }) ?? [];
  assert(inc.includes('Observation:subject') && inc.includes('Observation:encounter'), 'Observation:subject/encounter not in searchInclude');
  const rev = tool.capabilityContents({ resourceType: 'Patient', capabilityType: 'searchRevInclude' }) ?? [];
  assert(rev.includes('Observation:subject'), 'Observation:subject not in Patient.searchRevInclude');
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
  state.deletedObs = id;
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

// ---- shared expectations for the suites below ----------------------------

// Every client writes its own Patients under a fresh identifier value,
// so the suites do not see each other's writes (nor an earlier run's).
const runTag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
const IDSYS = 'urn:phivault:interop';
const identifierFor = (what) => ({ system: IDSYS, value: `${what}-${runTag}` });
const tokenOf = (i) => `${i.system}|${i.value}`;

// The patient's Observations as loaded, less those a suite deleted.
const deletedObs = new Set(state.deletedObs ? [state.deletedObs] : []);
const liveObs = () => need(state.obsIds, 'the loaded Observations').filter((id) => !deletedObs.has(id));
// Observations of the patient with the most frequent code (the bundle's
// count; the paging check above established the ids).
const liveCoded = () => need(state.pagedObs, 'the coded Observations').filter((id) => !deletedObs.has(id));
// The Encounters the loaded Observations reference, by Observation id.
const obsEncounter = new Map();

// entriesBy splits a searchset's entries by search.mode.
function entriesBy(bundle, mode) {
  return (bundle.entry ?? []).filter((e) => (e.search?.mode ?? 'match') === mode).map((e) => e.resource);
}
const refsOf = (rs) => rs.map((r) => `${r.resourceType}/${r.id}`);
const sameSet = (a, b) => a.length === b.length && new Set(a).size === a.length && a.every((x) => b.includes(x));

// A transaction that creates a Patient (conditionally, by identifier)
// and an Observation and an Encounter that reference it by urn:uuid.
function linkedTransaction(type, ident) {
  const p = `urn:uuid:${crypto.randomUUID()}`;
  return {
    resourceType: 'Bundle',
    type,
    entry: [
      {
        fullUrl: p,
        resource: { resourceType: 'Patient', identifier: [ident], name: [{ family: 'Bundled', given: ['Bundle'] }] },
        request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${encodeURIComponent(tokenOf(ident))}` },
      },
      {
        fullUrl: `urn:uuid:${crypto.randomUUID()}`,
        resource: {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '8302-2' }] },
          subject: { reference: p },
          valueQuantity: { value: 170, unit: 'cm', system: 'http://unitsofmeasure.org', code: 'cm' },
        },
        request: { method: 'POST', url: 'Observation' },
      },
      {
        fullUrl: `urn:uuid:${crypto.randomUUID()}`,
        resource: { resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: p } },
        request: { method: 'POST', url: 'Encounter' },
      },
    ],
  };
}

// checkLinkedResponse checks the answer to linkedTransaction: every entry
// created (or the Patient matched), the references rewritten to the
// Patient's real id. It returns that id.
function checkLinkedResponse(out, type, patientStatus) {
  assert(out.resourceType === 'Bundle' && out.type === `${type}-response`, `answer ${out.resourceType} ${out.type}`);
  const st = out.entry.map((e) => e.response.status.split(' ')[0]);
  assert(st.join() === `${patientStatus},201,201`, `entry statuses ${st}`);
  // A created entry carries its resource; a matched conditional create
  // (200) only its location (phivault returns no resource there).
  const loc = out.entry[0].response.location ?? '';
  const m = /^Patient\/([^/]+)\/_history\/\d+$/.exec(loc);
  assert(m, `the Patient entry's location is ${loc}`);
  const pid = m[1];
  const [p, o, e] = out.entry.map((x) => x.resource);
  assert(patientStatus !== '201' || (p?.resourceType === 'Patient' && p.id === pid), 'no created Patient in the answer');
  for (const r of [o, e]) {
    assert(r?.subject?.reference === `Patient/${pid}`, `${r?.resourceType}.subject is ${r?.subject?.reference}, want Patient/${pid}`);
  }
  return pid;
}

// A transaction that must fail as a whole: a valid Patient then an
// Observation without its required status.
function failingTransaction(ident) {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { resource: { resourceType: 'Patient', identifier: [ident] }, request: { method: 'POST', url: 'Patient' } },
      { resource: { resourceType: 'Observation', code: { text: 'no status' } }, request: { method: 'POST', url: 'Observation' } },
    ],
  };
}

// A batch whose entries succeed or fail independently.
function mixedBatch(pid, ident) {
  return {
    resourceType: 'Bundle',
    type: 'batch',
    entry: [
      { request: { method: 'GET', url: `Patient/${pid}` } },
      { request: { method: 'GET', url: `Patient?identifier=${encodeURIComponent(tokenOf(synthId))}` } },
      { resource: { resourceType: 'Patient', identifier: [ident] }, request: { method: 'POST', url: 'Patient' } },
      { request: { method: 'GET', url: `Patient/${crypto.randomUUID()}` } },
      { resource: { resourceType: 'Observation', code: { text: 'no status' } }, request: { method: 'POST', url: 'Observation' } },
    ],
  };
}

function checkMixedBatch(out, pid) {
  assert(out.resourceType === 'Bundle' && out.type === 'batch-response', `answer ${out.resourceType} ${out.type}`);
  const st = out.entry.map((e) => e.response.status.split(' ')[0]);
  assert(st[0] === '200' && st[1] === '200' && st[2] === '201' && st[3] === '404' && /^4\d\d$/.test(st[4]), `entry statuses ${st}`);
  assert(out.entry[0].resource?.id === pid, 'the read entry returned another resource');
  const found = out.entry[1].resource;
  assert(found?.resourceType === 'Bundle' && found.entry?.length === 1 && found.entry[0].resource.id === pid, 'the search entry did not find the patient');
  assert(out.entry[2].resource?.id, 'the create entry has no resource');
  assert(out.entry[3].response.outcome?.resourceType === 'OperationOutcome', 'the 404 entry has no OperationOutcome');
  return `statuses ${st}`;
}

// Checks a page (or all pages) of Observation?patient&code&_include=
// Observation:subject&_include=Observation:encounter: each page carries
// the patient and exactly the Encounters its matches reference.
function checkIncludePage(page, pid) {
  const matches = entriesBy(page, 'match');
  const included = refsOf(entriesBy(page, 'include'));
  const wantEnc = [...new Set(matches.map((o) => o.encounter?.reference).filter(Boolean))];
  for (const o of matches) obsEncounter.set(o.id, o.encounter?.reference);
  const want = [`Patient/${pid}`, ...wantEnc];
  assert(sameSet(included, want), `included ${included.length} resources, want the patient and ${wantEnc.length} Encounters`);
  return matches.map((o) => o.id);
}

// ---- fhir-kit-client: includes, chains, _has ------------------------------

await check(K, 'search _include subject and encounter, nextPage', async () => {
  const pid = need(state.patientId, 'the patient');
  const first = await fkc.search({
    resourceType: 'Observation',
    searchParams: { patient: pid, code: obsCode, _count: 7, _include: ['Observation:subject', 'Observation:encounter'] },
  });
  const pages = await allPages(first);
  const ids = pages.flatMap((p) => checkIncludePage(p, pid));
  assert(sameSet(ids, liveCoded()), `${ids.length} matches over ${pages.length} pages, want ${liveCoded().length}`);
  return `${ids.length} matches on ${pages.length} pages, each page with its includes`;
});

await check(K, 'search _revinclude Observation:subject', async () => {
  const pid = need(state.patientId, 'the patient');
  const b = await fkc.search({ resourceType: 'Patient', searchParams: { _id: pid, _revinclude: 'Observation:subject' } });
  const m = entriesBy(b, 'match');
  const inc = entriesBy(b, 'include');
  assert(m.length === 1 && m[0].id === pid, `matches ${m.length}`);
  assert(inc.every((r) => r.resourceType === 'Observation'), 'a non-Observation included');
  assert(sameSet(inc.map((r) => r.id), liveObs()), `${inc.length} Observations included, want ${liveObs().length}`);
  return `${inc.length} Observations`;
});

await check(K, 'search chain subject:Patient.identifier', async () => {
  const b = await fkc.search({
    resourceType: 'Observation',
    searchParams: { 'subject:Patient.identifier': tokenOf(synthId), code: obsCode, _count: 100, _total: 'accurate' },
  });
  const ids = entriesBy(b, 'match').map((r) => r.id);
  assert(b.total === liveCoded().length && sameSet(ids, liveCoded()), `total ${b.total}, ${ids.length} ids, want ${liveCoded().length}`);
  const none = await fkc.search({
    resourceType: 'Observation',
    searchParams: { 'subject:Patient.identifier': `${synthId.system}|no-such-${runTag}`, _total: 'accurate' },
  });
  assert(none.total === 0 && !none.entry?.length, `an unknown identifier matched ${none.total}`);
  return `${ids.length} matches; unknown identifier 0`;
});

await check(K, 'search _has:Observation:patient:code', async () => {
  const pid = need(state.patientId, 'the patient');
  const b = await fkc.search({ resourceType: 'Patient', searchParams: { '_has:Observation:patient:code': obsCode, _total: 'accurate' } });
  const ids = entriesBy(b, 'match').map((r) => r.id);
  assert(ids.includes(pid), `the patient is not among ${ids.length}`);
  const none = await fkc.search({ resourceType: 'Patient', searchParams: { '_has:Observation:patient:code': `http://loinc.org|no-${runTag}`, _total: 'accurate' } });
  assert(none.total === 0, `an unknown code matched ${none.total} patients`);
  return `patient found among ${ids.length}; unknown code 0`;
});

await check(K, 'compartment search Patient/{id}/Encounter', async () => {
  const pid = need(state.patientId, 'the patient');
  const b = await fkc.compartmentSearch({ resourceType: 'Encounter', compartment: { resourceType: 'Patient', id: pid }, searchParams: { _count: 100 } });
  const n = patientBundle.json.entry.filter((e) => e.resource.resourceType === 'Encounter').length;
  const got = entriesBy(b, 'match');
  assert(got.length === n && got.every((e) => e.subject?.reference === `Patient/${pid}`), `${got.length} Encounters, want ${n}`);
  return `${n} Encounters`;
});

// ---- fhir-kit-client: CRUD, patch, conditional, history, bundles ----------

await check(K, 'create, read, vread, update, patch, delete, history', async () => {
  const ident = identifierFor('fkc-crud');
  const c = await fkc.create({ resourceType: 'Patient', body: { resourceType: 'Patient', identifier: [ident], name: [{ family: 'Kit', given: ['Crud'] }] } });
  const created = FhirKitClient.httpFor(c).response;
  assert(created.status === 201 && c.id && c.meta?.versionId === '1', `create: status ${created.status} version ${c.meta?.versionId}`);
  assert((created.headers.get('location') ?? '').includes(`Patient/${c.id}/_history/1`), 'create: Location is not the new version');
  const r = await fkc.read({ resourceType: 'Patient', id: c.id });
  assert(r.name[0].family === 'Kit' && r.identifier[0].value === ident.value, 'read: another content');
  const u = await fkc.update({ resourceType: 'Patient', id: c.id, body: { ...r, gender: 'female' } });
  assert(u.meta.versionId === '2' && u.gender === 'female', `update: version ${u.meta.versionId}`);
  const p = await fkc.patch({
    resourceType: 'Patient',
    id: c.id,
    jsonPatch: [
      { op: 'test', path: '/gender', value: 'female' },
      { op: 'replace', path: '/name/0/family', value: 'Patched' },
      { op: 'add', path: '/birthDate', value: '1990-02-03' },
    ],
    options: { headers: { 'If-Match': 'W/"2"' } },
  });
  assert(p.meta.versionId === '3' && p.name[0].family === 'Patched' && p.birthDate === '1990-02-03', `patch: version ${p.meta.versionId}`);
  const failed = await failure(fkc.patch({ resourceType: 'Patient', id: c.id, jsonPatch: [{ op: 'test', path: '/gender', value: 'male' }] }));
  assert(failed.status === 422 && failed.body?.resourceType === 'OperationOutcome', `failed test op: status ${failed.status}`);
  const stale = await failure(fkc.patch({ resourceType: 'Patient', id: c.id, jsonPatch: [{ op: 'remove', path: '/gender' }], options: { headers: { 'If-Match': 'W/"2"' } } }));
  assert(stale.status === 412, `patch with a stale If-Match: status ${stale.status}`);
  const v1 = await fkc.vread({ resourceType: 'Patient', id: c.id, version: '1' });
  assert(v1.name[0].family === 'Kit' && !v1.gender, 'vread 1 is not the first version');
  await fkc.delete({ resourceType: 'Patient', id: c.id });
  const gone = await failure(fkc.read({ resourceType: 'Patient', id: c.id }));
  assert(gone.status === 410, `read after delete: ${gone.status}`);
  const h = await fkc.history({ resourceType: 'Patient', id: c.id });
  const methods = h.entry.map((e) => e.request?.method);
  const versions = h.entry.filter((e) => e.resource).map((e) => e.resource.meta.versionId);
  assert(h.type === 'history' && methods.join() === 'DELETE,PUT,PUT,POST', `history methods ${methods}`);
  assert(versions.join() === '3,2,1', `history versions ${versions}`);
  return `201, v2, patched v3, 422 failed test, 412 stale, 410; history ${methods}`;
});

await check(K, 'FHIRPath Patch and conditional patch (request)', async () => {
  const ident = identifierFor('fkc-fhirpath');
  const c = await fkc.create({ resourceType: 'Patient', body: { resourceType: 'Patient', identifier: [ident], name: [{ family: 'Path' }] } });
  const params = (...ops) => ({
    resourceType: 'Parameters',
    parameter: ops.map((part) => ({ name: 'operation', part })),
  });
  const fhirJson = { headers: { 'Content-Type': 'application/fhir+json' } };
  const p = await fkc.request(`Patient/${c.id}`, {
    method: 'PATCH',
    options: fhirJson,
    body: params(
      [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Patient.name[0].family' }, { name: 'value', valueString: 'Pathed' }],
      [{ name: 'type', valueCode: 'add' }, { name: 'path', valueString: 'Patient' }, { name: 'name', valueString: 'gender' }, { name: 'value', valueCode: 'female' }],
    ),
  });
  assert(p.meta?.versionId === '2' && p.name[0].family === 'Pathed' && p.gender === 'female', `FHIRPath Patch: version ${p.meta?.versionId}`);
  // Conditional patch: PATCH Type?identifier=, JSON Patch.
  const cp = await fkc.request(`Patient?identifier=${encodeURIComponent(tokenOf(ident))}`, {
    method: 'PATCH',
    options: { headers: { 'Content-Type': 'application/json-patch+json' } },
    body: [{ op: 'add', path: '/birthDate', value: '1980-01-01' }],
  });
  assert(cp.id === c.id && cp.meta.versionId === '3' && cp.birthDate === '1980-01-01', `conditional patch: version ${cp.meta?.versionId}`);
  const none = await failure(fkc.request(`Patient?identifier=${encodeURIComponent(`${IDSYS}|none-${runTag}`)}`, {
    method: 'PATCH',
    options: { headers: { 'Content-Type': 'application/json-patch+json' } },
    body: [{ op: 'add', path: '/birthDate', value: '1980-01-01' }],
  }));
  assert(none.status === 404, `conditional patch without a match: ${none.status}`);
  return 'FHIRPath Patch v2, conditional JSON Patch v3, no match 404';
});

await check(K, 'conditional create (If-None-Exist), update, delete', async () => {
  const ident = identifierFor('fkc-cond');
  const body = { resourceType: 'Patient', identifier: [ident], name: [{ family: 'Kit', given: ['Conditional'] }] };
  const ifNone = { headers: { 'If-None-Exist': `identifier=${tokenOf(ident)}` } };
  const a = await fkc.create({ resourceType: 'Patient', body, options: ifNone });
  const b = await fkc.create({ resourceType: 'Patient', body, options: ifNone });
  const sa = FhirKitClient.httpFor(a).response.status;
  const sb = FhirKitClient.httpFor(b).response.status;
  assert(sa === 201 && sb === 200 && a.id === b.id, `create statuses ${sa},${sb}, same id ${a.id === b.id}`);
  // Conditional update of the one match updates it in place.
  const u = await fkc.update({ resourceType: 'Patient', searchParams: { identifier: tokenOf(ident) }, body: { ...body, gender: 'other' } });
  assert(u.id === a.id && u.meta.versionId === '2' && u.gender === 'other', `conditional update: id ${u.id === a.id} version ${u.meta.versionId}`);
  // No match: it creates.
  const ident2 = identifierFor('fkc-cond-new');
  const n = await fkc.update({ resourceType: 'Patient', searchParams: { identifier: tokenOf(ident2) }, body: { resourceType: 'Patient', identifier: [ident2] } });
  assert(FhirKitClient.httpFor(n).response.status === 201 && n.id !== a.id, 'conditional update without a match did not create');
  // Two matches: refused.
  await fkc.create({ resourceType: 'Patient', body: { resourceType: 'Patient', identifier: [ident2] } });
  const many = await failure(fkc.update({ resourceType: 'Patient', searchParams: { identifier: tokenOf(ident2) }, body: { resourceType: 'Patient', identifier: [ident2] } }));
  assert(many.status === 412, `conditional update with two matches: ${many.status}`);
  const manyDel = await failure(fkc.request(`Patient?identifier=${encodeURIComponent(tokenOf(ident2))}`, { method: 'DELETE' }));
  assert(manyDel.status === 412, `conditional delete with two matches: ${manyDel.status}`);
  // Conditional delete of the one match.
  await fkc.request(`Patient?identifier=${encodeURIComponent(tokenOf(ident))}`, { method: 'DELETE' });
  const gone = await failure(fkc.read({ resourceType: 'Patient', id: a.id }));
  assert(gone.status === 410, `read after conditional delete: ${gone.status}`);
  const left = await fkc.search({ resourceType: 'Patient', searchParams: { identifier: tokenOf(ident), _total: 'accurate' } });
  assert(left.total === 0, `search after conditional delete: ${left.total}`);
  return 'create 201 then 200 same id; update in place, create, 412 on two; delete 412 on two, then 410';
});

await check(K, 'typeHistory Observation, nextPage through all pages', async () => {
  const first = await fkc.typeHistory({ resourceType: 'Observation' });
  assert(first.type === 'history', `type ${first.type}`);
  const pages = await allPages(first);
  const keys = pages.flatMap((p) => p.entry.map((e) => `${e.fullUrl}@${e.resource?.meta?.versionId ?? e.request.method}`));
  assert(new Set(keys).size === keys.length, 'a version appeared on two pages');
  const ids = new Set(pages.flatMap((p) => p.entry.map((e) => e.fullUrl.split('/').pop())));
  const missing = need(state.obsIds, 'the loaded Observations').filter((id) => !ids.has(id));
  assert(missing.length === 0, `${missing.length} loaded Observations missing from the type history`);
  assert(pages.length > 1, 'one page only: paging not exercised');
  return `${keys.length} versions on ${pages.length} pages`;
});

await check(K, 'history _since and _at (request)', async () => {
  const pid = need(state.patientId, 'the patient');
  const h = await fkc.resourceHistory({ resourceType: 'Patient', id: pid });
  const [v2, v1] = h.entry.map((e) => e.resource.meta.lastUpdated);
  const since = await fkc.request(`Patient/${pid}/_history?_since=${encodeURIComponent(v2)}`);
  assert(since.entry?.map((e) => e.resource.meta.versionId).join() === '2', `_since the update: ${since.entry?.map((e) => e.resource.meta.versionId)}`);
  const at = await fkc.request(`Patient/${pid}/_history?_at=${encodeURIComponent(v1)}`);
  assert(at.entry?.map((e) => e.resource.meta.versionId).join() === '1', `_at the create: ${at.entry?.map((e) => e.resource.meta.versionId)}`);
  return '_since -> v2, _at -> v1';
});

await check(K, 'transaction: urn:uuid references, ifNoneExist, atomic failure', async () => {
  const ident = identifierFor('fkc-tx');
  const out = await fkc.transaction({ body: linkedTransaction('transaction', ident) });
  const pid = checkLinkedResponse(out, 'transaction', '201');
  const again = await fkc.transaction({ body: linkedTransaction('transaction', ident) });
  const pid2 = checkLinkedResponse(again, 'transaction', '200');
  assert(pid2 === pid, 'ifNoneExist created a second Patient');
  const obs = await fkc.search({ resourceType: 'Observation', searchParams: { subject: `Patient/${pid}`, _total: 'accurate' } });
  assert(obs.total === 2, `${obs.total} Observations of the bundle patient, want 2`);
  const bad = identifierFor('fkc-tx-bad');
  const f = await failure(fkc.transaction({ body: failingTransaction(bad) }));
  assert(f.status >= 400 && f.status < 500 && f.body?.resourceType === 'OperationOutcome', `failing transaction: ${f.status}`);
  const none = await fkc.search({ resourceType: 'Patient', searchParams: { identifier: tokenOf(bad), _total: 'accurate' } });
  assert(none.total === 0, 'the failed transaction left its Patient behind');
  return `201 then 200 (same patient); failing one ${f.status}, nothing left`;
});

await check(K, 'batch: independent entries', async () => {
  const pid = need(state.patientId, 'the patient');
  const out = await fkc.batch({ body: mixedBatch(pid, identifierFor('fkc-batch')) });
  return checkMixedBatch(out, pid);
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

await check(F, 'vread, patch (client.patch), delete (client.delete), history', async () => {
  const id = need(state.smartId, 'the created patient');
  const v1 = await fc.request(`Patient/${id}/_history/1`);
  assert(v1.meta.versionId === '1' && !v1.gender, `vread 1: version ${v1.meta.versionId}`);
  const p = await fc.patch(`Patient/${id}`, [
    { op: 'replace', path: '/gender', value: 'other' },
    { op: 'add', path: '/name/0/given/-', value: 'Patched' },
  ]);
  assert(p.meta.versionId === '3' && p.gender === 'other' && p.name[0].given.join() === 'Smart,Patched', `patch: version ${p.meta?.versionId}`);
  const bad = await failure(fc.patch(`Patient/${id}`, [{ op: 'replace', path: '/nosuch/0', value: 1 }]));
  assert(bad.status === 400 || bad.status === 422, `invalid patch: ${bad.status}`);
  await fc.delete(`Patient/${id}`);
  const gone = await failure(fc.request(`Patient/${id}`));
  assert(gone.status === 410, `read after delete: ${gone.status}`);
  const h = await fc.request(`Patient/${id}/_history`);
  assert(h.entry.map((e) => e.request.method).join() === 'DELETE,PATCH,PUT,POST' || h.entry.map((e) => e.request.method).join() === 'DELETE,PUT,PUT,POST',
    `history methods ${h.entry.map((e) => e.request.method)}`);
  return `patched v3, bad patch ${bad.status}, 410, history of ${h.entry.length}`;
});

await check(F, 'search _include, chain, _has, _revinclude (request)', async () => {
  const pid = need(state.patientId, 'the patient');
  const q = new URLSearchParams([['patient', pid], ['code', obsCode], ['_count', '10'], ['_include', 'Observation:subject'], ['_include', 'Observation:encounter']]);
  const ids = [];
  let pages = 0;
  for await (const page of fc.pages(`Observation?${q}`)) {
    ids.push(...checkIncludePage(page, pid));
    pages++;
  }
  assert(sameSet(ids, liveCoded()), `_include: ${ids.length} matches, want ${liveCoded().length}`);
  const chain = new URLSearchParams({ 'subject:Patient.identifier': tokenOf(synthId), code: obsCode, _count: '100' });
  const c = await fc.request(`Observation?${chain}`, { pageLimit: 0, flat: true });
  assert(sameSet(c.map((o) => o.id), liveCoded()), `chain: ${c.length} Observations`);
  const has = await fc.request(`Patient?${new URLSearchParams({ '_has:Observation:patient:code': obsCode })}`, { pageLimit: 0, flat: true });
  assert(has.some((p) => p.id === pid), '_has: the patient is missing');
  const rev = await fc.request(`Patient?${new URLSearchParams({ _id: pid, _revinclude: 'Observation:subject' })}`);
  assert(sameSet(entriesBy(rev, 'include').map((r) => r.id), liveObs()), `_revinclude: ${entriesBy(rev, 'include').length} Observations`);
  return `_include ${ids.length} on ${pages} pages, chain ${c.length}, _has, _revinclude ${liveObs().length}`;
});

await check(F, 'conditional create, update, delete', async () => {
  const ident = identifierFor('smart-cond');
  const body = { resourceType: 'Patient', identifier: [ident], name: [{ family: 'Interop', given: ['Cond'] }] };
  const opts = { headers: { 'If-None-Exist': `identifier=${tokenOf(ident)}` }, includeResponse: true };
  const a = await fc.create(body, opts);
  const b = await fc.create(body, opts);
  assert(a.response.status === 201 && b.response.status === 200 && a.body.id === b.body.id, `statuses ${a.response.status},${b.response.status}`);
  const u = await fc.request({
    url: `Patient?identifier=${encodeURIComponent(tokenOf(ident))}`,
    method: 'PUT',
    body: JSON.stringify({ ...body, gender: 'male' }),
    headers: { 'content-type': 'application/fhir+json' },
  });
  assert(u.id === a.body.id && u.meta.versionId === '2' && u.gender === 'male', `conditional update: version ${u.meta?.versionId}`);
  await fc.delete(`Patient?identifier=${encodeURIComponent(tokenOf(ident))}`);
  const left = await fc.request(`Patient?identifier=${encodeURIComponent(tokenOf(ident))}&_total=accurate`);
  assert(left.total === 0, `after conditional delete: ${left.total}`);
  return '201 then 200, update in place, deleted';
});

await check(F, 'type history Patient, pages()', async () => {
  const pages = [];
  for await (const page of fc.pages('Patient/_history?_count=3')) pages.push(page);
  const entries = pages.flatMap((p) => p.entry ?? []);
  const keys = entries.map((e) => `${e.fullUrl}@${e.resource?.meta?.versionId ?? e.request.method}`);
  assert(pages.length > 1 && new Set(keys).size === keys.length, `${pages.length} pages, ${keys.length} entries, ${new Set(keys).size} distinct`);
  const pid = need(state.patientId, 'the patient');
  const mine = entries.filter((e) => e.fullUrl.endsWith(`/Patient/${pid}`)).map((e) => e.resource.meta.versionId);
  assert(mine.join() === '2,1', `the loaded patient's versions ${mine}`);
  return `${entries.length} versions on ${pages.length} pages`;
});

await check(F, 'transaction and batch (POST to the base URL)', async () => {
  const pid = need(state.patientId, 'the patient');
  const post = (bundle) => fc.request({ url: '', method: 'POST', body: JSON.stringify(bundle), headers: { 'content-type': 'application/fhir+json' } });
  const ident = identifierFor('smart-tx');
  checkLinkedResponse(await post(linkedTransaction('transaction', ident)), 'transaction', '201');
  const f = await failure(post(failingTransaction(identifierFor('smart-tx-bad'))));
  assert(f.status >= 400 && f.status < 500, `failing transaction: ${f.status}`);
  return checkMixedBatch(await post(mixedBatch(pid, identifierFor('smart-batch'))), pid);
});

// ---- @medplum/core -------------------------------------------------------

const M = '@medplum/core';
const medplum = await import('@medplum/core');
const mpStatuses = [];
{
  const u = new URL(base + '/');
  // The fetch given to MedplumClient records each answer's status (the
  // client's errors carry only the OperationOutcome).
  const mc = new medplum.MedplumClient({
    baseUrl: u.origin + '/',
    fhirUrlPath: u.pathname.replace(/^\//, ''),
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      mpStatuses.push(res.status);
      return res;
    },
    cacheTime: 0,
    autoBatchTime: 0,
  });
  mc.setAccessToken(token);
  const lastStatus = () => mpStatuses.at(-1);
  // mpFailure awaits a medplum call that must fail: its status and issue code.
  const mpFailure = async (promise) => {
    try {
      await promise;
    } catch (err) {
      return { status: lastStatus(), code: err?.outcome?.issue?.[0]?.code };
    }
    throw new Error('the request succeeded; it should have failed');
  };

  await check(M, 'readResource Patient', async () => {
    const pid = need(state.patientId, 'the patient');
    const p = await mc.readResource('Patient', pid);
    assert(p.id === pid && p.meta?.versionId === '2', `id ${p.id} version ${p.meta?.versionId}`);
    return `Patient/${pid} version 2`;
  });

  await check(M, 'searchResources Observation', async () => {
    const pid = need(state.patientId, 'the patient');
    const obs = await mc.searchResources('Observation', { patient: pid, code: obsCode, _count: '100' });
    assert(sameSet(obs.map((o) => o.id), liveCoded()), `${obs.length} Observations, want ${liveCoded().length}`);
    assert(obs.every((o) => o.subject?.reference === `Patient/${pid}`), 'an Observation of another subject');
    return `${obs.length} Observations`;
  });

  await check(M, 'createResource, readVersion, updateResource, patchResource, deleteResource, readHistory', async () => {
    const ident = identifierFor('medplum-crud');
    const c = await mc.createResource({ resourceType: 'Patient', identifier: [ident], name: [{ family: 'Medplum' }] });
    assert(lastStatus() === 201 && c.id && c.meta?.versionId === '1', `create: status ${lastStatus()}`);
    const u = await mc.updateResource({ ...c, gender: 'female' });
    assert(u.meta.versionId === '2' && u.gender === 'female', `update: version ${u.meta.versionId}`);
    const p = await mc.patchResource('Patient', c.id, [
      { op: 'test', path: '/meta/versionId', value: '2' },
      { op: 'replace', path: '/name/0/family', value: 'Medplummed' },
    ]);
    assert(p.meta.versionId === '3' && p.name[0].family === 'Medplummed', `patch: version ${p.meta.versionId}`);
    const v1 = await mc.readVersion('Patient', c.id, '1');
    assert(v1.name[0].family === 'Medplum' && !v1.gender, 'readVersion 1 is not the first version');
    const r = await mc.readResource('Patient', c.id);
    assert(r.meta.versionId === '3' && r.name[0].family === 'Medplummed', `read: version ${r.meta.versionId}`);
    await mc.deleteResource('Patient', c.id);
    const gone = await mpFailure(mc.readResource('Patient', c.id));
    assert(gone.status === 410 && gone.code === 'deleted', `read after delete: ${gone.status} ${gone.code}`);
    const h = await mc.readHistory('Patient', c.id);
    const versions = h.entry.filter((e) => e.resource).map((e) => e.resource.meta.versionId);
    assert(h.type === 'history' && h.entry.length === 4 && versions.join() === '3,2,1', `history ${h.entry.length} entries, versions ${versions}`);
    const page = await mc.readHistory('Patient', c.id, { count: 2 });
    assert(page.entry.length === 2 && page.link?.some((l) => l.relation === 'next'), `readHistory count 2: ${page.entry.length} entries`);
    return 'v1..v3, 410 deleted, history 4 entries, count 2 has a next link';
  });

  await check(M, 'createResourceIfNoneExist, upsertResource, conditional delete', async () => {
    const ident = identifierFor('medplum-cond');
    const body = { resourceType: 'Patient', identifier: [ident], name: [{ family: 'Medplum', given: ['Cond'] }] };
    const q = `identifier=${encodeURIComponent(tokenOf(ident))}`;
    const a = await mc.createResourceIfNoneExist(body, q);
    const sa = lastStatus();
    const b = await mc.createResourceIfNoneExist(body, q);
    const sb = lastStatus();
    assert(sa === 201 && sb === 200 && a.id === b.id, `statuses ${sa},${sb}, same id ${a.id === b.id}`);
    const u = await mc.upsertResource({ ...body, gender: 'male' }, { identifier: tokenOf(ident) });
    assert(u.id === a.id && u.meta.versionId === '2' && u.gender === 'male', `upsert of the match: version ${u.meta.versionId}`);
    const ident2 = identifierFor('medplum-upsert-new');
    const n = await mc.upsertResource({ resourceType: 'Patient', identifier: [ident2] }, { identifier: tokenOf(ident2) });
    assert(lastStatus() === 201 && n.id && n.id !== a.id, `upsert without a match: status ${lastStatus()}`);
    await mc.delete(mc.fhirSearchUrl('Patient', { identifier: tokenOf(ident) }));
    const one = await mc.searchOne('Patient', { identifier: tokenOf(ident) });
    assert(one === undefined, 'the patient is still found after the conditional delete');
    return 'created 201, matched 200, upsert update and create, deleted';
  });

  await check(M, 'search _include, chain, _has, _revinclude; searchResourcePages', async () => {
    const pid = need(state.patientId, 'the patient');
    const inc = await mc.searchResources('Observation', [
      ['patient', pid], ['code', obsCode], ['_count', '100'],
      ['_include', 'Observation:subject'], ['_include', 'Observation:encounter'],
    ]);
    const ids = checkIncludePage(inc.bundle, pid);
    // searchResources returns every entry's resource, includes too.
    const obs = inc.filter((r) => r.resourceType === 'Observation').map((o) => o.id);
    assert(sameSet(ids, liveCoded()) && sameSet(obs, liveCoded()), `_include: ${ids.length} matches, ${obs.length} Observations`);
    assert(inc.length === ids.length + entriesBy(inc.bundle, 'include').length, 'searchResources dropped or added resources');
    const chain = await mc.searchResources('Observation', { 'subject:Patient.identifier': tokenOf(synthId), code: obsCode, _count: '100' });
    assert(sameSet(chain.map((o) => o.id), liveCoded()), `chain: ${chain.length}`);
    const has = await mc.searchResources('Patient', { '_has:Observation:patient:code': obsCode });
    assert(has.some((p) => p.id === pid), '_has: the patient is missing');
    const rev = await mc.search('Patient', { _id: pid, _revinclude: 'Observation:subject' });
    assert(sameSet(entriesBy(rev, 'include').map((r) => r.id), liveObs()), `_revinclude: ${entriesBy(rev, 'include').length}`);
    const paged = [];
    let pages = 0;
    for await (const page of mc.searchResourcePages('Observation', { patient: pid, code: obsCode, _count: '6' })) {
      paged.push(...page.map((o) => o.id));
      pages++;
    }
    assert(pages > 1 && sameSet(paged, liveCoded()), `searchResourcePages: ${paged.length} on ${pages} pages`);
    return `_include ${ids.length}, chain ${chain.length}, _has, _revinclude ${liveObs().length}, ${pages} pages`;
  });

  await check(M, 'executeBatch transaction and batch', async () => {
    const pid = need(state.patientId, 'the patient');
    const ident = identifierFor('medplum-tx');
    const out = await mc.executeBatch(linkedTransaction('transaction', ident));
    const txPid = checkLinkedResponse(out, 'transaction', '201');
    const f = await mpFailure(mc.executeBatch(failingTransaction(identifierFor('medplum-tx-bad'))));
    assert(f.status >= 400 && f.status < 500, `failing transaction: ${f.status}`);
    const b = await mc.executeBatch(mixedBatch(pid, identifierFor('medplum-batch')));
    const everything = await mc.readPatientEverything(txPid);
    const types = everything.entry.map((e) => e.resource.resourceType).sort();
    assert(types.join() === 'Encounter,Observation,Patient', `$everything of the bundle patient: ${types}`);
    return `${checkMixedBatch(b, pid)}; failing ${f.status}; $everything ${types.length}`;
  });
}

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
