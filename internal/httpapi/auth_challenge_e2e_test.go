package httpapi_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
)

// TestAuthChallengeSingleUse: the sealed challenge from the password
// step starts at most one session. It used to start a second one for
// five minutes with any further valid second factor (issue 11, item 9).
func TestAuthChallengeSingleUse(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			e := startAuthOn(t, nil, "", driver)
			e.addUser(t, "replay.ra", pw, identity.RoleNurse)
			secret, codes, _ := e.enrol(t, "replay.ra", pw)

			ch := e.challenge(t, "replay.ra", pw).str("challenge")
			verify := func(method, code string) resp {
				return e.do(t, "POST", "/auth/mfa/verify", map[string]string{"challenge": ch, "method": method, "code": code}, creds{})
			}
			sessionOf(t, verify("recovery", codes[0]))
			// The same challenge with another valid recovery code, then a
			// fresh TOTP code: both refused, and neither factor is used up.
			if r := verify("recovery", codes[1]); r.status != http.StatusUnauthorized {
				t.Fatalf("second session from one challenge (recovery code): %d %s", r.status, r.body)
			}
			e.clock.Advance(30 * time.Second)
			if r := verify("totp", e.code(t, secret, e.clock.Now())); r.status != http.StatusUnauthorized {
				t.Fatalf("second session from one challenge (TOTP): %d %s", r.status, r.body)
			}
			// A new challenge works with the code the replay could not use.
			sessionOf(t, e.verify(t, "replay.ra", pw, "recovery", codes[1]))

			evs, err := e.app.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			replays := 0
			for _, ev := range evs {
				if ev.Action == audit.ActionLogin && ev.Outcome == audit.OutcomeDenied && slices.Contains(ev.Policies, "challenge-replay") {
					replays++
				}
			}
			if replays != 2 {
				t.Errorf("%d audited challenge replays, want 2", replays)
			}
		})
	}
}
