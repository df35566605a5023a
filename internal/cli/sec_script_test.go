package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/phivault/phivault/internal/cli"
)

// TestMain lets testscript run "phivault" in-process: the scripts call
// cli.Main exactly as cmd/phivault does.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"phivault": func() {
			os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// TestScripts runs testdata/script/*.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// mode FILE OCTAL: FILE's permission bits are exactly OCTAL.
			"mode": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: mode FILE OCTAL")
				}
				st, err := os.Stat(ts.MkAbs(args[0]))
				ts.Check(err)
				want, err := strconv.ParseUint(args[1], 8, 32)
				ts.Check(err)
				if got := st.Mode().Perm(); (uint64(got) == want) == neg {
					ts.Fatalf("%s has mode %04o, want %s%s", args[0], got, map[bool]string{true: "not ", false: ""}[neg], args[1])
				}
			},
			// enrolsecret FILE: writes the one enrolment secret (pve_...) of
			// the last command's stdout to FILE, so a script can use it
			// without it ever being a flag.
			"enrolsecret": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 || neg {
					ts.Fatalf("usage: enrolsecret FILE")
				}
				m := regexp.MustCompile(`pve_[A-Za-z0-9_-]{43}`).FindAllString(ts.ReadFile("stdout"), -1)
				if len(m) != 1 {
					ts.Fatalf("stdout holds %d enrolment secrets, want 1", len(m))
				}
				ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(m[0]+"\n"), 0o600))
			},
			// cmpdir A B: both directories hold the same files, byte for byte.
			"cmpdir": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 || neg {
					ts.Fatalf("usage: cmpdir DIR1 DIR2")
				}
				a, b := ts.MkAbs(args[0]), ts.MkAbs(args[1])
				ea, err := os.ReadDir(a)
				ts.Check(err)
				eb, err := os.ReadDir(b)
				ts.Check(err)
				if len(ea) != len(eb) || len(ea) == 0 {
					ts.Fatalf("%s has %d files, %s has %d", args[0], len(ea), args[1], len(eb))
				}
				for _, e := range ea {
					x, err := os.ReadFile(filepath.Join(a, e.Name()))
					ts.Check(err)
					y, err := os.ReadFile(filepath.Join(b, e.Name()))
					ts.Check(err)
					if !bytes.Equal(x, y) {
						ts.Fatalf("%s differs between %s and %s", e.Name(), args[0], args[1])
					}
				}
			},
		},
	})
}
