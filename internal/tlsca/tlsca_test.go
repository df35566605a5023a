package tlsca_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/tlsca"
)

var now = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

func files(dir string) tlsca.Files {
	return tlsca.Files{
		CACert:     filepath.Join(dir, "ca.crt"),
		ServerCert: filepath.Join(dir, "server.crt"),
		ServerKey:  filepath.Join(dir, "server.key"),
	}
}

// created runs Create in a fresh directory.
func created(t *testing.T) (dir string, f tlsca.Files, fingerprint string) {
	t.Helper()
	dir = t.TempDir()
	f = files(dir)
	fp, err := tlsca.Create(f, now)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return dir, f, fp
}

func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			t.Fatalf("%s holds a %s block", path, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(b)) != 0 {
		t.Fatalf("%s has trailing data", path)
	}
	return certs
}

func TestCreateChainVerifies(t *testing.T) {
	_, f, _ := created(t)
	ca := readCerts(t, f.CACert)
	if len(ca) != 1 || !ca[0].IsCA {
		t.Fatalf("ca.crt: want one CA certificate, got %d", len(ca))
	}
	chain := readCerts(t, f.ServerCert)
	if len(chain) != 2 || !chain[1].Equal(ca[0]) {
		t.Fatalf("server.crt: want the leaf then the CA, got %d certificates", len(chain))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca[0])
	inter := x509.NewCertPool()

	tests := []struct {
		name   string
		host   string
		at     time.Time
		wantOK bool
	}{
		{"localhost", "localhost", now, true},
		{"IPv4 loopback", "127.0.0.1", now, true},
		{"IPv6 loopback", "::1", now, true},
		{"other name", "phivault.example", now, false},
		{"subdomain of localhost", "evil.localhost", now, false},
		{"LAN address", "192.168.1.10", now, false},
		{"after server validity", "localhost", now.Add(398 * 24 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chain[0].Verify(x509.VerifyOptions{
				DNSName: tt.host, Roots: roots, Intermediates: inter, CurrentTime: tt.at,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if (err == nil) != tt.wantOK {
				t.Fatalf("Verify(%s): err = %v, want ok = %v", tt.host, err, tt.wantOK)
			}
		})
	}

	t.Run("key pair loads for TLS", func(t *testing.T) {
		if _, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey); err != nil {
			t.Fatalf("LoadX509KeyPair: %v", err)
		}
	})
	t.Run("CA cannot sign beyond one level", func(t *testing.T) {
		if !ca[0].MaxPathLenZero || ca[0].MaxPathLen != 0 {
			t.Fatalf("CA path length: MaxPathLen %d, zero %v", ca[0].MaxPathLen, ca[0].MaxPathLenZero)
		}
	})
}

func TestCreateFileModes(t *testing.T) {
	_, f, _ := created(t)
	tests := []struct {
		path string
		want fs.FileMode
	}{
		{f.ServerKey, 0o600},
		{f.ServerCert, 0o644},
		{f.CACert, 0o644},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			// The umask can only remove bits: group/other must never
			// gain access to the key.
			got := fi.Mode().Perm()
			if got&^tt.want != 0 || (tt.want == 0o600 && got != 0o600) {
				t.Fatalf("mode %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCreateRefusesToOverwrite(t *testing.T) {
	tests := []struct {
		name     string
		existing func(f tlsca.Files) string
	}{
		{"server key", func(f tlsca.Files) string { return f.ServerKey }},
		{"server cert", func(f tlsca.Files) string { return f.ServerCert }},
		{"CA cert", func(f tlsca.Files) string { return f.CACert }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := files(t.TempDir())
			path := tt.existing(f)
			const old = "operator's own file\n"
			if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := tlsca.Create(f, now); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Create over an existing %s: got %v, want an error wrapping fs.ErrExist", tt.name, err)
			}
			if b, _ := os.ReadFile(path); string(b) != old {
				t.Fatalf("%s was overwritten", path)
			}
		})
	}
	t.Run("second Create", func(t *testing.T) {
		_, f, _ := created(t)
		key, _ := os.ReadFile(f.ServerKey)
		if _, err := tlsca.Create(f, now); err == nil {
			t.Fatal("a second Create succeeded")
		}
		if b, _ := os.ReadFile(f.ServerKey); !bytes.Equal(b, key) {
			t.Fatal("the server key changed")
		}
	})
}

func TestCAPrivateKeyIsNotWritten(t *testing.T) {
	dir, f, _ := created(t)
	keyPEM, err := os.ReadFile(f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatalf("server.key is not a PKCS#8 PEM key")
	}
	srvKey, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	leaf := readCerts(t, f.ServerCert)[0]
	if !srvKey.(*ecdsa.PrivateKey).PublicKey.Equal(leaf.PublicKey) {
		t.Fatal("server.key does not match the server certificate")
	}
	ca := readCerts(t, f.CACert)[0]

	privateBlock := regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n := len(privateBlock.FindAll(b, -1))
		switch {
		case path == f.ServerKey && n != 1:
			t.Errorf("%s holds %d private key blocks, want 1", path, n)
		case path != f.ServerKey && n != 0:
			t.Errorf("%s holds a private key block", path)
		}
		// However encoded, no file may hold a key for the CA's public key.
		for rest := b; ; {
			var p *pem.Block
			p, rest = pem.Decode(rest)
			if p == nil {
				break
			}
			if k, err := x509.ParsePKCS8PrivateKey(p.Bytes); err == nil {
				if ek, ok := k.(*ecdsa.PrivateKey); ok && ek.PublicKey.Equal(ca.PublicKey) {
					t.Errorf("%s holds the CA private key", path)
				}
			}
			if k, err := x509.ParseECPrivateKey(p.Bytes); err == nil && k.PublicKey.Equal(ca.PublicKey) {
				t.Errorf("%s holds the CA private key (SEC 1)", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFingerprint(t *testing.T) {
	_, f, fp := created(t)
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not 32 colon-separated uppercase hex bytes", fp)
	}
	ca := readCerts(t, f.CACert)[0]
	sum := sha256.Sum256(ca.Raw)
	if got := strings.ReplaceAll(fp, ":", ""); got != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Fatalf("fingerprint %s is not the SHA-256 of the CA certificate's DER", fp)
	}
	if got := tlsca.Fingerprint(ca.Raw); got != fp {
		t.Fatalf("Fingerprint(ca DER) = %s, Create returned %s", got, fp)
	}

	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl not installed: compared with crypto/sha256 only")
		return
	}
	out, err := exec.CommandContext(t.Context(), openssl, "x509", "-in", f.CACert, "-noout", "-fingerprint", "-sha256").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	// "sha256 Fingerprint=AB:CD:..." (the label's case varies by version).
	_, got, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok || got != fp {
		t.Fatalf("openssl prints %q, Create returned %s", out, fp)
	}
}

func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := tlsca.WriteNew(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tlsca.WriteNew(p, []byte("two"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteNew: got %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("WriteNew overwrote: %q", b)
	}
	// A symlink planted at the path is not followed.
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symlinks:", err)
	}
	if err := tlsca.WriteNew(link, []byte("x"), 0o600); err == nil {
		t.Fatal("WriteNew wrote through a dangling symlink")
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("WriteNew created the symlink's target")
	}
}
