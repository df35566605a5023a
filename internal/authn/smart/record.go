package smart

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
)

// recorder appends the audit events of the authorization server: every
// token issue, refusal, refresh, revocation and consent, before the
// response (see the package doc's security invariants). Events name
// references and a fixed reason, never a secret.
type recorder struct {
	audit Auditor
	now   func() time.Time
}

// deny audits a refusal and returns err (or the audit failure).
func (rc *recorder) deny(ctx context.Context, r *http.Request, a audit.Action, clientID string, err error) error {
	code := httpError(err).Status
	outcome := audit.OutcomeDenied
	if code >= 500 {
		outcome = audit.OutcomeError
	}
	if aerr := rc.record(ctx, r, a, outcome, clientID, code); aerr != nil {
		return errors.Join(aerr, err)
	}
	return err
}

// record appends an audit event; it names the client id only, never a
// token, an assertion or a claim the caller chose.
func (rc *recorder) record(ctx context.Context, r *http.Request, a audit.Action, o audit.Outcome, clientID string, code int) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = ""
	}
	ev := audit.Event{Time: rc.now().UTC(), Action: a, Outcome: o, Agent: audit.Agent{Client: clientID, Address: host}, Status: code}
	if err := rc.audit.Record(ctx, ev); err != nil {
		return oauthErr(errServer, "", err)
	}
	return nil
}

// recordLaunch appends an audit event naming the client, the user and
// the patient: references only, never a code, token or scope value the
// caller chose beyond the fixed reason.
func (rc *recorder) recordLaunch(ctx context.Context, r *http.Request, act audit.Action, o audit.Outcome, clientID string, a Approval, code int, reason string) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = ""
	}
	ev := audit.Event{Time: rc.now().UTC(), Action: act, Outcome: o, Status: code,
		Agent:    audit.Agent{User: a.User.ID, Role: strings.Join(a.User.Roles, ","), Client: clientID, Session: a.User.Session, Address: host},
		Policies: []string{reason}}
	if a.Patient != "" {
		ev.Patients = []string{ident.PatientRef(a.Patient).String()}
	}
	if err := rc.audit.Record(ctx, ev); err != nil {
		return oauthErr(errServer, "", err)
	}
	return nil
}

// recordToken audits a token event of an authorization: client, user,
// patient and a fixed reason.
func (rc *recorder) recordToken(ctx context.Context, r *http.Request, act audit.Action, o audit.Outcome, a Authorization, code int, reason string) error {
	return rc.recordLaunch(ctx, r, act, o, a.ClientID, Approval{User: LaunchUser{ID: a.UserID, Roles: a.Roles}, Patient: a.Patient}, code, reason)
}
