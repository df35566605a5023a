package cli_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// secSyntheaPatient is one of the Synthea sample's patients (327 entries).
const secSyntheaPatient = "Soila394_Christiansen251_fbba2017-3ef4-dfe0-714c-c302cd9b8cca.json"

var secNewPresentRE = regexp.MustCompile(`(?m)^([0-9]+) new, ([0-9]+) already present$`)

// secNewPresent returns the "N new, M already present" line's numbers.
func secNewPresent(t *testing.T, out string) (created, present int) {
	t.Helper()
	m := secNewPresentRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no \"N new, M already present\" line:\n%s", out)
	}
	created, _ = strconv.Atoi(m[1])
	present, _ = strconv.Atoi(m[2])
	return created, present
}

// TestImportAgainCreatesNothing: importing a Synthea export a second
// time stores nothing new (counts unchanged, "0 new, N already present"
// on stdout and in the progress output); a patient imported in part
// first and then whole is one patient, the rest of whose record is added
// to it: the new entries' references point at the stored Patient.
func TestImportAgainCreatesNothing(t *testing.T) {
	whole, part := t.TempDir(), t.TempDir()
	for _, f := range []string{"hospitalInformation1633536936158.json", "practitionerInformation1633536936158.json", secSyntheaPatient} {
		b, err := os.ReadFile(filepath.Join(secSyntheaDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(whole, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if f == secSyntheaPatient {
			// The first 150 entries: the patient and part of the record
			// (numbers as written: the content hash is of the file's text).
			var bundle map[string]any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if err := dec.Decode(&bundle); err != nil {
				t.Fatal(err)
			}
			bundle["entry"] = bundle["entry"].([]any)[:150]
			if b, err = json.Marshal(bundle); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(part, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want := secInputCounts(t, whole)
	total := 0
	for _, n := range want {
		total += n
	}
	const shared = 2382 + 2382

	dir, _ := secInit(t)
	r := secMustRun(t, "import", "--data", dir, "--quiet", part)
	if n, m := secNewPresent(t, r.stdout); n != shared+150 || m != 0 {
		t.Errorf("first import: %d new, %d present; want %d, 0", n, m, shared+150)
	}
	r = secMustRun(t, "import", "--data", dir, "--quiet", whole)
	if n, m := secNewPresent(t, r.stdout); n != total-shared-150 || m != shared+150 {
		t.Errorf("the whole export after a part: %d new, %d present; want %d, %d", n, m, total-shared-150, shared+150)
	}
	a := secOpenApp(t, dir)
	secAssertCounts(t, a, want)
	// One Patient, and the record's resources, those of the first import
	// and the second alike, name it.
	page, err := a.Operator("test").Search(t.Context(), "Patient", url.Values{"identifier": {"https://github.com/synthetichealth/synthea|fbba2017-3ef4-dfe0-714c-c302cd9b8cca"}})
	if err != nil || page.Count != 1 {
		t.Fatalf("patient by identifier: %d, %v", page.Count, err)
	}
	var pb struct {
		Entry []struct {
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(page.Bundle, &pb); err != nil || len(pb.Entry) != 1 {
		t.Fatalf("patient page: %v", err)
	}
	pid := "Patient/" + pb.Entry[0].Resource.ID
	for typ, n := range map[string]int{"Encounter": 33, "Claim": 33, "Observation": 107} {
		page, err := a.Operator("test").Search(t.Context(), typ, url.Values{"patient": {pid}, "_count": {"200"}})
		if err != nil || page.Count != n {
			t.Errorf("%s of %s: %d (%v), want %d", typ, pid, page.Count, err, n)
		}
	}
	a.Close()

	// The same export again: nothing new, the progress output says so.
	r = secMustRun(t, "import", "--data", dir, whole)
	if n, m := secNewPresent(t, r.stdout); n != 0 || m != total {
		t.Errorf("import again: %d new, %d present; want 0, %d", n, m, total)
	}
	if want := "importing: 0 new, " + strconv.Itoa(total) + " already present"; !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(r.stderr) {
		t.Errorf("progress output lacks %q:\n%s", want, secTail(r.stderr, 1000))
	}
	secAssertCounts(t, secOpenApp(t, dir), want)
}
