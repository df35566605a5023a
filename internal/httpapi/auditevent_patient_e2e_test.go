package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
)

// proofParams fetches $proof of event id with headers h, waiting for
// the event to be in a signed checkpoint.
func proofParams(t *testing.T, s *apitest.Server, id string, h apitest.H) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+id+"/$proof", nil, h)
		if r.Status == http.StatusNotFound && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		r.Want(t, http.StatusOK)
		params := map[string]string{}
		for _, p := range r.JSON["parameter"].([]any) {
			pm := p.(map[string]any)
			for k, v := range pm {
				if strings.HasPrefix(k, "value") {
					params[pm["name"].(string)] = v.(string)
				}
			}
		}
		return params
	}
}

// checkInclusion checks a C2SP tlog-proof of leafHash with the standard
// tools alone, and returns its index.
func checkInclusion(t *testing.T, proofText, vkey string, leafHash tlog.Hash) int64 {
	t.Helper()
	head, checkpoint, ok := strings.Cut(proofText, "\n\n")
	if !ok {
		t.Fatalf("no checkpoint in the proof:\n%s", proofText)
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" || strings.HasPrefix(lines[1], "extra ") {
		t.Fatalf("a patient's proof header (no salt expected):\n%s", head)
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "index "), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var proof tlog.RecordProof
	for _, l := range lines[2:] {
		h, err := tlog.ParseHash(l)
		if err != nil {
			t.Fatal(err)
		}
		proof = append(proof, h)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(checkpoint), note.VerifierList(v))
	if err != nil {
		t.Fatalf("the checkpoint does not open: %v", err)
	}
	body := strings.Split(n.Text, "\n")
	size, _ := strconv.ParseInt(body[1], 10, 64)
	root, err := tlog.ParseHash(body[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(proof, size, root, index, leafHash); err != nil {
		t.Fatalf("the leaf is not proven in the signed tree: %v", err)
	}
	return index
}

// TestPatientSeesOnlyOwnPartOfSharedEvent: one search returned two
// patients' observations, so one audit event names both patients, both
// observations and the searcher's network address. Each patient's
// AuditEvent read, search and $proof show only their own patient and
// resource, the agent's account and role, and no address, session or
// other patient; the proof still verifies against the signed checkpoint
// (issue 11 item 8).
func TestPatientSeesOnlyOwnPartOfSharedEvent(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		a := s.Create(t, patient(uniq(), nil))
		b := s.Create(t, patient(uniq(), nil))
		code := map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "2339-0"}}}
		oa := s.Create(t, observation(a, map[string]any{"code": code}))
		ob := s.Create(t, observation(b, map[string]any{"code": code}))
		got := s.Do(t, http.MethodGet, "/fhir/Observation?code=http://loinc.org|2339-0", nil, nil).Want(t, http.StatusOK).IDs()
		if !slices.Contains(got, "Observation/"+oa) || !slices.Contains(got, "Observation/"+ob) {
			t.Fatalf("the search returned %v, want both observations", got)
		}
		aud := auditorHeaders(t, s)
		r := s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+a+"&subtype=search-type", nil, aud).Want(t, http.StatusOK)
		var shared string
		for _, ae := range r.Resources() {
			if refs := entityRefs(ae); slices.Contains(refs, "Patient/"+b) {
				shared = ae["id"].(string)
			}
		}
		if shared == "" {
			t.Fatalf("no event naming both patients: %s", r)
		}
		full := proofParams(t, s, shared, aud)

		for _, tc := range []struct{ me, mine, other, otherObs string }{{a, oa, b, ob}, {b, ob, a, oa}} {
			me := newActor(t, s, "patient", tc.me)
			leaks := []string{tc.other, tc.otherObs, "127.0.0.1", `"network"`, "altId", "session"}
			wantOwn := func(t *testing.T, what string, ae map[string]any) {
				t.Helper()
				raw, _ := json.Marshal(ae)
				for _, l := range leaks {
					if strings.Contains(string(raw), l) {
						t.Errorf("%s: the patient sees %q: %s", what, l, raw)
					}
				}
				refs := entityRefs(ae)
				if !slices.Contains(refs, "Patient/"+tc.me) || !slices.ContainsFunc(refs, func(x string) bool { return strings.HasPrefix(x, "Observation/"+tc.mine) }) {
					t.Errorf("%s: the patient's own patient and observation are missing: %v", what, refs)
				}
				agent := ae["agent"].([]any)[0].(map[string]any)
				if agent["who"] == nil {
					t.Errorf("%s: who did it is missing", what)
				}
			}
			// Read.
			ae := s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+shared, nil, me.headers).Want(t, http.StatusOK).JSON
			wantOwn(t, "read", ae)
			// Search.
			var found bool
			for _, x := range s.Do(t, http.MethodGet, "/fhir/AuditEvent?subtype=search-type", nil, me.headers).Want(t, http.StatusOK).Resources() {
				if x["id"] == shared {
					found = true
					wantOwn(t, "search", x)
				}
			}
			if !found {
				t.Errorf("the patient's search does not list the search that returned their observation")
			}
			// The other patient's observation is no handle on the event.
			for _, x := range s.Do(t, http.MethodGet, "/fhir/AuditEvent?entity=Observation/"+tc.otherObs, nil, me.headers).Want(t, http.StatusOK).Resources() {
				if x["id"] == shared {
					t.Errorf("a search by the other patient's observation finds the shared event")
				}
			}
			// $proof: the patient's view and the leaf hash, no leaf, no salt.
			p := proofParams(t, s, shared, me.headers)
			if _, ok := p["event"]; ok {
				t.Fatal("the patient's proof carries the whole event")
			}
			view, err := base64.StdEncoding.DecodeString(p["view"])
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range leaks[:3] {
				if strings.Contains(string(view), l) {
					t.Errorf("the proof's view holds %q: %s", l, view)
				}
			}
			lh, err := base64.StdEncoding.DecodeString(p["leafHash"])
			if err != nil || len(lh) != 32 {
				t.Fatalf("leaf hash %q: %v", p["leafHash"], err)
			}
			var leafHash tlog.Hash
			copy(leafHash[:], lh)
			if idx := checkInclusion(t, p["proof"], p["verifierKey"], leafHash); strconv.FormatInt(idx, 10) != shared {
				t.Errorf("the proof is for position %d, want %s", idx, shared)
			}
			// An auditor holds the whole entry: it hashes to the patient's
			// leaf hash, and the patient's view is that entry's view.
			event, _ := base64.StdEncoding.DecodeString(full["event"])
			head, _, _ := strings.Cut(full["proof"], "\n\n")
			salt, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.Split(head, "\n")[1], "extra "))
			if tlog.RecordHash(append(salt, event...)) != leafHash {
				t.Error("the patient's leaf hash is not the hash of the entry an auditor reads")
			}
			var whole audit.Event
			if err := json.Unmarshal(event, &whole); err != nil {
				t.Fatal(err)
			}
			want, _ := whole.PatientView("Patient/" + tc.me)
			wantBytes, _ := want.Marshal()
			if string(wantBytes) != string(view) {
				t.Errorf("the patient's view is not the entry's:\n%s\n%s", view, wantBytes)
			}
		}
	})
}
