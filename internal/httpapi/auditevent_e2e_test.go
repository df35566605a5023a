package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/fhir"
)

// auditorHeaders authenticates as a new API token with role auditor.
func auditorHeaders(t *testing.T, s *apitest.Server) apitest.H {
	t.Helper()
	sec, err := s.App.Tokens().Create(t.Context(), "auditor-"+t.Name(), []string{"auditor"})
	if err != nil {
		t.Fatal(err)
	}
	return apitest.H{"Authorization": "Bearer " + sec.Reveal()}
}

// entityRefs returns every entity.what.reference of an AuditEvent.
func entityRefs(ae map[string]any) []string {
	var out []string
	ents, _ := ae["entity"].([]any)
	for _, e := range ents {
		what, _ := e.(map[string]any)["what"].(map[string]any)
		if ref, ok := what["reference"].(string); ok {
			out = append(out, ref)
		}
	}
	return out
}

func subtypeCode(ae map[string]any) string {
	st, _ := ae["subtype"].([]any)
	if len(st) == 0 {
		return ""
	}
	c, _ := st[0].(map[string]any)["code"].(string)
	return c
}

// Auditors search the log as FHIR AuditEvent by patient, entity, agent,
// subtype, outcome and date, with paging; every returned resource is a
// valid R4 AuditEvent; the read of the log is itself audited; everyone
// else is refused, and the refusal is audited too.
func TestAuditEventSearch(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		v := fhir.NewValidator()
		a := s.Create(t, map[string]any{"resourceType": "Patient", "gender": "female"})
		b := s.Create(t, map[string]any{"resourceType": "Patient", "gender": "male"})
		obs := s.Create(t, map[string]any{
			"resourceType": "Observation", "status": "final", "subject": map[string]any{"reference": "Patient/" + a},
			"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
		})
		for range 3 {
			s.Do(t, http.MethodGet, "/fhir/Patient/"+a, nil, nil).Want(t, http.StatusOK)
		}
		s.Do(t, http.MethodGet, "/fhir/Patient/"+b, nil, nil).Want(t, http.StatusOK)
		aud := auditorHeaders(t, s)

		// By patient: every event about A, nothing about B only.
		r := s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient=Patient/"+a, nil, aud).Want(t, http.StatusOK)
		got := r.Resources()
		var reads, creates int
		for _, ae := range got {
			if err := v.Validate(fhir.Resource(ae)); err != nil {
				t.Fatalf("invalid AuditEvent: %v", err)
			}
			refs := entityRefs(ae)
			if !slices.Contains(refs, "Patient/"+a) {
				t.Fatalf("an event without Patient/%s: %v", a, refs)
			}
			switch subtypeCode(ae) {
			case "read":
				reads++
			case "create":
				creates++
			}
		}
		if reads != 3 || creates != 2 {
			t.Fatalf("patient A: %d reads and %d creates, want 3 and 2 (the patient and the observation)", reads, creates)
		}

		// By subtype and patient; by entity.
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+a+"&subtype=read", nil, aud).Want(t, http.StatusOK)
		if n := len(r.Resources()); n != 3 {
			t.Fatalf("reads of A: %d, want 3", n)
		}
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+a+"&action=R", nil, aud).Want(t, http.StatusOK)
		if n := len(r.Resources()); n != 3 {
			t.Fatalf("action=R on A: %d, want the 3 reads", n)
		}
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+a+"&action=C", nil, aud).Want(t, http.StatusOK)
		if n := len(r.Resources()); n != 2 {
			t.Fatalf("action=C on A: %d, want the 2 creates", n)
		}
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?entity=Observation/"+obs, nil, aud).Want(t, http.StatusOK)
		if n := len(r.Resources()); n != 1 || subtypeCode(r.Resources()[0]) != "create" {
			t.Fatalf("events of the observation: %d, want its create", n)
		}

		// By agent: the agent of the reads is the test's token.
		who := r.Resources()[0]["agent"].([]any)[0].(map[string]any)["who"].(map[string]any)["identifier"].(map[string]any)["value"].(string)
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?agent="+url.QueryEscape(who)+"&patient="+b, nil, aud).Want(t, http.StatusOK)
		if n := len(r.Resources()); n != 2 {
			t.Fatalf("the token's events on B: %d, want create and read", n)
		}

		// By date. (The auditor's searches about A are events about A's
		// record too, so these count reads only.)
		since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+a+"&subtype=read&date=ge"+url.QueryEscape(since), nil, aud).Want(t, http.StatusOK)
		if n := len(r.Resources()); n != 3 {
			t.Fatalf("reads of A in the last hour: %d, want 3", n)
		}
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+a+"&date=lt2000", nil, aud).Want(t, http.StatusOK)
		if n := len(r.Resources()); n != 0 {
			t.Fatalf("A's events before 2000: %d", n)
		}

		// Paging: pages of 2 cover the same events once each, newest first.
		var paged []string
		next := "/fhir/AuditEvent?patient=" + a + "&subtype=read&_count=2"
		for next != "" {
			r = s.Do(t, http.MethodGet, next, nil, aud).Want(t, http.StatusOK)
			for _, ae := range r.Resources() {
				paged = append(paged, ae["id"].(string))
			}
			next = strings.TrimPrefix(r.Link("next"), s.URL)
		}
		if len(paged) != 3 || len(slices.Compact(slices.Clone(paged))) != 3 {
			t.Fatalf("paged ids %v, want 3 distinct", paged)
		}
		for i := 1; i < len(paged); i++ {
			prev, _ := strconv.ParseInt(paged[i-1], 10, 64)
			cur, _ := strconv.ParseInt(paged[i], 10, 64)
			if cur >= prev {
				t.Fatalf("paged ids %v are not newest first", paged)
			}
		}

		// Read one by id; an unknown id is 404.
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+paged[0], nil, aud).Want(t, http.StatusOK)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/99999999", nil, aud).WantOutcome(t, http.StatusNotFound)

		// The system token may not read the log; the refusal is audited,
		// as the interaction refused: a search, a read by id.
		deniedSearch := s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+a, nil, nil).WantOutcome(t, http.StatusForbidden)
		deniedRead := s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+paged[0], nil, nil).WantOutcome(t, http.StatusForbidden)
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?outcome=4&agent="+url.QueryEscape(who), nil, aud).Want(t, http.StatusOK)
		if n := len(r.Resources()); n != 2 {
			t.Fatalf("denied reads of the log by the system token: %d, want 2", n)
		}
		evs := auditEvents(t, s)
		for _, c := range []struct {
			r    *apitest.Response
			want audit.Action
		}{{deniedSearch, audit.ActionSearch}, {deniedRead, audit.ActionRead}} {
			got := eventsOf(t, evs, c.r)
			if len(got) != 1 || got[0].Action != c.want || got[0].Outcome != audit.OutcomeDenied {
				t.Fatalf("a refused %s of the log: events %+v, want one denied %s", c.want, got, c.want)
			}
		}

		// The auditor's own searches are in the log, with what was asked.
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?subtype=search-type&patient="+a, nil, aud).Want(t, http.StatusOK)
		if n := len(r.Resources()); n < 3 {
			t.Fatalf("the auditor's searches about A: %d, want at least 3", n)
		}

		// Append-only, and strict parameters.
		s.Do(t, http.MethodPost, "/fhir/AuditEvent", map[string]any{"resourceType": "AuditEvent"}, aud).WantOutcome(t, http.StatusMethodNotAllowed)
		s.Do(t, http.MethodDelete, "/fhir/AuditEvent/"+paged[0], nil, aud).WantOutcome(t, http.StatusMethodNotAllowed)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent?name=x", nil, aud).WantOutcome(t, http.StatusBadRequest)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent?date=yesterday", nil, aud).WantOutcome(t, http.StatusBadRequest)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent?outcome=2", nil, aud).WantOutcome(t, http.StatusBadRequest)
	})
}

// An event's $proof checks with golang.org/x/mod/sumdb/tlog and note
// alone: the signed checkpoint opens with the published verifier key,
// and the event's leaf (salt and canonical bytes) is in that tree. A
// tampered event does not check.
func TestAuditEventProofVerifiesWithStandardTools(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		a := s.Create(t, map[string]any{"resourceType": "Patient", "gender": "female"})
		s.Do(t, http.MethodGet, "/fhir/Patient/"+a, nil, nil).Want(t, http.StatusOK)
		aud := auditorHeaders(t, s)
		r := s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+a+"&subtype=read", nil, aud).Want(t, http.StatusOK)
		id := r.Resources()[0]["id"].(string)

		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+id+"/$proof", nil, aud).Want(t, http.StatusOK)
		params := map[string]string{}
		for _, p := range r.JSON["parameter"].([]any) {
			pm := p.(map[string]any)
			for k, v := range pm {
				if strings.HasPrefix(k, "value") {
					params[pm["name"].(string)] = v.(string)
				}
			}
		}
		event, err := base64.StdEncoding.DecodeString(params["event"])
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(event, &ev); err != nil || ev["action"] != "read" {
			t.Fatalf("the proven event is not the read: %s", event)
		}

		// Parse the C2SP tlog-proof by hand: header, extra (the salt),
		// index, hashes, blank line, signed checkpoint.
		head, checkpoint, ok := strings.Cut(params["proof"], "\n\n")
		if !ok {
			t.Fatalf("no checkpoint in the proof:\n%s", params["proof"])
		}
		lines := strings.Split(head, "\n")
		if lines[0] != "c2sp.org/tlog-proof@v1" || !strings.HasPrefix(lines[1], "extra ") || lines[2] != "index "+id {
			t.Fatalf("proof header:\n%s", head)
		}
		salt, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[1], "extra "))
		if err != nil || len(salt) != 16 {
			t.Fatalf("salt %q: %v", lines[1], err)
		}
		var proof tlog.RecordProof
		for _, l := range lines[3:] {
			h, err := tlog.ParseHash(l)
			if err != nil {
				t.Fatal(err)
			}
			proof = append(proof, h)
		}
		v, err := note.NewVerifier(params["verifierKey"])
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open([]byte(checkpoint), note.VerifierList(v))
		if err != nil {
			t.Fatalf("the checkpoint does not open with the verifier key: %v", err)
		}
		body := strings.Split(n.Text, "\n")
		size, err := strconv.ParseInt(body[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		root, err := tlog.ParseHash(body[2])
		if err != nil {
			t.Fatal(err)
		}
		index, _ := strconv.ParseInt(id, 10, 64)
		leaf := append(append([]byte{}, salt...), event...)
		if err := tlog.CheckRecord(proof, size, root, index, tlog.RecordHash(leaf)); err != nil {
			t.Fatalf("the event is not proven in the signed tree: %v", err)
		}
		tampered := bytes.Replace(leaf, []byte(`"read"`), []byte(`"vread"`), 1)
		if err := tlog.CheckRecord(proof, size, root, index, tlog.RecordHash(tampered)); err == nil {
			t.Fatal("a tampered event checked")
		}

		// Only those who may read the event get its proof.
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+id+"/$proof", nil, nil).WantOutcome(t, http.StatusForbidden)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/99999999/$proof", nil, aud).WantOutcome(t, http.StatusNotFound)
	})
}

// A patient reads the events that touched their own record — who (the
// agent and role), when, what and why — with each event's proof, and
// nothing about anyone else.
func TestPatientReadsOwnAccessHistory(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		mine := s.Create(t, patient(uniq(), nil))
		other := s.Create(t, patient(uniq(), nil))
		s.Do(t, http.MethodGet, "/fhir/Patient/"+mine, nil, nil).Want(t, http.StatusOK)
		s.Do(t, http.MethodGet, "/fhir/Patient/"+other, nil, nil).Want(t, http.StatusOK)
		me := newActor(t, s, "patient", mine)

		r := s.Do(t, http.MethodGet, "/fhir/AuditEvent", nil, me.headers).Want(t, http.StatusOK)
		got := r.Resources()
		var reads int
		for _, ae := range got {
			refs := entityRefs(ae)
			if !slices.Contains(refs, "Patient/"+mine) || slices.Contains(refs, "Patient/"+other) {
				t.Fatalf("the patient sees an event not about them: %v", refs)
			}
			if subtypeCode(ae) == "read" {
				reads++
				agent := ae["agent"].([]any)[0].(map[string]any)
				if agent["who"] == nil || ae["recorded"] == nil || ae["purposeOfEvent"] == nil {
					t.Fatalf("who/when/why missing: %v", ae)
				}
			}
		}
		if reads != 1 || len(got) < 2 {
			t.Fatalf("the patient sees %d reads in %d events, want the read and the create", reads, len(got))
		}
		id := got[len(got)-1]["id"].(string)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+id, nil, me.headers).Want(t, http.StatusOK)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+id+"/$proof", nil, me.headers).Want(t, http.StatusOK)

		// Another patient's trail: refused, or not there.
		s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+other, nil, me.headers).WantOutcome(t, http.StatusForbidden)
		aud := auditorHeaders(t, s)
		r = s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+other+"&subtype=read", nil, aud).Want(t, http.StatusOK)
		otherID := r.Resources()[0]["id"].(string)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+otherID, nil, me.headers).WantOutcome(t, http.StatusNotFound)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+otherID+"/$proof", nil, me.headers).WantOutcome(t, http.StatusNotFound)

		// A clinician is not an auditor.
		doc := newActor(t, s, "physician", "")
		s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+mine, nil, doc.headers).WantOutcome(t, http.StatusForbidden)
	})
}
