package cli_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/record"
)

// secMinPHILen skips values shorter than this: two-letter state codes and
// "M"/"F" would match random ciphertext bytes or schema text.
const secMinPHILen = 4

// secPHI is the set of identifying values found in the input Patients.
type secPHI struct {
	values     map[string]string // lower-cased value -> field it came from
	birthDates []time.Time
}

// secCollectPHI reads every Patient of every Bundle under root and
// collects names (given, family, text), identifier values (SSN, MRN,
// driver's licence, passport, Synthea id), address lines, cities, postal
// codes, telecom values and birth dates.
func secCollectPHI(t *testing.T, root string) secPHI {
	t.Helper()
	phi := secPHI{values: map[string]string{}}
	add := func(field, v string) {
		v = strings.TrimSpace(v)
		if len([]rune(v)) < secMinPHILen {
			return
		}
		phi.values[secLower(v)] = field
	}
	secWalkBundles(t, root, func(_ string, b secBundle) {
		for _, e := range b.Entry {
			var head struct {
				ResourceType string `json:"resourceType"`
			}
			if err := json.Unmarshal(e.Resource, &head); err != nil {
				t.Fatal(err)
			}
			if head.ResourceType != "Patient" {
				continue
			}
			var p struct {
				Name []struct {
					Text   string   `json:"text"`
					Family string   `json:"family"`
					Given  []string `json:"given"`
				} `json:"name"`
				Identifier []struct {
					Value string `json:"value"`
				} `json:"identifier"`
				Address []struct {
					Line       []string `json:"line"`
					City       string   `json:"city"`
					PostalCode string   `json:"postalCode"`
				} `json:"address"`
				Telecom []struct {
					Value string `json:"value"`
				} `json:"telecom"`
				BirthDate string `json:"birthDate"`
			}
			if err := json.Unmarshal(e.Resource, &p); err != nil {
				t.Fatal(err)
			}
			for _, n := range p.Name {
				add("name.text", n.Text)
				add("name.family", n.Family)
				for _, g := range n.Given {
					add("name.given", g)
				}
			}
			for _, id := range p.Identifier {
				add("identifier.value", id.Value)
			}
			for _, a := range p.Address {
				for _, l := range a.Line {
					add("address.line", l)
				}
				add("address.city", a.City)
				add("address.postalCode", a.PostalCode)
			}
			for _, tc := range p.Telecom {
				add("telecom.value", tc.Value)
			}
			add("birthDate", p.BirthDate)
			if d, err := time.Parse(time.DateOnly, p.BirthDate); err == nil {
				phi.birthDates = append(phi.birthDates, d)
			}
		}
	})
	return phi
}

// secLower lower-cases ASCII letters only, so that byte offsets in binary
// data are preserved (non-ASCII letters then compare exactly, which is how
// UTF-8 stores them).
func secLower(s string) string { return string(secLowerBytes([]byte(s))) }

func secLowerBytes(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// secMatcher finds any of many needles in one pass: candidates are keyed
// by their first four bytes, which every needle has (secMinPHILen).
type secMatcher struct {
	byPrefix map[[4]byte][]string
	field    map[string]string
	n        int
}

// newSecMatcher builds a matcher over phi's values, each in UTF-8 and in
// lower-case hex (how pg_dump prints bytea columns).
func newSecMatcher(phi secPHI) *secMatcher {
	m := &secMatcher{byPrefix: map[[4]byte][]string{}, field: map[string]string{}}
	add := func(needle, field string) {
		if _, dup := m.field[needle]; dup {
			return
		}
		m.field[needle] = field
		k := [4]byte([]byte(needle[:4]))
		m.byPrefix[k] = append(m.byPrefix[k], needle)
	}
	for v, f := range phi.values {
		add(v, f)
		add(hex.EncodeToString([]byte(v)), f+" (hex)")
		m.n++
	}
	return m
}

// find returns the needles that occur in data, case-insensitively, with
// some bytes of context each. A needle made only of hex digits and dashes
// (a postal code, an SSN) must not touch another hex digit or dash: such a
// match sits inside a random UUID (resource ids are pseudonymous UUIDs in
// clear), whereas a leaked value stands between quotes or other bytes.
func (m *secMatcher) find(data []byte) map[string]string {
	low := secLowerBytes(data)
	hits := map[string]string{}
	for i := 0; i+4 <= len(low); i++ {
		cands, ok := m.byPrefix[[4]byte(low[i:i+4])]
		if !ok {
			continue
		}
		for _, c := range cands {
			end := i + len(c)
			if _, dup := hits[c]; dup || end > len(low) || string(low[i:end]) != c {
				continue
			}
			if secHexish(c) && ((i > 0 && secHexish(string(low[i-1]))) || (end < len(low) && secHexish(string(low[end])))) {
				continue
			}
			hits[c] = fmt.Sprintf("%q", data[max(0, i-24):min(len(data), end+24)])
		}
	}
	return hits
}

func secHexish(s string) bool {
	return strings.Trim(s, "0123456789abcdef-") == ""
}

// assertNoPHI fails for every PHI value found in data.
func (m *secMatcher) assertNoPHI(t *testing.T, what string, data []byte) {
	t.Helper()
	for h, ctx := range m.find(data) {
		t.Errorf("%s (%d bytes) holds plaintext %s %q in %s", what, len(data), m.field[h], h, ctx)
	}
	t.Logf("scanned %s: %d bytes, %d PHI values", what, len(data), m.n)
}

// TestMatcherFindsPlantedPHI keeps the scanner honest: a value planted in
// binary noise, in another case, or hex-encoded is found.
func TestMatcherFindsPlantedPHI(t *testing.T) {
	phi := secPHI{values: map[string]string{"godínez202": "name.family", "999-52-8318": "identifier.value"}}
	m := newSecMatcher(phi)
	data := append([]byte{0, 0xff, 0x13}, []byte("xxGODíNEZ202yy")...)
	data = append(data, []byte(`\x`+hex.EncodeToString([]byte("999-52-8318")))...)
	got := m.find(data)
	if len(got) != 2 {
		t.Fatalf("find = %q, want the family name and the hex SSN", got)
	}
	if got := m.find([]byte("nothing to see, 999-52-831")); len(got) != 0 {
		t.Fatalf("a prefix of a value matched: %q", got)
	}
	if got := m.find([]byte(`"id":"5ba60d91-b952-de1b-999-52-8318ab"`)); len(got) != 0 {
		t.Fatalf("a match inside a hex id counted: %q", got)
	}
	if got := m.find([]byte(`"value":"999-52-8318"`)); len(got) != 1 {
		t.Fatalf("a quoted SSN was not found: %q", got)
	}
}

// TestNoPlaintextPHIAtRest imports the whole Synthea sample (hospital and
// practitioner bundles first, every patient, and incremental/) through the
// import command's path, and proves that no identifying value of any
// Patient appears in the database's bytes: the SQLite main file, its WAL
// and shared-memory files before and after a checkpoint, and a pg_dump of
// the PostgreSQL database (data and schema).
func TestNoPlaintextPHIAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 13,607 resources")
	}
	phi := secCollectPHI(t, secSyntheaDir)
	m := newSecMatcher(phi)
	if m.n < 150 {
		t.Fatalf("collected only %d PHI values from %s", m.n, secSyntheaDir)
	}
	t.Logf("checking %d distinct PHI values (>= %d characters) of %d patients", m.n, secMinPHILen, len(phi.birthDates))
	want := secInputCounts(t, secSyntheaDir)
	total := 0
	for _, n := range want {
		total += n
	}
	if total != 13607 {
		t.Fatalf("the Synthea sample has %d entries, want 13607", total)
	}

	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secInit(t, drv.initArgs(t)...)
			// Everything but incremental/ through the import command.
			top, err := filepath.Glob(filepath.Join(secSyntheaDir, "*.json"))
			if err != nil {
				t.Fatal(err)
			}
			r := secMustRun(t, append([]string{"import", "--data", dir, "--quiet"}, top...)...)
			in, acc := secTally(t, r.stdout)
			if rate := secRateRE.FindStringSubmatch(r.stdout); rate != nil {
				t.Logf("%s: import command: %s s, %s resources/s", drv.name, rate[1], rate[2])
			}
			// incremental/ through the same app + record calls as the
			// import command, holding the database open so that the
			// SQLite WAL can be read before any checkpoint.
			a := secOpenAppNoCleanup(t, dir)
			caller := record.Caller{Agent: audit.Agent{User: "import", Client: "cli"}, Purpose: "HOPERAT", Guard: record.Offline()}
			incr, _ := filepath.Glob(filepath.Join(secSyntheaDir, "incremental", "*.json"))
			for _, f := range incr {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				res, err := a.Record.Parse(b)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				out, err := a.Record.ProcessBundle(t.Context(), caller, res, record.ReturnMinimal)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				var resp struct {
					Entry []struct {
						Response struct{ Status string } `json:"response"`
					} `json:"entry"`
				}
				if err := json.Unmarshal(out, &resp); err != nil {
					t.Fatal(err)
				}
				var bnd secBundle
				_ = json.Unmarshal(b, &bnd)
				for i, en := range resp.Entry {
					if !strings.HasPrefix(en.Response.Status, "2") {
						t.Errorf("%s entry %d: %s", filepath.Base(f), i, en.Response.Status)
					}
					var h struct{ ResourceType string }
					_ = json.Unmarshal(bnd.Entry[i].Resource, &h)
					in[h.ResourceType]++
					acc[h.ResourceType]++
				}
			}
			for typ, n := range want {
				if in[typ] != n || acc[typ] != n {
					t.Errorf("%s: input %d accepted %d, the files hold %d", typ, in[typ], acc[typ], n)
				}
			}
			c := secConfig(t, dir)
			if drv.name == "sqlite" {
				wal, err := os.ReadFile(c.Storage.SQLitePath + "-wal")
				if err != nil || len(wal) == 0 {
					t.Fatalf("no WAL to scan while the database is open (%v)", err)
				}
				m.assertNoPHI(t, "phivault.db-wal before checkpoint", wal)
				if shm, err := os.ReadFile(c.Storage.SQLitePath + "-shm"); err == nil {
					m.assertNoPHI(t, "phivault.db-shm before checkpoint", shm)
				}
				main, err := os.ReadFile(c.Storage.SQLitePath)
				if err != nil {
					t.Fatal(err)
				}
				m.assertNoPHI(t, "phivault.db before checkpoint", main)
			}
			secAssertCounts(t, a, want)
			secAssertNoBirthDateRanges(t, dir, phi)
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}

			switch drv.name {
			case "sqlite":
				db := secDB(t, dir)
				if _, err := db.ExecContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
					t.Fatal(err)
				}
				db.Close()
				for _, suffix := range []string{"", "-wal", "-shm"} {
					b, err := os.ReadFile(c.Storage.SQLitePath + suffix)
					if os.IsNotExist(err) {
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					m.assertNoPHI(t, "phivault.db"+suffix+" after checkpoint", b)
				}
			case "postgres":
				for _, mode := range []string{"--data-only", "--schema-only"} {
					out, err := exec.CommandContext(t.Context(), "pg_dump", mode, "--dbname", c.Storage.PostgresURL).Output()
					if err != nil {
						t.Fatalf("pg_dump %s: %v", mode, err)
					}
					if mode == "--data-only" && len(out) < 10<<20 {
						t.Fatalf("pg_dump --data-only printed only %d bytes", len(out))
					}
					m.assertNoPHI(t, "pg_dump "+mode, out)
				}
			}
		})
	}
}

// secOpenAppNoCleanup opens dir's instance; the caller closes it.
func secOpenAppNoCleanup(t *testing.T, dir string) *app.App {
	t.Helper()
	a, err := app.Open(t.Context(), secConfig(t, dir), secDiscardLogger())
	if err != nil {
		t.Fatalf("app.Open(%s): %v", dir, err)
	}
	return a
}

// secAssertNoBirthDateRanges checks that no birth date is stored as a
// plaintext date range in the search index (birthdate is identifying and
// must be blind-indexed, unlike clinical dates).
func secAssertNoBirthDateRanges(t *testing.T, dir string, phi secPHI) {
	t.Helper()
	db := secDB(t, dir)
	for _, d := range phi.birthDates {
		lo := d.UTC().UnixMicro()
		hi := d.Add(24*time.Hour).UTC().UnixMicro() - 1
		if n := secCount(t, dir, db, "SELECT COUNT(*) FROM search_index WHERE lo = ? OR hi = ? OR hi = ?", lo, hi, hi+1); n > 0 {
			t.Errorf("birth date %s is stored as a plaintext range in %d index rows", d.Format(time.DateOnly), n)
		}
	}
}
