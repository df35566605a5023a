package balp

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// BenchmarkReader measures reading a BALP read event per line.
func BenchmarkReader(b *testing.B) {
	line := strings.ReplaceAll(readEvent, "\n", "") + "\n"
	var buf bytes.Buffer
	for range 10_000 {
		buf.WriteString(line)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := NewReader(bytes.NewReader(data))
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
