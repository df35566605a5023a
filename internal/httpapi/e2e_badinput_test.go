package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// sentinel is a PHI-like value put into bad input; no response and no
// log line may ever contain it.
const sentinel = "Zyxwv-SENTINEL-4711"

// hostile are search values that break naive SQL, URL or string handling.
var hostile = []string{
	sentinel + `'; DROP TABLE resources;--`,
	`" OR 1=1 --` + sentinel,
	`%27` + sentinel,
	"%2527",
	sentinel + "\x00",
	`\` + sentinel,
	sentinel + `|`,
	`|` + sentinel,
	sentinel + `,`,
	"1980-05-17' OR '1'='1",
	"eq" + sentinel,
	strings.Repeat("é", 600),
	"Robert'); DELETE FROM index_terms; --",
	"$" + sentinel,
}

// noLeak fails if the response echoes the sentinel.
func noLeak(t *testing.T, r *apitest.Response) {
	t.Helper()
	if bytes.Contains(bytes.ToLower(r.Body), bytes.ToLower([]byte(sentinel))) {
		t.Errorf("the response echoes the sentinel: %s", r)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, sentinel) {
				t.Errorf("header %s echoes the sentinel", k)
			}
		}
	}
}

func TestE2EBadInput(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		keepIdent := uniq()
		keep := s.Create(t, patient(keepIdent, map[string]any{"gender": "female", "birthDate": "1980-05-17",
			"name": []any{map[string]any{"family": "Keep" + keepIdent, "given": []any{"Ada"}}}}))
		keepObs := s.Create(t, observation(keep, map[string]any{"effectiveDateTime": "2021-03-04T10:00:00Z"}))
		before := totals(t, s)

		t.Run("bodies", func(t *testing.T) {
			deep := strings.Repeat(`{"a":`, 200) + `"` + sentinel + `"` + strings.Repeat("}", 200)
			cases := []struct {
				name, method, path string
				body               any
				want               []int
			}{
				{"malformed JSON", "POST", "/fhir/Patient", `{"resourceType":"Patient","name":[{"family":"` + sentinel, []int{400}},
				{"trailing data", "POST", "/fhir/Patient", `{"resourceType":"Patient"} "` + sentinel + `"`, []int{400}},
				{"duplicate keys", "POST", "/fhir/Patient", `{"resourceType":"Patient","gender":"male","gender":"` + sentinel + `"}`, []int{400}},
				{"array", "POST", "/fhir/Patient", `["` + sentinel + `"]`, []int{400}},
				{"empty", "POST", "/fhir/Patient", "", []int{400}},
				{"invalid UTF-8", "POST", "/fhir/Patient", "{\"resourceType\":\"Patient\",\"gender\":\"\xff\xfe" + sentinel + "\"}", []int{400}},
				{"no resourceType", "POST", "/fhir/Patient", `{"gender":"` + sentinel + `"}`, []int{400}},
				{"resourceType not a string", "POST", "/fhir/Patient", `{"resourceType":["Patient"]}`, []int{400}},
				{"birthDate a number", "POST", "/fhir/Patient", `{"resourceType":"Patient","birthDate":12,"name":[{"family":"` + sentinel + `"}]}`, []int{400, 422}},
				{"birthDate not a date", "POST", "/fhir/Patient", `{"resourceType":"Patient","birthDate":"` + sentinel + `"}`, []int{400, 422}},
				{"gender outside its value set", "POST", "/fhir/Patient", `{"resourceType":"Patient","gender":"` + sentinel + `"}`, []int{422}},
				{"name not an array", "POST", "/fhir/Patient", `{"resourceType":"Patient","name":"` + sentinel + `"}`, []int{422}},
				{"unknown element", "POST", "/fhir/Patient", `{"resourceType":"Patient","` + sentinel + `":"x"}`, []int{422}},
				{"id not a FHIR id", "POST", "/fhir/Patient", `{"resourceType":"Patient","id":"` + sentinel + `!"}`, []int{400, 422}},
				{"Observation without code", "POST", "/fhir/Observation", `{"resourceType":"Observation","status":"final","note":[{"text":"` + sentinel + `"}]}`, []int{422}},
				{"unknown resourceType", "POST", "/fhir/Patient", `{"resourceType":"` + sentinel + `"}`, []int{400}},
				{"Medplum Bot body", "POST", "/fhir/Patient", `{"resourceType":"Bot","name":"` + sentinel + `"}`, []int{400}},
				{"Medplum Bot URL", "POST", "/fhir/Bot", `{"resourceType":"Bot","name":"` + sentinel + `"}`, []int{400, 404}},
				{"Medplum Project URL", "POST", "/fhir/Project", `{"resourceType":"Project","name":"` + sentinel + `"}`, []int{400, 404}},
				{"Project in a bundle", "POST", "/fhir", bundle("transaction", entry("", "POST", "Project", map[string]any{"resourceType": "Project", "name": sentinel}, nil)), []int{400, 404}},
				{"body type differs from URL", "POST", "/fhir/Patient", `{"resourceType":"Practitioner","name":[{"family":"` + sentinel + `"}]}`, []int{400}},
				{"200-deep nesting", "POST", "/fhir/Patient", `{"resourceType":"Patient","extension":` + deep + `}`, []int{400}},
				{"200-deep nesting in a bundle", "POST", "/fhir", `{"resourceType":"Bundle","type":"batch","entry":[` + deep + `]}`, []int{400}},
				{"PUT to an invalid id", "PUT", "/fhir/Patient/a%20b", `{"resourceType":"Patient","id":"a b","gender":"` + sentinel + `"}`, []int{400}},
				{"bundle with a string entry", "POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":["` + sentinel + `"]}`, []int{400}},
				{"bundle entry with a bad method", "POST", "/fhir", bundle("transaction", entry("", "PATCH", "Patient", patient(sentinel, nil), nil)), []int{400}},
				{"bundle entry with a bad URL", "POST", "/fhir", bundle("transaction", entry("", "POST", "../"+sentinel, patient(sentinel, nil), nil)), []int{400}},
				{"bundle entry with a bad id", "POST", "/fhir", bundle("transaction", entry("", "PUT", "Patient/"+sentinel+"!", patient(sentinel, nil), nil)), []int{400}},
				{"bundle conditional reference with a bad query", "POST", "/fhir", bundle("transaction", entry("", "POST", "Observation", observation("x", map[string]any{"subject": ref("Patient?shoesize=" + sentinel)}), nil)), []int{400}},
				{"bundle ifNoneExist with a bad query", "POST", "/fhir", bundle("transaction", entry("", "POST", "Patient", patient(sentinel, nil), map[string]any{"ifNoneExist": "birthdate=gt" + sentinel})), []int{400}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := s.Do(t, c.method, c.path, c.body, nil).WantOutcome(t, c.want...)
					noLeak(t, r)
				})
			}
		})
		t.Run("body over the limit", func(t *testing.T) {
			big := `{"resourceType":"Patient","text":{"div":"` + strings.Repeat("A", 17<<20) + `"}}`
			r := s.Do(t, "POST", "/fhir/Patient", big, nil).WantOutcome(t, http.StatusRequestEntityTooLarge)
			noLeak(t, r)
			// Without Content-Length the limit applies while reading.
			chunked := io.MultiReader(strings.NewReader(big))
			s.Do(t, "POST", "/fhir", chunked, nil).WantOutcome(t, http.StatusRequestEntityTooLarge)
		})
		t.Run("bundle over the entry limit", func(t *testing.T) {
			for _, kind := range []string{"transaction", "batch"} {
				var b strings.Builder
				b.WriteString(`{"resourceType":"Bundle","type":"` + kind + `","entry":[`)
				for i := range 10001 {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"request":{"method":"POST","url":"Patient"},"resource":{"resourceType":"Patient","identifier":[{"system":%q,"value":%q}]}}`, testSystem, "limit-"+keepIdent)
				}
				b.WriteString(`]}`)
				s.Do(t, "POST", "/fhir", b.String(), nil).WantOutcome(t, http.StatusRequestEntityTooLarge)
				if n := countByIdentifier(t, s, "Patient", "limit-"+keepIdent); n != 0 {
					t.Errorf("%s over the limit stored %d patients", kind, n)
				}
			}
		})
		t.Run("hostile search values", func(t *testing.T) {
			params := map[string][]string{
				"Patient": {"identifier", "identifier:not", "name", "name:exact", "family", "family:exact", "given", "given:exact", "birthdate",
					"gender", "gender:not", "telecom", "_id", "_lastUpdated", "_sort", "_count", "_total", "name:missing"},
				"Observation": {"patient", "patient:Patient", "subject", "subject:Patient", "code", "code:not", "date", "category", "category:not",
					"status", "status:not", "encounter", "_id", "_lastUpdated", "_sort", "date:missing"},
			}
			for typ, ps := range params {
				for _, p := range ps {
					for i, v := range hostile {
						t.Run(fmt.Sprintf("%s %s #%d", typ, p, i), func(t *testing.T) {
							q := url.Values{p: {v}}.Encode()
							r := s.Do(t, "GET", "/fhir/"+typ+"?"+q, nil, nil).Want(t, http.StatusOK, http.StatusBadRequest)
							if r.Status == http.StatusOK && !strings.HasSuffix(p, ":not") {
								if ids := r.IDs(); len(ids) != 0 {
									t.Errorf("%s=%q matched %v", p, v, ids)
								}
							}
							if r.Status == http.StatusBadRequest {
								r.WantOutcome(t, http.StatusBadRequest)
							}
							noLeak(t, r)
							r = s.Do(t, "POST", "/fhir/"+typ+"/_search", q, apitest.H{"Content-Type": "application/x-www-form-urlencoded"}).
								Want(t, http.StatusOK, http.StatusBadRequest)
							noLeak(t, r)
						})
					}
				}
			}
			t.Run("hostile conditional create", func(t *testing.T) {
				for _, v := range hostile {
					r := s.Do(t, "POST", "/fhir/Patient", patient(uniq(), nil), apitest.H{"If-None-Exist": "identifier=" + url.QueryEscape(v)}).
						Want(t, http.StatusCreated, http.StatusBadRequest)
					noLeak(t, r)
				}
			})
		})
		t.Run("status codes", func(t *testing.T) {
			cases := []struct {
				name, method, path string
				body               any
				headers            apitest.H
				want               int
			}{
				{"unknown id", "GET", "/fhir/Patient/nosuch-" + keepIdent, nil, nil, 404},
				{"unknown version", "GET", "/fhir/Patient/" + keep + "/_history/2", nil, nil, 404},
				{"unknown id history", "GET", "/fhir/Observation/nosuch-" + keepIdent + "/_history", nil, nil, 404},
				{"unknown everything", "GET", "/fhir/Patient/nosuch-" + keepIdent + "/$everything", nil, nil, 404},
				{"stale If-Match", "PUT", "/fhir/Observation/" + keepObs, observation(keep, map[string]any{"id": keepObs}), apitest.H{"If-Match": `W/"5"`}, 412},
				{"schema-invalid update", "PUT", "/fhir/Observation/" + keepObs, map[string]any{"resourceType": "Observation", "id": keepObs, "status": "bogus", "code": map[string]any{}}, nil, 422},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s.Do(t, c.method, c.path, c.body, c.headers).WantOutcome(t, c.want)
				})
			}
			t.Run("410 after delete", func(t *testing.T) {
				id := s.Create(t, patient(uniq(), nil))
				s.Do(t, "DELETE", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusNoContent)
				s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).WantOutcome(t, http.StatusGone)
			})
			t.Run("concurrent If-Match updates", func(t *testing.T) {
				id := s.Create(t, patient(uniq(), nil))
				const n = 8
				codes := make([]int, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						r, err := s.Send(t.Context(), "PUT", "/fhir/Patient/"+id, patient(uniq(), map[string]any{"id": id}), apitest.H{"If-Match": `W/"1"`})
						if err != nil {
							t.Error(err)
							return
						}
						codes[i] = r.Status
					})
				}
				wg.Wait()
				ok := 0
				for _, c := range codes {
					switch c {
					case http.StatusOK:
						ok++
					case http.StatusPreconditionFailed, http.StatusConflict:
					default:
						t.Errorf("concurrent update answered %d", c)
					}
				}
				r := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
				if ok != 1 || meta(r.JSON)["versionId"] != "2" {
					t.Errorf("%d of %d updates with If-Match W/\"1\" succeeded (codes %v), version %v; want exactly one", ok, n, codes, meta(r.JSON)["versionId"])
				}
			})
		})
		t.Run("data still there", func(t *testing.T) {
			after := totals(t, s)
			for typ, n := range before {
				if after[typ] < n {
					t.Errorf("%s: %d resources before the bad input, %d after", typ, n, after[typ])
				}
			}
			s.Do(t, "GET", "/fhir/Patient/"+keep, nil, nil).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Observation/"+keepObs, nil, nil).Want(t, http.StatusOK)
			r := s.Do(t, "GET", "/fhir/Patient?family=keep"+keepIdent+"&given=ada&birthdate=1980-05-17&identifier="+keepIdent, nil, nil).Want(t, http.StatusOK)
			sameSet(t, "search after bad input", r.IDs(), []string{"Patient/" + keep})
			r = s.Do(t, "GET", "/fhir/Observation?patient="+keep+"&date=2021-03-04", nil, nil).Want(t, http.StatusOK)
			sameSet(t, "observation search after bad input", r.IDs(), []string{"Observation/" + keepObs})
			if n := countByIdentifier(t, s, "Patient", sentinel); n != 0 {
				t.Errorf("bad input stored %d patients", n)
			}
		})
		t.Run("logs", func(t *testing.T) {
			logs := s.Logs()
			if strings.Contains(strings.ToLower(logs), strings.ToLower(sentinel)) {
				i := strings.Index(strings.ToLower(logs), strings.ToLower(sentinel))
				t.Errorf("the server log holds the sentinel: …%s…", logs[max(0, i-300):min(len(logs), i+100)])
			}
			if strings.Contains(logs, `"status":500`) || strings.Contains(logs, `"msg":"panic"`) {
				t.Errorf("the server answered 500 or panicked during bad input")
			}
		})
	})
}

// totals counts the current resources of the types the bad input targets.
func totals(t *testing.T, s *apitest.Server) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, typ := range []string{"Patient", "Observation"} {
		r := s.Do(t, "GET", "/fhir/"+typ+"?_count=0", nil, nil).Want(t, http.StatusOK)
		n, ok := r.Total()
		if !ok {
			t.Fatalf("no total for %s", typ)
		}
		out[typ] = n
	}
	return out
}
