// Package tlsca creates the local certificate authority and server
// certificate that let "phivault serve" speak HTTPS from the first start.
//
// # Security invariants
//
//   - The CA private key is never written anywhere: it signs the one server
//     certificate and is then discarded. A stolen data directory therefore
//     cannot mint certificates for other names, even on machines that
//     trust the CA.
//   - The server key is created O_EXCL with mode 0600; nothing is ever
//     overwritten.
//   - Keys are ECDSA P-256 (universally supported by TLS 1.3 clients);
//     the certificate is valid for localhost, 127.0.0.1 and ::1 only.
//
// Production deployments replace these files with certificates from
// their own PKI (server.tls_cert and server.tls_key).
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// Validity periods. The server certificate stays under the 398-day
// ceiling that browsers enforce (CA/Browser Forum baseline requirements).
const (
	caValidity     = 5 * 365 * 24 * time.Hour
	serverValidity = 397 * 24 * time.Hour
)

// Files names the PEM files Create writes.
type Files struct {
	CACert     string // public: clients trust this
	ServerCert string
	ServerKey  string // 0600
}

// Create makes a new CA and a server certificate for localhost, writes
// them, and returns the SHA-256 fingerprint of the CA certificate as
// colon-separated hex. It refuses to overwrite any file.
func Create(f Files, now time.Time) (fingerprint string, err error) {
	// Refuse before writing anything, so a partly existing set never
	// leaves a new orphan key behind. (WriteNew's O_EXCL still guards
	// against a file appearing in between.)
	for _, p := range []string{f.ServerKey, f.ServerCert, f.CACert} {
		if _, err := os.Lstat(p); err == nil {
			return "", fmt.Errorf("creating %s: %w", p, os.ErrExist)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "phivault local CA " + now.UTC().Format("2006-01-02")},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", fmt.Errorf("creating CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", fmt.Errorf("parsing CA certificate: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating server key: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return "", fmt.Errorf("creating server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return "", fmt.Errorf("encoding server key: %w", err)
	}
	if err := writePEM(f.ServerKey, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return "", err
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	if err := WriteNew(f.ServerCert, chain, 0o644); err != nil {
		return "", err
	}
	if err := writePEM(f.CACert, "CERTIFICATE", caDER, 0o644); err != nil {
		return "", err
	}
	return Fingerprint(caDER), nil
}

// Fingerprint is the SHA-256 of a DER certificate as uppercase
// colon-separated hex, the form browsers and openssl print.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("crypto/rand failed: " + err.Error()) // programmer/OS error: no entropy
	}
	return n
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return WriteNew(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// WriteNew creates path with mode and writes b; it never overwrites.
func WriteNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
