package passkey_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/passkey/passkeytest"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzFinish seeds from the software authenticator")

// TestFuzzSeeds checks that the FuzzFinish seed corpus in testdata (a
// registration and an assertion as a browser sends them, from the
// software authenticator) is present; FuzzFinish runs them as seeds.
// With -update it writes new ones.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFinish")
	if *update {
		rp, _ := passkey.New(passkey.Config{BaseURL: origin})
		u := passkey.User{ID: "usr_1", Name: "alice"}
		a, err := passkeytest.New(origin)
		if err != nil {
			t.Fatal(err)
		}
		opts, c, _ := rp.BeginRegistration(u, 1)
		reg, _ := a.Register(mustJSON(opts))
		cred, err := rp.FinishRegistration(u, c, reg, "")
		if err != nil {
			t.Fatal(err)
		}
		cred.ID = "pk"
		u.Credentials = []passkey.Credential{cred}
		lopts, _, _ := rp.BeginLogin(u, 1)
		asr, _ := a.Assert(mustJSON(lopts))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"registration": reg, "assertion": asr} {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"registration", "assertion"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("seed %s missing (go test -run TestFuzzSeeds -update): %v", name, err)
		}
	}
}
