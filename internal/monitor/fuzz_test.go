package monitor

import (
	"fmt"
	"testing"
	"time"
)

// FuzzEngine feeds arbitrary event sequences (the events of an ingested
// log are untrusted: any order, any mix) and checks the invariants of
// the alerts: a score in [0.5, 1], a key, a category, bounded evidence.
func FuzzEngine(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0"))
	f.Fuzz(fuzzOne)
}

var (
	fuzzUsers    = []string{nurse, doc, surg, bill, rad, cowork, far, "User/x", "", "PractitionerRole/nurse"}
	fuzzPatients = []string{"Patient/self", "Patient/family", "Patient/familypostal", "Patient/neighbour", "Patient/cowork",
		"Patient/far", "Patient/vip", "Patient/p1", "Patient/p2", "Patient/none", ""}
	kinds    = []Kind{KindAccess, KindAccess, KindAccess, KindLogin, KindMFA, KindToken, KindOther}
	outcomes = []Outcome{OutcomeSuccess, OutcomeSuccess, OutcomeDenied, OutcomeFailure, OutcomeNotFound, ""}
	actions  = []string{"read", "search", "export", "$everything", "update"}
)

func fuzzOne(t *testing.T, data []byte) {
	{
		d := testDirectory()
		d.RolePractitioner["PractitionerRole/nurse"] = nurse
		d.Relations["Patient/p1"] = []Relation{{Kind: RelEncounter, Ref: "Encounter/1", Organizations: []string{"Organization/cardio"}, Start: t0, End: t0}}
		e := NewEngine(d, Options{Source: "fuzz", MaxEvidence: 4, MaxPatients: 8})
		at := t0
		for i := 0; i+3 < len(data) && i < 4000; i += 4 {
			a, b, c, g := data[i], data[i+1], data[i+2], data[i+3]
			// Mostly forward in time, sometimes back (late events), sometimes a jump.
			switch {
			case g < 200:
				at = at.Add(time.Duration(g) * 7 * time.Second)
			case g < 240:
				at = at.Add(-time.Duration(g-200) * time.Minute)
			default:
				at = at.Add(time.Duration(g-239) * 5 * time.Hour)
			}
			e.Add(Event{
				Time: at, Kind: kinds[int(a)%len(kinds)], Outcome: outcomes[int(a>>3)%len(outcomes)],
				User: fuzzUsers[int(b)%len(fuzzUsers)], Login: fmt.Sprint("l", b%7), Patient: fuzzPatients[int(c)%len(fuzzPatients)],
				Action: actions[int(c>>4)%len(actions)], Bulk: c&0x80 != 0, BreakGlass: b&0x80 != 0,
				Address: fmt.Sprint("10.0.0.", a%5), Session: fmt.Sprint("s", b%3),
			})
			if g == 255 {
				check(t, e.Alerts(false))
			}
		}
		check(t, e.Alerts(true))
	}
}

func check(t *testing.T, as []Alert) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range as {
		if a.Score < ReportScore || a.Score > 1 || a.Key == "" || a.Category == "" || a.Explanation == "" ||
			len(a.Evidence.Accesses) > 4 || len(a.Patients) > 8 || seen[a.Key] {
			t.Fatalf("bad alert %+v", a)
		}
		seen[a.Key] = true
	}
}
