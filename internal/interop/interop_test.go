// Package interop_test proves that standard FHIR clients written by
// others work against phivault through their own public APIs, unmodified:
// fhir-kit-client 2.0.3, SMART's fhirclient 2.6.3 and @medplum/core 4.5.2
// (versions pinned by interop/package-lock.json). The clients run in Node
// from interop/clients.mjs against a real phivault started by apitest on
// each storage driver; this test supplies the server's URL, token and TLS
// certificate and fails with the script's output.
//
// The script loads real Synthea data (the hospital and practitioner batch
// bundles, one patient transaction), then each client runs its suite and
// checks the results, not only that no error came back: CRUD and vread,
// JSON Patch (and FHIRPath Patch and conditional patch), conditional
// create/update/delete (one match, none, two), instance and type history
// (_since, _at, next links), transaction (urn:uuid references,
// ifNoneExist, atomic failure) and batch (independent entry statuses),
// search with _include/_revinclude, a chain and _has, paging to the last
// next link, compartment search and $everything. None of the three npm
// packages ships its own test suite (their "files" hold only the built
// library), so "the client's normal use works" is what is tested here.
// The Python fhirclient is not tested: Debian packages no FHIR client and
// these machines reach no Python package index (docs/fhir.md, "Tested with").
//
// Without node or npm, or when npm cannot install interop/package-lock.json,
// the test skips with "needs-node:", which CI treats as a failure.
package interop_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
)

const (
	// interopDir is the Node project, relative to this package.
	interopDir = "../../interop"
	// syntheaDir holds the shared Synthea export (outside the repository).
	syntheaDir = "../../../shared/data/synthea"

	// installTimeout bounds "npm ci" (about 10 s with a warm cache).
	installTimeout = 5 * time.Minute
	// scriptTimeout bounds one run of clients.mjs (30 to 60 s, most of it
	// loading the directory batches); a hung
	// request must not hold the test suite until its global timeout.
	scriptTimeout = 2 * time.Minute
)

func TestClients(t *testing.T) {
	node := nodeModules(t)
	files := syntheaFiles(t)
	script, err := filepath.Abs(filepath.Join(interopDir, "clients.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		ca := exportCertificate(t, s)
		ctx, cancel := context.WithTimeout(t.Context(), scriptTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, script)
		cmd.Dir = filepath.Dir(script)
		cmd.Env = append(os.Environ(),
			"PHIVAULT_FHIR_URL="+s.URL+"/fhir",
			"PHIVAULT_TOKEN="+s.Token(),
			"PHIVAULT_CA_FILE="+ca,
			"NODE_EXTRA_CA_CERTS="+ca,
			"PHIVAULT_BUNDLES="+strings.Join(files, string(os.PathListSeparator)),
		)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			if ctx.Err() != nil {
				err = errors.Join(err, ctx.Err())
			}
			t.Fatalf("clients.mjs on %s: %v\n%s", s.Driver, err, out)
		}
		t.Logf("clients.mjs on %s in %s:\n%s", s.Driver, time.Since(start).Round(time.Millisecond), out)
		if !strings.Contains(string(out), "all checks passed") {
			t.Fatalf("clients.mjs exited 0 without its final line:\n%s", out)
		}

		// The clients searched by family name and identifier: neither,
		// nor the token, may reach the server log.
		family, ident := searchedValues(t, files[len(files)-1])
		logs := s.Logs()
		for what, v := range map[string]string{"token": s.Token(), "family name": family, "identifier": ident} {
			if strings.Contains(logs, v) {
				t.Errorf("the server log contains the %s the clients sent", what)
			}
			if strings.Contains(logs, url.QueryEscape(v)) {
				t.Errorf("the server log contains the URL-encoded %s the clients sent", what)
			}
		}
	})
}

// nodeModules returns the node binary, installing interop/node_modules
// from the lock file first when it is missing.
func nodeModules(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("needs-node: node is not on PATH: %v", err)
	}
	dir, err := filepath.Abs(interopDir)
	if err != nil {
		t.Fatal(err)
	}
	installed := func() bool {
		for _, p := range []string{"fhir-kit-client", "fhirclient", "@medplum/core", "jose"} {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
				return false
			}
		}
		return true
	}
	if installed() {
		return node
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skipf("needs-node: interop/node_modules is missing and npm is not on PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--legacy-peer-deps", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || !installed() {
		t.Skipf("needs-node: npm ci in interop failed: %v\n%s", err, out)
	}
	return node
}

// syntheaFiles returns the hospital and practitioner batch bundles, which
// the patient bundles reference conditionally and so must load first,
// then the smallest patient transaction bundle.
func syntheaFiles(t *testing.T) []string {
	t.Helper()
	dir, err := filepath.Abs(syntheaDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared Synthea data not available at %s: %v", syntheaDir, err)
	}
	hosp, _ := filepath.Glob(filepath.Join(dir, "hospitalInformation*.json"))
	pract, _ := filepath.Glob(filepath.Join(dir, "practitionerInformation*.json"))
	all, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var smallest string
	var size int64
	for _, f := range all {
		if slices.Contains(hosp, f) || slices.Contains(pract, f) {
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if smallest == "" || fi.Size() < size {
			smallest, size = f, fi.Size()
		}
	}
	if len(hosp) != 1 || len(pract) != 1 || smallest == "" {
		t.Fatalf("%s lacks the hospital, practitioner or patient bundles", syntheaDir)
	}
	return []string{hosp[0], pract[0], smallest}
}

// exportCertificate writes the server's certificate as PEM for
// NODE_EXTRA_CA_CERTS. apitest does not expose its httptest.Server, so
// the certificate is taken from a handshake with it; it is the
// self-signed httptest certificate that apitest's own client trusts,
// and the script's first request would fail against any other.
func exportCertificate(t *testing.T, s *apitest.Server) string {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // reading the certificate of our own loopback test server
	conn, err := d.DialContext(t.Context(), "tcp", u.Host)
	if err != nil {
		t.Fatalf("handshake with %s: %v", u.Host, err)
	}
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	conn.Close()
	if len(certs) == 0 {
		t.Fatal("the server presented no certificate")
	}
	var pemData []byte
	for _, c := range certs {
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// searchedValues returns the family name and the Synthea identifier of
// the patient in a patient bundle: the values clients.mjs searches by.
func searchedValues(t *testing.T, file string) (family, identifier string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				Name         []struct {
					Family string `json:"family"`
				} `json:"name"`
				Identifier []struct {
					System string `json:"system"`
					Value  string `json:"value"`
				} `json:"identifier"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatalf("%s: %v", filepath.Base(file), err)
	}
	for _, e := range bundle.Entry {
		r := e.Resource
		if r.ResourceType != "Patient" || len(r.Name) == 0 {
			continue
		}
		for _, id := range r.Identifier {
			if id.System == "https://github.com/synthetichealth/synthea" {
				return r.Name[0].Family, id.Value
			}
		}
	}
	t.Fatalf("%s has no Patient with a name and a Synthea identifier", filepath.Base(file))
	return "", ""
}
