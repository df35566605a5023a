package authorize

import (
	"net/http"
	"strings"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/web"
)

func (s *Server) authorizeConsent(w http.ResponseWriter, r *http.Request) error {
	f, _, _, err := s.openFlow(r)
	if err != nil {
		return err
	}
	p, err := s.flowPrincipal(r)
	if err != nil {
		return err
	}
	u, err := s.launchUser(r.Context(), p)
	if err != nil {
		return err
	}
	if u.Patient && smart.NeedsPatient(f.Req) && ident.PatientRef(f.Patient).String() != u.FHIRUser {
		return &web.Error{Status: http.StatusForbidden, Msg: "A patient account can share only its own record."}
	}
	if smart.NeedsPatient(f.Req) && f.Patient == "" {
		return &web.Error{Status: http.StatusBadRequest, Msg: "Choose a patient first. Start again from the app."}
	}
	var to string
	switch r.PostForm.Get("decision") {
	case "approve":
		to, err = s.smart.Approve(r.Context(), r, f.Req, smart.Approval{User: u, Patient: f.Patient})
	case "deny":
		to, err = s.smart.Deny(r.Context(), r, f.Req, u)
	default:
		return &web.Error{Status: http.StatusBadRequest, Msg: "Choose Approve or Deny."}
	}
	if err != nil {
		return err
	}
	// The flow is over: its cookie goes.
	http.SetCookie(w, &http.Cookie{Name: FlowCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// describeScopes says in plain words what each granted scope allows.
func describeScopes(set scope.Set) []string {
	var out []string
	for _, sc := range set.Scopes() {
		switch sc.Kind {
		case scope.KindOpenID:
			out = append(out, "Confirm who you are to the app")
		case scope.KindFHIRUser:
			out = append(out, "Know your own record in phivault (practitioner or patient)")
		case scope.KindProfile:
			out = append(out, "Know your profile")
		case scope.KindLaunchContext:
			out = append(out, "Know which patient was chosen")
		case scope.KindOfflineAccess:
			out = append(out, "Keep access when you are not using it, for up to 90 days")
		case scope.KindOnlineAccess:
			out = append(out, "Keep access while you use it, for up to 12 hours")
		case scope.KindResource:
			what := "all kinds of records"
			if sc.Resource != "*" {
				what = sc.Resource + " records"
			}
			whose := "of the chosen patient"
			if sc.Context == scope.User {
				whose = "that you can reach"
			}
			out = append(out, capitalise(verbs(sc.Perms))+" "+what+" "+whose)
		}
	}
	return out
}

func verbs(p scope.Perms) string {
	var v []string
	for _, x := range []struct {
		i    scope.Interaction
		word string
	}{{scope.Read, "read"}, {scope.Search, "search"}, {scope.Create, "create"}, {scope.Update, "change"}, {scope.Delete, "delete"}} {
		if p.Has(x.i) {
			v = append(v, x.word)
		}
	}
	if len(v) > 1 {
		return strings.Join(v[:len(v)-1], ", ") + " and " + v[len(v)-1]
	}
	return strings.Join(v, "")
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
