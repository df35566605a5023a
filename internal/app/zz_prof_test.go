package app_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
)

func TestProfVerify(t *testing.T) {
	dir := os.Getenv("PV_DIR")
	if dir == "" {
		t.Skip()
	}
	c, err := config.Load(dir, func(string) string { return "" }, config.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	a, err := app.Open(t.Context(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t1 := time.Now()
	rep, err := a.Verify(t.Context(), nil)
	if err != nil || !rep.OK() {
		t.Fatal(err, rep.Data.Problems)
	}
	t.Logf("open %v, verify %v", t1.Sub(t0), time.Since(t1))
}
