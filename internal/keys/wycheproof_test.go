package keys

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/secretdata"
)

// TestWycheproofAESGCM runs Wycheproof's AES-256-GCM vectors (96-bit IV,
// 128-bit tag: the only parameters this package uses) through the same
// path a DEK takes: a Tink keyset of an aesgcm.Key turned into a
// primitive by aead.New. The key has no output prefix so the vector's
// iv||ct||tag is the whole ciphertext. Vectors: testdata/wycheproof
// (Apache-2.0, see LICENSE there).
func TestWycheproofAESGCM(t *testing.T) {
	b, err := os.ReadFile("testdata/wycheproof/aes_gcm_test.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Algorithm  string
		TestGroups []struct {
			KeySize, IVSize, TagSize int
			Tests                    []struct {
				TcID                       int
				Comment                    string
				Key, IV, AAD, Msg, CT, Tag string
				Result                     string
			}
		}
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	params, err := aesgcm.NewParameters(aesgcm.ParametersOpts{
		KeySizeInBytes: 32, IVSizeInBytes: 12, TagSizeInBytes: 16, Variant: aesgcm.VariantNoPrefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	unhex := func(s string) []byte {
		t.Helper()
		v, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ran := 0
	for _, g := range file.TestGroups {
		if g.KeySize != 256 || g.IVSize != 96 || g.TagSize != 128 {
			continue
		}
		for _, tc := range g.Tests {
			t.Run(strconv.Itoa(tc.TcID), func(t *testing.T) {
				k, err := aesgcm.NewKey(secretdata.NewBytesFromData(unhex(tc.Key), insecuresecretdataaccess.Token{}), 0, params)
				if err != nil {
					t.Fatal(err)
				}
				m := keyset.NewManager()
				id, err := m.AddKey(k)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.SetPrimary(id); err != nil {
					t.Fatal(err)
				}
				h, err := m.Handle()
				if err != nil {
					t.Fatal(err)
				}
				if err := checkAES256GCM(h); err == nil {
					t.Fatal("checkAES256GCM accepted a key without Tink prefix")
				}
				a, err := aead.New(h)
				if err != nil {
					t.Fatal(err)
				}
				ct := append(append(unhex(tc.IV), unhex(tc.CT)...), unhex(tc.Tag)...)
				pt, err := a.Decrypt(ct, unhex(tc.AAD))
				switch tc.Result {
				case "valid":
					if err != nil || !bytes.Equal(pt, unhex(tc.Msg)) {
						t.Fatalf("%s: valid vector failed: %v", tc.Comment, err)
					}
				case "invalid":
					if err == nil {
						t.Fatalf("%s: invalid vector decrypted", tc.Comment)
					}
				default: // "acceptable": either outcome is allowed
				}
			})
			ran++
		}
	}
	if ran < 50 {
		t.Fatalf("ran %d AES-256-GCM vectors, want at least 50", ran)
	}
}
