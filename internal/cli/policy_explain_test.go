package cli_test

import (
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/audit"
)

// "policy explain" decides as the server does and records the
// explanation in the audit log as a complete record (leaf hash
// included), so the log still verifies.
func TestPolicyExplain(t *testing.T) {
	for _, d := range secDrivers {
		t.Run(d.name, func(t *testing.T) {
			dir, _ := secInit(t, d.initArgs(t)...)
			secMustRun(t, "user", "add", "--data", dir, "--roles", "nurse", "--break-glass", "nina")

			r := secMustRun(t, "policy", "explain", "--data", dir, "--user", "nina", "--action", "read", "--resource", "Patient/nobody")
			if !strings.HasPrefix(r.stdout, "DENIED") || !strings.Contains(r.stdout, "owner=Patient/nobody") {
				t.Fatalf("a nurse outside the care team read an empty compartment:\n%s", r.stdout)
			}
			if r := secRun(t, "policy", "explain", "--data", dir, "--user", "nina", "--resource", "Observation/none"); r.code == 0 || !strings.Contains(r.stderr, "no current Observation/none") {
				t.Fatalf("explain of a missing resource: exit %d\n%s", r.code, r.stderr)
			}
			if r := secRun(t, "policy", "explain", "--data", dir, "--user", "nobody", "--resource", "Patient/p"); r.code == 0 {
				t.Fatalf("explain for an unknown user succeeded:\n%s", r.stdout)
			}

			a := secOpenApp(t, dir)
			evs, err := a.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var explained int
			for _, ev := range evs {
				if ev.Action == audit.ActionPolicyExplain {
					explained++
					if len(ev.Patients) != 1 || ev.Patients[0] != "Patient/nobody" || ev.Outcome != audit.OutcomeSuccess {
						t.Errorf("explain event %+v: want the patient named, outcome success", ev)
					}
				}
			}
			if explained != 1 {
				t.Fatalf("%d policy-explain events, want 1 (a refused explain decides nothing)", explained)
			}
			a.Close()
			secMustRun(t, "audit", "verify", "--data", dir)
		})
	}
}
