package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// FileSink appends records as JSON lines to a file (mode 0600), for a
// log shipper (Filebeat, Fluent Bit, Vector) to pick up. Each batch is
// written in one write and synced before Send returns; a failed write
// is truncated away, so the file never holds a partial line.
type FileSink struct {
	name string
	f    *os.File
}

// OpenFile opens (creating it and its directory, mode 0700, if needed)
// the JSON-lines file at path.
func OpenFile(name, path string) (*FileSink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("export %s: %w", name, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export %s: opening %s: %w", name, path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("export %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("export %s: %s is not a regular file", name, path)
	}
	return &FileSink{name: name, f: f}, nil
}

// Name implements [Sink].
func (s *FileSink) Name() string { return s.name }

// Send implements [Sink].
func (s *FileSink) Send(_ context.Context, batch []Record) error {
	var buf []byte
	for _, r := range batch {
		line, err := r.MarshalLine()
		if err != nil {
			return err
		}
		buf = append(append(buf, line...), '\n')
	}
	end, err := s.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("export %s: %w", s.name, err)
	}
	if _, err := s.f.Write(buf); err != nil {
		return errors.Join(fmt.Errorf("export %s: writing: %w", s.name, err), s.f.Truncate(end))
	}
	if err := s.f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("export %s: syncing: %w", s.name, err), s.f.Truncate(end))
	}
	return nil
}

// Close implements [Sink].
func (s *FileSink) Close() error { return s.f.Close() }
