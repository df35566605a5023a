package console

import (
	"strings"

	"github.com/phivault/phivault/internal/audit"
)

// Audit actions in words, for the privacy officer and the auditor: the
// audit search's choices and results, the event page and the exports
// say "viewed the chart", not "read". The raw code stays beside the
// words (it is what the FHIR AuditEvent and the SIEM carry).

// actionWords says each action the console offers, staff-facing.
var actionWords = map[audit.Action]string{
	audit.ActionRead:               "viewed a record",
	audit.ActionVRead:              "viewed an earlier version of a record",
	audit.ActionSearch:             "searched records",
	audit.ActionHistory:            "viewed the history of a record",
	audit.ActionHistoryType:        "viewed the history of a kind of record",
	audit.ActionHistorySystem:      "viewed the history of the whole server",
	audit.ActionCapabilities:       "read the server's capabilities",
	audit.ActionRequest:            "made a request",
	audit.ActionRateLimit:          "was slowed down (too many attempts)",
	audit.ActionCreate:             "added a record",
	audit.ActionUpdate:             "changed a record",
	audit.ActionDelete:             "deleted a record",
	audit.ActionTransaction:        "changed several records at once",
	audit.ActionBatch:              "sent a batch of requests",
	audit.ActionEverything:         "copied a patient's whole record",
	audit.ActionBulkExport:         "exported records in bulk ($export)",
	audit.ActionExportStatus:       "checked a bulk export's status",
	audit.ActionExportDownload:     "downloaded a bulk export file",
	audit.ActionExportDelete:       "deleted a bulk export",
	audit.ActionErase:              "erased a patient's record",
	audit.ActionImport:             "imported records",
	audit.ActionKeyRotate:          "rotated a key",
	audit.ActionLogin:              "signed in",
	audit.ActionLoginPassword:      "entered a correct password",
	audit.ActionLogout:             "signed out",
	audit.ActionLockout:            "was locked out",
	audit.ActionMFAEnroll:          "enrolled a second factor",
	audit.ActionMFAVerify:          "gave a second factor",
	audit.ActionRecoveryCodeUsed:   "used a recovery code",
	audit.ActionSessionRevoke:      "ended a session",
	audit.ActionSSOLogin:           "signed in through single sign-on",
	audit.ActionTokenCreate:        "created an API token",
	audit.ActionClientRegister:     "registered an app",
	audit.ActionClientDisable:      "disabled an app",
	audit.ActionUserCreate:         "created an account",
	audit.ActionUserDisable:        "disabled an account",
	audit.ActionUserEnable:         "enabled an account",
	audit.ActionUserSetRoles:       "changed an account's roles",
	audit.ActionUserResetMFA:       "reset an account's second factor",
	audit.ActionUserSetPassword:    "set a password",
	audit.ActionUserAdmin:          "was refused an administration page",
	audit.ActionPasskeyAdd:         "added a passkey",
	audit.ActionPasskeyRemove:      "removed a passkey",
	audit.ActionBreakGlass:         "broke the glass (emergency access)",
	audit.ActionLocate:             "looked up patients outside their care (name and birth date)",
	audit.ActionReviewClose:        "closed a break-the-glass review",
	audit.ActionReviewRead:         "read a break-the-glass reason",
	audit.ActionPolicyChange:       "changed the access policy",
	audit.ActionPolicyExplain:      "asked why the policy decides",
	audit.ActionReindex:            "rebuilt the search index",
	audit.ActionAccessReport:       "reported an access they do not recognise",
	audit.ActionAccessReportRead:   "read the access reports",
	audit.ActionAccessReportClose:  "closed an access report",
	audit.ActionPeopleLookup:       "looked up staff by name",
	audit.ActionExport:             "exported audit events",
	audit.ActionLogRead:            "read the audit log's entries",
	audit.ActionPasskeyRename:      "renamed a passkey",
	audit.ActionClientGrantRequest: "asked to approve an app",
	audit.ActionClientGrantApprove: "approved an app",
	audit.ActionClientGrantReject:  "rejected an app",
	audit.ActionUserGrantRequest:   "asked for a role change",
	audit.ActionUserGrantApprove:   "approved a role change",
	audit.ActionUserGrantReject:    "rejected a role change",
	audit.ActionConsentRepair:      "repaired a consent",
	audit.ActionMFAEnrollStart:     "started enrolling a second factor",
	audit.ActionKeyEpoch:           "made erasures final (key epoch)",
	audit.ActionKeyEscrow:          "escrowed the key file (for backups)",
	audit.ActionLogAccept:          "accepted the audit log after a lost checkpoint",
	audit.ActionAuthRowsStart:      "sealed the access rows",
	audit.ActionAuthRowRefused:     "ALARM: an access row was tampered with",
	audit.ActionKeyRowTampered:     "ALARM: a key row was tampered with",
	audit.ActionLedgerStart:        "started the ledger",
	audit.ActionLedgerBaseline:     "took a ledger baseline",
	audit.ActionLedgerRewrite:      "rewrote the ledger",
	audit.ActionMonitorAlert:       "raised or updated an access alert",
	audit.ActionMonitorAlertRead:   "read access alerts",
	audit.ActionMonitorDisposition: "decided on an access alert",
	audit.ActionMonitorAssign:      "assigned an access alert",
	audit.ActionMonitorNote:        "added a note to an access alert",
	audit.ActionMonitorSuppress:    "made a suppression rule for access alerts",
	audit.ActionMonitorIngest:      "ingested another system's access log",
	audit.ActionBackup:             "took a backup",
	audit.ActionBackupPrune:        "deleted an old backup (retention)",
	audit.ActionBackupDrill:        "ran a restore drill",
}

// typeWords names the resource types whose reads and searches have a
// plainer name than "a record".
var typeWords = map[string][2]string{ // type → read, search
	"Patient":            {"viewed the chart", "searched patients"},
	"AuditEvent":         {"viewed an audit event", "searched the audit log"},
	"Consent":            {"viewed a consent", "searched consents"},
	"Observation":        {"viewed a result", "searched results"},
	"Condition":          {"viewed a health problem", "searched health problems"},
	"MedicationRequest":  {"viewed a prescription", "searched medications"},
	"AllergyIntolerance": {"viewed an allergy", "searched allergies"},
	"Encounter":          {"viewed a visit", "searched visits"},
	"DocumentReference":  {"viewed a note", "searched notes and documents"},
}

// actionText says what an event did, in words: the action, made plainer
// by the resource type of a read or a search ("viewed the chart",
// "searched patients"). An unknown action shows its code.
func actionText(ev audit.Event) string {
	typ := ""
	if ev.Query != "" {
		typ, _, _ = strings.Cut(ev.Query, "?")
	} else if len(ev.Entities) > 0 {
		typ, _, _ = strings.Cut(ev.Entities[0], "/")
	}
	if w, ok := typeWords[typ]; ok {
		switch ev.Action {
		case audit.ActionRead, audit.ActionVRead:
			return w[0]
		case audit.ActionSearch:
			return w[1]
		}
	}
	return actionName(ev.Action)
}

// actionName says an action code in words, or the code.
func actionName(a audit.Action) string {
	if w, ok := actionWords[a]; ok {
		return w
	}
	return string(a)
}

// actionOption is one choice of the action filter.
type actionOption struct{ Code, Label string }

// actionOptions are the filter's choices, in the form's order.
func actionOptions() []actionOption {
	out := make([]actionOption, 0, len(auditActions))
	for _, a := range auditActions {
		out = append(out, actionOption{Code: a, Label: actionName(audit.Action(a))})
	}
	return out
}
