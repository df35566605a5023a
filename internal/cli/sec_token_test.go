package cli_test

import (
	"slices"
	"strings"
	"testing"
)

// TestTokenCreateBreakGlass (SRE fault test 5): "token create" issued
// system tokens offline without --break-glass and without an alert,
// unlike "client add" and role grants (ADR 0018, ADR 0020). A token
// whose roles reach patient data is now refused without --break-glass;
// with it, it is audited (break-glass, the roles) and raises a high
// alert. A researcher token needs neither.
func TestTokenCreateBreakGlass(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, _ := secInit(t, drv.initArgs(t)...)
			if r := secRun(t, "token", "create", "--data", dir, "nightly"); r.code == 0 || strings.Contains(r.stdout, "pvt_") {
				t.Fatalf("a system token without --break-glass: exit %d, stdout %q", r.code, r.stdout)
			}
			tok := strings.TrimSpace(secMustRun(t, "token", "create", "--data", dir, "nightly", "--break-glass").stdout)
			secMustRun(t, "token", "create", "--data", dir, "study", "--roles", "researcher")
			db := secDB(t, dir)
			if n := secCount(t, dir, db, "SELECT COUNT(*) FROM authz_alerts WHERE kind = 'token-break-glass' AND priority = 'high' AND user_id = 'cli'"); n != 1 {
				t.Errorf("%d token-break-glass alerts, want 1 (none for the researcher token)", n)
			}
			a := secOpenApp(t, dir)
			evs, err := a.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var glass, plain int
			for _, ev := range evs {
				if ev.Action != "token-create" || ev.Agent.Client != "cli" {
					continue
				}
				if slices.Contains(ev.Policies, "break-glass") && slices.Contains(ev.Policies, "roles=system") {
					glass++
				} else if slices.Contains(ev.Policies, "roles=researcher") && !slices.Contains(ev.Policies, "break-glass") {
					plain++
				}
			}
			if glass != 1 {
				t.Errorf("%d break-glass token-create events with the roles, want 1", glass)
			}
			if plain != 1 {
				t.Errorf("%d token-create events of the researcher token without break glass, want 1", plain)
			}
			if tok == "" {
				t.Error("no token printed")
			}
		})
	}
}
