package throttle

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestThrottle: of 1,000 identical errors in one interval, Repeats are
// written; the next interval starts with a summary counting the rest.
// Info lines and other messages are not affected, and attributes (a
// request id) do not make lines distinct.
func TestThrottle(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	h := New(slog.NewJSONHandler(&b, nil), Options{Repeats: 3, Interval: 10 * time.Second, Now: c.now})
	log := slog.New(h).With("component", "test")
	for i := range 1000 {
		log.Error("request failed", "request_id", i)
		log.Info("request", "request_id", i)
	}
	log.Warn("http: TLS handshake error from 192.0.2.7:51234: EOF")
	log.Warn("http: TLS handshake error from 198.51.100.9:40000: EOF")
	got := lines(t, &b)
	count := func(msg string) int {
		n := 0
		for _, l := range got {
			if l["msg"] == msg {
				n++
			}
		}
		return n
	}
	if n := count("request failed"); n != 3 {
		t.Fatalf("errors written: %d, want 3", n)
	}
	if n := count("request"); n != 1000 {
		t.Fatalf("info lines written: %d, want all 1000", n)
	}
	if n := count("http: TLS handshake error from 192.0.2.7:51234: EOF") + count("http: TLS handshake error from 198.51.100.9:40000: EOF"); n != 2 {
		t.Fatalf("two lines of one new message: %d written, want 2", n)
	}
	c.t = c.t.Add(11 * time.Second)
	b.Reset()
	log.Info("next")
	got = lines(t, &b)
	if len(got) != 2 || got[0]["msg"] != "log lines suppressed" || got[0]["message"] != "request failed" || got[0]["count"] != float64(997) || got[0]["level_suppressed"] != "ERROR" {
		t.Fatalf("after the interval: %v, want one summary of 997 suppressed errors then the line", got)
	}
	// A new interval passes Repeats lines again.
	b.Reset()
	for range 5 {
		log.Error("request failed")
	}
	if n := len(lines(t, &b)); n != 3 {
		t.Fatalf("next interval: %d lines, want 3", n)
	}
	b.Reset()
	h.Flush(context.Background())
	if got := lines(t, &b); len(got) != 1 || got[0]["count"] != float64(2) {
		t.Fatalf("flush: %v, want one summary of 2", got)
	}
}

// TestThrottleBoundedMessages: messages beyond MaxMessages share one
// counter, so varied text cannot grow the state.
func TestThrottleBoundedMessages(t *testing.T) {
	var b bytes.Buffer
	h := New(slog.NewJSONHandler(&b, nil), Options{Repeats: 1, MaxMessages: 4})
	log := slog.New(h)
	for i := range 100 {
		log.Error("message " + strings.Repeat("x", i))
	}
	if n := len(h.st.msgs); n > 4 {
		t.Fatalf("%d tracked messages, want at most 4", n)
	}
	if n := len(lines(t, &b)); n != 4 {
		t.Fatalf("%d lines, want 4 (3 messages and one of the shared counter)", n)
	}
}
