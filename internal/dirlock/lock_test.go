package dirlock_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/dirlock"
)

func TestSharedAndExclusive(t *testing.T) {
	dir := t.TempDir()
	s1, err := dirlock.Acquire(dir, dirlock.Shared, "serve")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := dirlock.Acquire(dir, dirlock.Shared, "user add")
	if err != nil {
		t.Fatalf("a second shared holder: %v", err)
	}
	_, err = dirlock.Acquire(dir, dirlock.Exclusive, "import")
	var be *dirlock.BusyError
	if !errors.As(err, &be) || !errors.Is(err, dirlock.ErrBusy) {
		t.Fatalf("exclusive beside shared: %v", err)
	}
	if be.PID != os.Getpid() || be.Command != "user add" {
		t.Errorf("holder %d %q, want %d \"user add\"", be.PID, be.Command, os.Getpid())
	}
	want := "the data directory " + dir + " is in use by a running phivault (pid " + strconv.Itoa(os.Getpid()) + ": user add)"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want prefix %q", err, want)
	}
	if err := s1.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := dirlock.Acquire(dir, dirlock.Exclusive, "import"); !errors.Is(err, dirlock.ErrBusy) {
		t.Fatalf("exclusive beside one shared holder: %v", err)
	}
	if err := s2.Release(); err != nil {
		t.Fatal(err)
	}
	x, err := dirlock.Acquire(dir, dirlock.Exclusive, "import")
	if err != nil {
		t.Fatalf("exclusive once all let go: %v", err)
	}
	_, err = dirlock.Acquire(dir, dirlock.Shared, "serve")
	if !errors.As(err, &be) || be.Command != "import" || !strings.Contains(err.Error(), "wait for it to finish") {
		t.Fatalf("shared beside exclusive: %v", err)
	}
	if err := x.Release(); err != nil {
		t.Fatal(err)
	}
	if err := x.Release(); err != nil {
		t.Fatalf("a second release: %v", err)
	}
	if _, err := dirlock.Acquire(t.TempDir()+"/missing", dirlock.Shared, "serve"); err == nil || errors.Is(err, dirlock.ErrBusy) {
		t.Fatalf("a missing directory: %v", err)
	}
}
