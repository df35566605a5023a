package portal

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// Sharing choices: the patient's FHIR Consent (scope patient-privacy),
// written through the record service with the patient's own guard
// (policy patient-own-consent) and enforced by the authorization engine
// (consent-deny, and explicit permits for the sensitive categories).
//
// The portal writes one Consent per patient, of this shape:
//
//	provision: permit (no criteria: everything the policies allow)
//	  provision: deny,   securityLabel [withheld categories]
//	  provision: permit, securityLabel [shared categories]
//	  provision: deny,   actor [blocked people]
//
// Withheld categories are hidden from everyone, the care team included;
// shared ones are opened to every clinician who may otherwise see the
// record (the explicit permit of docs/authorization.md); categories in
// neither list keep the default (the care team only, Part 2 records
// only with a consent naming the person). A blocked person is refused
// the whole record. Deny wins among the exceptions.

// sensitiveCategories are the security labels a patient decides on, in
// the order the page shows them (docs/authorization.md).
var sensitiveCategories = []struct{ Code, Label, Explain string }{
	{"R", "restricted information", "Parts of your record your clinicians marked as more sensitive than usual."},
	{"V", "very restricted information", "The most sensitive parts of your record, marked so by your clinicians."},
	{"PSY", "mental health", "Diagnoses, notes and treatment about your mental health, such as therapy or psychiatric care."},
	{"HIV", "HIV and AIDS", "HIV tests, results and treatment."},
	{"ETH", "substance use treatment", "Care for alcohol or drug use."},
	{"SDV", "sexual and domestic violence", "What you told us about sexual or domestic violence, and the care that followed."},
	{"42CFRPart2", "substance use treatment records protected by federal law (42 CFR Part 2)", "Records of a substance use programme that federal law protects more strictly: without your consent nobody may see them, except in an emergency."},
}

const (
	sysConsentScope = "http://terminology.hl7.org/CodeSystem/consentscope"
	sysActCode      = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysConfid       = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	sysParticipant  = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysLOINC        = "http://loinc.org"
)

// labelSystem is the code system of a sensitivity label.
func labelSystem(code string) string {
	switch code {
	case "R", "V":
		return sysConfid
	}
	return sysActCode
}

// maxBlocked bounds the people one consent blocks (authz parses at most
// 64 criteria per provision).
const maxBlocked = 32

// consentChoice is one category row of the form.
type consentChoice struct {
	Code, Label, Choice string // Choice: "default", "share" or "withhold"
	Default             string // what the clinic's rules do without a choice
	Explain             string // what the category holds, in plain words
}

// blockChoice is one person the patient may block.
type blockChoice struct {
	Ref, Name string
	Blocked   bool
}

type consentView struct {
	ID         string
	Categories []consentChoice
	People     []blockChoice
	Summary    []string // the consent in force, in plain words
	Saved      bool
	Error      string
}

// currentConsent is the patient's patient-privacy Consent, if any.
type currentConsent struct {
	ID       string
	Withheld []string
	Shared   []string
	Blocked  []blockChoice
}

// consentID is the id of the Consent the portal keeps for patient pid
// (Consent has no search parameters here, so the portal reads and
// writes a known id; update-as-create makes the first save).
func consentID(pid string) string {
	id := "privacy-" + pid
	if len(id) > 64 { // FHIR ids hold at most 64 characters
		id = "privacy-" + pid[len(pid)-56:]
	}
	return id
}

func (u *UI) loadConsent(r *http.Request, v *site.Viewer, pid string) (currentConsent, error) {
	var cur currentConsent
	st, err := u.rec.Read(r.Context(), portalCaller(r, v), "Consent", consentID(pid))
	var re *record.Error
	if errors.As(err, &re) && (record.StatusCode(re) == http.StatusNotFound || record.StatusCode(re) == http.StatusGone) {
		return cur, nil
	}
	if err != nil {
		return cur, err
	}
	var c chartview.Obj
	if err := json.Unmarshal(st.JSON, &c); err != nil {
		return cur, err
	}
	if c.Str("status") != "active" || !hasScope(c) || c.Obj("patient").Str("reference") != ident.PatientRef(pid).String() {
		return cur, nil
	}
	cur.ID = c.Str("id")
	for _, p := range c.Obj("provision").List("provision") {
		var labels []string
		for _, l := range p.List("securityLabel") {
			labels = append(labels, l.Str("code"))
		}
		switch {
		case p.Str("type") == "deny" && len(labels) > 0:
			cur.Withheld = append(cur.Withheld, labels...)
		case p.Str("type") == "permit" && len(labels) > 0:
			cur.Shared = append(cur.Shared, labels...)
		case p.Str("type") == "deny":
			for _, a := range p.List("actor") {
				ref := a.Obj("reference")
				cur.Blocked = append(cur.Blocked, blockChoice{Ref: ref.Str("reference"), Name: ref.Str("display"), Blocked: true})
			}
		}
	}
	return cur, nil
}

func hasScope(c chartview.Obj) bool {
	for _, cd := range c.Obj("scope").List("coding") {
		if cd.Str("code") == "patient-privacy" {
			return true
		}
	}
	return false
}

// blockCandidates are the practitioners who accessed the record lately
// (from the access log, names from the identity directory).
func (u *UI) blockCandidates(r *http.Request, v *site.Viewer, pid string) ([]blockChoice, error) {
	if u.access == nil {
		return nil, nil
	}
	c := portalCaller(r, v)
	entries, err := u.access.Search(r.Context(), index.Caller{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID},
		index.Filter{Patient: ident.PatientRef(pid).String(), Limit: index.MaxLimit})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []blockChoice
	for _, e := range entries {
		id := e.Event.Agent.User
		if id == "" || id == v.P.ID || seen[id] {
			continue
		}
		seen[id] = true
		usr, err := u.users.ByID(r.Context(), id)
		if err != nil || !strings.HasPrefix(usr.FHIRUser, "Practitioner/") {
			continue
		}
		name := usr.DisplayName
		if name == "" {
			name = usr.Username
		}
		out = append(out, blockChoice{Ref: usr.FHIRUser, Name: name})
	}
	return out, nil
}

func (u *UI) consentView(r *http.Request, v *site.Viewer, pid string) (consentView, error) {
	cur, err := u.loadConsent(r, v, pid)
	if err != nil {
		return consentView{}, err
	}
	cands, err := u.blockCandidates(r, v, pid)
	if err != nil {
		return consentView{}, err
	}
	view := consentView{ID: cur.ID}
	for _, sc := range sensitiveCategories {
		ch := "default"
		switch {
		case slices.Contains(cur.Withheld, sc.Code):
			ch = "withhold"
		case slices.Contains(cur.Shared, sc.Code):
			ch = "share"
		}
		def := "Clinic rules: my care team only"
		if sc.Code == "42CFRPart2" {
			// part2-needs-consent: without a consent nobody but the
			// patient (and an emergency grant) reaches these records.
			def = "Clinic rules: nobody without my consent, except in an emergency"
		}
		view.Categories = append(view.Categories, consentChoice{Code: sc.Code, Label: sc.Label, Choice: ch, Default: def, Explain: sc.Explain})
	}
	view.People = append(view.People, cur.Blocked...)
	for _, c := range cands {
		if !slices.ContainsFunc(view.People, func(b blockChoice) bool { return b.Ref == c.Ref }) {
			view.People = append(view.People, c)
		}
	}
	view.Summary = consentSummary(cur)
	return view, nil
}

// consentSummary says the consent in force in plain words.
func consentSummary(cur currentConsent) []string {
	if cur.ID == "" {
		return []string{"You have not made any sharing choices. Your record is shared as the clinic's rules allow: sensitive information only with your care team."}
	}
	label := func(code string) string {
		for _, sc := range sensitiveCategories {
			if sc.Code == code {
				return sc.Label
			}
		}
		return code
	}
	var out []string
	if len(cur.Withheld) > 0 {
		var ls []string
		for _, c := range cur.Withheld {
			ls = append(ls, label(c))
		}
		out = append(out, "Hidden from everyone, your care team included: "+strings.Join(ls, ", ")+".")
	}
	if len(cur.Shared) > 0 {
		var ls []string
		for _, c := range cur.Shared {
			ls = append(ls, label(c))
		}
		out = append(out, "Shared with every clinician who treats you: "+strings.Join(ls, ", ")+".")
	}
	for _, b := range cur.Blocked {
		name := b.Name
		if name == "" {
			name = "a person"
		}
		out = append(out, name+" may not see any of your record.")
	}
	if len(out) == 0 {
		out = append(out, "Your record is shared as the clinic's rules allow: sensitive information only with your care team.")
	}
	return out
}

func (u *UI) consentPage(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	pid, _ := ownPatient(v)
	view, err := u.consentView(r, v, pid)
	if err != nil {
		return err
	}
	view.Saved = r.URL.Query().Get("saved") == "1"
	u.site.Render(w, r, http.StatusOK, "portal-consent", site.PageData{Title: "Sharing choices", Viewer: v, Nav: "portal", Data: view})
	return nil
}

// consentSubmit writes the patient's Consent from the form. Only known
// categories and people offered on the page (blocked before, or seen in
// the access log) are accepted.
func (u *UI) consentSubmit(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	if v.ProxyFor != "" {
		// The policies refuse a proxy's Consent; say so plainly.
		return site.PageErr(http.StatusForbidden, "Only the patient changes sharing choices",
			"As a proxy you can read this record, but sharing choices are the patient's own to make.", errProxyConsent)
	}
	pid, _ := ownPatient(v)
	view, err := u.consentView(r, v, pid)
	if err != nil {
		return err
	}
	var withhold, share []any
	for _, sc := range sensitiveCategories {
		cd := map[string]any{"system": labelSystem(sc.Code), "code": sc.Code}
		switch r.PostForm.Get("cat-" + sc.Code) {
		case "withhold":
			withhold = append(withhold, cd)
		case "share":
			share = append(share, cd)
		case "default", "":
		default:
			return site.PageErr(http.StatusBadRequest, "Form not understood", "Choose one of the offered options and try again.", errors.New("bad consent choice"))
		}
	}
	var actors []any
	for _, ref := range r.PostForm["block"] {
		i := slices.IndexFunc(view.People, func(b blockChoice) bool { return b.Ref == ref })
		if i < 0 {
			return site.PageErr(http.StatusBadRequest, "Form not understood", "Choose people from the list and try again.", errors.New("unknown person to block"))
		}
		actors = append(actors, map[string]any{
			"role":      map[string]any{"coding": []any{map[string]any{"system": sysParticipant, "code": "PRCP"}}},
			"reference": map[string]any{"reference": ref, "display": view.People[i].Name},
		})
	}
	if len(actors) > maxBlocked {
		return site.PageErr(http.StatusBadRequest, "Too many people", "You can block at most 32 people.", errors.New("too many blocked"))
	}
	var subs []any
	if withhold != nil {
		// Hidden from everyone but the patient: the nested permit naming
		// the patient keeps their own access (consent-deny binds every
		// session, the patient's included).
		subs = append(subs, map[string]any{"type": "deny", "securityLabel": withhold, "provision": []any{map[string]any{
			"type": "permit",
			"actor": []any{map[string]any{
				"role":      map[string]any{"coding": []any{map[string]any{"system": sysParticipant, "code": "PRCP"}}},
				"reference": map[string]any{"reference": ident.PatientRef(pid).String()},
			}},
		}}})
	}
	if share != nil {
		subs = append(subs, map[string]any{"type": "permit", "securityLabel": share})
	}
	if actors != nil {
		subs = append(subs, map[string]any{"type": "deny", "actor": actors})
	}
	prov := map[string]any{"type": "permit"}
	if subs != nil {
		prov["provision"] = subs
	}
	res := fhir.Resource{
		"resourceType": "Consent",
		"status":       "active",
		"scope":        map[string]any{"coding": []any{map[string]any{"system": sysConsentScope, "code": "patient-privacy"}}},
		"category":     []any{map[string]any{"coding": []any{map[string]any{"system": sysLOINC, "code": "59284-0"}}}},
		"patient":      map[string]any{"reference": ident.PatientRef(pid).String()},
		"dateTime":     u.now().UTC().Format("2006-01-02T15:04:05Z"),
		"policyRule":   map[string]any{"coding": []any{map[string]any{"system": sysActCode, "code": "OPTIN"}}},
		"provision":    prov,
	}
	id := consentID(pid)
	res["id"] = id
	_, _, err = u.rec.Update(r.Context(), portalCaller(r, v), "Consent", id, res, 0)
	if chartview.Denied(err) {
		return site.PageErr(http.StatusForbidden, "Not saved", "Your sharing choices could not be saved. Contact the privacy office.", err)
	}
	if err != nil {
		return err
	}
	return site.Redirect(w, r, "/portal/consent?saved=1")
}
