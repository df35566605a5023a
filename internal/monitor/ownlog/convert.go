package ownlog

import (
	"slices"
	"strconv"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/monitor"
)

// BulkPatients is the number of patients one event must touch for its
// accesses to be marked Bulk: a search or history page that returned
// this many patients' records at once is a bulk read (the default FHIR
// page of phivault is 50 entries; a clinician's look-up returns a
// handful of patients, a list of a ward a few dozen).
const BulkPatients = 20

// RefusedToken is the refusal a request notes (web.NoteRefusal) when it
// presented a bearer token that was not accepted: its generic audit
// event carries it in Policies, which tells a refused token from a
// request that sent no credential at all.
const RefusedToken = "bearer-refused"

// Accounts maps an account id of phivault's log (audit.Agent.User) to
// the FHIR user it is bound to ("Practitioner/<id>", "Patient/<id>"),
// "" when none is known. The [Loader] implements it from the identity
// store.
type Accounts func(account string) string

// accessActions are the FHIR interactions (and phivault's record
// operations) that disclose patients' records: each patient an event of
// one of them touched is one access.
var accessActions = map[audit.Action]bool{
	audit.ActionRead: true, audit.ActionVRead: true, audit.ActionSearch: true,
	audit.ActionHistory: true, audit.ActionHistoryType: true, audit.ActionHistorySystem: true,
	audit.ActionCreate: true, audit.ActionUpdate: true, audit.ActionDelete: true,
	audit.ActionTransaction: true, audit.ActionBatch: true, audit.ActionEverything: true,
	audit.ActionErase:  true,
	audit.ActionLocate: true, audit.ActionBreakGlass: true,
	// A file of audit events about patients (the privacy office's
	// export of a search, a patient's accounting of accesses) tells who
	// looked at their records: an access to each patient it names.
	audit.ActionExport: true,
}

// bulkActions read many records by their nature, whatever the number of
// patients the event names.
var bulkActions = map[audit.Action]bool{
	audit.ActionHistorySystem: true,
}

// OfflinePolicy is the deciding policy of the trusted offline operator
// (record.PolicyOffline: `phivault import`, the demo's data load,
// reindex), copied here so that the monitor does not import the record
// service.
const OfflinePolicy = "offline-operator"

// loadActions write records in. Done by the offline operator they are a
// data load (`phivault import`, `phivault demo`), not a person opening
// charts: the operator already holds the data it writes, and a load of
// a thousand patients would otherwise be the day's largest "browsing"
// burst. An import (audit.ActionImport) is a data load whoever runs it.
// The operator's reads are still accesses: a person with the key file
// reading charts offline is exactly what monitoring must see.
var loadActions = map[audit.Action]bool{
	audit.ActionCreate: true, audit.ActionUpdate: true, audit.ActionTransaction: true, audit.ActionBatch: true,
}

// isDataLoad reports whether a successful event wrote data in rather
// than disclosed it.
func isDataLoad(ev audit.Event) bool {
	if ev.Action == audit.ActionImport {
		return true
	}
	return loadActions[ev.Action] && ev.Agent.Client == "cli" && slices.Contains(ev.Policies, OfflinePolicy)
}

// authKinds maps the authentication actions to their kind.
var authKinds = map[audit.Action]monitor.Kind{
	audit.ActionLogin: monitor.KindLogin, audit.ActionLoginPassword: monitor.KindLogin,
	audit.ActionLockout: monitor.KindLogin, audit.ActionSSOLogin: monitor.KindLogin,
	audit.ActionMFAVerify: monitor.KindMFA, audit.ActionMFAEnroll: monitor.KindMFA,
	audit.ActionRecoveryCodeUsed: monitor.KindMFA,
	audit.ActionTokenCreate:      monitor.KindToken,
}

// Convert turns the audit event at leaf index leaf into the monitoring
// events it holds:
//
//   - an access interaction (read, vread, search-type, history...,
//     $everything, create, update, delete, transaction, patient-locate,
//     break-glass, an export of audit events about patients) gives one KindAccess event per patient it touched,
//     except a data load (isDataLoad: an import, or a write by the
//     offline operator with policy OfflinePolicy), which is no access;
//     all marked Bulk when the event touched BulkPatients or more (or
//     its action reads in bulk); an attempt that touched no patient but
//     failed (denied, not found) gives one KindAccess event with Patient
//     "", or with the Patient it asked for when it named one; a success
//     that touched no patient gives none (nothing was disclosed);
//   - login, login-password, lockout and sso-login give KindLogin;
//     mfa-verify, mfa-enroll and recovery-code-used KindMFA; a refused
//     bearer token (RefusedToken) and a refused token-create KindToken;
//   - any other refused or failed request gives KindOther (it counts for
//     attack detection), and any other successful request made in a
//     session gives KindOther only when it names a session (a session
//     used from two addresses).
//
// Outcomes: success; denied (authorization refused); for an
// authentication step any refusal is a failure; a 404 is not-found
// (the record asked for does not exist: enumeration); any other error a
// failure. accounts maps the account to its FHIR user (nil: none): a
// Practitioner becomes the event's User, any other account is
// "User/<id>" (an API token "Client/<id>"). Purpose ETREAT marks a
// break-the-glass access. Convert is pure and safe for concurrent use.
func Convert(leaf int64, ev audit.Event, accounts Accounts) []monitor.Event {
	base := monitor.Event{
		Time:    ev.Time,
		Kind:    monitor.KindOther,
		Outcome: outcome(ev),
		User:    user(ev.Agent, accounts),
		Action:  string(ev.Action),
		Purpose: ev.Purpose,
		Address: ev.Agent.Address,
		Session: ev.Agent.Session,
		Ref:     "leaf/" + strconv.FormatInt(leaf, 10),
	}
	base.BreakGlass = ev.Purpose == "ETREAT" || (ev.Action == audit.ActionBreakGlass && base.Outcome == monitor.OutcomeSuccess)
	if k, ok := authKinds[ev.Action]; ok {
		base.Kind = k
		if base.Outcome == monitor.OutcomeDenied || base.Outcome == monitor.OutcomeNotFound {
			base.Outcome = monitor.OutcomeFailure
		}
		return []monitor.Event{base}
	}
	if ev.Status == 401 && slices.Contains(ev.Policies, RefusedToken) {
		base.Kind, base.Outcome = monitor.KindToken, monitor.OutcomeFailure
		return []monitor.Event{base}
	}
	if !accessActions[ev.Action] || (isDataLoad(ev) && base.Outcome == monitor.OutcomeSuccess) {
		if base.Outcome == monitor.OutcomeSuccess && base.Session == "" {
			return nil
		}
		return []monitor.Event{base}
	}
	base.Kind = monitor.KindAccess
	patients := ev.Patients
	if len(patients) == 0 {
		if base.Outcome == monitor.OutcomeSuccess {
			return nil
		}
		base.Patient = askedPatient(ev.Entities)
		return []monitor.Event{base}
	}
	base.Bulk = len(patients) >= BulkPatients || bulkActions[ev.Action]
	out := make([]monitor.Event, 0, len(patients))
	for _, p := range patients {
		e := base
		e.Patient = p
		out = append(out, e)
	}
	return out
}

// outcome maps an audit outcome and status to a monitoring outcome.
func outcome(ev audit.Event) monitor.Outcome {
	switch {
	case ev.Status == 404:
		return monitor.OutcomeNotFound
	case ev.Outcome == audit.OutcomeSuccess:
		return monitor.OutcomeSuccess
	case ev.Outcome == audit.OutcomeDenied:
		return monitor.OutcomeDenied
	default:
		return monitor.OutcomeFailure
	}
}

// user names the event's actor: the Practitioner the account is bound
// to when there is one, else the account itself.
func user(a audit.Agent, accounts Accounts) string {
	if a.User == "" || a.User == "unknown" {
		return ""
	}
	if accounts != nil {
		if r, ok := ident.ParseRef(accounts(a.User)); ok && r.Type == "Practitioner" {
			return r.String()
		}
	}
	if a.Client == "token" || a.Client == "smart-client" {
		return "Client/" + a.User
	}
	return "User/" + a.User
}

// askedPatient is the patient a failed attempt asked for, when the
// entity it names is a Patient ("Patient/<id>" or its version).
func askedPatient(entities []string) string {
	if len(entities) != 1 {
		return ""
	}
	typ, rest, _ := strings.Cut(entities[0], "/")
	id, _, _ := strings.Cut(rest, "/")
	if r := ident.RefTo(typ, id); r.IsPatient() && ident.ValidID(id) {
		return r.String()
	}
	return ""
}
