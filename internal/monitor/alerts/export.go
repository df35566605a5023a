package alerts

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/monitor"
)

// JSON is an alert as GET /admin/api/monitor/alerts and "phivault
// monitor alerts --format json" write it.
type JSON struct {
	ID          string             `json:"id"`
	Status      string             `json:"status"`
	Assignee    string             `json:"assignee,omitempty"`
	Suppressed  string             `json:"suppressed,omitempty"`
	Created     time.Time          `json:"created"`
	Updated     time.Time          `json:"updated"`
	Source      string             `json:"source"`
	User        string             `json:"user,omitempty"`
	Address     string             `json:"address,omitempty"`
	Patients    []string           `json:"patients,omitempty"`
	Category    monitor.Category   `json:"category"`
	Categories  []monitor.Category `json:"categories,omitempty"`
	Score       float64            `json:"score"`
	Severity    monitor.Severity   `json:"severity"`
	Explanation string             `json:"explanation"`
	First       time.Time          `json:"first"`
	Last        time.Time          `json:"last"`
	Evidence    monitor.Evidence   `json:"evidence"`
	Unreadable  bool               `json:"unreadable,omitempty"`
}

// JSON is a's JSON form.
func (a Alert) JSON() JSON {
	return JSON{ID: a.ID, Status: a.Status, Assignee: a.Assignee, Suppressed: a.Suppressed, Created: a.Created, Updated: a.Updated,
		Source: a.Source, User: a.User, Address: a.Address, Patients: a.Patients, Category: a.Category, Categories: a.Categories,
		Score: a.Score, Severity: a.Severity, Explanation: a.Explanation, First: a.First, Last: a.Last, Evidence: a.Evidence,
		Unreadable: a.Unreadable}
}

// WriteTSV writes as one line per (user, patient) pair, in the given
// order: the user ("Practitioner/<id>", or the source's own account
// reference; empty for an attack from an address on unknown accounts),
// the patient ("Patient/<id>"; empty for an alert about no patient, such
// as most attacks), the category, the score (three decimals) and the
// explanation. An alert about several patients (bulk, browsing) has a
// line for each, sorted. Tabs and line breaks in values become spaces.
// No header line.
func WriteTSV(w io.Writer, as []JSON) error {
	bw := bufio.NewWriter(w)
	for _, a := range as {
		ps := slices.Sorted(slices.Values(a.Patients))
		if len(ps) == 0 {
			ps = []string{""}
		}
		for _, p := range slices.Compact(ps) {
			fmt.Fprintf(bw, "%s\t%s\t%s\t%s\t%s\n", tsvField(a.User), tsvField(p), tsvField(string(a.Category)),
				strconv.FormatFloat(a.Score, 'f', 3, 64), tsvField(a.Explanation))
		}
	}
	return bw.Flush()
}

var tsvClean = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

func tsvField(s string) string { return tsvClean.Replace(s) }

// ParseSince reads a --since value: a duration back from now ("24h",
// "90m", or days "7d") or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 && n <= 36500 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%w: since is a duration (24h, 7d) or an RFC 3339 time", ErrInvalid)
}
