package fhirconformance_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

func txEntry(fullURL, method, u string, res map[string]any, extra map[string]any) map[string]any {
	req := map[string]any{"method": method, "url": u}
	for k, v := range extra {
		req[k] = v
	}
	e := map[string]any{"request": req}
	if fullURL != "" {
		e["fullUrl"] = fullURL
	}
	if res != nil {
		e["resource"] = res
	}
	return e
}

func txBundle(kind string, entries ...map[string]any) map[string]any {
	es := make([]any, len(entries))
	for i, e := range entries {
		es[i] = e
	}
	return map[string]any{"resourceType": "Bundle", "type": kind, "entry": es}
}

// statusCode returns the three-digit code of entry.response.status
// ("201 Created" → "201").
func statusCode(e map[string]any) string {
	st, _ := entryResponse(e)["status"].(string)
	code, _, _ := strings.Cut(st, " ")
	return code
}

// checkBundles: R4 http.html#transaction, #trules, bundle.html.
func checkBundles(t *testing.T, s *apitest.Server) {
	sys := newSystem()
	t.Run("transaction-response, urn:uuid references, conditional references", func(t *testing.T) {
		// http.html#transaction: the response is a Bundle of type
		// transaction-response "that contains one entry for each entry in
		// the request, in the same order, with the outcome of processing
		// the entry"; bundle.html#references: urn:uuid fullUrls are
		// replaced by the assigned ids in references; http.html#trules:
		// conditional references ("Patient?identifier=...") are resolved.
		existing := s.Create(t, patientRes(sys, "t-existing", nil))
		pURL := "urn:uuid:2f1c2d0a-5b8e-4f7e-9a61-" + newKey()
		putID := "tx-" + newKey()
		b := txBundle("transaction",
			txEntry(pURL, "POST", "Patient", patientRes(sys, "t1", nil), nil),
			txEntry("", "POST", "Observation", observationRes("x", map[string]any{"subject": ref(pURL)}), nil),
			txEntry("", "PUT", "Patient/"+putID, patientRes(sys, "t2", map[string]any{"id": putID}), nil),
			txEntry("", "POST", "Observation", observationRes("x", map[string]any{"subject": ref("Patient?" + query("identifier", sys+"|t-existing"))}), nil),
		)
		r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
		if r.JSON["resourceType"] != "Bundle" || r.JSON["type"] != "transaction-response" {
			t.Fatalf("got %s, want a transaction-response Bundle", r)
		}
		es := r.Entries()
		if len(es) != 4 {
			t.Fatalf("%d response entries, want 4", len(es))
		}
		var codes []string
		for _, e := range es {
			codes = append(codes, statusCode(e))
		}
		if got := strings.Join(codes, ","); got != "201,201,201,201" {
			t.Errorf("statuses: got %s, want 201 each (in request order)", got)
		}
		loc := func(i int) string {
			l, _ := entryResponse(es[i])["location"].(string)
			l = strings.TrimPrefix(l, s.URL+"/fhir/")
			parts := strings.Split(l, "/")
			if len(parts) < 2 {
				t.Fatalf("entry %d: response.location %q", i, l)
			}
			if etag, _ := entryResponse(es[i])["etag"].(string); etag != `W/"1"` {
				t.Errorf("entry %d: response.etag %q", i, etag)
			}
			return parts[0] + "/" + parts[1]
		}
		pid := loc(0)
		if l := loc(2); l != "Patient/"+putID {
			t.Errorf("PUT entry location %q", l)
		}
		o := s.Do(t, "GET", "/fhir/"+loc(1), nil, nil).Want(t, http.StatusOK)
		if got := o.JSON["subject"].(map[string]any)["reference"]; got != pid {
			t.Errorf("urn:uuid reference: subject %v, want %s", got, pid)
		}
		o = s.Do(t, "GET", "/fhir/"+loc(3), nil, nil).Want(t, http.StatusOK)
		if got := o.JSON["subject"].(map[string]any)["reference"]; got != "Patient/"+existing {
			t.Errorf("conditional reference: subject %v, want Patient/%s", got, existing)
		}
	})
	t.Run("processing order: DELETE, POST, PUT, GET", func(t *testing.T) {
		// http.html#trules: "1. Process any DELETE interactions 2.
		// Process any POST interactions 3. Process any PUT or PATCH
		// interactions 4. Process any GET or HEAD interactions", whatever
		// their order in the Bundle. Here the GET comes first but must
		// see the POST; the conditional POST comes before the DELETE but
		// must not see the resource the DELETE removes.
		old := s.Create(t, patientRes(sys, "order-del", nil))
		b := txBundle("transaction",
			txEntry("", "GET", "Patient?"+query("identifier", sys+"|order-new"), nil, nil),
			txEntry("", "POST", "Patient", patientRes(sys, "order-del", nil), map[string]any{"ifNoneExist": query("identifier", sys+"|order-del")}),
			txEntry("", "POST", "Patient", patientRes(sys, "order-new", nil), nil),
			txEntry("", "DELETE", "Patient/"+old, nil, nil),
		)
		r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
		es := r.Entries()
		if len(es) != 4 {
			t.Fatalf("%d response entries, want 4: %s", len(es), r)
		}
		if c := statusCode(es[1]); c != "201" {
			t.Errorf("conditional POST after the DELETE: status %s, want 201 (the DELETE runs first)", c)
		}
		if c := statusCode(es[0]); c != "200" {
			t.Fatalf("GET entry: status %s", c)
		}
		found, _ := es[0]["resource"].(map[string]any)
		fes, _ := found["entry"].([]any)
		if found["resourceType"] != "Bundle" || len(fes) != 1 {
			t.Errorf("GET entry (runs after the POSTs): got %v, want a Bundle with the new patient", found)
		}
		if c := statusCode(es[3]); c != "200" && c != "204" {
			t.Errorf("DELETE entry: status %s", c)
		}
		s.Do(t, "GET", "/fhir/Patient/"+old, nil, nil).Want(t, http.StatusGone)
	})
	t.Run("overlapping identities fail the transaction", func(t *testing.T) {
		// http.html#trules: "If any resource identities (including
		// resolved identities from conditional update/delete) overlap in
		// steps 1-3, then the transaction SHALL fail."
		id := s.Create(t, patientRes(sys, "overlap", nil))
		b := txBundle("transaction",
			txEntry("", "DELETE", "Patient/"+id, nil, nil),
			txEntry("", "PUT", "Patient/"+id, patientRes(sys, "overlap", map[string]any{"id": id, "gender": "male"}), nil),
		)
		r := s.Do(t, "POST", "/fhir", b, nil)
		if r.Status < 400 || r.Status >= 500 {
			t.Fatalf("got %s, want a 4xx failure", r)
		}
		wantOutcomeBody(t, r)
		g := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
		if versionOf(g.JSON) != "1" {
			t.Errorf("a failed transaction changed the resource: %s", g)
		}
	})
	t.Run("a failed transaction changes nothing", func(t *testing.T) {
		// http.html#transaction: "either all actions succeed or all fail
		// ... the server SHALL return a single OperationOutcome" with a
		// 4xx or 5xx status.
		id := s.Create(t, patientRes(sys, "atomic", nil))
		b := txBundle("transaction",
			txEntry("", "POST", "Patient", patientRes(sys, "atomic-new", nil), nil),
			txEntry("", "DELETE", "Patient/"+s.Create(t, patientRes(sys, "atomic-del", nil)), nil, nil),
			txEntry("", "PUT", "Patient/"+id, patientRes(sys, "atomic", map[string]any{"id": id, "gender": "male"}), map[string]any{"ifMatch": `W/"9"`}),
		)
		r := s.Do(t, "POST", "/fhir", b, nil)
		if r.Status < 400 {
			t.Fatalf("got %s, want a failure (If-Match of a version that does not exist)", r)
		}
		wantOutcomeBody(t, r)
		if got := allMatches(t, s, "/fhir/Patient?"+query("identifier", sys+"|atomic-new")); len(got) != 0 {
			t.Errorf("the POST of a failed transaction persisted: %v", got)
		}
		if got := allMatches(t, s, "/fhir/Patient?"+query("identifier", sys+"|atomic-del")); len(got) != 1 {
			t.Errorf("the DELETE of a failed transaction persisted: %v", got)
		}
	})
	t.Run("batch: each entry on its own", func(t *testing.T) {
		// http.html#transaction: a batch's entries are processed
		// independently; the response is a batch-response with one entry
		// per request entry, in order, each with its own status, and a
		// failed entry does not undo the others.
		id := s.Create(t, patientRes(sys, "batch", nil))
		b := txBundle("batch",
			txEntry("", "POST", "Patient", patientRes(sys, "batch-new", nil), nil),
			txEntry("", "PUT", "Patient/"+id, patientRes(sys, "batch", map[string]any{"id": id}), map[string]any{"ifMatch": `W/"9"`}),
			txEntry("", "GET", "Patient/unknown-"+newKey(), nil, nil),
			txEntry("", "GET", "Patient/"+id, nil, nil),
			txEntry("", "POST", "Patient", map[string]any{"resourceType": "Patient", "gender": 7}, nil),
		)
		r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
		if r.JSON["type"] != "batch-response" {
			t.Fatalf("got %s, want a batch-response", r)
		}
		es := r.Entries()
		if len(es) != 5 {
			t.Fatalf("%d response entries, want 5", len(es))
		}
		var codes []string
		for _, e := range es {
			codes = append(codes, statusCode(e))
		}
		if codes[0] != "201" || codes[1] != "412" || codes[2] != "404" || codes[3] != "200" || (codes[4] != "400" && codes[4] != "422") {
			t.Errorf("statuses: got %v, want 201, 412, 404, 200, 400|422", codes)
		}
		if res, _ := es[3]["resource"].(map[string]any); res["id"] != id {
			t.Errorf("GET entry: resource %v", res)
		}
		if got := allMatches(t, s, "/fhir/Patient?"+query("identifier", sys+"|batch-new")); len(got) != 1 {
			t.Errorf("the batch's successful POST: %v", got)
		}
	})
	t.Run("PATCH entries: JSON Patch in a Binary, FHIRPath Patch in a Parameters", func(t *testing.T) {
		// http.html#transaction: a PATCH entry's resource is "a Binary
		// resource [...] for a JSON Patch" or "a Parameters resource for
		// a FHIRPath Patch"; http.html#trules: PATCH is processed with
		// PUT, after DELETE and POST and before GET; fhirpatch.html.
		jp := "urn:uuid:0c7bfb7e-8e85-4c3b-a3f1-" + newKey()[:12]
		id := s.Create(t, patientRes(sys, "patch-jp", nil))
		fp := s.Create(t, patientRes(sys, "patch-fp", nil))
		ops, _ := json.Marshal([]any{map[string]any{"op": "add", "path": "/gender", "value": "female"}})
		binary := map[string]any{"resourceType": "Binary", "contentType": "application/json-patch+json", "data": base64.StdEncoding.EncodeToString(ops)}
		params := map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "operation", "part": []any{
			map[string]any{"name": "type", "valueCode": "add"},
			map[string]any{"name": "path", "valueString": "Patient"},
			map[string]any{"name": "name", "valueString": "managingOrganization"},
			map[string]any{"name": "value", "valueReference": ref(jp)},
		}}}}
		b := txBundle("transaction",
			txEntry("", "GET", "Patient/"+id, nil, nil),
			txEntry("", "PATCH", "Patient/"+id, binary, map[string]any{"ifMatch": `W/"1"`}),
			txEntry("", "PATCH", "Patient/"+fp, params, nil),
			txEntry(jp, "POST", "Organization", map[string]any{"resourceType": "Organization", "name": "patch-" + newKey()}, nil),
		)
		r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
		es := r.Entries()
		if len(es) != 4 {
			t.Fatalf("%d response entries, want 4: %s", len(es), r)
		}
		if c := statusCode(es[1]) + "," + statusCode(es[2]); c != "200,200" {
			t.Fatalf("PATCH entries: statuses %s, want 200,200: %s", c, r)
		}
		if res, _ := es[0]["resource"].(map[string]any); res["gender"] != "female" || versionOf(res) != "2" {
			t.Errorf("the GET entry (processed after PATCH) read %v", res)
		}
		if etag, _ := entryResponse(es[1])["etag"].(string); etag != `W/"2"` {
			t.Errorf("PATCH entry etag %q", etag)
		}
		g := s.Do(t, "GET", "/fhir/Patient/"+fp, nil, nil).Want(t, http.StatusOK)
		org, _ := g.JSON["managingOrganization"].(map[string]any)
		if l, _ := entryResponse(es[3])["location"].(string); org == nil || !strings.Contains("/"+l, "/"+org["reference"].(string)+"/_history/") {
			t.Errorf("FHIRPath Patch value with a urn:uuid reference: managingOrganization %v, the Organization is at %s", org, l)
		}

		// http.html#transaction: a failing entry fails the transaction
		// (If-Match of a version that is no longer current: 412), and
		// nothing of it is kept.
		b = txBundle("transaction",
			txEntry("", "POST", "Patient", patientRes(sys, "patch-atomic", nil), nil),
			txEntry("", "PATCH", "Patient/"+id, binary, map[string]any{"ifMatch": `W/"1"`}),
		)
		r = s.Do(t, "POST", "/fhir", b, nil)
		if r.Status != http.StatusPreconditionFailed {
			t.Errorf("a stale If-Match PATCH entry: got %s, want 412", r)
		}
		wantOutcomeBody(t, r)
		if got := allMatches(t, s, "/fhir/Patient?"+query("identifier", sys+"|patch-atomic")); len(got) != 0 {
			t.Errorf("the POST of a failed transaction persisted: %v", got)
		}
		// In a batch the same entry fails on its own.
		b = txBundle("batch",
			txEntry("", "PATCH", "Patient/"+id, binary, map[string]any{"ifMatch": `W/"1"`}),
			txEntry("", "PATCH", "Patient/unknown-"+newKey(), binary, nil),
			txEntry("", "PATCH", "Patient/"+id, binary, map[string]any{"ifMatch": `W/"2"`}),
		)
		r = s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
		var codes []string
		for _, e := range r.Entries() {
			codes = append(codes, statusCode(e))
		}
		if got := strings.Join(codes, ","); got != "412,404,200" {
			t.Errorf("batch PATCH entries: statuses %s, want 412,404,200", got)
		}
	})
	t.Run("only batch and transaction Bundles are processed", func(t *testing.T) {
		// http.html#transaction: "POST [base]" takes a Bundle of type
		// batch or transaction; anything else is refused.
		r := s.Do(t, "POST", "/fhir", txBundle("collection", txEntry("", "POST", "Patient", patientRes(sys, "c", nil), nil)), nil)
		if r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
			t.Errorf("a collection Bundle: got %s, want 400 or 422", r)
		}
		wantOutcomeBody(t, r)
	})
}
