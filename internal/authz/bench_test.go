package authz_test

import (
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// benchSetup starts a real phivault (SQLite) with a physician on one
// patient's care team and an Observation of that patient.
func benchSetup(b *testing.B) (*apitest.Server, authn.Principal, authz.Target) {
	s := apitest.Start(b, "sqlite")
	pid := s.Create(b, map[string]any{"resourceType": "Patient"})
	prac := s.Create(b, map[string]any{"resourceType": "Practitioner"})
	s.Create(b, map[string]any{"resourceType": "CareTeam", "status": "active",
		"subject":     map[string]any{"reference": "Patient/" + pid},
		"participant": []any{map[string]any{"member": map[string]any{"reference": "Practitioner/" + prac}}}})
	s.Create(b, map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"code": "AMB"},
		"subject":     map[string]any{"reference": "Patient/" + pid},
		"participant": []any{map[string]any{"individual": map[string]any{"reference": "Practitioner/" + prac}}}})
	obs := s.Create(b, map[string]any{"resourceType": "Observation", "status": "final",
		"code":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8302-2"}}},
		"subject": map[string]any{"reference": "Patient/" + pid}})
	id, _ := identity.NewID(nil)
	u := identity.User{ID: id, Username: "bench.doc", DisplayName: "Bench", Roles: []identity.Role{identity.RolePhysician}, FHIRUser: "Practitioner/" + prac}
	if _, err := s.App.Store.(*sqldb.Store).Users().Create(b.Context(), u); err != nil {
		b.Fatal(err)
	}
	p := authn.Principal{Kind: "session", ID: id, Roles: []string{"physician"}, MFA: true}
	return s, p, authz.Target{Type: "Observation", ID: obs, Owner: "Patient/" + pid}
}

// reportPercentiles adds p50 and p99 (µs) of the measured durations.
func reportPercentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	at := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkDecideRead is one read decision as the record makes it: the
// Cedar entities (user, patient, resource) and context are built from
// the facts for every decision; the facts come from the cache.
func BenchmarkDecideRead(b *testing.B) {
	s, p, t := benchSetup(b)
	az := s.App.Authz
	if d, err := az.Decide(b.Context(), p, authz.Read, t); err != nil || !d.Allowed {
		b.Fatalf("warm-up decision: %+v %v", d, err)
	}
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		dec, err := az.Decide(b.Context(), p, authz.Read, t)
		d = append(d, time.Since(start))
		if err != nil || !dec.Allowed {
			b.Fatal(dec, err)
		}
	}
	b.StopTimer()
	reportPercentiles(b, d)
}

// BenchmarkDecideReadCold invalidates the caches before every decision:
// the facts are loaded from the database (PractitionerRole, CareTeam and
// Encounter searches, the Patient and its Consents, decrypted), as after
// a write of one of those types.
func BenchmarkDecideReadCold(b *testing.B) {
	s, p, t := benchSetup(b)
	az := s.App.Authz
	d := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		az.Invalidate()
		start := time.Now()
		dec, err := az.Decide(b.Context(), p, authz.Read, t)
		d = append(d, time.Since(start))
		if err != nil || !dec.Allowed {
			b.Fatal(dec, err)
		}
	}
	b.StopTimer()
	reportPercentiles(b, d)
}

// BenchmarkNarrowSearch computes the filter of a search for a physician
// with one related patient: a Consent write elsewhere drops the cached
// filters (and the restricted-patient list, reloaded from the database),
// the physician's facts stay cached.
func BenchmarkNarrowSearch(b *testing.B) {
	s, p, _ := benchSetup(b)
	az := s.App.Authz
	if _, err := az.Narrow(b.Context(), p, authz.Search, "Observation"); err != nil {
		b.Fatal(err)
	}
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		az.Changed("Consent", "Patient/elsewhere")
		start := time.Now()
		if _, err := az.Narrow(b.Context(), p, authz.Search, "Observation"); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, d)
}
