package app_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
)

// TestOpenFailureLeavesNoGoroutine: a start refused after the audit log
// began integrating (here: a policy override that does not validate)
// stops the integrator and everything else it started; it used to leak
// the integrator's goroutine on two paths.
func TestOpenFailureLeavesNoGoroutine(t *testing.T) {
	c := authzConfig(t)
	a, err := openApp(t, c) // the data directory's first start
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	dir := filepath.Join(c.DataDir, app.PolicyDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.cedar"), []byte(`@id("b") permit (principal, action, resource) when { resource.nope };`), 0o600); err != nil {
		t.Fatal(err)
	}
	settle := func() int {
		n := runtime.NumGoroutine()
		for range 50 {
			time.Sleep(20 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				return n
			}
			n = m
		}
		return n
	}
	before := settle()
	for range 5 {
		if _, err := openApp(t, c); err == nil {
			t.Fatal("a broken policy override was accepted")
		}
	}
	// Five leaked starts would leave at least five goroutines behind;
	// wait for closed ones to finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := settle()
		if after < before+5 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before five refused starts, %d after\n%s", before, after, buf[:runtime.Stack(buf, true)])
		}
	}
}
