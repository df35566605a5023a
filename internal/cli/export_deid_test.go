package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"index/suffixarray"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// The acceptance test of the de-identified export (ADR 0050):
// the Synthea sample and two made-up patients (one 95 years old in a
// restricted 3-digit ZIP area, one with known dates for the date shift)
// are imported into a real store, exported with --deidentify, and the
// output is searched for every identifier that went in.

// deidOldZIP is in the 3-digit area 036, which has 20,000 people or
// fewer (HHS list): it must come out as "000".
const deidOldZIP = "03601"

// deidExtraBundle returns a transaction of made-up patients: a
// 95-year-old (gender "unknown") and one with known dates (gender
// "other"), each with an Encounter and an Observation, and the outside
// tester's leaks (identifiers in displays, local codes and text, the
// 95-year-old's birth year in an Observation component and a
// questionnaire answer, an age as an integer, a time of day, a free-text
// state) on the 95-year-old and a third patient.
func deidExtraBundle(now time.Time) []byte {
	old := now.AddDate(-95, 0, -10).Format(time.DateOnly)
	b := fmt.Sprintf(`{"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:0d1e2f30-0000-4000-8000-00000000a001","resource":{"resourceType":"Patient","id":"0d1e2f30-0000-4000-8000-00000000a001",
  "identifier":[{"system":"https://example.org/mrn","value":"DEIDTEST-MRN-9431"}],
  "name":[{"family":"Quixwellton","given":["Zebediah"]}],"gender":"unknown","birthDate":%q,
  "telecom":[{"system":"phone","value":"555-013-7719"},{"system":"email","value":"zeb.quix@example.org"}],
  "address":[{"line":["17 Wrenfield Hollow"],"city":"Pittsfordia","state":"NH","postalCode":%q,"country":"US"}]},
  "request":{"method":"POST","url":"Patient"}},
 {"fullUrl":"urn:uuid:0d1e2f30-0000-4000-8000-00000000a002","resource":{"resourceType":"Observation","status":"final",
  "code":{"coding":[{"system":"http://loinc.org","code":"30525-0","display":"Age"}],"text":"Age"},
  "subject":{"reference":"urn:uuid:0d1e2f30-0000-4000-8000-00000000a001","display":"Zebediah Quixwellton"},
  "effectiveDateTime":"2024-02-03T09:08:07Z","valueQuantity":{"value":95,"unit":"a","system":"http://unitsofmeasure.org","code":"a"},
  "note":[{"text":"Grandson Barnaby visits on Sundays"}]},
  "request":{"method":"POST","url":"Observation"}},
 {"fullUrl":"urn:uuid:0d1e2f30-0000-4000-8000-00000000b001","resource":{"resourceType":"Patient","id":"0d1e2f30-0000-4000-8000-00000000b001",
  "identifier":[{"system":"https://example.org/mrn","value":"DEIDTEST-MRN-5520"}],
  "name":[{"family":"Ostrowickaya","given":["Philomena"]}],"gender":"other","birthDate":"1976-04-02",
  "address":[{"line":["4 Quarry Lane"],"city":"Hamletsburg","state":"NY","postalCode":"10001","country":"US"}]},
  "request":{"method":"POST","url":"Patient"}},
 {"fullUrl":"urn:uuid:0d1e2f30-0000-4000-8000-00000000b002","resource":{"resourceType":"Encounter","status":"finished",
  "class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
  "subject":{"reference":"urn:uuid:0d1e2f30-0000-4000-8000-00000000b001"},
  "period":{"start":"2020-03-10T10:00:00Z","end":"2020-03-10T11:00:00Z"}},
  "request":{"method":"POST","url":"Encounter"}},
 {"fullUrl":"urn:uuid:0d1e2f30-0000-4000-8000-00000000b003","resource":{"resourceType":"Observation","status":"final",
  "code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}]},
  "subject":{"reference":"urn:uuid:0d1e2f30-0000-4000-8000-00000000b001"},
  "encounter":{"reference":"urn:uuid:0d1e2f30-0000-4000-8000-00000000b002"},
  "effectiveDateTime":"2020-03-10T10:30:00Z","valueQuantity":{"value":61.5,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}},
  "request":{"method":"POST","url":"Observation"}},
 {"fullUrl":"urn:uuid:0d1e2f30-0000-4000-8000-00000000a003","resource":{"resourceType":"Observation","status":"final",
  "code":{"coding":[{"system":"http://loinc.org","code":"21612-7","display":"DEIDLEAK Age reported"}]},
  "subject":{"reference":"urn:uuid:0d1e2f30-0000-4000-8000-00000000a001"},"valueInteger":96,
  "component":[
   {"code":{"coding":[{"system":"http://hospital.example/local","code":"LOC1","display":"DISP Call 555-867-5309"}]},"valueBoolean":true},
   {"code":{"coding":[{"system":"http://loinc.org","code":"21112-8","display":"Born on 1930-05-17"}]},"valueDateTime":"1930"},
   {"code":{"coding":[{"system":"http://loinc.org","code":"21112-8"}]},"valueDateTime":%q},
   {"code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"160903007","display":"SSN 999-12-3456"}],"text":"SSN 999-12-3456"}},
   {"code":{"coding":[{"system":"http://loinc.org","code":"30525-0"}]},"valueInteger":96},
   {"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueTime":"10:11:12"}]},
  "request":{"method":"POST","url":"Observation"}},
 {"fullUrl":"urn:uuid:0d1e2f30-0000-4000-8000-00000000a004","resource":{"resourceType":"QuestionnaireResponse","status":"completed",
  "subject":{"reference":"urn:uuid:0d1e2f30-0000-4000-8000-00000000a001"},
  "item":[{"linkId":"1","answer":[{"valueCoding":{"system":"http://hospital.example/qr","code":"QRCODE-Zyxwvut"}},{"valueDate":"1930"},{"valueDate":%q},{"valueTime":"10:11:12"}]}]},
  "request":{"method":"POST","url":"QuestionnaireResponse"}},
 {"fullUrl":"urn:uuid:0d1e2f30-0000-4000-8000-00000000b004","resource":{"resourceType":"Patient","gender":"female",
  "identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR","display":"MRDISP-Zyxwvut"}]},"value":"DEIDTEST-MRN-7781"}],
  "extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[
   {"url":"detailed","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2108-9","display":"RACEDISP Zyxwvut kin"}}]}],
  "address":[{"state":"ZZ Near Elm St","country":"US"}]},
  "request":{"method":"POST","url":"Patient"}}]}`, old, deidOldZIP, old[:4], old[:4])
	return []byte(b)
}

func TestExportDeidentifiedSynthea(t *testing.T) {
	if testing.Short() {
		t.Skip("imports the Synthea sample")
	}
	for _, d := range secDrivers {
		t.Run(d.name, func(t *testing.T) {
			in := t.TempDir()
			files, err := filepath.Glob(filepath.Join(secSyntheaDir, "*.json"))
			if err != nil || len(files) < 16 {
				t.Fatalf("the Synthea sample: %d files, %v", len(files), err)
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(in, filepath.Base(f)), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(in, "zz-deid-extra.json"), deidExtraBundle(time.Now()), 0o600); err != nil {
				t.Fatal(err)
			}
			dir, _ := secInit(t, d.initArgs(t)...)
			secMustRun(t, "import", "--data", dir, "--quiet", in)

			// The ids the store gave every resource.
			storeIDs, patients := deidStoreIDs(t, dir)

			out1 := filepath.Join(t.TempDir(), "one")
			r := secMustRun(t, "export", "--data", dir, "--deidentify", "--quiet", "--out", out1)
			if !strings.Contains(r.stdout, "elements removed or generalised") {
				t.Errorf("no report printed:\n%s", r.stdout)
			}
			raw, res := deidReadOutput(t, out1)
			// The haystack is the output's bytes and every string and
			// number of it as decoded, so that an escaped character
			// (\u0026) hides nothing.
			values := append(deidValues(res), raw...)

			t.Run("no identifier of the input is in the output", func(t *testing.T) {
				needles := deidNeedles(t, in)
				needles["store id"] = append(needles["store id"], storeIDs...)
				needles["tester leak"] = []string{"DISP Call", "555-867-5309", "Born on", "SSN 999", "999-12-3456", "QRCODE",
					"Zyxwvut", "MRDISP", "RACEDISP", "DEIDLEAK", "Near Elm", "10:11:12", "hospital.example"}
				idx := suffixarray.New(bytes.ToLower(values))
				for kind, list := range needles {
					if len(list) == 0 {
						t.Errorf("collected no %s from the input", kind)
					}
					found := 0
					for _, s := range list {
						if deidFound(idx, values, s) {
							if found < 3 {
								t.Errorf("a %s of the input is in the output (%d chars)", kind, len(s))
							}
							found++
						}
					}
					if found > 0 {
						t.Errorf("%d of %d %s values found in the output", found, len(list), kind)
					}
				}
				// Nothing finer than a year survives, in any date.
				if m := regexp.MustCompile(`"[0-9]{4}-[0-9]{2}`).Find(raw); m != nil {
					t.Errorf("a date finer than the year is in the output")
				}
				// No display, CodeableConcept.text or time of day, and
				// no year that indicates an age over 89, anywhere.
				cutoff := time.Now().UTC().Year() - 90
				for _, m := range res {
					deidCheckKept(t, m, "", cutoff)
				}
			})

			t.Run("references resolve within the export", func(t *testing.T) {
				have := map[string]bool{}
				for _, m := range res {
					have[m["resourceType"].(string)+"/"+m["id"].(string)] = true
				}
				refs, dangling := 0, 0
				for _, m := range res {
					deidRefs(m, func(ref string) {
						refs++
						if !have[ref] {
							dangling++
						}
					})
				}
				if refs < 1000 || dangling > 0 {
					t.Errorf("%d references, %d do not resolve", refs, dangling)
				}
			})

			t.Run("audited with purpose HRESCH naming every patient", func(t *testing.T) {
				a := secOpenApp(t, dir)
				evs, err := a.Transparency().Events(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				named := map[string]bool{}
				me, err := user.Current()
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					if ev.Action == audit.ActionExport && ev.Purpose == "HRESCH" && ev.Agent.User != "os:"+me.Username {
						t.Errorf("the export's audit event names the operator %q, want the OS account", ev.Agent.User)
					}
					if ev.Action == audit.ActionExport && ev.Purpose == "HRESCH" {
						for _, p := range ev.Patients {
							named[p] = true
						}
					}
				}
				for _, p := range patients {
					if !named["Patient/"+p] {
						t.Errorf("a patient exported is not named in the export's audit events")
						break
					}
				}
				if len(named) != len(patients) {
					t.Errorf("%d patients named, %d stored", len(named), len(patients))
				}
			})

			t.Run("years kept, ZIP codes to 3 digits, 90 or older", func(t *testing.T) {
				var ok90, zip000, zipOther int
				for _, m := range res {
					if m["resourceType"] != "Patient" {
						continue
					}
					for _, a := range deidList(m["address"]) {
						z, _ := a.(map[string]any)["postalCode"].(string)
						switch {
						case z == "000":
							zip000++
						case len(z) == 3:
							zipOther++
						case z != "":
							t.Errorf("a postal code of %d characters", len(z))
						}
					}
					if m["gender"] == "unknown" {
						if _, has := m["birthDate"]; has || !strings.Contains(fmt.Sprint(m["extension"]), "deid-age-90-or-older") {
							t.Errorf("the 95-year-old: birthDate kept or no 90-or-older mark")
						}
						ok90++
					}
					if m["gender"] == "other" && m["birthDate"] != "1976" {
						t.Errorf("the birth year is not kept: %v", m["birthDate"])
					}
				}
				if ok90 != 1 || zip000 != 1 || zipOther < 5 {
					t.Errorf("90 or older: %d; ZIP 000: %d; other 3-digit ZIPs: %d", ok90, zip000, zipOther)
				}
				for _, m := range res {
					if m["resourceType"] == "Observation" && strings.Contains(fmt.Sprint(m["code"]), "30525-0") {
						q := m["valueQuantity"].(map[string]any)
						if fmt.Sprint(q["value"]) != "90" || q["comparator"] != ">=" {
							t.Errorf("the Observation of age 95: %v", q)
						}
					}
				}
			})

			t.Run("two exports are unlinkable", func(t *testing.T) {
				out2 := filepath.Join(t.TempDir(), "two")
				secMustRun(t, "export", "--data", dir, "--deidentify", "--quiet", "--out", out2, "--type", "Patient")
				_, res2 := deidReadOutput(t, out2)
				first := map[string]bool{}
				for _, m := range res {
					if m["resourceType"] == "Patient" {
						first[m["id"].(string)] = true
					}
				}
				if len(res2) != len(first) {
					t.Errorf("--type Patient wrote %d resources, want %d", len(res2), len(first))
				}
				for _, m := range res2 {
					if m["resourceType"] != "Patient" || first[m["id"].(string)] {
						t.Errorf("a second export reuses a pseudonym of the first, or exports another type")
					}
				}
			})

			t.Run("date shift is one offset per patient", func(t *testing.T) {
				out3 := filepath.Join(t.TempDir(), "three")
				secMustRun(t, "export", "--data", dir, "--deidentify", "--quiet", "--out", out3, "--date-shift", "30")
				_, res3 := deidReadOutput(t, out3)
				var pid string
				shifts := map[int]int{}
				day := func(s string) time.Time {
					v, err := time.Parse(time.DateOnly, s[:10])
					if err != nil {
						t.Fatalf("a shifted date %d characters long", len(s))
					}
					return v
				}
				for _, m := range res3 {
					if m["resourceType"] == "Patient" && m["gender"] == "other" {
						pid = "Patient/" + m["id"].(string)
						shifts[int(day(m["birthDate"].(string)).Sub(day("1976-04-02")).Hours()/24)]++
					}
				}
				for _, m := range res3 {
					subj, _ := m["subject"].(map[string]any)
					if pid == "" || subj["reference"] != pid {
						continue
					}
					switch m["resourceType"] {
					case "Encounter":
						p := m["period"].(map[string]any)
						shifts[int(day(p["start"].(string)).Sub(day("2020-03-10")).Hours()/24)]++
					case "Observation":
						shifts[int(day(m["effectiveDateTime"].(string)).Sub(day("2020-03-10")).Hours()/24)]++
					}
				}
				n := 0
				for s, c := range shifts {
					n += c
					if s < -30 || s > 30 {
						t.Errorf("shift of %d days, outside ±30", s)
					}
				}
				if len(shifts) != 1 || n != 3 {
					t.Errorf("shifts of the patient's 3 dates: %v, want one value", shifts)
				}
			})
		})
	}
}

// hexRun matches a string of hex digits: it may occur by chance inside
// a pseudonym (32 hex digits), so it counts only where it stands alone.
var hexRun = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// deidFound reports whether s is in the output raw (indexed lower-case
// by idx), ignoring case. A short run of hex digits (a ZIP code, a
// phone number's digits) counts only where no hex digit touches it.
func deidFound(idx *suffixarray.Index, raw []byte, s string) bool {
	hits := idx.Lookup(bytes.ToLower([]byte(s)), -1)
	if !hexRun.MatchString(s) || len(s) >= 16 {
		return len(hits) > 0
	}
	isHex := func(i int) bool {
		if i < 0 || i >= len(raw) {
			return false
		}
		c := raw[i] | 0x20
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
	}
	for _, h := range hits {
		if !isHex(h-1) && !isHex(h+len(s)) {
			return true
		}
	}
	return false
}

// deidStoreIDs returns every stored resource id and the Patient ids.
func deidStoreIDs(t *testing.T, dir string) (ids, patients []string) {
	t.Helper()
	a := secOpenApp(t, dir)
	err := a.Store.ScanVersions(t.Context(), storage.VersionRef{}, func(v storage.Version) error {
		if v.Version == 1 { // the import wrote each resource once
			ids = append(ids, v.ID)
			if v.Type == "Patient" {
				patients = append(patients, v.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return ids, patients
}

// deidReadOutput reads every NDJSON file of dir: the raw bytes and the
// resources.
func deidReadOutput(t *testing.T, dir string) ([]byte, []map[string]any) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if len(files) == 0 {
		t.Fatal("the export wrote no NDJSON file")
	}
	var raw []byte
	var res []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: a line is not JSON: %v", filepath.Base(f), err)
			}
			if m["resourceType"].(string)+".ndjson" != filepath.Base(f) {
				t.Errorf("a %v in %s", m["resourceType"], filepath.Base(f))
			}
			res = append(res, m)
		}
	}
	return raw, res
}

// deidNeedles collects, from every Bundle under root, the values that
// identify someone, by kind.
func deidNeedles(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fullDate := regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}`)
	tag := regexp.MustCompile(`<[^>]*>`)
	add := func(kind, s string) {
		if len(s) >= 4 { // shorter strings ("MA", "Mr.") match by chance
			out[kind] = append(out[kind], s)
		}
	}
	var walk func(parent string, v any)
	walk = func(parent string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				s, _ := c.(string)
				switch {
				case parent == "name" && (k == "family" || k == "text"):
					add("name part", s)
				case parent == "name" && (k == "given" || k == "prefix" || k == "suffix"):
					for _, g := range deidList(c) {
						gs, _ := g.(string)
						add("name part", gs)
					}
				case parent == "address" && k == "line":
					for _, l := range deidList(c) {
						ls, _ := l.(string)
						add("address line", ls)
					}
				case parent == "address" && (k == "city" || k == "district"):
					add("city", s)
				case parent == "address" && k == "postalCode":
					add("5-digit ZIP", s)
				case parent == "telecom" && k == "value":
					add("phone or email", s)
				case parent == "identifier" && k == "value":
					add("identifier value", s)
				case k == "id" && parent == "resource", k == "fullUrl":
					add("resource id", strings.TrimPrefix(s, "urn:uuid:"))
				case k == "birthDate":
					add("birth date", s)
				case k == "div":
					for _, p := range strings.Split(tag.ReplaceAllString(s, "\n"), "\n") {
						if p = strings.TrimSpace(p); len(p) >= 12 {
							add("narrative text", p)
						}
					}
				case k == "data":
					if len(s) >= 40 {
						add("attachment data", s[:40])
					}
				case parent == "extension-geolocation" && k == "valueDecimal":
					add("latitude or longitude", fmt.Sprint(c))
				case fullDate.MatchString(s):
					add("full date or dateTime", s)
				}
				p := k
				if k == "extension" && x["url"] == "http://hl7.org/fhir/StructureDefinition/geolocation" {
					p = "extension-geolocation"
				}
				if parent == "extension-geolocation" {
					p = "extension-geolocation"
				}
				walk(p, c)
			}
		case []any:
			for _, c := range x {
				walk(parent, c)
			}
		}
	}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		walk("", v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, l := range out {
		slices.Sort(l)
		out[k] = slices.Compact(l)
	}
	return out
}

// deidCheckKept fails if v holds a display (outside meta.security,
// where the export writes its own marks), a text, a time of day, or a
// date (outside a code) of a year that indicates an age over 89.
func deidCheckKept(t *testing.T, v any, key string, cutoff int) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if k == "security" && key == "meta" {
				continue
			}
			if k == "display" || k == "text" {
				t.Errorf("a %s is in the output", k)
				continue
			}
			deidCheckKept(t, c, k, cutoff)
		}
	case []any:
		for _, c := range x {
			deidCheckKept(t, c, key, cutoff)
		}
	case string:
		if regexp.MustCompile(`^[0-9]{2}:[0-9]{2}`).MatchString(x) {
			t.Errorf("a time of day is in the output")
		}
		if m := regexp.MustCompile(`^([0-9]{4})(-[0-9]{2}.*)?$`).FindStringSubmatch(x); m != nil && key != "code" {
			if y, _ := strconv.Atoi(m[1]); y <= cutoff {
				t.Errorf("%s: a year indicating an age over 89 is in the output", key)
			}
		}
	}
}

// deidValues returns every string and number in res, decoded, each
// followed by a NUL byte.
func deidValues(res []map[string]any) []byte {
	var b bytes.Buffer
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		case string:
			b.WriteString(x)
			b.WriteByte(0)
		case float64:
			fmt.Fprint(&b, x)
			b.WriteByte(0)
		}
	}
	for _, m := range res {
		walk(m)
	}
	return b.Bytes()
}

// deidRefs calls fn with every relative reference ("Type/id") in v.
func deidRefs(v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x["reference"].(string); ok && !strings.HasPrefix(s, "#") {
			fn(s)
		}
		for _, c := range x {
			deidRefs(c, fn)
		}
	case []any:
		for _, c := range x {
			deidRefs(c, fn)
		}
	}
}

func deidList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestExportRefusesIdentified: without --deidentify nothing is read or
// written, and the message points to $export.
func TestExportRefusesIdentified(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	for _, args := range [][]string{
		{"export", "--data", t.TempDir(), "--out", out},
		{"export", "--data", t.TempDir(), "--deidentify"},
		{"export", "--data", t.TempDir(), "--deidentify", "--out", out, "--date-shift", "-3"},
		{"export", "--data", t.TempDir(), "--deidentify", "--out", out, "--date-shift", "99999"},
		{"export", "--data", t.TempDir(), "--deidentify", "--out", out, "--type", "Nonsense"},
		{"export", "--data", t.TempDir(), "--deidentify", "--out", out, "--type", "Patient,Binary"},
		{"export", "--data", t.TempDir(), "--deidentify", "--out", out, "--type", "patient"},
	} {
		r := secRun(t, args...)
		if r.code == 0 {
			t.Errorf("phivault %s: exit 0", strings.Join(args, " "))
		}
		// A plain message naming the flag, before any work (no
		// progress bar, no internal error).
		msg := r.stderr + r.stdout
		if !strings.Contains(msg, "--") || strings.Contains(msg, "exporting") || strings.Contains(msg, "deid:") ||
			strings.Contains(msg, "Options.") {
			t.Errorf("phivault %s:\n%s", strings.Join(args, " "), msg)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("phivault %s created the output directory", strings.Join(args, " "))
		}
	}
	if r := secRun(t, "export", "--data", t.TempDir(), "--out", out); !strings.Contains(r.stderr+r.stdout, "$export") {
		t.Errorf("the refusal does not name $export:\n%s", r.stderr)
	}
}
