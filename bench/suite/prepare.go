package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// binaries are the three programs the suite runs.
type binaries struct {
	phivault, baseline, load string
	// commit is the module's git commit when the suite built the
	// binaries ("" when they were given), with "+dirty" for uncommitted
	// changes.
	commit string
}

// build builds the binaries not given on the command line into WORK/bin,
// from the module the working directory is in.
func (s *suite) build(ctx context.Context) (binaries, error) {
	b := binaries{phivault: s.opt.phivault, baseline: s.opt.baseline, load: s.opt.load}
	todo := map[string]*string{"./cmd/phivault": &b.phivault, "./bench/baseline": &b.baseline, "./bench/load": &b.load}
	var root string
	for _, pkg := range []string{"./cmd/phivault", "./bench/baseline", "./bench/load"} {
		p := todo[pkg]
		if *p != "" {
			continue
		}
		if root == "" {
			out, _, err := command(ctx, childEnv(), "go", "env", "GOMOD")
			gomod := strings.TrimSpace(string(out))
			if err != nil || gomod == "" || gomod == os.DevNull {
				return b, errors.New("not inside the phivault module: run from the repository or pass -phivault, -baseline and -load")
			}
			root = filepath.Dir(gomod)
		}
		*p = filepath.Join(s.opt.work, "bin", filepath.Base(pkg))
		s.progress.printf("building %s", pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *p, pkg)
		cmd.Dir, cmd.Env = root, childEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w: %s", pkg, err, tail(string(out)))
		}
	}
	if root != "" {
		b.commit = gitCommit(ctx, root)
	}
	return b, nil
}

// gitCommit names the commit of root, "" if git cannot say.
func gitCommit(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	st := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no")
	st.Dir = root
	if d, err := st.Output(); err == nil && len(bytes.TrimSpace(d)) > 0 {
		c += "+dirty"
	}
	return c
}

// synthCompleteFile marks a synthetic data directory as whole: a run
// interrupted while generating is not reused.
const synthCompleteFile = ".complete"

// synth generates WORK/synth-N-seedS with "phivault synth", or reuses it
// when an earlier run completed it.
func (s *suite) synth(ctx context.Context) (string, error) {
	dir := filepath.Join(s.opt.work, fmt.Sprintf("synth-%d-seed%d", s.opt.patients, s.opt.seed))
	if _, err := os.Stat(filepath.Join(dir, synthCompleteFile)); err == nil {
		s.progress.printf("reusing the synthetic data in %s", dir)
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	s.progress.printf("generating %d synthetic patients (seed %d) into %s", s.opt.patients, s.opt.seed, dir)
	if _, _, err := command(ctx, childEnv(), s.bins.phivault, "synth", "--patients", strconv.Itoa(s.opt.patients),
		"--seed", strconv.FormatInt(s.opt.seed, 10), "--out", dir); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, synthCompleteFile), nil, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// vault is an initialised phivault data directory.
type vault struct {
	store string // "sqlite" or "postgres"
	dir   string
	addr  string // listen address
	token string // the admin API token init printed; never printed here
	env   []string
}

func (v *vault) url() string    { return "https://" + v.addr + "/fhir" }
func (v *vault) cacert() string { return filepath.Join(v.dir, "tls", "ca.crt") }

// initVault runs "phivault init" into a fresh WORK/phivault-STORE and
// lifts the per-address connection limit: bench/load's clients all come
// from one address (bench/README.md, "The price of the hardening").
// dbURL, for PostgreSQL, travels in the environment, not on the command
// line.
func (s *suite) initVault(ctx context.Context, store, dbURL string) (*vault, error) {
	dir := filepath.Join(s.opt.work, "phivault-"+store)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	v := &vault{store: store, dir: dir, addr: addr, env: childEnv()}
	if dbURL != "" {
		v.env = append(v.env, "PHIVAULT_POSTGRES="+dbURL)
	}
	out, _, err := command(ctx, v.env, s.bins.phivault, "init", "--data", dir, "--listen", addr)
	if err != nil {
		return nil, err
	}
	if v.token, err = parseToken(out); err != nil {
		return nil, err
	}
	if err := setConfig(filepath.Join(dir, "phivault.json"), "limits", "max_connections_per_address", 0); err != nil {
		return nil, err
	}
	return v, nil
}

// parseToken finds the admin API token in init's output: the first
// non-empty line after "Admin API token". The error never holds output.
func parseToken(out []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	found := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "Admin API token"):
			found = true
		case found && line != "":
			if strings.ContainsAny(line, " \t") {
				return "", errors.New("phivault init: the line after \"Admin API token\" is not a token")
			}
			return line, nil
		}
	}
	return "", errors.New("phivault init printed no admin API token")
}

// setConfig sets section.key = value in a phivault.json, keeping every
// other setting as written (numbers included).
func setConfig(path, section, key string, value any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	sec, _ := c[section].(map[string]any)
	if sec == nil {
		sec = map[string]any{}
	}
	sec[key] = value
	c[section] = sec
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o600)
}

// serveVault starts "phivault serve" on v.
func (s *suite) serveVault(ctx context.Context, v *vault) (*server, error) {
	name := "phivault (" + storeName(v.store) + ")"
	srv, err := startServer(ctx, name, v.url(), v.cacert(), filepath.Join(s.opt.work, "logs", "phivault-"+v.store+".log"),
		v.env, s.bins.phivault, "serve", "--data", v.dir)
	if err != nil {
		return nil, err
	}
	srv.token = v.token
	return srv, nil
}

// serveBaseline serves db over HTTPS with the certificate of v, so that
// the two columns differ by the safeguards and not by TLS.
func (s *suite) serveBaseline(ctx context.Context, db string, v *vault) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return startServer(ctx, "baseline", "https://"+addr+"/fhir", v.cacert(), filepath.Join(s.opt.work, "logs", "baseline.log"),
		childEnv(), s.bins.baseline, "-db", db, "-addr", addr,
		"-tls-cert", filepath.Join(v.dir, "tls", "server.crt"), "-tls-key", filepath.Join(v.dir, "tls", "server.key"))
}

func storeName(store string) string {
	if store == "postgres" {
		return "PostgreSQL"
	}
	return "SQLite"
}

// progress writes timestamped progress lines for a person watching.
// It is safe for concurrent use.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (p *progress) printf(format string, args ...any) {
	el := time.Since(p.start).Round(time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "suite %s  %s\n", fmtClock(el), fmt.Sprintf(format, args...))
}

func fmtClock(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}
