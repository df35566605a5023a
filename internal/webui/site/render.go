package site

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/web"
)

// pageTemplate is one page: the layout plus the page's "content" block.
type pageTemplate struct{ t *template.Template }

// funcs are the template helpers. None returns template.HTML: every
// value a page shows is escaped by html/template.
var funcs = template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02")
	},
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"join": strings.Join,
	// localtime is the server's local time with its zone named
	// ("2026-12-07 15:23 CET"); static/localtime.js rewrites a
	// <time class="local-time"> to the browser's zone.
	"localtime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04 MST")
	},
	// isotime is the machine-readable instant of a <time datetime>.
	"isotime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// vitalsDrawing hands one drawing of the vital-signs chart and its
	// kind ("wide" or "narrow") to the "vitals-svg" template.
	"vitalsDrawing": func(d any, kind, start, end string) map[string]any {
		return map[string]any{"D": d, "Kind": kind, "Start": start, "End": end}
	},
}

// parsePages parses the layout with each page file.
func parsePages() (map[string]*pageTemplate, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parsing layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*pageTemplate, len(names))
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", n, err)
		}
		pages[name] = &pageTemplate{t: t}
	}
	return pages, nil
}

// PageData is what every page gets: the layout's fields and the page's
// own Data.
type PageData struct {
	Title     string
	Viewer    *Viewer // nil when signed out
	CSRF      string  // the form token for this browser (session or pre-session)
	RequestID string
	// IdleSeconds is the session idle timeout for idle.js; 0 when signed out.
	IdleSeconds int
	Nav         string // the current section, for aria-current
	Data        any
}

// Render writes page name with status. A template failure is a
// programmer error caught by the tests; it is logged and answered with
// a bare 500.
func (s *Site) Render(w http.ResponseWriter, r *http.Request, status int, name string, d PageData) {
	p, ok := s.pages[name]
	if !ok {
		panic("webui: unknown page " + name)
	}
	d.RequestID = web.RequestID(r.Context())
	if d.Viewer != nil {
		d.IdleSeconds = int(s.idle / time.Second)
		if d.CSRF == "" {
			d.CSRF = d.Viewer.csrf
		}
	}
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, "layout.html", d); err != nil {
		s.log.ErrorContext(r.Context(), "ui template failed", slog.String("request_id", d.RequestID),
			slog.String("page", name), slog.String("error", err.Error()))
		http.Error(w, "internal error; request id "+d.RequestID, http.StatusInternalServerError)
		return
	}
	web.HTML(w, status, &buf)
}
