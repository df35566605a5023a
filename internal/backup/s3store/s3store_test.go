package s3store_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/phivault/phivault/internal/backup"
	"github.com/phivault/phivault/internal/backup/s3store"
	"github.com/phivault/phivault/internal/backup/storetest"
)

const (
	testAccess = "AKIAPHIVAULTTEST"
	testSecret = "phivault-test-secret-never-shown"
)

// server is an S3-compatible server (gofakes3, in memory) on loopback,
// with one bucket "backups".
func server(t *testing.T, tls bool) *httptest.Server {
	t.Helper()
	be := s3mem.New()
	if err := be.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	h := gofakes3.New(be).Server()
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

func open(t *testing.T, srv *httptest.Server, prefix string) *s3store.Store {
	t.Helper()
	o := s3store.Options{Endpoint: srv.URL, Bucket: "backups", Prefix: prefix, AccessKey: testAccess, SecretKey: testSecret}
	if srv.TLS != nil {
		o.Transport = srv.Client().Transport
	}
	st, err := s3store.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// The suite runs over TLS, the default. (Over plain http minio-go signs
// each multipart part as an aws-chunked stream, which gofakes3 v1.2.0
// decodes for single PUTs only; real S3 and MinIO decode both.)
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backup.Store { return open(t, server(t, true), "phivault/prod") })
}

func TestConformanceNoPrefix(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backup.Store { return open(t, server(t, true), "") })
}

// Two prefixes in one bucket are two stores; objects in deeper folders
// are not listed (they are not ours).
func TestPrefixIsolates(t *testing.T) {
	srv := server(t, true)
	a, b := open(t, srv, "site-a"), open(t, srv, "site-a/nested")
	ctx := t.Context()
	if err := a.Put(ctx, "one.age", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "two.age", strings.NewReader("b")); err != nil {
		t.Fatal(err)
	}
	la, err := a.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(la) != 1 || la[0].Name != "one.age" {
		t.Fatalf("store a lists %+v, want only one.age", la)
	}
	if _, err := b.Get(ctx, "one.age"); !errors.Is(err, backup.ErrNotExist) {
		t.Fatalf("store b sees store a's object: %v", err)
	}
	if err := a.Put(ctx, "../escape", strings.NewReader("x")); !errors.Is(err, s3store.ErrBadName) {
		t.Fatalf("a name with a slash: %v, want ErrBadName", err)
	}
}

// A missing bucket is reported by Check, before any backup is taken.
func TestCheckMissingBucket(t *testing.T) {
	srv := server(t, false)
	st, err := s3store.New(s3store.Options{Endpoint: srv.URL, Bucket: "nope", AccessKey: testAccess, SecretKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(t.Context()); err == nil {
		t.Fatal("Check of a missing bucket succeeded")
	}
	if err := st.Put(t.Context(), "x", bytes.NewReader([]byte("x"))); err == nil || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("put into a missing bucket: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	ok := s3store.Options{Bucket: "b", AccessKey: testAccess, SecretKey: testSecret}
	cases := []struct {
		name     string
		endpoint string
		mutate   func(*s3store.Options)
		want     error
	}{
		{"http off loopback", "http://backup.example.org:9000", nil, s3store.ErrInsecureEndpoint},
		{"http on a LAN address", "http://10.0.0.5", nil, s3store.ErrInsecureEndpoint},
		{"ftp", "ftp://s3.example.org", nil, nil},
		{"credentials in URL", "https://user:pw@s3.example.org", nil, nil},
		{"path", "https://s3.example.org/bucket", nil, nil},
		{"empty", "", nil, nil},
		{"no bucket", "s3.example.org", func(o *s3store.Options) { o.Bucket = "" }, nil},
		{"no secret", "s3.example.org", func(o *s3store.Options) { o.SecretKey = "" }, nil},
		{"tiny parts", "s3.example.org", func(o *s3store.Options) { o.PartSize = 1 << 20 }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			o.Endpoint = c.endpoint
			if c.mutate != nil {
				c.mutate(&o)
			}
			_, err := s3store.New(o)
			if err == nil {
				t.Fatal("accepted")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "pw@") {
				t.Fatalf("error shows a credential: %v", err)
			}
		})
	}
	for _, ep := range []string{"s3.example.org", "https://s3.example.org:443", "http://127.0.0.1:9000", "http://[::1]:9000", "http://localhost:9000"} {
		o := ok
		o.Endpoint = ep
		st, err := s3store.New(o)
		if err != nil {
			t.Errorf("%s refused: %v", ep, err)
			continue
		}
		if s := st.String(); strings.Contains(s, testSecret) || strings.Contains(s, testAccess) || !strings.Contains(s, "s3://b/") {
			t.Errorf("String() = %q", s)
		}
	}
}

// FuzzNew: whatever the endpoint and prefix, New never panics, never
// accepts plain http off loopback, and never echoes the secret.
func FuzzNew(f *testing.F) {
	for _, s := range []string{"s3.example.org", "http://127.0.0.1:9000", "http://10.1.1.1", "https://a:b@c", "http://[::1", "http://localhost.evil.org", "https://s3.example.org/?x=y", "http://127.0.0.1.nip.io"} {
		f.Add(s, "prefix")
	}
	f.Fuzz(func(t *testing.T, ep, prefix string) {
		st, err := s3store.New(s3store.Options{Endpoint: ep, Bucket: "b", Prefix: prefix, AccessKey: testAccess, SecretKey: testSecret})
		if err != nil {
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error shows the secret: %v", err)
			}
			return
		}
		s := st.String()
		if strings.Contains(s, testSecret) || strings.Contains(s, testAccess) {
			t.Fatalf("String shows a credential: %q", s)
		}
		if strings.HasPrefix(strings.SplitN(s, " at ", 2)[1], "http://") {
			host := strings.TrimPrefix(strings.SplitN(s, " at ", 2)[1], "http://")
			if !strings.HasPrefix(host, "127.") && !strings.HasPrefix(host, "[::1]") && !strings.HasPrefix(host, "localhost") && !strings.HasPrefix(host, "[0:0:0:0:0:0:0:1]") && !strings.HasPrefix(host, "::1") {
				t.Fatalf("plain http accepted for %q", host)
			}
		}
	})
}

var _ io.Reader = (*strings.Reader)(nil)
var _ http.RoundTripper = (*http.Transport)(nil)
