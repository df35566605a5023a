package app_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

func authzConfig(t *testing.T) config.Config {
	t.Helper()
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
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func openApp(t *testing.T, c config.Config) (*app.App, error) {
	t.Helper()
	a, err := app.Open(t.Context(), c, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err == nil {
		t.Cleanup(func() { a.Close() })
	}
	return a, err
}

// TestPolicyVersions: every policy set that comes into force at a start
// is recorded once (hash, source, time) with a policy-change audit
// event; a bad override stops the start with an error naming the file.
func TestPolicyVersions(t *testing.T) {
	c := authzConfig(t)
	a, err := openApp(t, c)
	if err != nil {
		t.Fatal(err)
	}
	first := a.Authz.Policies().Hash()
	a.Close()
	if _, err := openApp(t, c); err != nil { // same policies: nothing new
		t.Fatal(err)
	}
	dir := filepath.Join(c.DataDir, app.PolicyDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site.cedar"), []byte(`@id("site") forbid (principal, action, resource) when { resource.type == "Patient" };`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err = openApp(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if a.Authz.Policies().Hash() == first || a.Authz.Policies().Source() != dir {
		t.Fatalf("the override is not in force: %s from %s", a.Authz.Policies().Hash(), a.Authz.Policies().Source())
	}
	vs, err := a.Store.(*sqldb.Store).Authz().PolicyVersions(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Hash != a.Authz.Policies().Hash() || vs[1].Hash != first || vs[1].Source != "embedded" {
		t.Fatalf("versions %+v", vs)
	}
	evs, err := a.Transparency().Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var changes [][]string
	for _, ev := range evs {
		if ev.Action == audit.ActionPolicyChange {
			changes = append(changes, ev.Policies)
		}
	}
	if len(changes) != 2 || !slices.Contains(changes[1], "hash="+a.Authz.Policies().Hash()) {
		t.Fatalf("policy-change events %v", changes)
	}
	a.Close()

	if err := os.WriteFile(filepath.Join(dir, "broken.cedar"), []byte(`@id("b") permit (principal, action, resource) when { resource.nope };`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openApp(t, c)
	if err == nil || !strings.Contains(err.Error(), "broken.cedar") {
		t.Fatalf("start with a bad policy file: %v, want an error naming it", err)
	}
}
