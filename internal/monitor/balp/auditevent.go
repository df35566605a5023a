package balp

import (
	"strings"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/monitor"
)

type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type concept struct {
	Coding []coding `json:"coding"`
	Text   string   `json:"text"`
}

type extension struct {
	URL         string `json:"url"`
	ValueString string `json:"valueString"`
	ValueID     string `json:"valueId"`
	ValueURI    string `json:"valueUri"`
}

type agent struct {
	Type concept `json:"type"`
	Who  struct {
		Reference  string `json:"reference"`
		Display    string `json:"display"`
		Identifier struct {
			Value string `json:"value"`
		} `json:"identifier"`
	} `json:"who"`
	AltID     string      `json:"altId"`
	Name      string      `json:"name"`
	Requestor bool        `json:"requestor"`
	Policy    []string    `json:"policy"`
	Extension []extension `json:"extension"`
	Network   struct {
		Address string `json:"address"`
	} `json:"network"`
	PurposeOfUse []concept `json:"purposeOfUse"`
}

type entity struct {
	What struct {
		Reference string `json:"reference"`
	} `json:"what"`
	Role coding `json:"role"`
	Type coding `json:"type"`
}

type auditEvent struct {
	ResourceType   string      `json:"resourceType"`
	ID             string      `json:"id"`
	Type           coding      `json:"type"`
	Subtype        []coding    `json:"subtype"`
	Action         string      `json:"action"`
	Recorded       string      `json:"recorded"`
	Outcome        string      `json:"outcome"`
	OutcomeDesc    string      `json:"outcomeDesc"`
	PurposeOfEvent []concept   `json:"purposeOfEvent"`
	Agent          []agent     `json:"agent"`
	Entity         []entity    `json:"entity"`
	Extension      []extension `json:"extension"`
}

// requestor is the agent that asked: the one marked requestor, else the
// first that names a person or a login.
func (a *auditEvent) requestor() *agent {
	for i := range a.Agent {
		if a.Agent[i].Requestor {
			return &a.Agent[i]
		}
	}
	for i := range a.Agent {
		ag := &a.Agent[i]
		if ag.Who.Reference != "" || ag.Who.Identifier.Value != "" || ag.AltID != "" {
			return ag
		}
	}
	return nil
}

// patients are the Patient references among the entities, at most
// MaxPatients, without repeats.
func (a *auditEvent) patients() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range a.Entity {
		ref := reference(e.What.Reference)
		if !strings.HasPrefix(ref, ident.PatientPrefix) || seen[ref] {
			continue
		}
		seen[ref] = true
		out = append(out, ref)
		if len(out) == MaxPatients {
			break
		}
	}
	return out
}

func has(cs []coding, pred func(c coding) bool) bool {
	for _, c := range cs {
		if pred(c) {
			return true
		}
	}
	return false
}

func lower(c coding) string { return strings.ToLower(c.Code) }

func mentions(c coding, words ...string) bool {
	s := lower(c)
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// kind classifies the event and names its action.
func (a *auditEvent) kind(withPatient bool) (monitor.Kind, string) {
	sub := a.Subtype
	all := append([]coding{a.Type}, sub...)
	switch {
	case has(all, func(c coding) bool { return mentions(c, "mfa", "otp", "second-factor", "2fa", "totp", "webauthn") }):
		return monitor.KindMFA, "mfa"
	case has(all, func(c coding) bool { return mentions(c, "token", "introspect", "iti-71", "iti-102") }):
		return monitor.KindToken, "token"
	case a.Type.Code == "110114" || has(all, func(c coding) bool { return mentions(c, "login", "logon", "authenticat") }):
		if has(sub, func(c coding) bool { return c.Code == "110123" || mentions(c, "logout", "logoff") }) {
			return monitor.KindOther, "logout"
		}
		return monitor.KindLogin, "login"
	}
	action := ""
	for _, c := range sub {
		switch s := lower(c); {
		case strings.Contains(s, "export"):
			action = "export"
		case strings.Contains(s, "everything"):
			action = "$everything"
		case action == "" && c.Code != "":
			action = clean(c.Code)
		}
	}
	if action == "" {
		action = map[string]string{"C": "create", "R": "read", "U": "update", "D": "delete", "E": "execute"}[a.Action]
	}
	if withPatient {
		return monitor.KindAccess, action
	}
	return monitor.KindOther, action
}

// outcome maps AuditEvent.outcome (and outcomeDesc) to an Outcome.
func (a *auditEvent) outcome(k monitor.Kind) monitor.Outcome {
	if a.Outcome == "" || a.Outcome == "0" {
		return monitor.OutcomeSuccess
	}
	d := strings.ToLower(a.OutcomeDesc)
	switch {
	case strings.Contains(d, "not found") || strings.Contains(d, "404") || strings.Contains(d, "not-found") || strings.Contains(d, "unknown resource"):
		return monitor.OutcomeNotFound
	case strings.Contains(d, "forbidden") || strings.Contains(d, "denied") || strings.Contains(d, "403") || strings.Contains(d, "not authori"):
		return monitor.OutcomeDenied
	case k == monitor.KindAccess:
		return monitor.OutcomeDenied
	}
	return monitor.OutcomeFailure
}

func purpose(cs []concept) string {
	for _, c := range cs {
		for _, cd := range c.Coding {
			if cd.Code != "" {
				return clean(cd.Code)
			}
		}
	}
	return ""
}

func sessionExtension(xs []extension) string {
	for _, x := range xs {
		if strings.Contains(strings.ToLower(x.URL), "session") {
			return clean(firstNonEmpty(x.ValueString, x.ValueID, x.ValueURI))
		}
	}
	return ""
}
