package authorize

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/record"
)

// authorizePatient is the patient picker of a workforce user. Searches
// and reads go through the record service with the user's own guard
// (launchCaller): the picker lists only patients the user may read,
// narrowed like any search, and audited as the user's. A patient the
// user may not read is answered exactly as one that does not exist.
func (s *Server) authorizePatient(w http.ResponseWriter, r *http.Request) error {
	f, binding, client, err := s.openFlow(r)
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
	if u.Patient || !smart.NeedsPatient(f.Req) {
		return s.nextStep(w, r, f, binding, client, p)
	}
	caller := s.launchCaller(r, p, f.Req.ClientID)
	switch r.PostForm.Get("action") {
	case "pick":
		id := r.PostForm.Get("patient")
		if !record.ValidID(id) {
			return s.renderFlow(w, r, http.StatusBadRequest, "picker", f, binding, client, pageData{Title: "Choose a patient", Error: "Choose a patient from the list."})
		}
		if _, err := s.rec.Read(r.Context(), caller, "Patient", id); err != nil {
			if hiddenOrMissing(err) {
				return s.renderFlow(w, r, http.StatusBadRequest, "picker", f, binding, client, pageData{Title: "Choose a patient", Error: "That patient does not exist."})
			}
			return err
		}
		f.Patient = id
		return s.nextStep(w, r, f, binding, client, p)
	case "search":
		q := strings.TrimSpace(r.PostForm.Get("q"))
		if q == "" || len(q) > 200 {
			return s.renderFlow(w, r, http.StatusBadRequest, "picker", f, binding, client, pageData{Title: "Choose a patient", Error: "Enter a name or an id."})
		}
		found, err := s.findPatients(r.Context(), caller, q)
		if err != nil {
			return err
		}
		return s.renderFlow(w, r, http.StatusOK, "picker", f, binding, client, pageData{Title: "Choose a patient", Query: q, Patients: found})
	}
	return s.renderFlow(w, r, http.StatusBadRequest, "picker", f, binding, client, pageData{Title: "Choose a patient"})
}

// findPatients searches by id, then by name.
func (s *Server) findPatients(ctx context.Context, c record.Caller, q string) ([]pickerPatient, error) {
	var out []pickerPatient
	seen := map[string]bool{}
	add := func(body []byte) {
		var pt struct {
			ID   string `json:"id"`
			Name []struct {
				Text   string   `json:"text"`
				Family string   `json:"family"`
				Given  []string `json:"given"`
			} `json:"name"`
			BirthDate string `json:"birthDate"`
		}
		if json.Unmarshal(body, &pt) != nil || pt.ID == "" || seen[pt.ID] || len(out) >= maxPickerResults {
			return
		}
		seen[pt.ID] = true
		name := ""
		if len(pt.Name) > 0 {
			n := pt.Name[0]
			name = n.Text
			if name == "" {
				name = strings.TrimSpace(strings.Join(append(n.Given, n.Family), " "))
			}
		}
		out = append(out, pickerPatient{ID: pt.ID, Name: name, BirthDate: pt.BirthDate})
	}
	// The text is tried as an id through a search (_id), not a read: a
	// read of an id that does not exist is audited with the id, and
	// here the text is usually a name.
	searches := []url.Values{{"name": {q}, "_count": {"20"}}}
	if record.ValidID(q) {
		searches = append([]url.Values{{"_id": {q}, "_count": {"1"}}}, searches...)
	}
	for _, vals := range searches {
		page, err := s.rec.Search(ctx, c, "Patient", vals, record.SearchOptions{BaseURL: s.baseURL + "/fhir"})
		if err != nil {
			var re *record.Error
			if errors.As(err, &re) && record.StatusCode(re) < 500 {
				continue
			}
			return nil, err
		}
		var b struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(page.Bundle, &b); err != nil {
			return nil, err
		}
		for _, e := range b.Entry {
			add(e.Resource)
		}
	}
	return out, nil
}

// hiddenOrMissing reports whether a picker read failed because the
// patient does not exist, was deleted, or may not be read by the user:
// the picker answers all three alike.
func hiddenOrMissing(err error) bool {
	return errors.Is(err, record.ErrNotFound) || errors.Is(err, record.ErrGone) || errors.Is(err, record.ErrForbidden)
}
