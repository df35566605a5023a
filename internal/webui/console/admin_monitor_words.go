package console

import (
	"strconv"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/storage"
)

// The words of the access alerts' pages (admin_monitor.go): kinds and
// statuses as a privacy officer says them, and the filter's choices.

// categoryWords says each alert category in words.
var categoryWords = map[monitor.Category]string{
	monitor.CatFamily:      "family member (same surname and address)",
	monitor.CatNeighbour:   "neighbour (same street or postal code)",
	monitor.CatCoworker:    "co-worker (same department)",
	monitor.CatWorkforce:   "a member of staff",
	monitor.CatSelf:        "own record",
	monitor.CatVIP:         "VIP or restricted record",
	monitor.CatOffHours:    "outside rostered hours",
	monitor.CatVolume:      "unusual number of patients",
	monitor.CatBulk:        "bulk reads or exports",
	monitor.CatBrowsing:    "browsing (many unexplained patients)",
	monitor.CatUnexplained: "no explanation found",
	monitor.CatCredential:  "password guessing (stuffing or spraying)",
	monitor.CatMFA:         "second-factor failures",
	monitor.CatToken:       "refused tokens",
	monitor.CatEnumeration: "probing for records that do not exist",
	monitor.CatDenied:      "many refused requests",
	monitor.CatSession:     "one session from two addresses",
}

// categoryOrder is the kind filter's order: accesses to patients, then
// attacks on accounts.
var categoryOrder = []monitor.Category{
	monitor.CatFamily, monitor.CatNeighbour, monitor.CatCoworker, monitor.CatWorkforce, monitor.CatSelf, monitor.CatVIP,
	monitor.CatOffHours, monitor.CatVolume, monitor.CatBulk, monitor.CatBrowsing, monitor.CatUnexplained,
	monitor.CatCredential, monitor.CatMFA, monitor.CatToken, monitor.CatEnumeration, monitor.CatDenied, monitor.CatSession,
}

// attackCategory says whether c is about attacks on accounts (the
// categories a security administrator triages).
func attackCategory(c monitor.Category) bool {
	switch c {
	case monitor.CatCredential, monitor.CatMFA, monitor.CatToken, monitor.CatEnumeration, monitor.CatDenied, monitor.CatSession:
		return true
	}
	return false
}

// categoryText says c in words, or its code.
func categoryText(c monitor.Category) string {
	if w, ok := categoryWords[c]; ok {
		return w
	}
	return string(c)
}

// categoriesText says every category of an alert.
func categoriesText(cs []monitor.Category) string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, categoryText(c))
	}
	if len(out) == 0 {
		return "none listed"
	}
	return strings.Join(out, "; ")
}

// statusWords says each triage status.
var statusWords = map[string]string{
	storage.AlertOpen:           "open",
	storage.AlertConfirmed:      "confirmed",
	storage.AlertFalsePositive:  "false positive",
	storage.AlertNeedsInterview: "needs an interview",
}

// statusText says a status in words, or its code.
func statusText(s string) string {
	if w, ok := statusWords[s]; ok {
		return w
	}
	return s
}

// alertOption is one <option> of the alert pages' selects.
type alertOption struct {
	Value, Label string
	Selected     bool
}

// statusOptions are the status filter's choices; "" is the open queue
// (open and needs-interview), "all" every status.
func statusOptions(sel string) []alertOption {
	out := []alertOption{{Value: "", Label: "to do (open or needing an interview)"}}
	for _, s := range []string{storage.AlertOpen, storage.AlertNeedsInterview, storage.AlertConfirmed, storage.AlertFalsePositive} {
		out = append(out, alertOption{Value: s, Label: statusWords[s]})
	}
	out = append(out, alertOption{Value: "all", Label: "any status"})
	for i := range out {
		out[i].Selected = out[i].Value == sel
	}
	return out
}

// categoryOptions are the kind filter's choices (only the attack kinds
// for a security administrator).
func categoryOptions(sel monitor.Category, attacksOnly bool) []alertOption {
	out := []alertOption{{Value: "", Label: "any kind", Selected: sel == ""}}
	for _, c := range categoryOrder {
		if attacksOnly && !attackCategory(c) {
			continue
		}
		out = append(out, alertOption{Value: string(c), Label: categoryText(c), Selected: c == sel})
	}
	return out
}

// evidenceAction says an access's action: an audit action code of
// phivault's own log in words, another system's as it came.
func evidenceAction(source, action string) string {
	if source == "phivault" {
		return actionName(audit.Action(action))
	}
	return action
}

// outcomeWords says an access's outcome.
var outcomeWords = map[monitor.Outcome]string{
	monitor.OutcomeSuccess:  "done",
	monitor.OutcomeDenied:   "refused",
	monitor.OutcomeFailure:  "failed",
	monitor.OutcomeNotFound: "no such record",
}

// outcomeText says o in words, or its code.
func outcomeText(o monitor.Outcome) string {
	if w, ok := outcomeWords[o]; ok {
		return w
	}
	return string(o)
}

// leafIndex is the audit log position of a "leaf/<n>" reference, or ""
// for another reference.
func leafIndex(ref string) string {
	n, ok := strings.CutPrefix(ref, "leaf/")
	if !ok {
		return ""
	}
	if _, err := strconv.ParseUint(n, 10, 63); err != nil {
		return ""
	}
	return n
}

// scoreText shows a score with two decimals.
func scoreText(s float64) string { return strconv.FormatFloat(s, 'f', 2, 64) }
