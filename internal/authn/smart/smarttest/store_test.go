package smarttest_test

import (
	"path/filepath"
	"testing"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/smarttest"
	"github.com/phivault/phivault/internal/storage/postgres"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

func TestSQLite(t *testing.T) {
	smarttest.Run(t, func(t *testing.T) smart.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "phivault.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Smart()
	})
}

func TestPostgres(t *testing.T) {
	smarttest.Run(t, func(t *testing.T) smart.Store {
		s, err := postgres.Open(t.Context(), pgtest.NewDatabase(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Smart()
	})
}

func TestLaunchSQLite(t *testing.T) {
	smarttest.RunLaunch(t, func(t *testing.T) smarttest.LaunchStore {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "phivault.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Smart()
	})
}

func TestLaunchPostgres(t *testing.T) {
	smarttest.RunLaunch(t, func(t *testing.T) smarttest.LaunchStore {
		s, err := postgres.Open(t.Context(), pgtest.NewDatabase(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Smart()
	})
}
