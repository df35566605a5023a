package httpapi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Request pace (slow bodies). http.Server bounds the header
// (ReadHeaderTimeout) but a body has only an absolute ReadTimeout, which
// must allow the largest body on the slowest legitimate link and so
// lets a trickling client hold a connection and a goroutine for minutes.
// Instead, minRateBody moves the connection's read deadline as the body
// arrives: the client must keep up an average of MinBodyRate bytes a
// second, counted from its first read, after a grace period (a body
// starts in the same packets as its header, or within a round trip).
// A body that falls behind fails its next read with
// os.ErrDeadlineExceeded, answered 408 (readBody) and the connection is
// closed. A body the handler never reads is bounded by the grace alone
// (net/http discards up to 256 KiB of it after the handler).
//
// The deadline is cleared at the end of the body: net/http's
// background read, which watches the connection while the handler
// works, would otherwise take the deadline for a closed connection and
// cancel the request's context. A body that fell behind keeps its
// expired deadline, so the connection closes instead of net/http
// draining the rest of the trickle after the answer.

type minRateBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	now     func() time.Time
	grace   time.Duration
	rate    int64 // bytes a second
	started time.Time
	read    int64
	done    bool  // the body ended: reads pass through
	err     error // the read that fell behind
}

func newMinRateBody(body io.ReadCloser, rc *http.ResponseController, now func() time.Time, grace time.Duration, rate int64) *minRateBody {
	b := &minRateBody{body: body, rc: rc, now: now, grace: grace, rate: rate}
	_ = rc.SetReadDeadline(now().Add(grace)) // until the handler starts reading
	return b
}

func (b *minRateBody) Read(p []byte) (int, error) {
	if b.done {
		return b.body.Read(p)
	}
	if b.err != nil {
		return 0, b.err // fell behind: the deadline stays expired
	}
	if b.started.IsZero() {
		b.started = b.now()
	}
	// Allowed time: the grace, plus one second per rate bytes already read.
	allowed := b.grace + time.Duration(b.read)*time.Second/time.Duration(b.rate)
	_ = b.rc.SetReadDeadline(b.started.Add(allowed)) // unsupported writers: no pace, the server's timeouts remain
	n, err := b.body.Read(p)
	b.read += int64(n)
	if errors.Is(err, io.EOF) {
		// The whole body arrived: no deadline while the handler works.
		// After any other error (the deadline itself) the deadline stays,
		// so net/http cannot wait on the rest of the body afterwards.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	} else if err != nil {
		b.err = err
	}
	return n, err
}

func (b *minRateBody) Close() error { return b.body.Close() }

// errBodyTooSlow reports whether a body read failed because the client
// fell behind the minimum pace.
func errBodyTooSlow(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
