package search

import (
	"strings"
	"testing"
)

func TestTermSystem(t *testing.T) {
	p := &Param{Code: "identifier", Type: Token}
	for _, c := range []struct {
		sys, code string
		has       bool
		want      string
		ok        bool
	}{
		{"urn:mrn", "1", true, "urn:mrn", true},
		{"urn:a|b", "1", true, "urn:a|b", true},
		{"urn:mrn", "", true, "urn:mrn", true},
		{"", "1", true, "", false},
		{"", "1", false, "", false},
	} {
		got, ok := TermSystem(TokenTerms(p, c.sys, c.code, c.has))
		if got != c.want || ok != c.ok {
			t.Errorf("TermSystem(%q, %q, %v) = %q, %v; want %q, %v", c.sys, c.code, c.has, got, ok, c.want, c.ok)
		}
	}
	for _, k := range []string{"s", "sx|", "s-1|", "s01|ab|c", "s9|ab", "c|x", "n|x"} {
		if _, ok := TermSystem(Term{Param: "identifier", Key: k}); ok {
			t.Errorf("TermSystem(%q) named a system", k)
		}
	}
	if _, ok := TermSystem(Term{Param: "identifier:of-type", Key: ofTypeKey("s", "SS", "1")}); ok {
		t.Error("an :of-type term named a system")
	}
}

func FuzzTermSystem(f *testing.F) {
	f.Add("identifier", "s7|urn:mrn|1")
	f.Add("identifier", "y|urn:mrn")
	f.Add("subject:identifier", "s3|a|b|c")
	f.Fuzz(func(t *testing.T, param, key string) {
		sys, ok := TermSystem(Term{Param: param, Key: key})
		if !ok {
			return
		}
		// A system is only ever read back from a key built for it.
		if key != tokenSystemOnlyKey(sys) && !strings.HasPrefix(key, tokenSystemKey(sys, "")) {
			t.Fatalf("TermSystem(%q) = %q, not the system of the key", key, sys)
		}
	})
}
