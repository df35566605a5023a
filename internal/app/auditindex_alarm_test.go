package app

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/keys"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAuditIndexQuietDuringLogAlarm (SRE fault test 2): while the
// integrator refuses to sign (here: the kept checkpoint cannot be
// written), the audit index, which integrates before it reads, logged a
// warning every second, burying the alarm the integrator logs once a
// minute. It now waits for the log quietly.
func TestAuditIndexQuietDuringLogAlarm(t *testing.T) {
	c := config.Default(t.TempDir())
	c.Storage.Driver = "sqlite"
	c.Storage.SQLitePath = c.Path(c.Storage.SQLitePath)
	if err := os.MkdirAll(c.Path("keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.Keys.KeyFile = c.Path(c.Keys.KeyFile)
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		t.Fatal(err)
	}
	c.Server.BaseURL = "https://127.0.0.1:8443"
	c = c.Resolved()
	var logs syncBuffer
	a, err := Open(t.Context(), c, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	kept := c.Audit.CheckpointFile
	if err := os.Remove(kept); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(kept, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Tokens().Create(t.Context(), "svc", []string{"researcher"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		a.indexer.Round(t.Context())
	}
	if err := a.Transparency().Alarm(); !errors.Is(err, merkle.ErrAnchorIO) {
		t.Fatalf("alarm %v, want ErrAnchorIO", err)
	}
	if n := strings.Count(logs.String(), "audit index: catching up failed"); n != 0 {
		t.Errorf("the audit index logged %d warnings during the alarm, want none", n)
	}
}
