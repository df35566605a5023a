package bulk

import (
	"encoding/json"
	"strconv"
	"time"
)

// The complete-status manifest (Bulk Data IG v2, "Response - Complete
// Status"): transactionTime, request, requiresAccessToken (always true:
// files are served only with the token of the client that started the
// export), output and error file lists.

type manifestFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count"`
}

type manifest struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []manifestFile `json:"output"`
	Deleted             []manifestFile `json:"deleted"`
	Error               []manifestFile `json:"error"`
}

// FilePath is the path of file n of job id under the FHIR base.
func FilePath(id string, n int) string { return "/$export-file?job=" + id + "&n=" + strconv.Itoa(n) }

// StatusPath is the path of job id's status under the FHIR base.
func StatusPath(id string) string { return "/$export-poll?job=" + id }

func (s *Service) manifest(j Job, req Request, files []File) ([]byte, error) {
	m := manifest{TransactionTime: j.TxTime.UTC().Format(time.RFC3339Nano), Request: req.URL, RequiresAccessToken: true,
		Output: []manifestFile{}, Deleted: []manifestFile{}, Error: []manifestFile{}}
	for _, f := range files {
		mf := manifestFile{Type: f.Type, URL: s.o.BaseURL + FilePath(j.ID, f.N), Count: f.Count}
		switch f.Kind {
		case KindError:
			m.Error = append(m.Error, mf)
		case KindDeleted:
			m.Deleted = append(m.Deleted, mf)
		default:
			m.Output = append(m.Output, mf)
		}
	}
	return json.Marshal(m)
}
