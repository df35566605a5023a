package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// remoteClient is the HTTP client and bearer token of the commands that
// talk to a running server (--url): the token from tokenFile, else
// $PHIVAULT_TOKEN (never a flag value); the server's CA from caCert,
// else DATA/tls/ca.crt if present, else the system roots. timeout
// bounds each request (0: none).
func (e *env) remoteClient(tokenFile, caCert string, timeout time.Duration) (*http.Client, string, error) {
	tok := e.getenv("PHIVAULT_TOKEN")
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("reading --token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		return nil, "", errors.New("--url needs a token: set PHIVAULT_TOKEN or --token-file")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	ca := caCert
	if ca == "" {
		if p := filepath.Join(e.dataDir, "tls", "ca.crt"); fileExists(p) {
			ca = p
		}
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, "", fmt.Errorf("reading --cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("--cacert %s holds no PEM certificate", ca)
		}
		tlsConf.RootCAs = pool
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tlsConf}}, tok, nil
}
