package password

import (
	"testing"
	"time"
)

func TestLockoutSequence(t *testing.T) {
	var l Lockout // zero value: defaults
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	var st AccountState

	// Five free failures.
	for i := 1; i <= DefaultFreeFailures-1; i++ {
		if ok, _ := l.Allow(st, now); !ok {
			t.Fatalf("attempt %d refused", i)
		}
		st = l.Fail(st, now)
		now = now.Add(time.Second)
	}
	// The 5th failure locks for 1 minute, then 2, 4, ... capped at 1 h.
	wantDelays := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, d := range wantDelays {
		d *= time.Minute
		if ok, wait := l.Allow(st, now); !ok {
			t.Fatalf("delay step %d: refused before failing (retry after %v)", i, wait)
		}
		st = l.Fail(st, now)
		ok, wait := l.Allow(st, now)
		if ok || wait != d {
			t.Fatalf("after failure %d: Allow = %v, %v; want false, %v", st.Failures, ok, wait, d)
		}
		// Still locked just before the end, open at the end.
		if ok, _ := l.Allow(st, now.Add(d-time.Nanosecond)); ok {
			t.Fatalf("after failure %d: open before %v", st.Failures, d)
		}
		now = now.Add(d)
	}

	// Success resets.
	st = l.Succeed()
	if st != (AccountState{}) {
		t.Fatalf("Succeed = %+v; want zero", st)
	}
	if ok, _ := l.Allow(st, now); !ok {
		t.Fatal("refused after success")
	}
}

// TestLockoutHardLimit: NIST SP 800-63B §5.2.2, at most 100 consecutive
// failures; then locked until reset, however long one waits.
func TestLockoutHardLimit(t *testing.T) {
	var l Lockout
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	var st AccountState
	attempts := 0
	for attempts < 1000 {
		ok, wait := l.Allow(st, now)
		if !ok && wait == 0 {
			break
		}
		if ok {
			attempts++
			st = l.Fail(st, now)
			continue
		}
		now = now.Add(wait)
	}
	if attempts != DefaultMaxFailures {
		t.Fatalf("%d attempts allowed; want %d", attempts, DefaultMaxFailures)
	}
	if ok, _ := l.Allow(st, now.Add(100*365*24*time.Hour)); ok {
		t.Fatal("hard lock expired")
	}
	st = l.Fail(st, now) // a stray Fail does not overflow or unlock
	if st.Failures != DefaultMaxFailures {
		t.Fatalf("Failures = %d; want capped at %d", st.Failures, DefaultMaxFailures)
	}
	if ok, _ := l.Allow(l.Succeed(), now); !ok {
		t.Fatal("reset does not unlock")
	}
}

func TestLockoutCustom(t *testing.T) {
	l := Lockout{FreeFailures: 1, BaseDelay: time.Second, MaxDelay: 3 * time.Second, MaxFailures: 4}
	now := time.Unix(0, 0)
	var st AccountState
	var got []time.Duration
	for range 4 {
		st = l.Fail(st, now)
		_, wait := l.Allow(st, now)
		got = append(got, wait)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits = %v; want %v", got, want)
		}
	}
}

func TestLockoutDelayDoesNotOverflow(t *testing.T) {
	l := Lockout{MaxDelay: 1<<63 - 1, MaxFailures: 1 << 30}.withDefaults()
	if d := l.delay(200); d <= 0 || d > l.MaxDelay {
		t.Fatalf("delay(200) = %v", d)
	}
}
