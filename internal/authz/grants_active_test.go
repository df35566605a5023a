package authz

import (
	"testing"
	"time"
)

// TestActiveGrant: the grant covers its one patient until it expires,
// and is gone (for the chart's banner) from then on.
func TestActiveGrant(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	now := t0
	grants := memGrants{
		{ID: "g1", UserID: "u1", Patient: "Patient/p1", Created: t0, Expires: t0.Add(time.Hour)},
		{ID: "g2", UserID: "u1", Patient: "Patient/p1", Created: t0, Expires: t0.Add(30 * time.Minute)},
		{ID: "g3", UserID: "u2", Patient: "Patient/p2", Created: t0, Expires: t0.Add(time.Hour)},
	}
	a, _ := testAuthorizer(t, &memSource{}, grants, func() time.Time { return now })
	for _, c := range []struct {
		at            time.Duration
		user, patient string
		want          string // grant id, or "" for none
	}{
		{0, "u1", "Patient/p1", "g1"}, // the longest-lasting one
		{59 * time.Minute, "u1", "Patient/p1", "g1"},
		{time.Hour, "u1", "Patient/p1", ""}, // expired
		{0, "u1", "Patient/p2", ""},         // another user's grant
		{0, "u2", "Patient/p1", ""},         // another patient
	} {
		now = t0.Add(c.at)
		g, ok, err := a.ActiveGrant(t.Context(), c.user, c.patient)
		if err != nil {
			t.Fatal(err)
		}
		if got := map[bool]string{true: g.ID}[ok]; got != c.want {
			t.Errorf("at +%s, %s on %s: grant %q, want %q", c.at, c.user, c.patient, got, c.want)
		}
	}
}
