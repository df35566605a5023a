package httpapi_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/bulk"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// bulkClient registers a SMART backend client with purpose (its own
// ES384 key, private_key_jwt) and returns the headers of an access token
// for scopes, and its client id.
func bulkClient(t *testing.T, s *apitest.Server, purpose, scopes string) (apitest.H, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES384", Use: "sig"}}})
	max, err := scope.ParseSet("system/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.App.ClientAdmin().RegisterBackendBreakGlass(t.Context(), cliAgent, smart.BackendRegistration{Name: "payer-" + uniq(), JWKS: set, Scopes: max, Purpose: purpose})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: jose.JSONWebKey{Key: k, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{s.URL + "/oauth2/token"},
		Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scopes}, "client_assertion_type": {smart.AssertionType}, "client_assertion": {a}}
	resp := s.Do(t, "POST", "/oauth2/token", form.Encode(), apitest.H{"Authorization": apitest.NoAuth, "Content-Type": "application/x-www-form-urlencoded"}).Want(t, http.StatusOK)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(resp.Body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	return apitest.H{"Authorization": "Bearer " + tok.AccessToken}, id
}

// asyncHeaders are the IG's kick-off headers with the token's.
func asyncHeaders(h apitest.H) apitest.H {
	out := apitest.H{"Accept": "application/fhir+json", "Prefer": "respond-async"}
	for k, v := range h {
		out[k] = v
	}
	return out
}

// kickoff starts an export and returns its status URL.
func kickoff(t *testing.T, s *apitest.Server, h apitest.H, path string) string {
	t.Helper()
	r := s.Do(t, "GET", path, nil, asyncHeaders(h)).Want(t, http.StatusAccepted)
	loc := r.Header.Get("Content-Location")
	if !strings.HasPrefix(loc, s.URL+"/fhir/$export-poll?job=") {
		t.Fatalf("kick-off: Content-Location %q is not a status URL", loc)
	}
	return loc
}

type bulkManifest struct {
	TransactionTime     string `json:"transactionTime"`
	Request             string `json:"request"`
	RequiresAccessToken bool   `json:"requiresAccessToken"`
	Output              []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"output"`
	Deleted []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"deleted"`
	Error []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"error"`
}

// finish runs the queued exports and returns the manifest.
func finish(t *testing.T, s *apitest.Server, h apitest.H, status string) bulkManifest {
	t.Helper()
	if err := s.App.Bulk().RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := s.Do(t, "GET", status, nil, h).Want(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("manifest Content-Type %q", ct)
	}
	if _, err := http.ParseTime(r.Header.Get("Expires")); err != nil {
		t.Fatalf("manifest without a valid Expires header: %q", r.Header.Get("Expires"))
	}
	var m bulkManifest
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.TransactionTime); err != nil || !m.RequiresAccessToken || m.Request == "" {
		t.Fatalf("manifest fields: %+v", m)
	}
	return m
}

// download fetches every output file; it returns the resources by
// "Type/id", checking each line's type and each file's count.
func download(t *testing.T, s *apitest.Server, h apitest.H, m bulkManifest) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, f := range m.Output {
		r := s.Do(t, "GET", f.URL, nil, mergeH(h, apitest.H{"Accept": "application/fhir+ndjson"})).Want(t, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); ct != "application/fhir+ndjson" {
			t.Fatalf("file Content-Type %q", ct)
		}
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(r.Body))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var res map[string]any
			if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
				t.Fatalf("a line of %s is not JSON", f.Type)
			}
			if res["resourceType"] != f.Type {
				t.Fatalf("a %v line in the %s file", res["resourceType"], f.Type)
			}
			out[f.Type+"/"+res["id"].(string)] = res
			n++
		}
		if n != f.Count {
			t.Fatalf("%s file: %d lines, manifest count %d", f.Type, n, f.Count)
		}
	}
	return out
}

func mergeH(a, b apitest.H) apitest.H {
	out := apitest.H{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func consentDenyPurpose(pid, purpose string) map[string]any {
	c := consentDeny(pid, "")
	c["provision"] = map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny",
		"purpose": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose}}}}}
	return c
}

// TestBulkExportSystem: a payer's system-level export with _type holds
// what it may receive for HPAYMT and nothing else: a patient whose
// consent denies payment disclosures is absent entirely, and so is a 42
// CFR Part 2 record; every exported patient's trail names the export
// with the client and its purpose; only the client that started it sees
// status and files; DELETE removes it.
func TestBulkExportSystem(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		open, denying := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		s.Create(t, consentDenyPurpose(denying, "HPAYMT"))
		obsOpen := s.Create(t, observation(open, nil))
		obsDenying := s.Create(t, observation(denying, nil))
		part2 := s.Create(t, labelled(observation(open, nil), "42CFRPart2"))
		cond := s.Create(t, map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": "Patient/" + open}})

		payer, _ := bulkClient(t, s, "HPAYMT", "system/*.rs")
		status := kickoff(t, s, payer, "/fhir/$export?_type=Patient,Observation&_outputFormat=application/fhir%2Bndjson")

		// Before any process ran it: 202 with X-Progress and Retry-After.
		r := s.Do(t, "GET", status, nil, payer).Want(t, http.StatusAccepted)
		if r.Header.Get("X-Progress") == "" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("in-progress status without X-Progress or Retry-After: %v", r.Header)
		}
		m := finish(t, s, payer, status)
		got := download(t, s, payer, m)
		for _, want := range []string{"Patient/" + open, "Observation/" + obsOpen} {
			if got[want] == nil {
				t.Errorf("%s missing from the export", want)
			}
		}
		for _, absent := range []string{"Patient/" + denying, "Observation/" + obsDenying, "Observation/" + part2, "Condition/" + cond} {
			if got[absent] != nil {
				t.Errorf("%s is in the export; it must not be", absent)
			}
		}
		if len(m.Error) != 1 {
			t.Fatalf("manifest error files: %d, want 1", len(m.Error))
		}
		eb := s.Do(t, "GET", m.Error[0].URL, nil, payer).Want(t, http.StatusOK)
		if bytes.Contains(eb.Body, []byte(denying)) || bytes.Contains(eb.Body, []byte(part2)) {
			t.Fatal("the error file names a patient or resource left out")
		}

		// Audit: the exported patient is named in an export event with
		// the payer's purpose; the denying patient in none.
		var named, leaked bool
		for _, ev := range auditEvents(t, s) {
			if ev.Action != audit.ActionBulkExport {
				continue
			}
			if v, ok := ev.PatientView("Patient/" + open); ok && v.Purpose == "HPAYMT" && ev.Agent.Client == "smart-client" &&
				slices.ContainsFunc(v.Entities, func(e string) bool { return strings.HasPrefix(e, "Observation/"+obsOpen+"/") }) {
				named = true // the patient's own view of the event shows the export of their record
			}
			if slices.Contains(ev.Patients, "Patient/"+denying) {
				leaked = true
			}
		}
		if !named || leaked {
			t.Fatalf("export events: exported patient named with HPAYMT %v; denying patient named %v", named, leaked)
		}

		// Another client, and the API token (a user of the system role),
		// see neither status nor files.
		other, _ := bulkClient(t, s, "HPAYMT", "system/*.rs")
		for _, h := range []apitest.H{other, nil} {
			s.Do(t, "GET", status, nil, h).WantOutcome(t, http.StatusNotFound)
			s.Do(t, "GET", m.Output[0].URL, nil, h).WantOutcome(t, http.StatusNotFound)
			s.Do(t, "DELETE", status, nil, h).WantOutcome(t, http.StatusNotFound)
		}
		wantAudited(t, s, audit.ActionExportDownload, audit.OutcomeSuccess, "")
		wantAudited(t, s, audit.ActionExportStatus, audit.OutcomeDenied, "")

		s.Do(t, "DELETE", status, nil, payer).Want(t, http.StatusAccepted)
		s.Do(t, "GET", status, nil, payer).WantOutcome(t, http.StatusNotFound)
		s.Do(t, "GET", m.Output[0].URL, nil, payer).WantOutcome(t, http.StatusNotFound)
		wantAudited(t, s, audit.ActionExportDelete, audit.OutcomeSuccess, "")
	})
}

// TestBulkExportLevels: Patient and Group level exports, _since,
// _typeFilter and the patient parameter.
func TestBulkExportLevels(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		a, b, c := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		oa := s.Create(t, observation(a, nil))
		ob := s.Create(t, observation(b, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "29463-7"}}}}))
		oc := s.Create(t, observation(c, nil))
		g := s.Create(t, map[string]any{"resourceType": "Group", "type": "person", "actual": true, "member": []any{
			map[string]any{"entity": map[string]any{"reference": "Patient/" + a}},
			map[string]any{"entity": map[string]any{"reference": "Patient/" + b}, "inactive": true},
		}})
		h, _ := bulkClient(t, s, "HOPERAT", "system/*.rs")

		t.Run("group", func(t *testing.T) {
			got := download(t, s, h, finish(t, s, h, kickoff(t, s, h, "/fhir/Group/"+g+"/$export?_type=Observation")))
			if got["Observation/"+oa] == nil || got["Observation/"+ob] != nil || got["Observation/"+oc] != nil {
				t.Fatalf("group export holds %v; want only the active member's Observation", keysOf(got))
			}
		})
		t.Run("group-typeFilter", func(t *testing.T) {
			// Found by the independent client (interop/bulk-client.mjs):
			// a Group export with _typeFilter returned no Observation.
			vital := s.Create(t, observation(a, map[string]any{"category": []any{map[string]any{"coding": []any{
				map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}}}}}))
			q := url.Values{"_type": {"Patient,Observation"}, "_typeFilter": {"Observation?category=vital-signs"}}
			got := download(t, s, h, finish(t, s, h, kickoff(t, s, h, "/fhir/Group/"+g+"/$export?"+q.Encode())))
			if got["Observation/"+vital] == nil || got["Observation/"+oa] != nil || got["Patient/"+a] == nil {
				t.Fatalf("group _typeFilter export holds %v; want the member and their vital sign", keysOf(got))
			}
		})
		t.Run("patient-typeFilter", func(t *testing.T) {
			q := url.Values{"_type": {"Observation"}, "_typeFilter": {"Observation?code=http://loinc.org|29463-7"}}
			got := download(t, s, h, finish(t, s, h, kickoff(t, s, h, "/fhir/Patient/$export?"+q.Encode())))
			if got["Observation/"+ob] == nil || got["Observation/"+oa] != nil || got["Observation/"+oc] != nil {
				t.Fatalf("_typeFilter export holds %v; want only the matching Observation", keysOf(got))
			}
		})
		t.Run("since", func(t *testing.T) {
			since := time.Now().UTC()
			time.Sleep(10 * time.Millisecond)
			late := s.Create(t, observation(c, nil))
			got := download(t, s, h, finish(t, s, h, kickoff(t, s, h, "/fhir/$export?_type=Observation&_since="+url.QueryEscape(since.Format(time.RFC3339Nano)))))
			if got["Observation/"+late] == nil || got["Observation/"+oc] != nil {
				t.Fatalf("_since export holds %v; want only the later Observation", keysOf(got))
			}
		})
		t.Run("patient-level-observation-scope", func(t *testing.T) {
			// A client that may read Observations only still gets every
			// patient's Observations at the Patient level.
			ho, _ := bulkClient(t, s, "HOPERAT", "system/Observation.rs")
			mm := finish(t, s, ho, kickoff(t, s, ho, "/fhir/Patient/$export"))
			got := download(t, s, ho, mm)
			if got["Observation/"+oa] == nil || got["Observation/"+oc] == nil || got["Patient/"+a] != nil {
				t.Fatalf("Patient-level export with system/Observation.rs holds %v", keysOf(got))
			}
		})
		t.Run("patient-parameter", func(t *testing.T) {
			body := map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "_type", "valueString": "Observation"},
				map[string]any{"name": "patient", "valueReference": map[string]any{"reference": "Patient/" + c}}}}
			r := s.Do(t, "POST", "/fhir/Patient/$export", body, asyncHeaders(h)).Want(t, http.StatusAccepted)
			got := download(t, s, h, finish(t, s, h, r.Header.Get("Content-Location")))
			if got["Observation/"+oc] == nil || got["Observation/"+oa] != nil {
				t.Fatalf("patient-parameter export holds %v", keysOf(got))
			}
		})
	})
}

func keysOf(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestBulkExportRefusals: bad parameters, missing Prefer, scopes, user
// tokens, clients without a purpose, the concurrency limit and
// _deidentify with a method the server does not have.
func TestBulkExportRefusals(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		h, _ := bulkClient(t, s, "HOPERAT", "system/Observation.rs")
		// No Prefer: respond-async.
		s.Do(t, "GET", "/fhir/$export", nil, h).WantOutcome(t, http.StatusBadRequest)
		for _, q := range []string{
			"_outputFormat=text/csv", "_since=yesterday", "_type=NotAType", "_typeFilter=Observation",
			"_typeFilter=Observation?_count=5", "includeAssociatedData=LatestProvenanceResources", "_bogus=1",
			"_deidentify=k-anonymity",
		} {
			s.Do(t, "GET", "/fhir/$export?"+q, nil, asyncHeaders(h)).WantOutcome(t, http.StatusBadRequest)
		}
		// Lenient handling ignores what the server does not support.
		lenient := asyncHeaders(h)
		lenient["Prefer"] = "respond-async, handling=lenient"
		s.Do(t, "GET", "/fhir/$export?_type=Observation&includeAssociatedData=x", nil, lenient).Want(t, http.StatusAccepted)
		// A type outside the scopes: 403 (strict), left out (lenient).
		s.Do(t, "GET", "/fhir/$export?_type=Patient", nil, asyncHeaders(h)).WantOutcome(t, http.StatusForbidden)
		st := s.Do(t, "GET", "/fhir/$export?_type=Patient,Observation", nil, lenient).Want(t, http.StatusAccepted).Header.Get("Content-Location")
		// Two jobs in progress: the third is 429 with Retry-After.
		r := s.Do(t, "GET", "/fhir/$export", nil, asyncHeaders(h)).WantOutcome(t, http.StatusTooManyRequests)
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		for _, f := range finish(t, s, h, st).Output {
			if f.Type != "Observation" {
				t.Fatalf("a %s file in an export scoped to Observation", f.Type)
			}
		}
		// The API token, a client without a purpose: 403.
		s.Do(t, "GET", "/fhir/$export", nil, asyncHeaders(nil)).WantOutcome(t, http.StatusForbidden)
		np, _ := bulkClient(t, s, "", "system/*.rs")
		s.Do(t, "GET", "/fhir/$export", nil, asyncHeaders(np)).WantOutcome(t, http.StatusForbidden)
		// A Group that does not exist: 404.
		s.Do(t, "GET", "/fhir/Group/nope/$export", nil, asyncHeaders(np)).WantOutcome(t, http.StatusForbidden)
		hg, _ := bulkClient(t, s, "HOPERAT", "system/*.rs")
		s.Do(t, "GET", "/fhir/Group/nope/$export", nil, asyncHeaders(hg)).WantOutcome(t, http.StatusNotFound)
		// A research client receives de-identified data only (found by an
		// outside tester: identified and de-identified exports of one
		// client re-linked 23 of 23 patients).
		hr, _ := bulkClient(t, s, "HRESCH", "system/*.rs")
		s.Do(t, "GET", "/fhir/$export?_type=Observation", nil, asyncHeaders(hr)).WantOutcome(t, http.StatusForbidden)
		if ev := wantAudited(t, s, audit.ActionBulkExport, audit.OutcomeDenied, ""); !slices.ContainsFunc(auditEvents(t, s), func(e audit.Event) bool {
			return e.Action == audit.ActionBulkExport && e.Outcome == audit.OutcomeDenied && slices.Contains(e.Policies, bulk.PolicyResearchDeidentified)
		}) {
			t.Fatalf("the refused identified research export is not audited with its policy (last denial %v)", ev.Policies)
		}
		s.Do(t, "GET", "/fhir/$export?_type=Observation&_deidentify=safe-harbor", nil, asyncHeaders(hr)).Want(t, http.StatusAccepted)
	})
}

// TestBulkExportInterruptedAndExpired: a job whose process died while
// running it (its lease ran out) is run again by another process and
// finishes; a finished job past its expiry is destroyed by the sweep:
// its key is gone, so the sealed file read before can no longer be
// opened by anyone holding the database.
func TestBulkExportInterruptedAndExpired(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		s.Create(t, observation(pid, nil))
		h, _ := bulkClient(t, s, "HOPERAT", "system/*.rs")
		status := kickoff(t, s, h, "/fhir/$export?_type=Observation")
		job := status[strings.LastIndex(status, "=")+1:]
		st := s.App.BulkJobs()
		// A process claims it and dies: its lease has run out.
		now := time.Now()
		if _, ok, err := st.ClaimJob(t.Context(), "crashed-process", now, now.Add(-time.Second)); err != nil || !ok {
			t.Fatalf("claiming the job as the crashed process: %v %v", ok, err)
		}
		s.Do(t, "GET", status, nil, h).Want(t, http.StatusAccepted)
		m := finish(t, s, h, status) // this process takes it over
		if len(m.Output) == 0 {
			t.Fatal("the interrupted export finished without output")
		}

		j, err := st.Job(t.Context(), job)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := st.FileData(t.Context(), job, 1)
		if err != nil {
			t.Fatal(err)
		}
		if k, err := s.App.Keys.ExportKey(job, j.Key); err != nil {
			t.Fatal(err)
		} else if _, err := k.Open(1, ct); err != nil {
			t.Fatal("the sealed file does not open with its job key")
		}
		// Past its expiry, the sweep destroys files and key.
		if err := s.App.BulkJobs().FinishJob(t.Context(), job, "", bulk.StateDone, "", time.Now()); !errors.Is(err, bulk.ErrLeaseLost) {
			t.Fatalf("finishing a job this holder does not hold: %v, want ErrLeaseLost", err)
		}
		if n, err := s.App.Bulk().Sweep(t.Context(), time.Now()); err != nil || n != 0 {
			t.Fatalf("sweep before expiry: %d deleted, %v", n, err)
		}
		if n, err := s.App.Bulk().Sweep(t.Context(), time.Now().Add(bulk.DefaultExpiry+time.Minute)); err != nil || n != 1 {
			t.Fatalf("sweep after expiry: %d deleted, %v", n, err)
		}
		if _, err := st.Job(t.Context(), job); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("expired job still stored: %v", err)
		}
		if _, err := st.FileData(t.Context(), job, 1); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("expired job's file still stored: %v", err)
		}
		if _, err := s.App.Keys.ExportKey(job, nil); !errors.Is(err, keys.ErrShredded) {
			t.Fatalf("opening a destroyed job key: %v, want ErrShredded", err)
		}
		s.Do(t, "GET", status, nil, h).WantOutcome(t, http.StatusNotFound)

		// A job whose processes keep dying is failed, not retried forever:
		// its status is an OperationOutcome (5xx, as the IG asks).
		status = kickoff(t, s, h, "/fhir/$export?_type=Observation")
		for range bulk.MaxAttempts {
			now := time.Now()
			if _, ok, err := st.ClaimJob(t.Context(), "crashed-process", now, now.Add(-time.Second)); err != nil || !ok {
				t.Fatalf("claiming as a crashed process: %v %v", ok, err)
			}
		}
		if err := s.App.Bulk().RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		r := s.Do(t, "GET", status, nil, h).WantOutcome(t, http.StatusInternalServerError)
		if !bytes.Contains(r.Body, []byte("interrupted too often")) {
			t.Fatalf("failed status: %s", r.Body)
		}
	})
}

// TestBulkExportSensitiveConsent: a PSY-labelled record leaves in an
// operations export only for the patient whose consent permits such
// disclosures of that label; a patient whose Patient resource carries a
// restricted label has none of their record exported without such a
// consent; the CapabilityStatement lists $export.
func TestBulkExportSensitiveConsent(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		permits, silent := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		c := consentDeny(permits, "")
		c["provision"] = map[string]any{"type": "deny", "provision": []any{map[string]any{"type": "permit",
			"purpose":       []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HOPERAT"}},
			"securityLabel": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}}}}}
		s.Create(t, c)
		psyPermitted := s.Create(t, labelled(observation(permits, nil), "PSY"))
		psySilent := s.Create(t, labelled(observation(silent, nil), "PSY"))
		plainSilent := s.Create(t, observation(silent, nil))
		// Found by an outside tester: a V-labelled Patient was withheld
		// while their Observations left.
		restricted := s.Create(t, labelled(patient(uniq(), nil), "V"))
		restrictedObs := s.Create(t, observation(restricted, nil))
		h, _ := bulkClient(t, s, "HOPERAT", "system/*.rs")
		got := download(t, s, h, finish(t, s, h, kickoff(t, s, h, "/fhir/$export?_type=Patient,Observation")))
		if got["Observation/"+psyPermitted] == nil || got["Observation/"+psySilent] != nil || got["Observation/"+plainSilent] == nil {
			t.Fatalf("system export holds %v; want the consented PSY record and the unlabelled one, not the other PSY record", keysOf(got))
		}
		for _, level := range []string{"/fhir/$export?_type=Patient,Observation", "/fhir/Patient/$export?_type=Patient,Observation"} {
			got := download(t, s, h, finish(t, s, h, kickoff(t, s, h, level)))
			if got["Patient/"+restricted] != nil || got["Observation/"+restrictedObs] != nil {
				t.Fatalf("%s holds part of a V-labelled patient's record: %v", level, keysOf(got))
			}
		}

		cs := s.Do(t, "GET", "/fhir/metadata", nil, nil).Want(t, http.StatusOK)
		for _, def := range []string{"OperationDefinition/export", "OperationDefinition/patient-export", "OperationDefinition/group-export", "CapabilityStatement/bulk-data"} {
			if !bytes.Contains(cs.Body, []byte("http://hl7.org/fhir/uv/bulkdata/"+def)) {
				t.Errorf("CapabilityStatement lacks %s", def)
			}
		}
	})
}

// TestBulkExportSplitsFiles: a type's output is split into files at the
// configured size, each with its own count, none lost or repeated.
func TestBulkExportSplitsFiles(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			s := apitest.Start(t, d, app.WithBulkOptions(func(o *bulk.Options) { o.FileBytes = 600; o.PageSize = 3 }))
			pid := s.Create(t, patient(uniq(), nil))
			var want []string
			for range 7 {
				want = append(want, "Observation/"+s.Create(t, observation(pid, nil)))
			}
			h, _ := bulkClient(t, s, "HOPERAT", "system/*.rs")
			m := finish(t, s, h, kickoff(t, s, h, "/fhir/$export?_type=Observation"))
			if len(m.Output) < 2 {
				t.Fatalf("%d Observation files, want the output split", len(m.Output))
			}
			got := download(t, s, h, m)
			total := 0
			for _, f := range m.Output {
				total += f.Count
			}
			if total != len(want) || len(got) != len(want) {
				t.Fatalf("files count %d resources (%d distinct), want %d", total, len(got), len(want))
			}
		})
	}
}

// TestBulkExportDeidentified: _deidentify=safe-harbor gives a research
// client HIPAA Safe Harbor output (package deid): none of the patient's
// identifiers, names, address below the state, full dates or ids leaves;
// references still point at the exported patient under its pseudonym;
// every resource is labelled; the patient's trail still names the
// export. Two exports use different pseudonyms.
func TestBulkExportDeidentified(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		mrn := "MRN-" + uniq()
		pid := s.Create(t, patient(mrn, map[string]any{
			"name":      []any{map[string]any{"family": "Quixotewright", "given": []any{"Ottoline"}}},
			"birthDate": "1961-07-23",
			"telecom":   []any{map[string]any{"system": "phone", "value": "555-867-5309"}},
			"address":   []any{map[string]any{"line": []any{"42 Larkspur Lane"}, "city": "Bedford", "state": "MA", "postalCode": "01730"}},
		}))
		s.Create(t, observation(pid, map[string]any{"effectiveDateTime": "2019-03-14T09:26:53Z",
			"note": []any{map[string]any{"text": "Ottoline said her neighbour drove her"}}}))

		research, _ := bulkClient(t, s, "HRESCH", "system/*.rs")
		export := func() (map[string]map[string]any, []byte) {
			m := finish(t, s, research, kickoff(t, s, research, "/fhir/$export?_type=Patient,Observation&_deidentify=safe-harbor"))
			var raw []byte
			for _, f := range m.Output {
				raw = append(raw, s.Do(t, "GET", f.URL, nil, research).Want(t, http.StatusOK).Body...)
			}
			return download(t, s, research, m), raw
		}
		got, raw := export()
		for _, secret := range []string{pid, mrn, "Quixotewright", "Ottoline", "1961-07-23", "555-867-5309", "Larkspur", "Bedford", "01730", "2019-03-14", "neighbour"} {
			if bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(secret))) {
				t.Errorf("the de-identified export holds %q", secret)
			}
		}
		var pseudo string
		for k, res := range got {
			if !strings.Contains(mustJSON(t, res["meta"]), "PSEUDED") {
				t.Errorf("%s is not labelled as pseudonymised", k)
			}
			if res["resourceType"] == "Patient" {
				pseudo = res["id"].(string)
				if res["birthDate"] != "1961" {
					t.Errorf("birthDate %v, want the year only", res["birthDate"])
				}
			}
		}
		if pseudo == "" {
			t.Fatal("the patient is not in the export")
		}
		for k, res := range got {
			if res["resourceType"] == "Observation" {
				if ref := res["subject"].(map[string]any)["reference"]; ref != "Patient/"+pseudo {
					t.Errorf("%s: subject %v, want the exported patient's pseudonym", k, ref)
				}
			}
		}
		var named bool
		for _, ev := range auditEvents(t, s) {
			if v, ok := ev.PatientView("Patient/" + pid); ok && ev.Action == audit.ActionBulkExport && v.Purpose == "HRESCH" {
				named = true
			}
		}
		if !named {
			t.Fatal("the patient's trail does not name the de-identified export")
		}
		again, _ := export()
		if _, same := again["Patient/"+pseudo]; same {
			t.Fatal("two exports gave the patient the same pseudonym")
		}
	})
}
