package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
)

// ResourceCheck is a rule a domain adds to every write of one resource
// type (package subscription: a Subscription's criteria and channel),
// run after FHIR validation, in Create, Update and Bundle entries alike.
// Its error's message is shown to the client: it must name the rule
// broken, never a value.
type ResourceCheck func(res fhir.Resource) error

// SetResourceCheck installs fn for writes of typ. Set it once, before
// serving.
func (s *Service) SetResourceCheck(typ string, fn ResourceCheck) {
	for {
		old := s.checks.Load()
		m := map[string]ResourceCheck{}
		if old != nil {
			for k, v := range *old {
				m[k] = v
			}
		}
		m[typ] = fn
		if s.checks.CompareAndSwap(old, &m) {
			return
		}
	}
}

// resourceCheck runs the check installed for res's type, if any.
func (s *Service) resourceCheck(res fhir.Resource) error {
	p := s.checks.Load()
	if p == nil {
		return nil
	}
	fn := (*p)[res.Type()]
	if fn == nil {
		return nil
	}
	if err := fn(res); err != nil {
		return failCause(ErrUnprocessable, "business-rule", err.Error(), err)
	}
	return nil
}

// Subscriptions is the privileged access of the subscription service
// (package subscription) to Subscription resources: their current
// version read without a decision (the service reads its own
// configuration; a delivery is decided on the subscription owner's
// authority, not this), and the server-managed status and error written
// back. It reaches no other resource type. Only the composition root
// makes one (internal/archtest).
type Subscriptions struct{ s *Service }

// NewSubscriptions returns the subscription service's access over s.
func NewSubscriptions(s *Service) *Subscriptions { return &Subscriptions{s: s} }

// PolicySubscriptionStatus is the deciding policy recorded on the
// server's writes of a Subscription's status.
const PolicySubscriptionStatus = "subscription-status"

const subscriptionType = "Subscription"

// Current returns the current version of Subscription id. A deleted or
// missing one is an *Error of kind ErrGone or ErrNotFound.
func (x *Subscriptions) Current(ctx context.Context, id string) (Stored, error) {
	if !ValidID(id) {
		return Stored{}, notFound("resource not found")
	}
	v, err := x.s.store.Current(ctx, subscriptionType, id)
	if err != nil {
		return Stored{}, storageError(err)
	}
	if v.Deleted {
		return Stored{}, gone("the resource was deleted")
	}
	body, err := x.s.open(ctx, v)
	if err != nil {
		return Stored{}, err
	}
	return storedOf(v, body), nil
}

// SetStatus writes the next version of Subscription id with status and
// error (errText; "" removes it) set, if its current version is still
// version (else an *Error of kind ErrPreconditionFailed or ErrConflict:
// the client changed it meanwhile, and that write stands). It is
// audited as an update by agent with PolicySubscriptionStatus, and
// returns the version written.
func (x *Subscriptions) SetStatus(ctx context.Context, agent audit.Agent, id string, version int64, status, errText string) (int64, error) {
	cur, err := x.Current(ctx, id)
	if err != nil {
		return 0, err
	}
	if cur.Version != version {
		return 0, fail(ErrPreconditionFailed, "conflict", "the subscription changed")
	}
	var res fhir.Resource
	if err := json.Unmarshal(cur.JSON, &res); err != nil {
		return 0, internal(fmt.Errorf("decoding Subscription/%s: %w", id, err))
	}
	res["status"] = status
	if errText != "" {
		res["error"] = errText
	} else {
		delete(res, "error")
	}
	c := Caller{Agent: agent, Purpose: "HOPERAT", Guard: statusGuard{}}
	st, _, err := x.s.Update(ctx, c, subscriptionType, id, res, version)
	if err != nil {
		return 0, err
	}
	return st.Version, nil
}

// statusGuard allows the subscription service's own writes: read and
// update of Subscription resources outside every patient compartment,
// nothing else, and no search.
type statusGuard struct{}

var errStatusGuard = errors.New("record: the subscription service reaches Subscription resources only")

func (statusGuard) Decide(_ context.Context, a authz.Action, t authz.Target) (authz.Decision, error) {
	if t.Type == subscriptionType && t.Owner == authz.OrgOwner && (a == authz.Update || a == authz.Read || a == authz.VRead) {
		return authz.Decision{Allowed: true, Policies: []string{PolicySubscriptionStatus}}, nil
	}
	return authz.Decision{}, fmt.Errorf("%w: %w", errStatusGuard, authz.ErrUndecidable)
}

func (statusGuard) Narrow(context.Context, authz.Action, string) (authz.Filter, error) {
	return authz.Filter{}, fmt.Errorf("%w: %w", errStatusGuard, authz.ErrUndecidable)
}
