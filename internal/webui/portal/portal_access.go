package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/site"
)

// "Who accessed my record": the audit events that touched the signed-in
// patient's record, newest first, read through the audit index with the
// patient's own record as a filter the request cannot change. The
// filters in the URL are dates, an action code, an opaque account id and
// a log position: none is PHI.

// accessPageSize is one page of the access list (STYLE rule 24).
const accessPageSize = 50

// maxAgentParam bounds the "who" filter (an account or token id).
const maxAgentParam = 128

// purposeWords says a v3 PurposeOfUse code in plain words.
var purposeWords = map[string]string{
	"TREAT":   "your care",
	"ETREAT":  "emergency access",
	"BTG":     "emergency access (break the glass)",
	"ERTREAT": "emergency room treatment",
	"PATRQT":  "at your request",
	"HPAYMT":  "payment",
	"HOPERAT": "operations",
	"HRESCH":  "research",
	"PUBHLTH": "public health",
	"HMARKT":  "marketing",
	"HLEGAL":  "legal",
	"CAREMGT": "care management",
}

// actionWords says an audit action in plain words.
var actionWords = map[audit.Action]string{
	audit.ActionRead:          "looked at",
	audit.ActionVRead:         "looked at an earlier version of",
	audit.ActionSearch:        "searched",
	audit.ActionHistory:       "looked at the history of",
	audit.ActionHistoryType:   "looked at the history of",
	audit.ActionHistorySystem: "looked at the history of",
	audit.ActionCreate:        "added",
	audit.ActionUpdate:        "changed",
	audit.ActionDelete:        "deleted",
	audit.ActionTransaction:   "changed several parts of",
	audit.ActionBatch:         "worked on several parts of",
	audit.ActionEverything:    "copied the whole of",
	audit.ActionBulkExport:    "exported (bulk data) parts of",
	audit.ActionErase:         "erased",
	audit.ActionImport:        "imported",
	audit.ActionBreakGlass:    "opened emergency access to",
}

// actionPhrases say the privacy office's actions on a record whole:
// their entities are reports, requests and reviews, not parts of the
// record.
var actionPhrases = map[audit.Action]string{
	audit.ActionAccessReport:      "reported an access to your record",
	audit.ActionAccessReportRead:  "read the access reports about your record",
	audit.ActionAccessReportClose: "closed an access report about your record",
	audit.ActionAmendmentRequest:  "asked to correct your record",
	audit.ActionAmendmentRead:     "read the correction requests about your record",
	audit.ActionAmendmentDecide:   "decided on a correction request about your record",
	audit.ActionReviewClose:       "reviewed an emergency access to your record",
	audit.ActionReviewRead:        "read the reason given for an emergency access to your record",
}

// crudeWords are the action filter's choices (index.Filter.CRUDE).
var crudeWords = []option{
	{Value: "", Label: "any action"},
	{Value: "R", Label: "looked at"},
	{Value: "C", Label: "added"},
	{Value: "U", Label: "changed"},
	{Value: "D", Label: "deleted"},
	{Value: "E", Label: "other operations"},
}

// option is one <option> of a select.
type option struct {
	Value, Label string
	Selected     bool
}

type accessRow struct {
	ID       string // leaf index: the FHIR AuditEvent id and the log position
	When     time.Time
	Who      string
	Role     string
	Org      string
	What     string
	Why      string
	Outcome  string
	You      bool
	Agent    string // account id, for the "who" filter and the consent's block list
	FHIRUser string // the agent's Practitioner reference, when linked
	Action   string // the raw action code, for verify.js's match check
	// UnderReview: a confirmed monitoring alert covers this access
	// (portal_review.go).
	UnderReview bool
}

type accessView struct {
	Rows []accessRow
	// Groups are Rows gathered into visits (group.go): what the page
	// shows, one line each, every entry still listed and verifiable.
	Groups []accessGroup
	Own    bool // the patient's own views are included
	// ExportCSV and ExportPDF are the download links of this list (its
	// filters, no page position); "" when no file can be made.
	ExportCSV, ExportPDF string
	From, To             string
	Actions              []option
	Who                  string
	Agents               []option
	Next                 string // query of the next page; "" on the last
	Filtered             bool
	Error                string
	Available            bool
	// VerifierKey is the log's published verifier key (the trust
	// page's), against which verify.js checks every proof; "" when the
	// log status is unavailable (verify.js then uses the proof's own key
	// and says so).
	VerifierKey string
	// ReviewUnknown: whether accesses are under review could not be
	// checked (portal_review.go).
	ReviewUnknown bool
}

// accessQuery is the parsed filter of the access page.
type accessQuery struct {
	from, to time.Time
	fromS    string
	toS      string
	crude    string
	agent    string
	before   int64
	own      bool // include the patient's own views (?own=1)
}

func parseAccessQuery(q url.Values) (accessQuery, error) {
	var a accessQuery
	if s := q.Get("from"); s != "" {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return a, errors.New("the start date must be a date")
		}
		a.from, a.fromS = t, s
	}
	if s := q.Get("to"); s != "" {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return a, errors.New("the end date must be a date")
		}
		a.to, a.toS = t.AddDate(0, 0, 1), s // the whole end day
	}
	switch s := q.Get("action"); s {
	case "", "C", "R", "U", "D", "E":
		a.crude = s
	default:
		return a, errors.New("choose an action from the list")
	}
	if s := q.Get("who"); s != "" {
		if len(s) > maxAgentParam || strings.ContainsFunc(s, func(r rune) bool { return r < '!' || r > '~' }) {
			return a, errors.New("choose a person from the list")
		}
		a.agent = s
	}
	switch q.Get("own") {
	case "":
	case "1":
		a.own = true
	default:
		return a, errors.New("the page link is not valid")
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return a, errors.New("the page link is not valid")
		}
		a.before = n
	}
	return a, nil
}

func (u *UI) portalAccess(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	id, _ := ownPatient(v)
	view := accessView{Available: u.access != nil}
	q, qerr := parseAccessQuery(r.URL.Query())
	view.From, view.To, view.Who, view.Own = q.fromS, q.toS, q.agent, q.own
	view.Filtered = q.fromS != "" || q.toS != "" || q.crude != "" || q.agent != "" || q.own
	for _, o := range crudeWords {
		o.Selected = o.Value == q.crude
		view.Actions = append(view.Actions, o)
	}
	if u.auditLog != nil {
		if st, err := u.auditLog.TrustStatus(r.Context()); err == nil {
			view.VerifierKey = st.VerifierKey
		}
	}
	status := http.StatusOK
	switch {
	case u.access == nil:
	case qerr != nil:
		view.Error, status = qerr.Error(), http.StatusBadRequest
	default:
		rows, next, err := u.accessRows(r, v, id, q)
		if err != nil {
			return err
		}
		view.ReviewUnknown = !u.markUnderReview(r, id, rows)
		view.Rows = rows
		view.Groups = groupVisits(rows, visitGap)
		if u.trail != nil {
			eq := q.values()
			eq.Set("format", "csv")
			view.ExportCSV = "/portal/access/export?" + eq.Encode()
			eq.Set("format", "pdf")
			view.ExportPDF = "/portal/access/export?" + eq.Encode()
		}
		if next > 0 {
			nq := q.values()
			nq.Set("before", strconv.FormatInt(next, 10))
			view.Next = nq.Encode()
		}
		seen := map[string]bool{}
		view.Agents = []option{{Value: "", Label: "anyone"}}
		if q.agent != "" {
			view.Agents = append(view.Agents, option{Value: q.agent, Label: "the person chosen", Selected: true})
			seen[q.agent] = true
		}
		for _, row := range rows {
			if row.Agent != "" && !seen[row.Agent] {
				seen[row.Agent] = true
				view.Agents = append(view.Agents, option{Value: row.Agent, Label: row.Who})
			}
		}
	}
	u.site.Render(w, r, status, "portal-access", site.PageData{Title: "Who accessed my record", Viewer: v, Nav: "portal", Data: view})
	return nil
}

// values is the query of q without its page position: the filters a
// page link or an export keeps.
func (q accessQuery) values() url.Values {
	nq := url.Values{}
	for k, val := range map[string]string{"from": q.fromS, "to": q.toS, "action": q.crude, "who": q.agent} {
		if val != "" {
			nq.Set(k, val)
		}
	}
	if q.own {
		nq.Set("own", "1")
	}
	return nq
}

// ownScan is how many events one page reads when the patient's own
// views are left out: the index has no "not this agent" term, so the
// page reads a wider window in ONE audited search and drops the
// patient's own entries (each visit to this page adds one). Bounded by
// index.MaxLimit (STYLE rule 24).
const ownScan = 250

// accessRows reads one page of events that touched Patient/id and says
// each in plain words. next is the position to continue before, or 0.
// Unless q.own, the patient's own entries are left out: the page reads
// up to ownScan events and keeps the first accessPageSize others.
func (u *UI) accessRows(r *http.Request, v *site.Viewer, id string, q accessQuery) ([]accessRow, int64, error) {
	return u.accessRowsLimit(r, v, id, q, accessPageSize)
}

func (u *UI) accessRowsLimit(r *http.Request, v *site.Viewer, id string, q accessQuery, limit int) ([]accessRow, int64, error) {
	c := portalCaller(r, v)
	scan := limit
	if !q.own && q.agent != v.P.ID {
		scan = max(limit, min(ownScan, index.MaxLimit))
	}
	f := index.Filter{Patient: ident.PatientRef(id).String(), CRUDE: q.crude, Agent: q.agent, Since: q.from, Until: q.to,
		Before: q.before, Limit: scan}
	entries, err := u.access.Search(r.Context(), index.Caller{Agent: c.Agent, Purpose: c.Purpose, RequestID: c.RequestID}, f)
	if errors.Is(err, audit.ErrUnavailable) {
		return nil, 0, &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
			Msg: "The access log cannot be read right now, so nothing was shown. Try again in a moment.", RetryAfter: time.Second, Err: err}
	}
	if err != nil {
		return nil, 0, err
	}
	names := map[string][3]string{} // account id → display name, FHIR user, organisation
	rows := make([]accessRow, 0, min(len(entries), limit))
	var next int64
	for i, e := range entries {
		if len(rows) == limit {
			// A full page: continue before the last entry kept.
			next = entries[i-1].Index
			break
		}
		if !q.own && q.agent != v.P.ID && e.Event.Agent.User != "" && e.Event.Agent.User == v.P.ID {
			continue // the patient's own view, left out unless asked for
		}
		// The patient's own view: no other patient, none of their
		// resources, no staff address or session (ADR 0018), no
		// monitoring event (ADR 0046).
		ev, ok := e.Event.PatientView(ident.PatientRef(id).String())
		if !ok {
			continue
		}
		row := accessRow{ID: strconv.FormatInt(e.Index, 10), When: ev.Time, Role: roleWords(ev.Agent.Role),
			Why: purposeText(ev.Purpose), What: whatText(ev), Outcome: outcomeText(ev.Outcome), Action: string(ev.Action),
			Org: "not recorded"}
		switch {
		case ev.Agent.User != "" && ev.Agent.User == v.P.ID:
			row.Who, row.You, row.Agent = "You", true, ev.Agent.User
		case ev.Agent.User != "":
			n, ok := names[ev.Agent.User]
			if !ok {
				if usr, err := u.users.ByID(r.Context(), ev.Agent.User); err == nil {
					n = [3]string{usr.DisplayName, usr.FHIRUser, ""}
					if n[0] == "" {
						n[0] = usr.Username
					}
					if u.authz != nil {
						// The organisation the practitioner acts for
						// (PractitionerRole): directory data, not PHI.
						if org, err := u.authz.Affiliation(r.Context(), usr.FHIRUser); err == nil {
							n[2] = org
						}
					}
				}
				names[ev.Agent.User] = n
			}
			if n[0] != "" {
				row.Who, row.FHIRUser = n[0], n[1]
				if n[2] != "" {
					row.Org = n[2]
				}
			} else {
				row.Who = serviceText(ev.Agent.Client)
			}
			row.Agent = ev.Agent.User
		default:
			row.Who = serviceText(ev.Agent.Client)
		}
		rows = append(rows, row)
	}
	if next == 0 && len(entries) == scan && entries[len(entries)-1].Index > 0 {
		// The window was full: older entries may follow.
		next = entries[len(entries)-1].Index
	}
	return rows, next, nil
}

func serviceText(client string) string {
	if client == "" || client == "webui" {
		return "a service"
	}
	return "a service (" + client + ")"
}

func purposeText(code string) string {
	if s, ok := purposeWords[code]; ok {
		return s
	}
	if code == "" {
		return "not recorded"
	}
	return code
}

func outcomeText(o audit.Outcome) string {
	switch o {
	case audit.OutcomeSuccess:
		return "done"
	case audit.OutcomeDenied:
		return "refused"
	}
	return "failed"
}

// roleWords turns the comma-separated roles of an agent into words.
func roleWords(roles string) string {
	if roles == "" {
		return "not recorded"
	}
	return strings.ReplaceAll(strings.ReplaceAll(roles, "-", " "), ",", ", ")
}

// whatText says what an event did to the record: the action and the
// kind of information (the resource type of the query or of the first
// resource touched; never a value).
func whatText(ev audit.Event) string {
	if ev.Action == audit.ActionLocate {
		return "looked you up by name outside your care and saw your name and birth date"
	}
	if p, ok := actionPhrases[ev.Action]; ok {
		return p
	}
	if ev.Action == audit.ActionExport {
		if len(ev.Entities) > 0 && strings.HasPrefix(ev.Entities[0], "AuditEvent/") {
			return "made a file of the access log of your record"
		}
		return "made a copy of your record"
	}
	verb, ok := actionWords[ev.Action]
	if !ok {
		verb = strings.ReplaceAll(string(ev.Action), "-", " ")
	}
	typ := ""
	if ev.Query != "" {
		typ, _, _ = strings.Cut(ev.Query, "?")
	} else if len(ev.Entities) > 0 {
		typ, _, _ = strings.Cut(ev.Entities[0], "/")
	}
	if k, ok := typeWords[typ]; ok {
		return verb + " your " + k
	}
	if typ == "AuditEvent" {
		return verb + " the access log of your record"
	}
	return verb + " your record"
}

// typeWords names FHIR resource types in plain words.
var typeWords = map[string]string{
	"Patient":            "details",
	"Condition":          "health problems",
	"MedicationRequest":  "medications",
	"AllergyIntolerance": "allergies",
	"Encounter":          "visits",
	"Observation":        "results and measurements",
	"DocumentReference":  "notes and documents",
	"Consent":            "sharing choices",
	"Immunization":       "immunizations",
	"Procedure":          "procedures",
	"DiagnosticReport":   "reports",
	"CareTeam":           "care team",
}
