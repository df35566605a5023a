package httpapi_test

import (
	"bytes"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
)

// monitorBody is a multipart ingest body with parts (name, content).
func monitorBody(t *testing.T, parts ...[2]string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		w, err := mw.CreateFormFile(p[0], p[0])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(p[1]))
	}
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

// The monitoring admin API: a privacy officer's token ingests and lists;
// malformed requests get clear answers that quote none of the input;
// the server log holds none of it either; other roles are refused and
// audited.
func TestMonitorAPI(t *testing.T) {
	ctxFile, err := os.ReadFile(filepath.Join("..", "monitor", "alerts", "testdata", "context.json"))
	if err != nil {
		t.Fatal(err)
	}
	evFile, err := os.ReadFile(filepath.Join("..", "monitor", "alerts", "testdata", "events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			s := apitest.Start(t, d)
			po, err := s.App.Tokens().Create(t.Context(), "privacy office", []string{"privacy-officer"})
			if err != nil {
				t.Fatal(err)
			}
			asPO := apitest.H{"Authorization": "Bearer " + po.Reveal()}
			with := func(h apitest.H, k, v string) apitest.H {
				out := apitest.H{k: v}
				for a, b := range h {
					out[a] = b
				}
				return out
			}

			// The apitest token has the system role: refused, audited.
			ct, body := monitorBody(t, [2]string{"context", string(ctxFile)}, [2]string{"events", string(evFile)})
			s.Do(t, "POST", "/admin/api/monitor/ingest?source=his", body, apitest.H{"Content-Type": ct}).Want(t, 403)
			s.Do(t, "GET", "/admin/api/monitor/alerts", nil, nil).Want(t, 403)
			wantAudited(t, s, audit.ActionMonitorIngest, audit.OutcomeDenied, "")
			wantAudited(t, s, audit.ActionMonitorAlertRead, audit.OutcomeDenied, "")

			r := s.Do(t, "POST", "/admin/api/monitor/ingest?source=his", body, with(asPO, "Content-Type", ct)).Want(t, 200)
			if r.JSON["events"] == nil || r.JSON["events"].(interface{ String() string }).String() != "3" || r.JSON["run"] == "" {
				t.Errorf("ingest answer %s", r)
			}
			wantAudited(t, s, audit.ActionMonitorIngest, audit.OutcomeSuccess, "MonitorRun/"+r.JSON["run"].(string))
			r = s.Do(t, "GET", "/admin/api/monitor/alerts?since=24h&min_score=0.1", nil, asPO).Want(t, 200)
			if _, ok := r.JSON["alerts"].([]any); !ok {
				t.Errorf("alerts answer %s", r)
			}

			badCtx := `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"Zebulonsky-secret"` // cut short
			ctBad, bodyBad := monitorBody(t, [2]string{"context", badCtx}, [2]string{"events", string(evFile)})
			ctEv, bodyEv := monitorBody(t, [2]string{"context", string(ctxFile)}, [2]string{"events", "Zebulonsky-secret\n"})
			ctOrder, bodyOrder := monitorBody(t, [2]string{"events", string(evFile)}, [2]string{"context", string(ctxFile)})
			for _, tc := range []struct {
				name, path, ct string
				body           []byte
				status         int
				says           string
			}{
				{"not multipart", "/admin/api/monitor/ingest?source=his", "application/json", ctxFile, 415, "multipart/form-data"},
				{"events first", "/admin/api/monitor/ingest?source=his", ctOrder, bodyOrder, 400, "first part must be"},
				{"no source", "/admin/api/monitor/ingest", ct, body, 400, "source name"},
				{"bad source", "/admin/api/monitor/ingest?source=Zebulonsky%20secret", ct, body, 400, "source name"},
				{"broken context", "/admin/api/monitor/ingest?source=his", ctBad, bodyBad, 400, "context Bundle"},
				{"events not NDJSON", "/admin/api/monitor/ingest?source=his", ctEv, bodyEv, 200, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := s.Do(t, "POST", tc.path, tc.body, with(asPO, "Content-Type", tc.ct)).Want(t, tc.status)
					if !strings.Contains(string(r.Body), tc.says) || strings.Contains(string(r.Body), "Zebulonsky") {
						t.Errorf("answer %s, want one saying %q and quoting no input", r, tc.says)
					}
				})
			}
			for _, q := range []string{"since=yesterday", "min_score=2", "limit=-1", "status=closed"} {
				s.Do(t, "GET", "/admin/api/monitor/alerts?"+q, nil, asPO).Want(t, 400)
			}
			for _, w := range []string{"Zebulonsky", "Quillfeatherby", "Ostrowinska", "pat-kin"} {
				if strings.Contains(s.Logs(), w) {
					t.Errorf("the server log holds %q", w)
				}
			}
		})
	}
}
