package portal

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/phivault/phivault/internal/webui/chartview"
	"github.com/phivault/phivault/internal/webui/site"
)

// "Download my data": the patient's whole compartment as one FHIR
// Bundle (type collection), gathered page by page through the record
// service's Patient/$everything with the patient's own guard, so every
// page is decided and audited. It is streamed: the first page is read
// before any byte is sent (a refusal is an error page); a failure on a
// later page aborts the response, so the browser reports a failed
// download instead of saving a truncated file.

// maxDownloadPages bounds one download (STYLE rule 24): 200 pages of
// the service's default 500 resources.
const maxDownloadPages = 200

// downloadBase is the base of the Bundle's fullUrls.
const downloadBase = "/fhir"

func (u *UI) downloadPage(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	u.site.Render(w, r, http.StatusOK, "portal-download", site.PageData{Title: "Download my data", Viewer: v, Nav: "portal"})
	return nil
}

type everythingPage struct {
	Link []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []json.RawMessage `json:"entry"`
}

func (u *UI) downloadBundle(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	pid, _ := ownPatient(v)
	c := portalCaller(r, v)
	page := func(tok string) (everythingPage, string, error) {
		vals := url.Values{}
		if tok != "" {
			vals.Set("_page", tok)
		}
		b, err := u.rec.Everything(r.Context(), c, pid, vals, downloadBase)
		if err != nil {
			return everythingPage{}, "", err
		}
		var p everythingPage
		if err := json.Unmarshal(b, &p); err != nil {
			return p, "", err
		}
		next := ""
		for _, l := range p.Link {
			if l.Relation == "next" {
				_, q, _ := strings.Cut(l.URL, "?")
				qv, err := url.ParseQuery(q)
				if err != nil || qv.Get("_page") == "" {
					return p, "", errors.New("everything: malformed next link")
				}
				next = qv.Get("_page")
			}
		}
		return p, next, nil
	}
	first, next, err := page("")
	if chartview.Denied(err) {
		return site.PageErr(http.StatusForbidden, "Your record cannot be downloaded", "Your record could not be gathered for you. Contact the privacy office.", err)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/fhir+json")
	h.Set("Content-Disposition", `attachment; filename="my-health-record.json"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"collection","timestamp":` + jsonString(u.now().UTC().Format("2006-01-02T15:04:05Z")) + `,"entry":[`))
	n := 0
	write := func(p everythingPage) {
		for _, e := range p.Entry {
			if n > 0 {
				_, _ = w.Write([]byte(","))
			}
			_, _ = w.Write(e)
			n++
		}
	}
	write(first)
	for pages := 1; next != ""; pages++ {
		if pages >= maxDownloadPages {
			u.log.ErrorContext(r.Context(), "portal download too large", slog.String("request_id", c.RequestID))
			panic(http.ErrAbortHandler)
		}
		var p everythingPage
		p, next, err = page(next)
		if err != nil {
			u.log.ErrorContext(r.Context(), "portal download failed", slog.String("request_id", c.RequestID), slog.String("error", err.Error()))
			panic(http.ErrAbortHandler) // the browser sees a failed download, not a truncated file
		}
		write(p)
	}
	_, _ = w.Write([]byte("]}"))
	return nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
