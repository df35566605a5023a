package httpapi

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
)

// Compression (ADR 0029). Responses of the FHIR API are gzipped when the
// client accepts it, FHIR JSON only. Nothing else is: not the token
// endpoint, not the HTML pages (they carry CSRF tokens), not raw Binary
// content. A compressed response whose size an attacker can watch while
// injecting text beside a secret leaks that secret byte by byte (BREACH);
// FHIR JSON holds no credential or CSRF token, its paging links carry
// search parameters sealed, and the sizes are blurred further by random
// jitter. Request bodies may be gzipped too (RFC 7694); they are bounded
// after decompression by the same limit as any body, so a small bomb
// cannot expand past it.

// gzipMinSize is the smallest response worth compressing: below about
// 1 KiB the gzip header and the CPU cost outweigh the gain.
const gzipMinSize = 1024

// gzipJitter adds 1..gzipJitter bytes, chosen from the payload's
// checksum, to each compressed response (gzhttp.RandomJitter): the
// exact compressed size no longer tells how well an injected guess
// matched.
const gzipJitter = 32

// withGzip compresses the FHIR JSON responses of next (never a websocket
// upgrade).
func withGzip(next http.Handler) (http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(gzipMinSize),
		gzhttp.ContentTypes([]string{mediaFHIRJSON, mediaJSON, "application/json+fhir"}),
		gzhttp.RandomJitter(gzipJitter, 0, false),
	)
	if err != nil {
		return nil, fmt.Errorf("configuring response compression: %w", err)
	}
	gz := wrap(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A websocket upgrade hijacks the connection: its frames are not
		// an HTTP body, and a gzip writer in between corrupts them.
		if r.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, r)
			return
		}
		gz.ServeHTTP(w, r)
	}), nil
}

// decodeBody decompresses a gzip request body (Content-Encoding: gzip),
// bounded to maxBody bytes decompressed; other encodings are refused
// with 415. It runs after limitBody, which bounds the compressed bytes.
func decodeBody(maxBody int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
		case "", "identity":
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				writeOutcome(w, r, httpError(http.StatusBadRequest, "structure", "the request body is not valid gzip"))
				return
			}
			r.Body = http.MaxBytesReader(w, readCloser{zr, r.Body}, maxBody)
			r.Header.Del("Content-Encoding")
			r.ContentLength = -1
		default:
			w.Header().Set("Accept-Encoding", "gzip")
			writeOutcome(w, r, httpError(http.StatusUnsupportedMediaType, "not-supported", "the request body's Content-Encoding is not supported (gzip is)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readCloser reads the decompressed stream and closes the original body.
type readCloser struct {
	io.Reader
	body io.Closer
}

func (rc readCloser) Close() error { return rc.body.Close() }
