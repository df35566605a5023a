package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Break the glass (DESIGN §8): a clinician states an emergency and a
// reason and gets a [Grant] on one patient for [DefaultGrantTTL]. The
// grant, its sealed free text, a review-queue entry and a high-priority
// alert commit together with the audit event; every access under the
// grant is audited with purpose ETREAT (Decision.Purpose).

// ReasonCodes are the accepted reason codes (v3 ActReason / PurposeOfUse).
var ReasonCodes = []string{"ETREAT", "BTG", "ERTREAT"}

// Limits on the free text of a break-the-glass request.
const (
	maxReasonText = 1000 // runes
)

// ErrBadRequest wraps a malformed break-the-glass request; its message
// is safe to show (it never quotes the input).
var ErrBadRequest = errors.New("authz: bad request")

// BreakGlassRequest is a parsed $break-glass Parameters body.
type BreakGlassRequest struct {
	Reason string // one of ReasonCodes
	Text   string // free text: may hold PHI, kept sealed, never logged
}

type parametersJSON struct {
	ResourceType string `json:"resourceType"`
	Parameter    []struct {
		Name        string  `json:"name"`
		ValueCode   *string `json:"valueCode"`
		ValueString *string `json:"valueString"`
		ValueCoding *coding `json:"valueCoding"`
	} `json:"parameter"`
}

// ParseBreakGlass reads a FHIR Parameters resource with a "reason"
// (valueCode, or valueCoding with a code) and a "text" (valueString).
// Errors wrap ErrBadRequest and never quote the input.
func ParseBreakGlass(body []byte) (BreakGlassRequest, error) {
	var p parametersJSON
	if err := json.Unmarshal(body, &p); err != nil || p.ResourceType != "Parameters" {
		return BreakGlassRequest{}, fmt.Errorf("the body must be a FHIR Parameters resource: %w", ErrBadRequest)
	}
	var r BreakGlassRequest
	seen := map[string]bool{}
	for _, x := range p.Parameter {
		if seen[x.Name] {
			return BreakGlassRequest{}, fmt.Errorf("a parameter is repeated: %w", ErrBadRequest)
		}
		seen[x.Name] = true
		switch x.Name {
		case "reason":
			switch {
			case x.ValueCode != nil:
				r.Reason = *x.ValueCode
			case x.ValueCoding != nil:
				r.Reason = x.ValueCoding.Code
			}
		case "text":
			if x.ValueString != nil {
				r.Text = *x.ValueString
			}
		default:
			return BreakGlassRequest{}, fmt.Errorf("only the parameters reason and text are accepted: %w", ErrBadRequest)
		}
	}
	ok := false
	for _, c := range ReasonCodes {
		ok = ok || r.Reason == c
	}
	if !ok {
		return BreakGlassRequest{}, fmt.Errorf("reason must be one of %s: %w", strings.Join(ReasonCodes, ", "), ErrBadRequest)
	}
	if strings.TrimSpace(r.Text) == "" {
		return BreakGlassRequest{}, fmt.Errorf("text (the emergency, in words) is required: %w", ErrBadRequest)
	}
	if !utf8.ValidString(r.Text) || utf8.RuneCountInString(r.Text) > maxReasonText {
		return BreakGlassRequest{}, fmt.Errorf("text must be valid UTF-8 of at most %d characters: %w", maxReasonText, ErrBadRequest)
	}
	for _, c := range r.Text {
		if unicode.IsControl(c) && c != '\n' && c != '\t' {
			return BreakGlassRequest{}, fmt.Errorf("text must not contain control characters: %w", ErrBadRequest)
		}
	}
	return r, nil
}

// NoteSealer seals a grant's free text with the patient's data key
// (record.Service.SealNote).
type NoteSealer interface {
	SealNote(ctx context.Context, owner, grantID string, text []byte) ([]byte, error)
}

// AuditRecorder makes an audit record durable (audit.Batcher).
type AuditRecorder interface {
	Record(ctx context.Context, rec storage.AuditRecord) error
}

// BreakGlass opens grants. It is safe for concurrent use.
type BreakGlass struct {
	az     *Authorizer
	writer GrantWriter
	notes  NoteSealer
	log    *audit.Log
	rec    AuditRecorder
	ttl    time.Duration
	newID  func() string
}

// BreakGlassOptions configures BreakGlass; TTL 0 means DefaultGrantTTL.
type BreakGlassOptions struct {
	Authorizer *Authorizer
	Writer     GrantWriter
	Notes      NoteSealer
	Log        *audit.Log
	Recorder   AuditRecorder
	TTL        time.Duration
	NewID      func() string
}

// NewBreakGlass returns a BreakGlass; every option but TTL is required.
func NewBreakGlass(o BreakGlassOptions) (*BreakGlass, error) {
	if o.Authorizer == nil || o.Writer == nil || o.Notes == nil || o.Log == nil || o.Recorder == nil || o.NewID == nil {
		return nil, errors.New("authz: every BreakGlassOptions field but TTL is required")
	}
	if o.TTL == 0 {
		o.TTL = DefaultGrantTTL
	}
	if o.TTL < 0 || o.TTL > MaxGrantTTL {
		return nil, fmt.Errorf("authz: BreakGlassOptions.TTL must be in (0, %s]", MaxGrantTTL)
	}
	return &BreakGlass{az: o.Authorizer, writer: o.Writer, notes: o.Notes, log: o.Log, rec: o.Recorder, ttl: o.TTL, newID: o.NewID}, nil
}

// Open opens a grant for p on Patient/patientID. It returns ErrDenied
// when the policies refuse (the refusal is audited before Open
// returns), an error wrapping storage.ErrNotFound for an unknown
// patient (audited too), and ErrUndecidable or storage errors otherwise.
//
// Whether the caller may break the glass at all is decided before the
// patient is looked up, so a caller who may not learns nothing about
// which patients exist: the same 403 for every id.
func (b *BreakGlass) Open(ctx context.Context, p authn.Principal, agent audit.Agent, requestID, patientID string, req BreakGlassRequest) (Grant, Decision, error) {
	owner := string(ident.PatientOwner(patientID))
	now := b.az.now()
	purpose := "ETREAT"
	if req.Reason == "BTG" || req.Reason == "ERTREAT" {
		purpose = req.Reason // the reason given, as the accesses under the grant record it
	}
	ev := audit.Event{Time: now, Action: audit.ActionBreakGlass, Outcome: audit.OutcomeSuccess, Agent: agent,
		Purpose: purpose, Patients: []string{owner}, RequestID: requestID}
	refuse := func(d Decision, err error, outcome audit.Outcome) (Grant, Decision, error) {
		if err == nil && d.Conceal {
			// A patient a policy conceals from the caller (their consent
			// denies them) is answered as one that does not exist.
			err = fmt.Errorf("break glass: concealed: %w", storage.ErrNotFound)
		}
		ev.Outcome, ev.Policies, ev.Entities = outcome, d.Policies, []string{owner}
		if err != nil && len(ev.Policies) == 0 {
			ev.Policies = []string{"undecidable"}
		}
		rec, serr := b.log.Seal(ev)
		if serr != nil {
			return Grant{}, d, serr
		}
		if rerr := b.rec.Record(ctx, rec); rerr != nil {
			return Grant{}, d, rerr
		}
		if err != nil {
			return Grant{}, d, err
		}
		return Grant{}, d, fmt.Errorf("break glass: %w", ErrDenied)
	}
	// First: may this caller break the glass on a patient like this one
	// at all (role, kind of credential, the patient's consents)?
	d, err := b.az.Decide(ctx, p, OpenGrant, Target{Type: "Patient", ID: patientID, Owner: owner})
	if err != nil || !d.Allowed {
		return refuse(d, err, audit.OutcomeDenied)
	}
	f, found, err := b.az.src.Resource(ctx, "Patient", patientID)
	if err != nil {
		return Grant{}, Decision{}, fmt.Errorf("break glass: loading patient: %w", err)
	}
	if !found {
		_, _, err := refuse(Decision{Policies: []string{"no-such-patient"}}, fmt.Errorf("break glass: %w", storage.ErrNotFound), audit.OutcomeError)
		return Grant{}, Decision{}, err
	}
	labels, cat, err := ResourceLabels(f.JSON, false)
	if err != nil {
		return refuse(Decision{}, err, audit.OutcomeDenied)
	}
	d, err = b.az.Decide(ctx, p, OpenGrant, Target{Type: "Patient", ID: patientID, Owner: owner, Labels: labels, Category: cat, Body: f.JSON})
	if err != nil || !d.Allowed {
		return refuse(d, err, audit.OutcomeDenied)
	}
	g := Grant{ID: b.newID(), UserID: p.ID, Patient: owner, Reason: req.Reason, Created: now, Expires: now.Add(b.ttl)}
	note, err := b.notes.SealNote(ctx, owner, g.ID, []byte(req.Text))
	if err != nil {
		return Grant{}, d, fmt.Errorf("break glass: sealing the reason: %w", err)
	}
	r := Review{ID: b.newID(), GrantID: g.ID, UserID: g.UserID, Patient: owner, Reason: g.Reason, Created: now, Expires: g.Expires}
	al := Alert{ID: b.newID(), Kind: AlertBreakGlass, Priority: "high", UserID: g.UserID, Patient: owner, Ref: "Grant/" + g.ID, Created: now}
	ev.Policies, ev.Entities = d.Policies, []string{owner, "Grant/" + g.ID}
	rec, err := b.log.Seal(ev)
	if err != nil {
		return Grant{}, d, err
	}
	if err := b.writer.CreateGrant(ctx, g, note, r, al, rec.Body); err != nil {
		return Grant{}, d, fmt.Errorf("break glass: storing the grant: %w", err)
	}
	b.az.gen.Add(1) // the user's grants changed
	b.az.fgen.Add(1)
	return g, d, nil
}
