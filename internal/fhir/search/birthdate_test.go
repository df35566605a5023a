package search

import (
	"math/rand/v2"
	"net/url"
	"testing"
	"time"
)

// TestBirthdateRangeBuckets checks the decomposition of birth date
// ranges into year, month and day keys against the R4 prefix semantics
// computed directly on dates: for random day-precision birth dates and
// random queries at each precision and prefix, a patient matches (one of
// its index keys is among the query's keys) exactly when the dates say
// it should.
func TestBirthdateRangeBuckets(t *testing.T) {
	r := testRegistry(t)
	p, _ := r.Lookup("Patient", "birthdate")
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	randDay := func() time.Time {
		return time.Date(1900+rng.IntN(127), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(4))
	}
	const n = 2000
	births := make([]time.Time, n)
	for i := range births {
		births[i] = randDay()
	}
	births = append(births, time.Date(1980, 6, 14, 0, 0, 0, 0, time.UTC), time.Date(1980, 6, 15, 0, 0, 0, 0, time.UTC),
		time.Date(1980, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(1981, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC))
	keysOf := func(b time.Time) map[string]bool {
		return map[string]bool{dayKey(b): true, monthKey(b): true, yearKey(b): true}
	}
	for q := range 400 {
		qd := randDay()
		if q < 8 {
			qd = time.Date(1980, 6, 15, 0, 0, 0, 0, time.UTC)
		}
		prec := []string{"2006", "2006-01", "2006-01-02"}[q%3]
		lo, hi, _, _ := parseDate(qd.Format(prec))
		lo, hi = day(lo), day(hi)
		for _, op := range []DateOp{OpEq, OpNe, OpGt, OpLt, OpGe, OpLe, OpSa, OpEb} {
			v := string(op) + qd.Format(prec)
			terms, negate, err := identifyingDateTerms(p, "birthdate", v, 1, now)
			if err != nil {
				t.Fatalf("%s: %v", v, err)
			}
			set := map[string]bool{}
			for _, tm := range terms {
				set[tm.Key] = true
			}
			for _, b := range births {
				var want bool
				switch op {
				case OpEq:
					want = !b.Before(lo) && !b.After(hi)
				case OpNe:
					want = b.Before(lo) || b.After(hi)
				case OpGt, OpSa:
					want = b.After(hi)
				case OpLt, OpEb:
					want = b.Before(lo)
				case OpGe:
					want = !b.Before(lo)
				case OpLe:
					want = !b.After(hi)
				}
				got := false
				for k := range keysOf(b) {
					got = got || set[k]
				}
				if negate {
					got = !got
				}
				if got != want {
					t.Fatalf("birthdate=%s, born %s: match %v, want %v (%d keys)", v, b.Format("2006-01-02"), got, want, len(terms))
				}
			}
			if len(terms) > 400 {
				t.Errorf("birthdate=%s: %d keys", v, len(terms))
			}
		}
	}
}

func TestBirthdateRangeQuery(t *testing.T) {
	r := testRegistry(t)
	q := mustQuery(t, "Patient", "birthdate=ge1980-06-15&birthdate=lt1990", false)
	if len(q.Preds) != 2 {
		t.Fatalf("preds %d", len(q.Preds))
	}
	// ge1980-06-15: 16 days of June, 6 months, 1981..2027 years.
	ge := keys(q.Preds[0].Terms)
	if ge[0] != "birthdate=d|1980-06-15" || ge[15] != "birthdate=d|1980-06-30" || ge[16] != "birthdate=m|1980-07" || ge[22] != "birthdate=y|1981" {
		t.Errorf("ge1980-06-15 keys start %q", ge[:23])
	}
	lt := keys(q.Preds[1].Terms)
	if len(lt) != 1990-MinBirthYear || lt[0] != "birthdate=y|1800" || lt[len(lt)-1] != "birthdate=y|1989" {
		t.Errorf("lt1990: %d keys, %q..%q", len(lt), lt[0], lt[len(lt)-1])
	}
	if _, err := r.ParseQuery("Patient", url.Values{"birthdate": {"ap1980"}}, false); err != nil {
		t.Errorf("ap: %v", err)
	}
	// A range nothing can satisfy still parses, to a key no value has.
	q = mustQuery(t, "Patient", "birthdate=lt1700", false)
	if k := keys(q.Preds[0].Terms); len(k) != 1 || k[0] != "birthdate=none|" {
		t.Errorf("lt1700 keys %q", k)
	}
}

func TestApproximately(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lo := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
	wlo, whi := approximately(lo, lo.AddDate(1, 0, 0).Add(-time.Microsecond), now)
	// The gap to now is 10 years: a tenth is about one year each side.
	if got := lo.Sub(wlo); got < 364*24*time.Hour || got > 367*24*time.Hour {
		t.Errorf("widened below by %v", got)
	}
	if !whi.After(time.Date(2017, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("widened above to %v", whi)
	}
	// Today widens by the one-day minimum.
	wlo, _ = approximately(now, now, now)
	if now.Sub(wlo) != 24*time.Hour {
		t.Errorf("minimum widening %v", now.Sub(wlo))
	}
}
