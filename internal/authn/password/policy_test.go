package password

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		pw      string
		context []string
		want    error
	}{
		// Accepted: length is what counts, no composition rules.
		{"random 14-char passphrase", "vq7 otter ruby", nil, nil},
		{"lower-case words only", "correct horse battery stable", nil, nil},
		{"digits only, not on the list", "8302957163928", nil, nil},
		{"exactly 12", "mauve-kettle", nil, nil},
		{"exactly 128", strings.Repeat("tiger lily ", 11) + "blossom", nil, nil},
		{"spaces and unicode", "grüne Äpfel im Körbchen", nil, nil},
		{"emoji counted as code points", "🦊🦊 fox den at dawn", nil, nil},
		{"short context word ignored", "ann went sailing far", []string{"ann"}, nil},

		// Length, in code points after NFKC.
		{"empty", "", nil, ErrTooShort},
		{"11", "mauve-kettl", nil, ErrTooShort},
		{"11 multibyte runes of 22 bytes", "ééééééééééé", nil, ErrTooShort},
		{"decomposed é counts once after NFKC", strings.Repeat("e\u0301", 11), nil, ErrTooShort},
		{"129", strings.Repeat("tiger lily ", 11) + "blossoms", nil, ErrTooLong},
		{"over MaxPasswordBytes", strings.Repeat("a", MaxPasswordBytes+1), nil, ErrTooLong},
		{"invalid UTF-8", "valid prefix \xff\xfe then junk", nil, ErrInvalidUTF8},

		// Common and breached (bundled list), case-insensitively.
		{"on the list, 12+", "1234567890qwerty", nil, ErrCommon},
		{"on the list, mixed case", "1QAZ2wsx3EDC4rfv", nil, ErrCommon},
		{"on the list, 13 chars", "Administrator", nil, ErrCommon},
		{"listed word plus digits", "password1234", nil, ErrCommon},
		{"listed word plus digits and symbols", "Password1234!", nil, ErrCommon},
		{"keyboard row plus digits", "qwertyuiop123", nil, ErrCommon},
		{"digits before a listed word", "2024sunshine!!", nil, ErrCommon},
		{"listed word repeated", "monkeymonkey", nil, ErrCommon},
		{"one character repeated", "aaaaaaaaaaaaaaa", nil, ErrCommon},
		{"short unit repeated", "abcabcabcabc", nil, ErrCommon},
		{"full-width letters", "ｐａｓｓｗｏｒｄ１２３４", nil, ErrCommon},

		// Context words.
		{"service name", "my phivault login!", nil, ErrContext},
		{"service name, any case", "MyPhiVaultLogin!", nil, ErrContext},
		{"user name", "jsmith-rules-2026", []string{"jsmith"}, ErrContext},
		{"e-mail local part", "dr.grey is on call", []string{"dr.grey@hospital.example"}, ErrContext},
		{"whole e-mail", "x dr.grey@hospital.example", []string{"dr.grey@hospital.example"}, ErrContext},
		{"context case-insensitive", "JSMITH and friends", []string{"jsmith"}, ErrContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.pw, tt.context...)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Check = %v; want %v", err, tt.want)
			}
			if err != nil && len(tt.pw) >= 4 && strings.Contains(err.Error(), tt.pw) {
				t.Errorf("error %q echoes the password", err)
			}
		})
	}
}

// TestCheckRefusesEveryLongListEntry: every list entry long enough to pass
// the length rule is refused, in upper case too.
func TestCheckRefusesEveryLongListEntry(t *testing.T) {
	n := 0
	for _, w := range commonList() {
		if utf8.RuneCountInString(w) < MinRunes {
			continue
		}
		n++
		for _, pw := range []string{w, strings.ToUpper(w)} {
			if err := Check(pw); !errors.Is(err, ErrCommon) {
				t.Errorf("Check(%q) = %v; want ErrCommon", pw, err)
			}
		}
	}
	if n < 300 {
		t.Fatalf("only %d entries of 12+ characters; the list is not the bundled one", n)
	}
}

// TestCommonListIntegrity pins the bundled list to its NOTICE.
func TestCommonListIntegrity(t *testing.T) {
	list := commonList()
	if len(list) != 49233 {
		t.Errorf("list has %d entries; NOTICE says 49,233", len(list))
	}
	if !slices.IsSorted(list) || len(slices.Compact(slices.Clone(list))) != len(list) {
		t.Error("list is not sorted and distinct")
	}
	for _, w := range list {
		if w != strings.ToLower(w) || strings.TrimSpace(w) != w {
			t.Fatalf("entry %q is not lower-case and trimmed", w)
		}
	}
	for _, w := range []string{"password", "qwertyuiop", "123456", "iloveyou", "trustno1"} {
		if _, ok := slices.BinarySearch(list, w); !ok {
			t.Errorf("%q missing from the list", w)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	commonList()
	for b.Loop() {
		_ = Check("correct horse battery stable 2026", "jsmith", "j.smith@example.org")
	}
}
