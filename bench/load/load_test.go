package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "localhost": true, "127.9.9.9": true,
		"10.0.0.1": false, "example.com": false, "0.0.0.0": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
	if err := run(t.Context(), []string{"-url", "http://192.0.2.1/fhir"}, nil); err == nil {
		t.Errorf("run accepted a non-loopback URL")
	}
}

// TestDiscoverAndMeasure runs discovery (following relative and absolute
// next links) and a read measurement against a fake server.
func TestDiscoverAndMeasure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/fhir/Patient" {
			if r.URL.Path == "/fhir/Patient/p7" {
				w.Write([]byte(`{"resourceType":"Patient","id":"p7"}`))
				return
			}
			http.NotFound(w, r)
			return
		}
		off, _ := strconv.Atoi(r.URL.Query().Get("_offset"))
		fmt.Fprintf(w, `{"resourceType":"Bundle","link":[{"relation":"next","url":"Patient?_offset=%d"}],"entry":[{"resource":{"id":"p%d"}},{"resource":{"id":"p%d"}}]}`, off+2, off, off+1)
	}))
	defer srv.Close()
	cfg := &config{base: srv.URL + "/fhir", client: srv.Client(), maxIDs: 5, clients: 4, duration: 2 * time.Second, maxRequests: 200, pid: os.Getpid()}
	ids, err := cfg.discover(t.Context(), "Patient")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 5 || ids[4] != "p4" {
		t.Fatalf("discovered %v, want p0..p4", ids)
	}
	res, err := cfg.measure(t.Context(), "read", readLoad(cfg.base, []string{"p7", "missing"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || res.ByStatus["200"]+res.ByStatus["404"] != 200 || res.Errors != res.ByStatus["404"] || res.Errors == 0 {
		t.Errorf("result %+v: want 200 requests split between 200 and 404, 404s counted as errors", res)
	}
	if res.PeakRSSMiB <= 0 {
		t.Errorf("no RSS sampled for our own pid")
	}
}
