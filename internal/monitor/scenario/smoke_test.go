package scenario

import (
	"bytes"
	"testing"
)

func TestSmoke(t *testing.T) {
	o, _ := Size("small", 1)
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var c, e, tr bytes.Buffer
	if err := s.WriteContext(&c); err != nil {
		t.Fatal(err)
	}
	n, err := s.WriteEvents(&e)
	if err != nil {
		t.Fatal(err)
	}
	s.WriteTruth(&tr)
	t.Logf("context %d bytes, %d events %d bytes, truth %d rows; encs %d srs %d", c.Len(), n, e.Len(), len(s.Truth()), len(s.w.encs), len(s.w.srs))
	cats := map[string]int{}
	for _, r := range s.Truth() {
		cats[string(r.Category)]++
	}
	t.Log(cats)
	t.Log(string(e.Bytes()[:1500]))
}
