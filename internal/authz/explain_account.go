package authz

import (
	"context"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
)

// Explainer answers "phivault policy explain" (ExplainAccount): an
// explanation is audited like a decision.
type Explainer struct {
	az  *Authorizer
	log *audit.Log
	rec AuditRecorder
}

// NewExplainer returns an explainer over az whose events are sealed
// and made durable by rec.
func NewExplainer(az *Authorizer, log *audit.Log, rec AuditRecorder) *Explainer {
	return &Explainer{az: az, log: log, rec: rec}
}

// ExplainAccount explains action
// by the account u (as a signed-in session with a second factor) on
// typ/id, reading typ/id through the authorizer's own source as a
// decision does (a Patient that is not stored is explained as its empty
// compartment; any other type must be current). Before returning it
// records the explanation as a policy-explain event by agent, sealed
// and made durable, naming the patient when the owner is
// one. An error deciding is returned after the event is recorded, and
// is a denial (fail closed).
func (e *Explainer) ExplainAccount(ctx context.Context, agent audit.Agent, u identity.User, action Action, typ, id string) (Explanation, error) {
	a := e.az
	roles := make([]string, len(u.Roles))
	for i, r := range u.Roles {
		roles[i] = string(r)
	}
	p := authn.Principal{Kind: authn.KindSession, ID: u.ID, Name: u.Username, Roles: roles, MFA: true}
	f, found, err := a.src.Resource(ctx, typ, id)
	if err != nil {
		return Explanation{}, fmt.Errorf("reading %s/%s: %w", typ, id, err)
	}
	t := Target{Type: typ, ID: id, Owner: string(ident.Org)}
	switch {
	case found:
		t.Owner = f.Owner
		if t.Labels, t.Category, err = ResourceLabels(f.JSON, false); err != nil {
			return Explanation{}, err
		}
	case typ == "Patient":
		t.Owner = ident.PatientRef(id).String()
	default:
		return Explanation{}, fmt.Errorf("no current %s/%s", typ, id)
	}
	x, err := a.Explain(ctx, p, action, t)
	outcome := audit.OutcomeSuccess
	if err != nil {
		outcome = audit.OutcomeError
	}
	ev := audit.Event{Time: time.Now(), Action: audit.ActionPolicyExplain, Outcome: outcome, Agent: agent,
		Entities: []string{typ + "/" + id, "User/" + u.ID}, Policies: x.Policies}
	if ident.Owner(t.Owner).IsPatient() {
		ev.Patients = []string{t.Owner}
	}
	sealed, serr := e.log.Seal(ev)
	if serr != nil {
		return x, serr
	}
	if rerr := e.rec.Record(ctx, sealed); rerr != nil {
		return x, rerr
	}
	if err != nil {
		return x, fmt.Errorf("deciding: %w (an error is a denial: fail closed)", err)
	}
	return x, nil
}
