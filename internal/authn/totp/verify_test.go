package totp

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the RFC 6238 SHA1 seed "12345678901234567890" in base32.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func mustCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := Code(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerify(t *testing.T) {
	now := time.Unix(1111111111, 0) // step 37037037, 1 s into it
	cur := Step(now)
	at := func(d int64) time.Time { return time.Unix((cur+d)*period, 0) }
	code := func(d int64) string { return mustCode(t, rfcSecret, at(d)) }
	// An 80-bit secret: below the RFC 4226 minimum of 128 bits.
	shortSecret := b32.EncodeToString([]byte("0123456789"))

	tests := []struct {
		name     string
		secret   string
		code     string
		now      time.Time
		lastUsed int64
		wantStep int64
		wantOK   bool
	}{
		{"current step", rfcSecret, code(0), now, 0, cur, true},
		{"previous step (delay)", rfcSecret, code(-1), now, 0, cur - 1, true},
		{"next step (drift)", rfcSecret, code(+1), now, 0, cur + 1, true},
		{"two steps old", rfcSecret, code(-2), now, 0, 0, false},
		{"two steps ahead", rfcSecret, code(+2), now, 0, 0, false},
		{"replay of the used step", rfcSecret, code(0), now, cur, 0, false},
		{"next code after the used one", rfcSecret, code(+1), now, cur, cur + 1, true},
		{"earlier code after a later was used", rfcSecret, code(-1), now, cur, 0, false},
		{"current code after next was used", rfcSecret, code(0), now, cur + 1, 0, false},
		{"surrounding spaces trimmed", rfcSecret, "  " + code(0) + " ", now, 0, cur, true},
		{"inner space", rfcSecret, code(0)[:3] + " " + code(0)[3:], now, 0, 0, false},
		{"tab is not a space", rfcSecret, "\t" + code(0), now, 0, 0, false},
		{"seven digits", rfcSecret, code(0) + "0", now, 0, 0, false},
		{"five digits", rfcSecret, code(0)[:5], now, 0, 0, false},
		{"empty", rfcSecret, "", now, 0, 0, false},
		{"letters", rfcSecret, "12a456", now, 0, 0, false},
		{"sign", rfcSecret, "+12345", now, 0, 0, false},
		{"fullwidth digits", rfcSecret, "１２３４５６", now, 0, 0, false},
		{"over-long padded input", rfcSecret, strings.Repeat(" ", 40) + code(0), now, 0, 0, false},
		{"wrong code", rfcSecret, wrong(code(-1), code(0), code(1)), now, 0, 0, false},
		{"lowercase secret", strings.ToLower(rfcSecret), code(0), now, 0, cur, true},
		{"secret not base32", "not base32!", code(0), now, 0, 0, false},
		{"secret below 128 bits", shortSecret, mustCode(t, b32.EncodeToString([]byte("0123456789abcdef")), now), now, 0, 0, false},
		{"empty secret", "", code(0), now, 0, 0, false},
		{"before the epoch", rfcSecret, code(0), time.Unix(-1, 0), 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			step, ok := Verify(tc.secret, tc.code, tc.now, tc.lastUsed)
			if step != tc.wantStep || ok != tc.wantOK {
				t.Errorf("Verify = (%d, %v), want (%d, %v)", step, ok, tc.wantStep, tc.wantOK)
			}
		})
	}
}

// wrong returns a six-digit code different from all of avoid.
func wrong(avoid ...string) string {
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !strings.Contains(strings.Join(avoid, ","), c) {
			return c
		}
	}
	panic("unreachable")
}

// TestVerifyOnce plays a login sequence the way the caller stores the
// step: every code works once, and never again within its window.
func TestVerifyOnce(t *testing.T) {
	key, err := NewSecret("phivault", "alice")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z, a step boundary
	var last int64
	for i, offset := range []time.Duration{0, 5 * time.Second, 31 * time.Second, 95 * time.Second} {
		now := start.Add(offset)
		c := mustCode(t, key.Secret(), now)
		step, ok := Verify(key.Secret(), c, now, last)
		fresh := Step(now) > last
		if ok != fresh {
			t.Fatalf("login %d at +%v: ok = %v, want %v (step %d, last %d)", i, offset, ok, fresh, Step(now), last)
		}
		if ok {
			last = step
		}
		// The same code, a few seconds later, is refused.
		if _, ok := Verify(key.Secret(), c, now.Add(3*time.Second), last); ok {
			t.Fatalf("login %d: code accepted twice", i)
		}
	}
}

// TestVerifyCollision: for this secret the codes of steps 57766335 and
// 57766336 are both 251166. Verify must record the higher step, or the
// same code would be accepted a second time through the other step.
func TestVerifyCollision(t *testing.T) {
	const low, high, code = 57766335, 57766336, "251166"
	now := time.Unix(high*period, 0)
	for _, s := range []int64{low, high} {
		if c := mustCode(t, rfcSecret, time.Unix(s*period, 0)); c != code {
			t.Fatalf("fixture: code at step %d = %s, want %s", s, c, code)
		}
	}
	step, ok := Verify(rfcSecret, code, now, 0)
	if !ok || step != high {
		t.Fatalf("first use = (%d, %v), want (%d, true)", step, ok, int64(high))
	}
	if _, ok := Verify(rfcSecret, code, now, step); ok {
		t.Fatal("colliding code accepted a second time")
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		unix int64
		want int64
	}{
		{0, 0}, {29, 0}, {30, 1}, {59, 1}, {1111111109, 37037036}, {20000000000, 666666666}, {-1, -1},
	}
	for _, tc := range tests {
		if got := Step(time.Unix(tc.unix, 0)); got != tc.want {
			t.Errorf("Step(%d) = %d, want %d", tc.unix, got, tc.want)
		}
	}
}

// FuzzVerify: untrusted codes never panic, and anything accepted is the
// exact code of the returned step inside the window.
func FuzzVerify(f *testing.F) {
	seeds, err := os.Open("testdata/verify-seeds.txt")
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(seeds)
	for sc.Scan() {
		f.Add(sc.Text(), int64(1111111111), int64(0))
	}
	seeds.Close()
	f.Fuzz(func(t *testing.T, code string, unix int64, last int64) {
		now := time.Unix(unix, 0)
		step, ok := Verify(rfcSecret, code, now, last)
		if !ok {
			return
		}
		if step <= last || step < Step(now)-skew || step > Step(now)+skew {
			t.Fatalf("accepted step %d outside window around %d or not above %d", step, Step(now), last)
		}
		if got := mustCode(t, rfcSecret, time.Unix(step*period, 0)); got != strings.Trim(code, " ") {
			t.Fatalf("accepted %q, code at step %d is %s", code, step, got)
		}
	})
}
