// Command bulkexport measures a FHIR Bulk Data export end to end, as a
// SMART backend client would run it: token (private_key_jwt, ES384),
// kick-off with Prefer: respond-async, polling the status URL as
// Retry-After asks, then downloading every output file with the access
// token. It prints the export's duration, the download's, and resources
// and bytes a second. It uses no phivault package: only the protocol.
//
//	bulkexport -keygen DIR                    # DIR/bulk.key (0600) and DIR/bulk.jwks.json
//	phivault client add bench --jwks DIR/bulk.jwks.json --scope 'system/*.rs' --purpose HOPERAT --break-glass --data DATA
//	bulkexport -url https://127.0.0.1:8443/fhir -cacert DATA/tls/ca.crt -client ID -key DIR/bulk.key [-query '_type=Patient,Observation']
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bulkexport:", err)
		os.Exit(1)
	}
}

func run() error {
	keygen := flag.String("keygen", "", "write a new ES384 key pair into this directory and exit")
	base := flag.String("url", "", "FHIR base URL")
	cacert := flag.String("cacert", "", "CA certificate of the server")
	client := flag.String("client", "", "client id")
	keyFile := flag.String("key", "", "private key file written by -keygen")
	query := flag.String("query", "", "kick-off parameters, e.g. _type=Patient,Observation")
	level := flag.String("level", "", `"" (system), "Patient" or "Group/ID"`)
	flag.Parse()
	if *keygen != "" {
		return generate(*keygen)
	}
	if *base == "" || *client == "" || *keyFile == "" {
		return errors.New("-url, -client and -key are required (or -keygen DIR)")
	}
	hc, err := httpClient(*cacert)
	if err != nil {
		return err
	}
	tok, err := token(hc, *base, *client, *keyFile)
	if err != nil {
		return err
	}
	start := time.Now()
	kick := strings.TrimSuffix(*base, "/")
	if *level != "" {
		kick += "/" + *level
	}
	kick += "/$export"
	if *query != "" {
		kick += "?" + *query
	}
	status, err := kickoff(hc, tok, kick)
	if err != nil {
		return err
	}
	man, err := poll(hc, tok, status)
	if err != nil {
		return err
	}
	exported := time.Since(start)
	dl := time.Now()
	var lines, bytes int64
	for _, f := range man.Output {
		n, b, err := download(hc, tok, f.URL)
		if err != nil {
			return err
		}
		lines += n
		bytes += b
	}
	downloaded := time.Since(dl)
	total := time.Since(start)
	fmt.Printf("files %d, resources %d, bytes %d (%.1f MiB)\n", len(man.Output), lines, bytes, float64(bytes)/(1<<20))
	fmt.Printf("export (kick-off to complete) %.1f s: %.0f resources/s\n", exported.Seconds(), float64(lines)/exported.Seconds())
	fmt.Printf("download %.1f s: %.1f MiB/s\n", downloaded.Seconds(), float64(bytes)/(1<<20)/downloaded.Seconds())
	fmt.Printf("total %.1f s: %.0f resources/s\n", total.Seconds(), float64(lines)/total.Seconds())
	// Delete the job, as a well-behaved client does.
	req, _ := http.NewRequest(http.MethodDelete, status, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
	}
	return nil
}

func generate(dir string) error {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bulk.key"), der, 0o600); err != nil {
		return err
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "bench", Algorithm: "ES384", Use: "sig"}}})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bulk.jwks.json"), set, 0o644)
}

func httpClient(cacert string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("no certificate in " + cacert)
		}
		tc.RootCAs = pool
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Minute}, nil
}

func token(hc *http.Client, base, client, keyFile string) (string, error) {
	resp, err := hc.Get(strings.TrimSuffix(base, "/") + "/.well-known/smart-configuration")
	if err != nil {
		return "", err
	}
	var conf struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	err = json.NewDecoder(resp.Body).Decode(&conf)
	resp.Body.Close()
	if err != nil || conf.TokenEndpoint == "" {
		return "", fmt.Errorf("smart-configuration: no token_endpoint (%v)", err)
	}
	der, err := os.ReadFile(keyFile)
	if err != nil {
		return "", err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: jose.JSONWebKey{Key: k, KeyID: "bench"}}, nil)
	if err != nil {
		return "", err
	}
	now := time.Now()
	a, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: client, Subject: client, Audience: jwt.Audience{conf.TokenEndpoint},
		Expiry: jwt.NewNumericDate(now.Add(4 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}).Serialize()
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	resp, err = hc.PostForm(conf.TokenEndpoint, form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token endpoint answered %s", resp.Status)
	}
	return tok.AccessToken, nil
}

func kickoff(hc *http.Client, tok, u string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "respond-async")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", fmt.Errorf("kick-off: %s: %s", resp.Status, b)
	}
	return resp.Header.Get("Content-Location"), nil
}

type manifest struct {
	Output []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"output"`
}

func poll(hc *http.Client, tok, status string) (manifest, error) {
	var last string
	for {
		req, _ := http.NewRequest(http.MethodGet, status, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return manifest{}, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var m manifest
			err := json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			fmt.Fprintln(os.Stderr)
			return m, err
		case http.StatusAccepted:
			resp.Body.Close()
			if p := resp.Header.Get("X-Progress"); p != last {
				fmt.Fprintf(os.Stderr, "\r%-70s", p)
				last = p
			}
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 && s < 10 {
				wait = time.Duration(s) * time.Second
			}
			time.Sleep(wait)
		default:
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			return manifest{}, fmt.Errorf("status: %s: %s", resp.Status, b)
		}
	}
}

func download(hc *http.Client, tok, u string) (lines, n int64, err error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/fhir+ndjson")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("download: %s", resp.Status)
	}
	r := bufio.NewReaderSize(resp.Body, 1<<20)
	for {
		line, err := r.ReadSlice('\n')
		n += int64(len(line))
		if len(line) > 0 && line[len(line)-1] == '\n' {
			lines++
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return lines, n, nil
		}
		if err != nil {
			return lines, n, err
		}
	}
}
