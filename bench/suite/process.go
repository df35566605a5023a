package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process lifetimes.
const (
	// startTimeout bounds a server's start-up: phivault checks its
	// database (PRAGMA quick_check, about 1.4 s per GB) before it listens.
	startTimeout = 5 * time.Minute
	// stopTimeout is how long a server has to drain after SIGTERM before
	// it is killed.
	stopTimeout = 30 * time.Second
	// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's
	// CPU times: 100 on every Linux architecture Go supports.
	clockTicks = 100
	// quietCPU is the share of one core under which a server counts as
	// settled (its audit integrator has caught up).
	quietCPU = 0.10
	// settleWindow is the time over which quietCPU is measured: 50
	// clock ticks, so that 10 % is 5 of them.
	settleWindow = 500 * time.Millisecond
)

// childEnv is the environment of every child process: the suite's own,
// without PHIVAULT_* settings or a LOAD_TOKEN that would point a child at
// another database or send another token, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PHIVAULT_") || strings.HasPrefix(kv, "LOAD_TOKEN=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// command runs bin to completion with env. It returns stdout; stderr's
// tail goes into the error. stdout may hold a secret (init's token): it
// is never put into an error.
func command(ctx context.Context, env []string, bin string, args ...string) ([]byte, *os.ProcessState, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return nil, cmd.ProcessState, fmt.Errorf("%s %s: %w: %s", baseName(bin), args[0], err, tail(stderr.String()))
	}
	return stdout.Bytes(), cmd.ProcessState, nil
}

func baseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// tail returns the last lines of a command's stderr, for an error.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// server is a running server process owned by the suite.
type server struct {
	name   string // "baseline", "phivault (SQLite)", ...
	url    string // FHIR base URL
	cacert string // CA that signed its certificate
	token  string // bearer token for bench/load; "" for the baseline
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, once done is closed
	log    *os.File
}

// startServer starts bin and waits until it answers HTTPS at url. Its
// output goes to logPath. The caller must call stop.
func startServer(ctx context.Context, name, url, cacert, logPath string, env []string, bin string, args ...string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	s := &server{name: name, url: url, cacert: cacert, cmd: cmd, done: make(chan struct{}), log: logf}
	go func() { // owned by s: ends when the process does; stop waits for it
		s.err = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// waitReady polls GET {url}/metadata until any HTTP answer arrives.
func (s *server) waitReady(ctx context.Context) error {
	client, err := httpsClient(s.cacert)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metadata", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited while starting: %v (log: %s)", s.name, s.err, s.log.Name())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer at %s: %w (log: %s)", s.name, s.url, ctx.Err(), s.log.Name())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// alive reports an error if the server has exited.
func (s *server) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited: %v (log: %s)", s.name, s.err, s.log.Name())
	default:
		return nil
	}
}

// stop sends SIGTERM, waits up to stopTimeout, then kills.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.log.Close()
}

// settle waits until the server uses less than quietCPU of a core over
// settleWindow, or maxWait has passed; it returns how long it waited. A phivault
// that has just imported or written integrates its audit events into the
// log in the background: measuring during that would charge the next
// mode for the previous one.
func (s *server) settle(ctx context.Context, maxWait time.Duration) (time.Duration, error) {
	start := time.Now()
	prev, err := cpuTicks(s.pid())
	if err != nil {
		return 0, nil // no /proc: nothing to wait on
	}
	for time.Since(start) < maxWait {
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-s.done:
			return time.Since(start), s.alive()
		case <-time.After(settleWindow):
		}
		now, err := cpuTicks(s.pid())
		if err != nil {
			return time.Since(start), s.alive()
		}
		if float64(now-prev)/clockTicks < quietCPU*settleWindow.Seconds() {
			break
		}
		prev = now
	}
	return time.Since(start), nil
}

// cpuTicks reads utime+stime of pid from /proc/PID/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields are counted
	// from the closing parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + st, nil
}

// httpsClient trusts only the CA in cacertPath; it has timeouts.
func httpsClient(cacertPath string) (*http.Client, error) {
	pem, err := os.ReadFile(cacertPath)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", cacertPath)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext:     (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		},
	}, nil
}

// freeAddr returns a loopback address with a port free at the time of
// the call.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
