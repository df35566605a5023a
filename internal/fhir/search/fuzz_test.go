package search

import (
	"errors"
	"net/url"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

// FuzzParseQuery checks that ParseQuery never panics, that every error
// wraps a sentinel, and that the bounds hold for what it accepts.
func FuzzParseQuery(f *testing.F) {
	seeds := []string{
		"family=Kuhic920&given=Sang383&birthdate=1976-01-14",
		"name=O%27Brien&_count=10&_sort=-_lastUpdated",
		"name=%27%20OR%201%3D1--",
		"identifier=http://hl7.org/fhir/sid/us-ssn|999-63-3036",
		"name=Robert%27%29%3B%20DROP%20TABLE%20resources%3B--",
		"code=http://loinc.org|8302-2,http://loinc.org|29463-7&date=ge2020-01-01T00:00:00%2B02:00&date=lt2021",
		"subject=Patient/23dc3811-ae4e-fc12-fe61-b4a54b057624&status:not=final&encounter:missing=true",
		"name=%22quoted%22&name:exact=%22x%22",
		"_id=a,b,c&_lastUpdated=gt2024-01-01&_total=accurate&_format=json&_pretty=true",
		"code=a%5C,b%5C|c&category=|x",
		"birthdate=eq1976-01&gender=male&telecom=phone|555",
		"subject:Patient=1&patient=https://x.org/fhir/Patient/1/_history/2",
		"_summary=count&_include=*&foo.bar=1",
		"subject:Patient.identifier=MRN|123&patient.name=smith&subject.identifier=x",
		"encounter.subject:Patient.name:exact=Ann&subject:Patient._id=a,b",
		"_has:Observation:patient:code=1234-5&_has:Encounter:patient:_has:Observation:encounter:status:not=final",
		"_include=Observation:subject:Patient&_include:iterate=Patient:*&_revinclude=*&_revinclude:iterate=Observation:subject",
		"subject:identifier=urn:mrn|123&encounter:identifier=|E9",
		"_sort=name&subject.x.y.z=1&_has:a:b=c&_include=a:b:c:d",
	}
	for _, s := range seeds {
		for _, typ := range []string{"Patient", "Observation"} {
			f.Add(typ, s, false)
			f.Add(typ, s, true)
		}
	}
	r, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ, raw string, lenient bool) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		out, err := r.ParseQuery(typ, q, lenient)
		if err != nil {
			if !errors.Is(err, ErrUnknownParam) && !errors.Is(err, ErrUnsupported) &&
				!errors.Is(err, ErrInvalidValue) && !errors.Is(err, ErrTooComplex) &&
				!errors.Is(err, fhir.ErrUnknownType) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if len(out.Preds) > MaxParams || out.Count < 0 || out.Count > MaxCount {
			t.Fatalf("bounds broken: %d preds, count %d", len(out.Preds), out.Count)
		}
		if out.searches() > MaxChainSearches || len(out.Include)+len(out.RevInclude) > MaxIncludes {
			t.Fatalf("bounds broken: %d chain searches, %d includes", out.searches(), len(out.Include)+len(out.RevInclude))
		}
		var depth func(q *Query) int
		depth = func(q *Query) int {
			d := 0
			for _, c := range q.Chains {
				if len(c.Inner) == 0 || c.Param == nil || c.Param.Type != Reference || c.Name == "" {
					t.Fatalf("malformed chain %+v", c)
				}
				for _, in := range c.Inner {
					if n := len(in.Preds) + min(len(in.ID), 1) + len(in.LastUpdated) + len(in.Chains); n != 1 {
						t.Fatalf("inner query with %d conditions", n)
					}
					d = max(d, 1+depth(in))
				}
			}
			return d
		}
		if d := depth(out); d > MaxChainDepth {
			t.Fatalf("chain depth %d", d)
		}
		for _, p := range out.Preds {
			if len(p.Terms)+len(p.Dates) > MaxAlternatives {
				t.Fatalf("%d alternatives", len(p.Terms)+len(p.Dates))
			}
			if p.Missing == nil && len(p.Terms)+len(p.Dates) == 0 {
				t.Fatal("predicate with nothing to match")
			}
			for _, term := range p.Terms {
				if term.IsDate && p.Param.Identifying() {
					t.Fatal("identifying parameter with a plaintext date")
				}
			}
		}
	})
}

// FuzzExtract checks that extraction of any decodable resource neither
// panics nor returns an error outside the fhir sentinels.
func FuzzExtract(f *testing.F) {
	for _, name := range []string{"Patient", "Observation", "Encounter", "Claim"} {
		b, err := readFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	r, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := fhir.Decode(bytesReader(body), fhir.Limits{MaxBytes: 64 << 10})
		if err != nil {
			return
		}
		vals, err := r.Extract(res)
		if err != nil {
			if !errors.Is(err, fhir.ErrInvalid) && !errors.Is(err, fhir.ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		for _, v := range vals {
			for _, term := range IndexTerms(v) {
				if term.IsDate && v.Identifying {
					t.Fatal("identifying date indexed in plaintext")
				}
			}
		}
		r.PatientOf(res)
	})
}
