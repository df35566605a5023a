package httpapi

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/record"
)

// versioned is the entity of a vread: "Type/id/_history/v".
var versioned = regexp.MustCompile(`^([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[1-9][0-9]*)?$`)

// FuzzAttemptEvent: whatever path a client sends, the generic event
// names at most a valid R4 type and a valid id (never another part of
// the path), its query is the method and that type, and the route of a
// non-FHIR path is a short literal or "/…".
func FuzzAttemptEvent(f *testing.F) {
	for _, s := range []string{"/fhir/Patient/p1", "/fhir/Patient/p1/_history/2", "/fhir/_history", "/fhir/Patient/_search",
		"/fhir/John Smith/1970-01-01", "/fhir/Patient/John%20Smith", "/fhir//Patient", "/fhir/Patient/p1/$everything",
		"/auth/login", "/admin/api/users/usr_1", "/portal/access/12/report", "/Ünïcode/x"} {
		f.Add(http.MethodGet, s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		if strings.HasPrefix(path, "/fhir") {
			a, entity, query := fhirAttempt(method, path)
			if a == "" {
				t.Fatalf("%s %q: no action", method, path)
			}
			if entity != "" {
				m := versioned.FindStringSubmatch(entity)
				if m == nil || !fhir.IsR4Type(m[1]) || !record.ValidID(m[2]) {
					t.Fatalf("%s %q: entity %q is not a type and a valid id", method, path, entity)
				}
			}
			if typ := strings.TrimSpace(strings.TrimPrefix(query, methodName(method))); typ != "" && !fhir.IsR4Type(typ) {
				t.Fatalf("%s %q: query %q carries more than the method and a type", method, path, query)
			}
			return
		}
		r := routePrefix(path)
		if len(r) > 33 || (r != "/…" && strings.ContainsFunc(r[1:], func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.')
		})) {
			t.Fatalf("%q: route %q", path, r)
		}
		_ = auditedPath(method, path)
		_, _ = url.PathUnescape(path)
	})
}
