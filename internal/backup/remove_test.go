package backup_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/backup"
)

// TestRemove: a backup and both its sidecars go; other backups stay.
func TestRemove(t *testing.T) {
	st, err := backup.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"phivault-a.age", "phivault-b.age"} {
		for _, suf := range []string{"", backup.SumSuffix, backup.SummarySuffix} {
			if err := st.Put(t.Context(), n+suf, strings.NewReader("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := backup.Remove(t.Context(), st, "phivault-a.age"); err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.HasPrefix(o.Name, "phivault-a.age") {
			t.Errorf("%s is left after Remove", o.Name)
		}
	}
	if len(objs) != 3 {
		t.Fatalf("%d objects left, want the other backup's 3", len(objs))
	}
	if _, err := st.Get(t.Context(), "phivault-a.age"); !errors.Is(err, backup.ErrNotExist) {
		t.Fatalf("Get after Remove: %v", err)
	}
}
