// Package s3store keeps backups in a bucket of an S3-compatible object
// store (AWS S3, MinIO, Ceph RGW, Backblaze B2, Wasabi, ...), through
// github.com/minio/minio-go/v7.
//
// # Security invariants
//
//   - Credentials come from the caller (the config names environment
//     variables that hold them) and appear in no log, error or String.
//     String shows the endpoint, bucket and prefix only.
//   - TLS is on. Plain http is accepted only for a loopback endpoint
//     (a MinIO beside the server, a test), never across a network.
//   - The bytes stored are the engine's: already age-encrypted. This
//     package never sees a plaintext backup.
//
// # Atomicity and memory
//
// Put streams through a multipart upload of PartSize parts (16 MiB by
// default): memory stays at one part whatever the backup's size, and
// the object appears under its name only when the upload completes. A
// reader that fails mid-stream aborts the upload, so no partial object
// is ever visible (an old object of the same name stays whole).
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/phivault/phivault/internal/backup"
)

// DefaultPartSize is the multipart part size: the S3 minimum that
// minio-go uses, and the memory one Put holds. With S3's limit of
// 10,000 parts it allows backups up to about 156 GiB; raise PartSize
// for more.
const DefaultPartSize = 16 << 20

// DefaultRegion is the region signed for when none is set (MinIO and
// most S3-compatible stores accept it).
const DefaultRegion = "us-east-1"

// Errors of New.
var (
	// ErrInsecureEndpoint means an http:// endpoint that is not on a
	// loopback address: backups would cross a network unencrypted at
	// the transport (they are age-encrypted, but credentials and
	// metadata are not).
	ErrInsecureEndpoint = errors.New("s3store: plain http is allowed only for a loopback endpoint")
	// ErrBadName means an object name that is not flat (empty, ".",
	// "..", or holding a slash or a control character).
	ErrBadName = errors.New("s3store: bad object name")
)

// Options configure a Store. Endpoint, Bucket, AccessKey and SecretKey
// are required.
type Options struct {
	// Endpoint is host[:port], or a URL https://host[:port] (or
	// http://127.0.0.1:port for a loopback store).
	Endpoint string
	Bucket   string
	// Prefix is put before every object name ("phivault/prod/"); a
	// missing trailing slash is added.
	Prefix string
	Region string // DefaultRegion if empty
	// AccessKey, SecretKey and SessionToken (optional) sign requests.
	// They are never logged or shown.
	AccessKey, SecretKey, SessionToken string
	// PartSize is the multipart part size, DefaultPartSize if 0 (at
	// least 5 MiB, S3's minimum).
	PartSize uint64
	// Transport carries the requests (a private CA, a proxy); nil: the
	// default transport of minio-go.
	Transport http.RoundTripper
}

// Store is a backup.Store in a bucket. It is safe for concurrent use.
type Store struct {
	c        *minio.Client
	bucket   string
	prefix   string
	endpoint string // for String: scheme://host[:port]
	partSize uint64
}

var _ backup.Store = (*Store)(nil)

// New returns the store described by o. It does not contact the
// endpoint (Check does).
func New(o Options) (*Store, error) {
	host, secure, err := parseEndpoint(o.Endpoint)
	if err != nil {
		return nil, err
	}
	if o.Bucket == "" {
		return nil, errors.New("s3store: bucket is required")
	}
	if o.AccessKey == "" || o.SecretKey == "" {
		return nil, errors.New("s3store: access key and secret key are required")
	}
	part := o.PartSize
	if part == 0 {
		part = DefaultPartSize
	}
	if part < 5<<20 {
		return nil, fmt.Errorf("s3store: part size %d is below S3's minimum of 5 MiB", part)
	}
	region := o.Region
	if region == "" {
		region = DefaultRegion
	}
	prefix := o.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	c, err := minio.New(host, &minio.Options{
		Creds:     credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken),
		Secure:    secure,
		Region:    region,
		Transport: o.Transport,
	})
	if err != nil {
		// minio.New fails on the endpoint's form only; its text holds no credential.
		return nil, fmt.Errorf("s3store: endpoint %q: %w", host, err)
	}
	scheme := "https"
	if !secure {
		scheme = "http"
	}
	return &Store{c: c, bucket: o.Bucket, prefix: prefix, endpoint: scheme + "://" + host, partSize: part}, nil
}

// parseEndpoint returns the host[:port] and whether TLS is used.
func parseEndpoint(ep string) (host string, secure bool, err error) {
	if ep == "" {
		return "", false, errors.New("s3store: endpoint is required")
	}
	secure = true
	host = ep
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return "", false, fmt.Errorf("s3store: endpoint is not a URL")
		}
		switch u.Scheme {
		case "https":
		case "http":
			secure = false
		default:
			return "", false, fmt.Errorf("s3store: endpoint scheme %q: want https (or http on loopback)", u.Scheme)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return "", false, errors.New("s3store: endpoint must be scheme://host[:port] only (credentials come from the environment)")
		}
		host = u.Host
	}
	if host == "" || strings.ContainsAny(host, "/@?#") {
		return "", false, errors.New("s3store: endpoint must be host[:port]")
	}
	if !secure && !loopback(host) {
		return "", false, ErrInsecureEndpoint
	}
	return host, secure, nil
}

// loopback reports whether host[:port] names this machine.
func loopback(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// String names the bucket and endpoint, never a credential.
func (s *Store) String() string {
	return "s3://" + s.bucket + "/" + s.prefix + " at " + s.endpoint
}

// Check reports whether the bucket exists and the credentials may see
// it (serve calls it at start, so a typo fails before the first
// scheduled backup).
func (s *Store) Check(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("checking bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("checking bucket %s: no such bucket", s.bucket)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character", ErrBadName)
		}
	}
	return nil
}

// Put streams r into the object name through a multipart upload; the
// object appears whole or not at all (an upload whose reader fails is
// aborted and the reader's error returned, wrapped).
func (s *Store) Put(ctx context.Context, name string, r io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	opts := minio.PutObjectOptions{PartSize: s.partSize, ContentType: "application/octet-stream"}
	// An empty stream is one plain PUT of zero bytes (a multipart upload
	// needs a part with a body).
	var first [1]byte
	n, err := io.ReadFull(r, first[:])
	switch {
	case errors.Is(err, io.EOF):
		_, err = s.c.PutObject(ctx, s.bucket, s.prefix+name, bytes.NewReader(nil), 0, opts)
	case err != nil:
		return fmt.Errorf("putting %s in %s: reading: %w", name, s, err)
	default:
		// Size -1: minio-go reads PartSize at a time and uploads each
		// part, holding one part in memory.
		_, err = s.c.PutObject(ctx, s.bucket, s.prefix+name, io.MultiReader(bytes.NewReader(first[:n]), r), -1, opts)
	}
	if err != nil {
		return fmt.Errorf("putting %s in %s: %w", name, s, err)
	}
	return nil
}

// Get opens the object name; backup.ErrNotExist when it is missing.
// The caller closes the reader.
func (s *Store) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat() // GetObject is lazy: learn now whether it exists
		if err != nil {
			_ = obj.Close()
		}
	}
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("getting %s: %w", name, backup.ErrNotExist)
		}
		return nil, fmt.Errorf("getting %s from %s: %w", name, s, err)
	}
	return obj, nil
}

func notFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == minio.NoSuchKey || r.StatusCode == http.StatusNotFound && r.Code != minio.NoSuchBucket
}

// List returns every object under the prefix with a flat name (objects
// in deeper "folders" belong to someone else and are skipped).
func (s *Store) List(ctx context.Context) ([]backup.Object, error) {
	var out []backup.Object
	for o := range s.c.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("listing %s: %w", s, o.Err)
		}
		name := strings.TrimPrefix(o.Key, s.prefix)
		if checkName(name) != nil {
			continue
		}
		out = append(out, backup.Object{Name: name, Size: o.Size, Modified: o.LastModified.UTC()})
	}
	return out, nil
}

// Delete removes the object name; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("deleting %s from %s: %w", name, s, err)
	}
	return nil
}
