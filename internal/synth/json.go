package synth

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// obj is a JSON object whose keys keep their insertion order, so that output
// is byte-for-byte deterministic without sorting. Values are string, int,
// float64 (a FHIR decimal), bool, obj, []obj, []string or []any.
type obj []field

type field struct {
	k string
	v any
}

// o builds an obj from alternating keys and values. A nil value, an empty
// string or an empty slice omits the key, which keeps optional elements out
// of the output (FHIR forbids empty elements).
func o(kv ...any) obj {
	if len(kv)%2 != 0 {
		panic("synth: o called with an odd number of arguments")
	}
	out := make(obj, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		v := kv[i+1]
		switch x := v.(type) {
		case nil:
			continue
		case string:
			if x == "" {
				continue
			}
		case obj:
			if x == nil {
				continue
			}
		case []obj:
			if len(x) == 0 {
				continue
			}
		case []string:
			if len(x) == 0 {
				continue
			}
		case []any:
			if len(x) == 0 {
				continue
			}
		}
		out = append(out, field{kv[i].(string), v})
	}
	return out
}

// appendJSON appends the JSON encoding of v to b.
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case obj:
		b = append(b, '{')
		for i, f := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f.k)
			b = append(b, ':')
			b = appendJSON(b, f.v)
		}
		return append(b, '}')
	case []obj:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case []string:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, e)
		}
		return append(b, ']')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case string:
		return appendString(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case float64:
		return strconv.AppendFloat(b, x, 'f', -1, 64)
	case bool:
		return strconv.AppendBool(b, x)
	default:
		panic(fmt.Sprintf("synth: cannot encode %T", v))
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Non-ASCII text (diacritics) is
// written as UTF-8; only quotes, backslashes and control characters are
// escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
