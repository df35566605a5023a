package console

import (
	"net/url"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/monitor"
)

// TestParseAlertQuery: the queue's filter takes a known status, a known
// kind and a score from 0 to 1, and refuses anything else without
// echoing it.
func TestParseAlertQuery(t *testing.T) {
	for _, c := range []struct {
		q       string
		ok      bool
		status  string
		cat     monitor.Category
		min     float64
		message string
	}{
		{"", true, "", "", 0, ""},
		{"status=confirmed&category=family&min=0.5", true, "confirmed", monitor.CatFamily, 0.5, ""},
		{"status=all", true, "all", "", 0, ""},
		{"status=<script>", false, "", "", 0, "choose a status"},
		{"category=nosy", false, "", "", 0, "choose a kind"},
		{"min=2", false, "", "", 0, "from 0 to 1"},
		{"min=NaN", false, "", "", 0, "from 0 to 1"},
		{"min=-0.1", false, "", "", 0, "from 0 to 1"},
		{"suppressed=yes", false, "", "", 0, "not valid"},
	} {
		v, err := url.ParseQuery(c.q)
		if err != nil {
			t.Fatal(err)
		}
		a, err := parseAlertQuery(v)
		if (err == nil) != c.ok {
			t.Errorf("%q: error %v, want ok %t", c.q, err, c.ok)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), c.message) || strings.Contains(err.Error(), "script") || strings.Contains(err.Error(), "nosy") {
				t.Errorf("%q: message %q", c.q, err)
			}
			continue
		}
		if a.status != c.status || a.category != c.cat || a.min != c.min {
			t.Errorf("%q: parsed %+v", c.q, a)
		}
	}
}

// FuzzParseAlertQuery: any query either parses into a known status, a
// known kind and a score in [0, 1], or is refused.
func FuzzParseAlertQuery(f *testing.F) {
	for _, s := range []string{"", "status=open", "category=vip&min=0.9", "min=1e-3", "status=all&category=credential", "min=0x1p-2", "min=Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		a, err := parseAlertQuery(v)
		if err != nil {
			return
		}
		if a.status != "" && a.status != "all" && statusWords[a.status] == "" {
			t.Fatalf("status %q accepted", a.status)
		}
		if _, ok := categoryWords[a.category]; a.category != "" && !ok {
			t.Fatalf("kind %q accepted", a.category)
		}
		if !(a.min >= 0 && a.min <= 1) {
			t.Fatalf("score %v accepted", a.min)
		}
	})
}

// TestLeafIndex: only "leaf/<n>" of a non-negative integer links to an
// audit event.
func TestLeafIndex(t *testing.T) {
	for in, want := range map[string]string{"leaf/12": "12", "leaf/": "", "leaf/-1": "", "leaf/1/2": "", "AuditEvent/3": "", "leaf/99999999999999999999": ""} {
		if got := leafIndex(in); got != want {
			t.Errorf("leafIndex(%q) = %q, want %q", in, got, want)
		}
	}
}
