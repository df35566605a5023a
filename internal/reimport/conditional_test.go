package reimport_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/reimport"
)

const bundle = `{"resourceType":"Bundle","type":"transaction","entry":[
{"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","identifier":[{"value":"no-system"},{"system":"urn:x|y","value":"a,b&c"}]},"request":{"method":"POST","url":"Patient"}},
{"fullUrl":"urn:uuid:o1","resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:p"},"valueQuantity":{"value":10.50}},"request":{"method":"POST","url":"Observation"}},
{"fullUrl":"urn:uuid:o2","resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:p"},"valueQuantity":{"value":10.50}},"request":{"method":"POST","url":"Observation"}},
{"fullUrl":"urn:uuid:e","resource":{"resourceType":"Encounter","identifier":[{"system":"urn:e","value":"1"}],"subject":{"reference":"urn:uuid:p"}},"request":{"method":"POST","url":"Encounter"}},
{"resource":{"resourceType":"Organization","identifier":[{"system":"urn:o","value":"1"}]},"request":{"method":"POST","url":"Organization","ifNoneExist":"name=kept"}},
{"resource":{"resourceType":"Patient","id":"x"},"request":{"method":"PUT","url":"Patient/x"}},
{"resource":{"resourceType":"Observation","status":"final"},"request":{"method":"POST","url":"Observation"}}]}`

type entry struct {
	Resource struct {
		Meta struct {
			Tag []struct{ System, Code string } `json:"tag"`
		} `json:"meta"`
		ValueQuantity struct {
			Value json.RawMessage `json:"value"`
		} `json:"valueQuantity"`
	} `json:"resource"`
	Request map[string]string `json:"request"`
}

func entries(t *testing.T, b []byte) []entry {
	t.Helper()
	var out struct{ Entry []entry }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out.Entry
}

func TestConditional(t *testing.T) {
	b, err := reimport.Conditional([]byte(bundle))
	if err != nil {
		t.Fatal(err)
	}
	es := entries(t, b)
	// A Patient matches on its first identifier with a system, escaped.
	if got, want := es[0].Request["ifNoneExist"], `identifier=urn%3Ax%5C%7Cy%7Ca%5C%2Cb%26c`; got != want {
		t.Errorf("Patient: ifNoneExist %q, want %q", got, want)
	}
	// Identical content in one Bundle: two distinct hashes; numbers as written.
	h1, h2 := es[1].Resource.Meta.Tag, es[2].Resource.Meta.Tag
	if len(h1) != 1 || len(h2) != 1 || h1[0].System != reimport.TagSystem || h1[0].Code == h2[0].Code {
		t.Fatalf("tags %v %v", h1, h2)
	}
	if es[1].Request["ifNoneExist"] != "_tag="+strings.NewReplacer(":", "%3A", "/", "%2F").Replace(reimport.TagSystem)+"%7C"+h1[0].Code {
		t.Errorf("Observation: ifNoneExist %q", es[1].Request["ifNoneExist"])
	}
	if string(es[1].Resource.ValueQuantity.Value) != "10.50" {
		t.Errorf("number rewritten: %s", es[1].Resource.ValueQuantity.Value)
	}
	// Clinical resources match on content even with an identifier.
	if len(es[3].Resource.Meta.Tag) != 1 || !strings.HasPrefix(es[3].Request["ifNoneExist"], "_tag=") {
		t.Errorf("Encounter: %v", es[3])
	}
	// An entry's own ifNoneExist and a PUT are left alone.
	if es[4].Request["ifNoneExist"] != "name=kept" || es[5].Request["ifNoneExist"] != "" || len(es[5].Resource.Meta.Tag) != 0 {
		t.Errorf("kept entries changed: %v %v", es[4], es[5])
	}
	// Neither fullUrl nor id: no hash of the content alone.
	if es[6].Request["ifNoneExist"] != "" || len(es[6].Resource.Meta.Tag) != 0 {
		t.Errorf("an entry without fullUrl or id was made conditional: %v", es[6])
	}
	// The same fullUrl with other content, or the same content under
	// another fullUrl: another hash.
	for _, edit := range [][2]string{{"10.50", "10.5"}, {`"fullUrl":"urn:uuid:o1"`, `"fullUrl":"urn:uuid:o3"`}} {
		other, err := reimport.Conditional([]byte(strings.Replace(bundle, edit[0], edit[1], 1)))
		if err != nil || entries(t, other)[1].Resource.Meta.Tag[0].Code == h1[0].Code {
			t.Errorf("%v kept the hash: %v", edit, err)
		}
	}
	// The same input gives the same output: a second import matches.
	again, err := reimport.Conditional([]byte(bundle))
	if err != nil || string(again) != string(b) {
		t.Errorf("not deterministic: %v", err)
	}
}

func TestConditionalRefusesWhatIsNoBundle(t *testing.T) {
	if _, err := reimport.Conditional([]byte(`{"resourceType":"Patient"}`)); !errors.Is(err, reimport.ErrNotBundle) {
		t.Errorf("a Patient: %v", err)
	}
	if _, err := reimport.Conditional([]byte(`{"resourceType":`)); err == nil {
		t.Error("broken JSON accepted")
	}
}

// TestFresh: a transaction that creates one Patient also comes with
// only its people and directory conditional, and the probe that decides.
func TestFresh(t *testing.T) {
	r, err := reimport.Rewrite([]byte(bundle))
	if err != nil {
		t.Fatal(err)
	}
	if r.Probe != "Patient?identifier=urn%3Ax%5C%7Cy%7Ca%5C%2Cb%26c" || r.Fresh == nil {
		t.Fatalf("probe %q, fresh %v", r.Probe, r.Fresh != nil)
	}
	es := entries(t, r.Fresh)
	if es[0].Request["ifNoneExist"] == "" {
		t.Error("Fresh: the Patient is not conditional")
	}
	// Clinical entries: tagged (a later import finds them), unconditional.
	if es[1].Request["ifNoneExist"] != "" || len(es[1].Resource.Meta.Tag) != 1 {
		t.Errorf("Fresh: observation %v", es[1])
	}
	fb, err := r.Full()
	if err != nil {
		t.Fatal(err)
	}
	full := entries(t, fb)
	if full[1].Resource.Meta.Tag[0].Code != es[1].Resource.Meta.Tag[0].Code {
		t.Error("Fresh and Full tag differently")
	}
	// A batch, or a transaction without a Patient: Full only.
	for _, b := range []string{strings.Replace(bundle, `"transaction"`, `"batch"`, 1), strings.Replace(bundle, `"resourceType":"Patient","identifier"`, `"resourceType":"Person","identifier"`, 1)} {
		r, err := reimport.Rewrite([]byte(b))
		if err != nil || r.Fresh != nil || r.Probe != "" {
			t.Errorf("Fresh for %.60s…: %v", b, err)
		}
	}
}
