package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// FuzzSearchIncludeAuthz drives random combinations of _include,
// _revinclude (with :iterate and *), chains, _has, :identifier and
// _sort by hashed values for
// six principals (a physician on and off the care team, two portal
// patients, front desk, the system token) over the data of
// newIncludeEnv, and compares every answer with reading each resource
// one by one: matches and includes are readable by the caller, the
// total counts matches only, and nothing answers 5xx.
//
// The input is a byte string: its first byte picks the principal, each
// following byte one parameter from a pool built from the data's ids
// and values.
func FuzzSearchIncludeAuthz(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0, 10}, {1, 1, 11, 20}, {2, 2, 12, 21}, {3, 3, 13, 22, 30}, {4, 4, 14}, {5, 5, 15, 23},
		{0, 6, 16, 24, 31}, {2, 7, 17, 25}, {3, 8, 18, 26, 27}, {0, 9, 19, 28, 29},
	} {
		f.Add(seed)
	}
	s := apitest.Start(f, "sqlite")
	var (
		once   sync.Once
		e      includeEnv
		actors []actor
		mu     sync.Mutex
		read   = map[string]bool{} // actor index + ref -> readable
	)
	f.Fuzz(func(t *testing.T, in []byte) {
		once.Do(func() {
			e = newIncludeEnv(t, s)
			actors = []actor{e.doc, e.outsider, e.pa, e.pb, e.desk, {role: "system"}}
		})
		if len(in) < 2 || len(in) > 8 {
			return
		}
		who := int(in[0]) % len(actors)
		a := actors[who]
		tok := func(c string) string { return url.QueryEscape(testSystem + "|" + c) }
		types := []string{"Observation", "Patient", "Encounter"}
		typ := types[int(in[1])%len(types)]
		pool := []string{
			"_include=Observation:subject", "_include=Observation:encounter", "_include=Observation:subject:Patient",
			"_include=*", "_include:iterate=Observation:encounter", "_include:iterate=Encounter:subject",
			"_revinclude=Observation:subject", "_revinclude=Encounter:patient", "_revinclude:iterate=*",
			"_revinclude:iterate=Observation:encounter", "_revinclude=CareTeam:subject",
			"subject:Patient.identifier=" + tok(e.mrnA), "subject:Patient.identifier=" + tok(e.mrnB),
			"patient.identifier=" + tok(e.mrnB), "encounter.status=in-progress", "encounter.status=finished",
			"encounter.subject:Patient.identifier=" + tok(e.mrnA), "subject:Patient._id=" + e.a + "," + e.b + "," + e.c,
			"_has:Observation:subject:code=" + tok(e.codeX), "_has:Observation:subject:code=" + tok(e.codeY),
			"_has:Observation:patient:code=" + tok(e.codeZ), "_has:Encounter:patient:_has:Observation:encounter:code=" + tok(e.codeZ),
			"_has:Encounter:subject:status=in-progress",
			"subject:identifier=" + tok(e.mrnA), "subject:identifier=" + tok(e.mrnB),
			"code=" + tok(e.codeX), "code=" + tok(e.codeY), "_id=" + e.a + "," + e.b + "," + e.c,
			"_id=" + e.obsA + "," + e.obsA2 + "," + e.obsB + "," + e.obsC, "_count=1", "_count=2", "status=in-progress",
			"_sort=-subject", "_sort=code,_id", "_sort=family", "_sort=-status", "_sort=patient,-code",
		}
		var params []string
		for _, b := range in[2:] {
			params = append(params, pool[int(b)%len(pool)])
		}
		r := s.Do(t, "GET", "/fhir/"+typ+"?"+strings.Join(params, "&")+"&_total=accurate", nil, a.headers)
		switch {
		case r.Status == http.StatusBadRequest:
			if r.JSON["resourceType"] != "OperationOutcome" {
				t.Fatalf("400 without an OperationOutcome: %s", r)
			}
			return
		case r.Status != http.StatusOK:
			t.Fatalf("%s?%s as %s: %s", typ, params, a.role, r)
		}
		match, include := byMode(t, r)
		if total, _ := r.Total(); total < len(match) {
			t.Fatalf("total %d below the %d matches on the page", total, len(match))
		}
		if r.Link("next") == "" && !strings.Contains(strings.Join(params, "&"), "_page") {
			if total, ok := r.Total(); ok && total != len(match) && !strings.Contains(strings.Join(params, "&"), "_count") {
				t.Fatalf("total %d, %d matches on a single page", total, len(match))
			}
		}
		for _, ref := range append(match, include...) {
			k := string(rune('0'+who)) + ref
			mu.Lock()
			ok, known := read[k]
			mu.Unlock()
			if !known {
				ok = readable(t, s, a, ref)
				mu.Lock()
				read[k] = ok
				mu.Unlock()
			}
			if !ok {
				t.Fatalf("%s?%s as %s returned %s, which it cannot read", typ, params, a.role, ref)
			}
		}
		for _, ref := range match {
			if !strings.HasPrefix(ref, typ+"/") {
				t.Fatalf("a match of another type: %s", ref)
			}
		}
	})
}
