package fhirconformance_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// checkCapabilities: R4 http.html#capabilities and
// capabilitystatement.html; then the server's honesty: what its
// CapabilityStatement claims works.
func checkCapabilities(t *testing.T, s *apitest.Server) {
	r := s.Do(t, "GET", "/fhir/metadata", nil, nil).Want(t, http.StatusOK)
	cs := r.JSON
	t.Run("GET metadata is a CapabilityStatement", func(t *testing.T) {
		// http.html#capabilities: "GET [base]/metadata{?mode=[mode]}"
		// returns a CapabilityStatement; capabilitystatement.html: status,
		// date, kind, fhirVersion and format are required; an R4 server
		// says 4.0.1; rest.mode is server.
		if cs["resourceType"] != "CapabilityStatement" {
			t.Fatalf("got %s", r)
		}
		for _, k := range []string{"status", "date", "kind", "fhirVersion", "format"} {
			if cs[k] == nil {
				t.Errorf("no %s", k)
			}
		}
		if cs["fhirVersion"] != "4.0.1" {
			t.Errorf("fhirVersion %v", cs["fhirVersion"])
		}
		if k := cs["kind"]; k != "instance" && k != "capability" {
			t.Errorf("kind %v", k)
		}
		if m := restOf(t, cs)["mode"]; m != "server" {
			t.Errorf("rest.mode %v", m)
		}
		s.Do(t, "GET", "/fhir/metadata?mode=full", nil, nil).Want(t, http.StatusOK)
	})
	t.Run("patchFormat lists the patch formats that work", func(t *testing.T) {
		// capabilitystatement.html: "patchFormat: A list of the patch
		// formats supported by this implementation"; http.html#patch
		// names JSON Patch and FHIRPath Patch (checkPatch uses both).
		pf := strs(cs["patchFormat"])
		for _, want := range []string{"application/json-patch+json", "application/fhir+json"} {
			if !slices.Contains(pf, want) {
				t.Errorf("patchFormat %v lacks %s", pf, want)
			}
		}
	})
	rest := restOf(t, cs)
	resources := map[string]map[string]any{}
	for _, x := range asList(rest["resource"]) {
		typ, _ := x["type"].(string)
		resources[typ] = x
	}
	t.Run("every claimed search parameter answers", func(t *testing.T) {
		// capabilitystatement.html rest.resource.searchParam: "Search
		// parameters for implementations to support and/or make use of".
		// A well-formed value of its type must be a 200 searchset, never
		// a 400 "unknown parameter", for every type the server lists.
		if len(resources) < 3 {
			t.Fatalf("only %d resource types", len(resources))
		}
		tok, err := s.App.Tokens().Create(t.Context(), "conformance-auditor", []string{"auditor"})
		if err != nil {
			t.Fatal(err)
		}
		auditor := tok.Reveal()
		for typ, res := range resources {
			if !hasInteraction(res, "search-type") {
				continue
			}
			for _, sp := range asList(res["searchParam"]) {
				name, _ := sp["name"].(string)
				kind, _ := sp["type"].(string)
				v, ok := sampleValue(name, kind)
				if c, bound := requiredCodes[typ+"."+name]; bound {
					v = c
				}
				if !ok {
					t.Errorf("%s?%s: a search parameter of type %q", typ, name, kind)
					continue
				}
				if doc, _ := sp["documentation"].(string); kind == "reference" && strings.Contains(doc, "Type/id only") {
					// The statement says a bare id is not taken here;
					// [type]/[id] is the other well-formed value.
					v = "Patient/" + v
				}
				path := "/fhir/" + typ + "?" + query(name, v)
				var h apitest.H
				if typ == "AuditEvent" {
					// The audit log is readable by auditors only
					// (docs/authorization.md), not by service credentials.
					h = apitest.H{"Authorization": "Bearer " + auditor}
				}
				resp := s.Do(t, "GET", path, nil, h)
				if resp.Status != http.StatusOK || resp.JSON["type"] != "searchset" {
					t.Errorf("claimed %s?%s (%s): got %s", typ, name, kind, resp)
				}
			}
		}
	})
	t.Run("every claimed _include and _revinclude answers", func(t *testing.T) {
		// capabilitystatement.html searchInclude / searchRevInclude.
		for typ, res := range resources {
			for _, inc := range strs(res["searchInclude"]) {
				resp := s.Do(t, "GET", "/fhir/"+typ+"?"+query("_id", "none", "_include", inc), nil, nil)
				if resp.Status != http.StatusOK {
					t.Errorf("claimed %s?_include=%s: got %s", typ, inc, resp)
				}
			}
			for _, inc := range strs(res["searchRevInclude"]) {
				resp := s.Do(t, "GET", "/fhir/"+typ+"?"+query("_id", "none", "_revinclude", inc), nil, nil)
				if resp.Status != http.StatusOK {
					t.Errorf("claimed %s?_revinclude=%s: got %s", typ, inc, resp)
				}
			}
		}
	})
	t.Run("every claimed system parameter and interaction answers", func(t *testing.T) {
		// capabilitystatement.html rest.searchParam and rest.interaction
		// (transaction, batch, search-system, history-system).
		// phivault's system search needs _type (docs/fhir.md).
		for _, sp := range asList(rest["searchParam"]) {
			name, _ := sp["name"].(string)
			kind, _ := sp["type"].(string)
			v, _ := sampleValue(name, kind)
			resp := s.Do(t, "GET", "/fhir?"+query("_type", "Patient", name, v), nil, nil)
			if resp.Status != http.StatusOK {
				t.Errorf("claimed system ?%s: got %s", name, resp)
			}
		}
		for _, in := range asList(rest["interaction"]) {
			var resp *apitest.Response
			switch code, _ := in["code"].(string); code {
			case "transaction", "batch":
				resp = s.Do(t, "POST", "/fhir", txBundle(code), nil)
			case "search-system":
				resp = s.Do(t, "GET", "/fhir?_type=Patient&_count=1", nil, nil)
			case "history-system":
				resp = s.Do(t, "GET", "/fhir/_history?_count=1", nil, nil)
			default:
				t.Errorf("unknown system interaction %q", code)
				continue
			}
			if resp.Status != http.StatusOK || resp.JSON["resourceType"] != "Bundle" {
				t.Errorf("claimed %v: got %s", in["code"], resp)
			}
		}
	})
	for _, typ := range []string{"Patient", "Observation", "Encounter"} {
		t.Run("every claimed interaction of "+typ+" works", func(t *testing.T) {
			res := resources[typ]
			if res == nil {
				t.Fatalf("%s is not in the CapabilityStatement", typ)
			}
			checkClaimedInteractions(t, s, typ, res)
		})
	}
}

// checkClaimedInteractions exercises each interaction and operation the
// CapabilityStatement lists for typ (capabilitystatement.html
// rest.resource.interaction, .operation, .versioning, .readHistory,
// .updateCreate, .conditionalCreate, .conditionalUpdate,
// .conditionalDelete).
func checkClaimedInteractions(t *testing.T, s *apitest.Server, typ string, res map[string]any) {
	sys := newSystem()
	pid := s.Create(t, patientRes(sys, "owner", nil))
	sample := func() map[string]any {
		switch typ {
		case "Patient":
			return patientRes(sys, "x", nil)
		case "Observation":
			return observationRes(pid, nil)
		default:
			return encounterRes(pid, nil)
		}
	}
	id := s.Create(t, sample())
	withID := func(id string) map[string]any {
		b := sample()
		b["id"] = id
		return b
	}
	jp := apitest.H{"Content-Type": "application/json-patch+json"}
	for _, in := range asList(res["interaction"]) {
		code, _ := in["code"].(string)
		var resp *apitest.Response
		want := http.StatusOK
		switch code {
		case "read":
			resp = s.Do(t, "GET", "/fhir/"+typ+"/"+id, nil, nil)
		case "vread":
			resp = s.Do(t, "GET", "/fhir/"+typ+"/"+id+"/_history/1", nil, nil)
		case "update":
			resp = s.Do(t, "PUT", "/fhir/"+typ+"/"+id, withID(id), nil)
		case "patch":
			resp = s.Do(t, "PATCH", "/fhir/"+typ+"/"+id, []any{map[string]any{"op": "add", "path": "/language", "value": "en"}}, jp)
		case "delete":
			did := s.Create(t, sample())
			resp = s.Do(t, "DELETE", "/fhir/"+typ+"/"+did, nil, nil)
			if resp.Status == http.StatusNoContent {
				want = http.StatusNoContent
			}
		case "history-instance":
			resp = s.Do(t, "GET", "/fhir/"+typ+"/"+id+"/_history", nil, nil)
		case "history-type":
			resp = s.Do(t, "GET", "/fhir/"+typ+"/_history?_count=1", nil, nil)
		case "create":
			resp = s.Do(t, "POST", "/fhir/"+typ, sample(), nil)
			want = http.StatusCreated
		case "search-type":
			resp = s.Do(t, "GET", "/fhir/"+typ+"?"+query("_id", id), nil, nil)
		default:
			t.Errorf("unknown interaction %q", code)
			continue
		}
		if resp.Status != want {
			t.Errorf("claimed %s %s: got %s", typ, code, resp)
		}
	}
	if res["versioning"] == "versioned-update" {
		// versioned-update: the server honours If-Match.
		s.Do(t, "PUT", "/fhir/"+typ+"/"+id, withID(id), apitest.H{"If-Match": `W/"1"`}).Want(t, http.StatusPreconditionFailed)
	}
	if res["readHistory"] == true {
		s.Do(t, "GET", "/fhir/"+typ+"/"+id+"/_history/1", nil, nil).Want(t, http.StatusOK)
	}
	if res["updateCreate"] == true {
		nid := "claim-" + newKey()
		s.Do(t, "PUT", "/fhir/"+typ+"/"+nid, withID(nid), nil).Want(t, http.StatusCreated)
	}
	if res["conditionalCreate"] == true {
		s.Do(t, "POST", "/fhir/"+typ, sample(), apitest.H{"If-None-Exist": query("_id", id)}).Want(t, http.StatusOK)
	}
	if res["conditionalUpdate"] == true {
		s.Do(t, "PUT", "/fhir/"+typ+"?"+query("_id", id), withID(id), nil).Want(t, http.StatusOK)
	}
	switch res["conditionalDelete"] {
	case "single", "multiple":
		did := s.Create(t, sample())
		s.Do(t, "DELETE", "/fhir/"+typ+"?"+query("_id", did), nil, nil).Want(t, http.StatusOK, http.StatusNoContent)
		s.Do(t, "GET", "/fhir/"+typ+"/"+did, nil, nil).Want(t, http.StatusGone)
	}
	switch res["conditionalRead"] {
	case "full-support":
		lm := s.Do(t, "GET", "/fhir/"+typ+"/"+id, nil, nil).Want(t, http.StatusOK).Header.Get("Last-Modified")
		s.Do(t, "GET", "/fhir/"+typ+"/"+id, nil, apitest.H{"If-Modified-Since": lm}).Want(t, http.StatusNotModified)
		fallthrough
	case "not-match":
		etag := s.Do(t, "GET", "/fhir/"+typ+"/"+id, nil, nil).Want(t, http.StatusOK).Header.Get("ETag")
		s.Do(t, "GET", "/fhir/"+typ+"/"+id, nil, apitest.H{"If-None-Match": etag}).Want(t, http.StatusNotModified)
	case "modified-since":
		lm := s.Do(t, "GET", "/fhir/"+typ+"/"+id, nil, nil).Want(t, http.StatusOK).Header.Get("Last-Modified")
		s.Do(t, "GET", "/fhir/"+typ+"/"+id, nil, apitest.H{"If-Modified-Since": lm}).Want(t, http.StatusNotModified)
	}
	for _, op := range asList(res["operation"]) {
		name, _ := op["name"].(string)
		var resp *apitest.Response
		switch name {
		case "meta":
			resp = s.Do(t, "GET", "/fhir/"+typ+"/"+id+"/$meta", nil, nil)
		case "meta-add", "meta-delete":
			p := map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "meta",
				"valueMeta": map[string]any{"tag": []any{map[string]any{"system": sys, "code": "claimed"}}}}}}
			resp = s.Do(t, "POST", "/fhir/"+typ+"/"+id+"/$"+name, p, nil)
		case "everything":
			resp = s.Do(t, "GET", "/fhir/"+typ+"/"+pid+"/$everything", nil, nil)
		case "validate":
			// resource-operation-validate: Parameters with the resource;
			// the answer is an OperationOutcome, 200 whatever it finds.
			p := map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "resource", "resource": sample()}}}
			resp = s.Do(t, "POST", "/fhir/"+typ+"/$validate", p, nil)
			if resp.Status == http.StatusOK && resp.JSON["resourceType"] != "OperationOutcome" {
				t.Errorf("%s $validate: not an OperationOutcome: %s", typ, resp)
			}
		case "export":
			// Bulk Data $export (ADR 0049) belongs to SMART backend
			// clients; the API token used here is refused with an
			// OperationOutcome. The whole protocol is driven by
			// internal/httpapi's TestBulkExport* and by the independent
			// client of internal/interop (TestBulkDataClient).
			path := "/fhir/" + typ + "/$export"
			if typ == "Group" {
				path = "/fhir/Group/" + id + "/$export"
			}
			s.Do(t, "GET", path, nil, apitest.H{"Accept": "application/fhir+json", "Prefer": "respond-async"}).
				WantOutcome(t, http.StatusForbidden)
			continue
		case "erase":
			// Patient/$erase is phivault's own (crypto-shredding, needs a
			// second person's approval); not a FHIR operation to drive here.
			continue
		default:
			t.Errorf("%s: unchecked operation %q", typ, name)
			continue
		}
		if resp.Status != http.StatusOK {
			t.Errorf("claimed %s $%s: got %s", typ, name, resp)
		}
	}
}

// requiredCodes are token values for parameters bound to a required
// value set (R4 auditevent.html: AuditEvent.action and .outcome), where
// a made-up code is not well-formed.
var requiredCodes = map[string]string{
	"AuditEvent.action":  "http://hl7.org/fhir/audit-event-action|R",
	"AuditEvent.outcome": "http://hl7.org/fhir/audit-event-outcome|0",
}

// sampleValue is a well-formed search value for a parameter of kind
// (search.html#ptypes).
func sampleValue(name, kind string) (string, bool) {
	if name == "_id" {
		// search.html#id: "_id" is a token whose value is a logical id.
		return "none-" + newKey(), true
	}
	switch kind {
	case "token":
		return "http://example.org/conformance|none", true
	case "string":
		return "none", true
	case "date":
		return "ge2020-01-01", true
	case "reference":
		return "none-" + newKey(), true
	case "number":
		return "1", true
	case "quantity":
		return "5.4|http://unitsofmeasure.org|mg", true
	case "uri":
		return "http://example.org/none", true
	case "composite":
		// search.html#composite: the components joined by "$", here a
		// code and then a concept or a quantity.
		if strings.Contains(name, "concept") {
			return "http://example.org/conformance|none$http://example.org/conformance|none", true
		}
		return "http://example.org/conformance|none$5.4", true
	}
	return "", false
}

func restOf(t *testing.T, cs map[string]any) map[string]any {
	t.Helper()
	rs := asList(cs["rest"])
	if len(rs) != 1 {
		t.Fatalf("rest: %d entries", len(rs))
	}
	return rs[0]
}

func asList(v any) []map[string]any {
	raw, _ := v.([]any)
	var out []map[string]any
	for _, x := range raw {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func strs(v any) []string {
	raw, _ := v.([]any)
	var out []string
	for _, x := range raw {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func hasInteraction(res map[string]any, code string) bool {
	for _, in := range asList(res["interaction"]) {
		if in["code"] == code {
			return true
		}
	}
	return false
}
