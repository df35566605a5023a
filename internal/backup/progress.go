package backup

import (
	"bytes"
	"context"
	"io"
)

// Progress receives a long operation's progress: the phase ("snapshot",
// "archive", "upload", "restore", "verify"), and done of total (bytes;
// total -1 when unknown). A nil Progress is silent. It is called from the
// operation's goroutines, one call at a time.
type Progress func(phase string, done, total int64)

func (p Progress) phase(phase string, done, total int64) {
	if p != nil {
		p(phase, done, total)
	}
}

// progressStep is how many bytes pass between two reports.
const progressStep = 1 << 20

// reader reports the bytes read from r under phase, and stops when ctx
// ends.
func (p Progress) reader(ctx context.Context, phase string, total int64, r io.Reader) io.Reader {
	return &progressReader{ctx: ctx, p: p, phase: phase, total: total, r: r}
}

type progressReader struct {
	ctx         context.Context
	p           Progress
	phase       string
	total, done int64
	last        int64
	r           io.Reader
}

func (r *progressReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(b)
	r.done += int64(n)
	if r.done-r.last >= progressStep || (err == io.EOF && r.done != r.last) {
		r.last = r.done
		r.p.phase(r.phase, r.done, r.total)
	}
	return n, err
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
