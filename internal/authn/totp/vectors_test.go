package totp

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// vectors holds testdata/totp-rfc6238.md, the RFC 6238 Appendix B and
// RFC 4226 Appendix D known answers.
type vectors struct {
	seeds map[string]string // "SHA1" -> ASCII seed
	totp  []totpVector
	hotp  []string // codes for counters 0..9
}

type totpVector struct {
	unix int64
	alg  string
	code string
}

var (
	seedLine = regexp.MustCompile(`^- (SHA1|SHA256|SHA512):\s+(\S+)$`)
	rowLine  = regexp.MustCompile(`^\|\s*(\d+)\s*\|\s*(\d{8})\s*\|\s*(\d{8})\s*\|\s*(\d{8})\s*\|$`)
	hotpLine = regexp.MustCompile(`^\d{6}( \d{6})+$`)
)

func loadVectors(t *testing.T) vectors {
	t.Helper()
	f, err := os.Open("testdata/totp-rfc6238.md")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	v := vectors{seeds: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := seedLine.FindStringSubmatch(line); m != nil {
			v.seeds[m[1]] = m[2]
		}
		if m := rowLine.FindStringSubmatch(line); m != nil {
			unix, err := strconv.ParseInt(m[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			for i, alg := range []string{"SHA1", "SHA256", "SHA512"} {
				v.totp = append(v.totp, totpVector{unix, alg, m[2+i]})
			}
		}
		if hotpLine.MatchString(line) {
			v.hotp = strings.Fields(line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// The file must be read in full: a parser that silently drops rows
	// would let the tests below pass vacuously.
	if len(v.seeds) != 3 || len(v.totp) != 18 || len(v.hotp) != 10 {
		t.Fatalf("parsed %d seeds, %d TOTP and %d HOTP vectors; want 3, 18, 10", len(v.seeds), len(v.totp), len(v.hotp))
	}
	return v
}

var algorithms = map[string]otp.Algorithm{
	"SHA1":   otp.AlgorithmSHA1,
	"SHA256": otp.AlgorithmSHA256,
	"SHA512": otp.AlgorithmSHA512,
}

// TestRFC6238Vectors runs every RFC 6238 Appendix B vector (T0 = 0,
// X = 30, 8 digits) through generate, the code path Code and Verify use.
func TestRFC6238Vectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.totp {
		t.Run(tc.alg+"/"+strconv.FormatInt(tc.unix, 10), func(t *testing.T) {
			secret := b32.EncodeToString([]byte(v.seeds[tc.alg]))
			got, err := generate(secret, Step(time.Unix(tc.unix, 0)), algorithms[tc.alg], otp.DigitsEight)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.code {
				t.Errorf("code = %s, want %s", got, tc.code)
			}
		})
	}
}

// TestCodeMatchesVectors checks the production parameters: the 6-digit
// SHA1 code is the vector's value mod 10^6, and Verify accepts it.
func TestCodeMatchesVectors(t *testing.T) {
	v := loadVectors(t)
	secret := b32.EncodeToString([]byte(v.seeds["SHA1"]))
	for _, tc := range v.totp {
		if tc.alg != "SHA1" {
			continue
		}
		t.Run(strconv.FormatInt(tc.unix, 10), func(t *testing.T) {
			now := time.Unix(tc.unix, 0)
			got, err := Code(secret, now)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.code[2:]; got != want {
				t.Fatalf("Code = %s, want %s", got, want)
			}
			step, ok := Verify(secret, got, now, 0)
			if !ok || step != tc.unix/30 {
				t.Errorf("Verify = (%d, %v), want (%d, true)", step, ok, tc.unix/30)
			}
		})
	}
}

// TestRFC4226Vectors checks HOTP (the counter underneath TOTP) for
// counters 0..9 of RFC 4226 Appendix D.
func TestRFC4226Vectors(t *testing.T) {
	v := loadVectors(t)
	secret := b32.EncodeToString([]byte(v.seeds["SHA1"]))
	for counter, want := range v.hotp {
		t.Run(strconv.Itoa(counter), func(t *testing.T) {
			got, err := generate(secret, int64(counter), otp.AlgorithmSHA1, otp.DigitsSix)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("HOTP(%d) = %s, want %s", counter, got, want)
			}
		})
	}
}
