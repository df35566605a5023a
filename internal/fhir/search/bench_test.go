package search

import (
	"net/url"
	"testing"
)

func BenchmarkExtractObservation(b *testing.B) {
	r := testRegistry(b)
	res := loadResource(b, "Observation")
	b.ReportAllocs()
	for b.Loop() {
		vals, err := r.Extract(res)
		if err != nil {
			b.Fatal(err)
		}
		_ = Terms(vals)
	}
}

func BenchmarkExtractPatient(b *testing.B) {
	r := testRegistry(b)
	res := loadResource(b, "Patient")
	b.ReportAllocs()
	for b.Loop() {
		vals, err := r.Extract(res)
		if err != nil {
			b.Fatal(err)
		}
		_ = Terms(vals)
	}
}

func BenchmarkParseQuery(b *testing.B) {
	r := testRegistry(b)
	q, _ := url.ParseQuery("patient=Patient/1&code=http://loinc.org|8302-2,http://loinc.org|29463-7&date=ge2020-01&date=lt2021&_sort=-date&_count=50")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ParseQuery("Observation", q, false); err != nil {
			b.Fatal(err)
		}
	}
}
