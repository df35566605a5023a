package schedule_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/backup/schedule"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// dirStore is a backup.Store in a directory, for these tests (the
// engine's own directory store replaces it at merge): Put writes a
// temporary file, syncs it and renames it into place.
type dirStore struct{ dir string }

func (d dirStore) String() string { return d.dir }

func (d dirStore) Put(ctx context.Context, name string, r io.Reader) error {
	f, err := os.CreateTemp(d.dir, ".put-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(d.dir, name))
}

func (d dirStore) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(d.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, backup.ErrNotExist)
	}
	return f, err
}

func (d dirStore) List(ctx context.Context) ([]backup.Object, error) {
	es, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	var out []backup.Object
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, backup.Object{Name: e.Name(), Size: fi.Size(), Modified: fi.ModTime()})
	}
	return out, nil
}

func (d dirStore) Delete(ctx context.Context, name string) error {
	if err := os.Remove(filepath.Join(d.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// fileEngine takes real, small backups: a copy of a source file with a
// SHA-256 sidecar, named by the clock; its drill restores the newest
// copy into a scratch directory and checks the digest. (The real engine
// snapshots the database and encrypts with age; the schedule only sees
// names, sizes and outcomes.)
type fileEngine struct {
	src     string
	scratch string
	now     func() time.Time
}

const stamp = "20060102T150405Z"

func (e fileEngine) Create(ctx context.Context, st backup.Store) (string, error) {
	b, err := os.ReadFile(e.src)
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	name := "phivault-" + e.now().UTC().Format(stamp) + ".bak"
	sum := sha256.Sum256(b)
	if err := st.Put(ctx, name, bytes.NewReader(b)); err != nil {
		return "", err
	}
	return name, st.Put(ctx, name+".sha256", strings.NewReader(hex.EncodeToString(sum[:])))
}

func (e fileEngine) Drill(ctx context.Context, st backup.Store) (schedule.DrillResult, error) {
	objs, err := st.List(ctx)
	if err != nil {
		return schedule.DrillResult{}, err
	}
	var names []string
	for _, o := range objs {
		if strings.HasSuffix(o.Name, ".bak") {
			names = append(names, o.Name)
		}
	}
	if len(names) == 0 {
		return schedule.DrillResult{}, errors.New("no backup to drill")
	}
	slices.Sort(names)
	name := names[len(names)-1]
	taken, _ := time.Parse(stamp, strings.TrimSuffix(strings.TrimPrefix(name, "phivault-"), ".bak"))
	res := schedule.DrillResult{Backup: name, Taken: taken}
	rc, err := st.Get(ctx, name)
	if err != nil {
		return res, err
	}
	defer rc.Close()
	out := filepath.Join(e.scratch, "restored")
	f, err := os.Create(out)
	if err != nil {
		return res, err
	}
	defer os.Remove(out)
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), rc); err != nil {
		f.Close()
		return res, err
	}
	if err := f.Close(); err != nil {
		return res, err
	}
	sc, err := st.Get(ctx, name+".sha256")
	if err != nil {
		return res, err
	}
	defer sc.Close()
	want, err := io.ReadAll(sc)
	if err != nil {
		return res, err
	}
	if hex.EncodeToString(h.Sum(nil)) != string(want) {
		return res, fmt.Errorf("restored %s does not match its digest", name)
	}
	return res, nil
}

func (e fileEngine) Remove(ctx context.Context, st backup.Store, name string) error {
	if err := st.Delete(ctx, name+".sha256"); err != nil {
		return err
	}
	return st.Delete(ctx, name)
}

// plainSealer leaves audit bodies readable, so tests can read events.
type plainSealer struct{}

func (plainSealer) SealAudit(_ string, b []byte) ([]byte, error) { return b, nil }
func (plainSealer) OpenAudit(_ string, b []byte) ([]byte, error) { return b, nil }

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a job on a real SQLite store, a temporary directory store and
// a file engine.
type env struct {
	db    *sqldb.Store
	st    dirStore
	eng   fileEngine
	clock *clock
	log   *audit.Log
	logs  *bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	src := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(src, []byte("a consistent snapshot of the database\x00\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)}
	return &env{db: db, st: dirStore{dir: t.TempDir()}, eng: fileEngine{src: src, scratch: t.TempDir(), now: c.Now},
		clock: c, log: audit.NewLog(plainSealer{}), logs: &bytes.Buffer{}}
}

// events returns the audit events of the store, oldest first.
func (e *env) events(t *testing.T) []audit.Event {
	t.Helper()
	var out []audit.Event
	err := e.db.ScanAudit(t.Context(), 0, func(_ int64, r storage.AuditRecord) error {
		b, err := e.log.Open(r)
		if err != nil {
			return err
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return err
		}
		out = append(out, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
