package smart

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// The two-person rule for clients (ADR 0020, which extends ADR 0018 from
// role grants to SMART clients).
//
// A backend client is a principal of its own: whoever holds its key
// reads what its system/ scopes allow, across every patient and without
// their Consents. An App Launch app acts for the users who sign in to it
// and never exceeds them, but an app registered with a redirect URI
// under the registering administrator's control collects the tokens of
// every user it persuades to approve it, on phivault's genuine sign-in
// page, which no second factor (a passkey included) defeats. Either is a
// path to patient data that one administrator could open alone. So a
// client whose grants can reach patient data ([Client.NeedsApproval]) is
// registered [ApprovalPending] and obtains no token, at any endpoint,
// until a second security administrator approves it.

// ClientApproval is where a client stands with the two-person rule. Only the
// values for which [ClientApproval.Usable] holds let a client authenticate or
// obtain a token; any other value, the empty one included, refuses it
// (fail closed).
//
// A client's scopes, keys and redirect URIs never change after
// registration (there is no update path), and disabling is final, so
// the approval given to a registration covers everything the client
// can ever do.
type ClientApproval string

// Approval states.
const (
	// ApprovalPending: registered, waiting for a second security
	// administrator; no token.
	ApprovalPending ClientApproval = "pending"
	// ApprovalApproved: a second security administrator approved it.
	ApprovalApproved ClientApproval = "approved"
	// ApprovalRejected: rejected by an administrator, or withdrawn by
	// the requester; no token, ever (register a new client instead).
	ApprovalRejected ClientApproval = "rejected"
	// ApprovalNotNeeded: its grants reach no patient data
	// ([Client.NeedsApproval] is false).
	ApprovalNotNeeded ClientApproval = "not-needed"
	// ApprovalBreakGlass: registered by the offline CLI with
	// --break-glass (an operator holding the key file and the data
	// directory), outside the rule, with an alert.
	ApprovalBreakGlass ClientApproval = "break-glass"
	// ApprovalLegacy: registered before the rule existed (migration
	// 0020); kept working so an upgrade cuts no integration, and raised
	// to the privacy officer for review.
	ApprovalLegacy ClientApproval = "legacy"
)

// Valid reports whether a is one of the approval states.
func (a ClientApproval) Valid() bool {
	switch a {
	case ApprovalPending, ApprovalApproved, ApprovalRejected, ApprovalNotNeeded, ApprovalBreakGlass, ApprovalLegacy:
		return true
	}
	return false
}

// Usable reports whether a client in state a may authenticate and
// obtain tokens: approved, not needing approval, break glass or legacy.
func (a ClientApproval) Usable() bool {
	switch a {
	case ApprovalApproved, ApprovalNotNeeded, ApprovalBreakGlass, ApprovalLegacy:
		return true
	}
	return false
}

// Active reports whether c may authenticate and obtain or use tokens:
// enabled, and usable under the two-person rule.
func (c Client) Active() bool { return !c.Disabled && c.Approval.Usable() }

// knowledgeTypes are the FHIR R4 conformance and terminology resource
// types: definitions that hold no patient data and that the
// authorization policies do not read. A backend client that only reads
// and searches these needs no approval (a terminology feed); every
// other type, including directory types (a PractitionerRole written by
// a client can give a clinician a treatment relationship) and types
// outside the Patient compartment (a Binary or a Provenance can hold
// clinical content), needs one.
var knowledgeTypes = map[string]bool{
	"CapabilityStatement": true, "CodeSystem": true, "CompartmentDefinition": true, "ConceptMap": true,
	"GraphDefinition": true, "ImplementationGuide": true, "MessageDefinition": true, "NamingSystem": true,
	"OperationDefinition": true, "SearchParameter": true, "StructureDefinition": true, "StructureMap": true,
	"TerminologyCapabilities": true, "ValueSet": true,
}

// NeedsApproval reports whether registering c needs a second security
// administrator: every App Launch app (it collects the tokens of the
// users who approve it, see the note above), and every backend client
// unless each of its scopes only reads or searches a conformance or
// terminology type (no wildcard, no create, update or delete). A client
// without scopes needs approval (fail closed).
func (c Client) NeedsApproval() bool {
	if c.Type != Backend || c.Scopes.Empty() {
		return true
	}
	for _, s := range c.Scopes.Scopes() {
		if s.Kind != scope.KindResource || s.Context != scope.System || !knowledgeTypes[s.Resource] ||
			s.Perms.Has(scope.Create) || s.Perms.Has(scope.Update) || s.Perms.Has(scope.Delete) {
			return true
		}
	}
	return false
}

// ClientRequestTTL is how long an approval request waits for a second
// administrator: three days, as a role request (identity.RequestTTL),
// so a request made before a weekend can be decided on the next working
// day while a forgotten one is not approved by mistake months later.
const ClientRequestTTL = 72 * time.Hour

// ClientRequest asks a second security administrator to approve client
// ClientID, registered [ApprovalPending]. Approving it makes the client
// [ApprovalApproved]; rejecting (or withdrawing) it makes the client
// [ApprovalRejected]. An expired request cannot be approved: the client
// stays pending until approval is requested again.
type ClientRequest struct {
	ID          string // "rqc_" and 32 hex digits
	ClientID    string
	RequestedBy string // account id of the requesting administrator
	Created     time.Time
	Expires     time.Time
}

// PendingClient is a client approval request with the client it asks
// approval for, as an approver reviews it.
type PendingClient struct {
	Request ClientRequest
	Client  Client
}

// ClientRequestPrefix starts every client request id (role requests
// start "rqs_"), so one approval endpoint serves both.
const ClientRequestPrefix = "rqc_"

// Expired reports whether r can no longer be approved at now.
func (r ClientRequest) Expired(now time.Time) bool { return !now.Before(r.Expires) }

// MayApprove returns [ErrSelfApproval] unless the administrator with
// account id approver may approve r for client c: neither the requester
// nor the administrator who registered the client.
func (r ClientRequest) MayApprove(approver string, c Client) error {
	if approver == "" || approver == r.RequestedBy || approver == c.RegisteredBy {
		return ErrSelfApproval
	}
	return nil
}

// NewClientRequestID returns a fresh request id (128 bits from rnd, or
// from crypto/rand when rnd is nil).
func NewClientRequestID(rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("generating request id: %w", err)
	}
	return ClientRequestPrefix + hex.EncodeToString(b[:]), nil
}
