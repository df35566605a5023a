// Package auditapi serves the audit log to its readers: the
// transparency log under /log (ADR 0010: checkpoints, tiles and proofs
// for everyone, entry bundles for auditors) and the FHIR AuditEvent read
// API (search, read and $proof under /fhir/AuditEvent).
//
// httpapi mounts it: the /log routes on its mux behind its request
// middleware (steps 1–2 of httpapi's order), the AuditEvent handlers
// inside the FHIR API (steps 1–7: authenticated, gated, authorized). Its
// errors are *web.Error values that the mounting API's adapter answers
// as OperationOutcomes. It holds only the audit log's readers, the
// recorder of its own accesses and the few functions of the mounting API
// it needs (authentication, the caller's audit agent, JSON output):
// never the record or the keys (internal/archtest).
//
// # Security invariants
//
//   - The log is append-only: AuditEvent has no create, update, delete
//     or history (Refuse, 405).
//   - Only auditors and privacy officers read every event; a patient
//     reads their own view of the events that touched their record.
//     Every read (by the AuditLog) and every refusal is itself audited
//     before the answer, fail closed (503 when it cannot be).
//   - Public /log endpoints reveal hashes of salted leaves only; entry
//     bundles need an auditor's credential and are never cached shared.
package auditapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/web"
)

// Handler serves /log and the AuditEvent read API.
type Handler struct {
	events   AuditLog        // nil: /fhir/AuditEvent answers 404
	tlog     TransparencyLog // nil: no /log routes, no $proof
	rec      Recorder        // audits entry-bundle reads
	verifier string
	baseURL  string
	now      func() time.Time

	authenticate func(w http.ResponseWriter, r *http.Request) (authn.Principal, bool)
	principal    func(r *http.Request) authn.Principal
	agent        func(r *http.Request) audit.Agent
	fhirUser     func(ctx context.Context, userID string) (string, error)
	writeJSON    func(w http.ResponseWriter, r *http.Request, status int, v any)
}

// Options configures a Handler.
type Options struct {
	AuditLog AuditLog        // optional: GET /fhir/AuditEvent (auditevent.go)
	Log      TransparencyLog // optional: /log routes (log.go) and $proof
	Recorder Recorder        // required with Log: audits entry-bundle reads
	Verifier string          // the log's note verifier key, given with event proofs
	BaseURL  string          // public base URL, for the links of search bundles
	Now      func() time.Time

	// Authenticate authenticates an entry-bundle request as the FHIR API
	// does (a credential that may reach PHI); when it refuses, it has
	// answered and returns false.
	Authenticate func(w http.ResponseWriter, r *http.Request) (authn.Principal, bool)
	// Principal is the authenticated principal of a FHIR API request.
	Principal func(r *http.Request) authn.Principal
	// Agent is the audit agent of a FHIR API request.
	Agent func(r *http.Request) audit.Agent
	// FHIRUser is the fhirUser reference of an account ("Patient/<id>"
	// for a patient); nil: patients do not read the log.
	FHIRUser func(ctx context.Context, userID string) (string, error)
	// WriteJSON writes v in the request's negotiated JSON media type.
	WriteJSON func(w http.ResponseWriter, r *http.Request, status int, v any)
}

// New returns a Handler.
func New(o Options) *Handler {
	return &Handler{events: o.AuditLog, tlog: o.Log, rec: o.Recorder, verifier: o.Verifier, baseURL: o.BaseURL, now: o.Now,
		authenticate: o.Authenticate, principal: o.Principal, agent: o.Agent, fhirUser: o.FHIRUser, writeJSON: o.WriteJSON}
}

// outcome is an error with one OperationOutcome issue: its FHIR issue
// type and its public diagnostic (which is also the cause in the log).
func outcome(status int, code, msg string) *web.Error {
	return &web.Error{Status: status, Code: code, Msg: msg, Err: errors.New(msg)}
}
