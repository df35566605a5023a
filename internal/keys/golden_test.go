package keys

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

var update = flag.Bool("update", false, "regenerate testdata/golden")

// golden is data written by an earlier build: a KEK file, wrapped keys,
// a ciphertext, a blind index and a token. Opening it proves that the
// on-disk formats (Tink's encrypted keyset, the AD encodings, the token
// encoding, the blind-index truncation) have not drifted, e.g. across a
// Tink upgrade. kek.json there is a test-only key that protects nothing.
// Regenerate only on a deliberate format change:
//
//	go test ./internal/keys -run TestGolden -update
type golden struct {
	DEK        storage.KeyRecord
	Blind      storage.KeyRecord
	Token      storage.KeyRecord
	AD         ResourceAD
	Plaintext  string
	Ciphertext []byte
	IndexInput string
	IndexHex   string
	Purpose    string
	TokenText  string
	TokenData  string
}

const goldenDir = "testdata/golden"

func TestGolden(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "kek.json")
	if *update {
		if err := CreateKeyFile(keyFile); err != nil {
			t.Fatal(err)
		}
		writeGolden(t, keyFile)
	}
	// git does not keep mode 0600, so open a private copy.
	copyFile(t, filepath.Join(goldenDir, "kek.json"), keyFile+".copy", 0o600)
	k := NewKeyring(openFileKEKT(t, keyFile+".copy"), Options{})

	b, err := os.ReadFile(filepath.Join(goldenDir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if g.DEK.KEKID != k.KEK().PrimaryID() {
		t.Errorf("golden KEKID %d, KEK primary %d", g.DEK.KEKID, k.KEK().PrimaryID())
	}
	pt, err := dekOf(t, k, g.DEK).Open(g.Ciphertext, g.AD)
	if err != nil || string(pt) != g.Plaintext {
		t.Fatalf("golden ciphertext: %q, %v", pt, err)
	}
	if err := k.LoadSystemKeys(g.Blind, g.Token); err != nil {
		t.Fatal(err)
	}
	idx, err := k.BlindIndex(g.IndexInput)
	if err != nil || hex.EncodeToString(idx) != g.IndexHex {
		t.Fatalf("golden blind index = %x, %v, want %s", idx, err, g.IndexHex)
	}
	data, err := k.OpenToken(g.Purpose, g.TokenText)
	if err != nil || string(data) != g.TokenData {
		t.Fatalf("golden token = %q, %v", data, err)
	}
}

func writeGolden(t *testing.T, keyFile string) {
	t.Helper()
	k := NewKeyring(openFileKEKT(t, keyFile), Options{})
	g := golden{
		AD:         ResourceAD{"Observation", "obs-1", 3, "Patient/golden"},
		Plaintext:  `{"resourceType":"Observation","id":"obs-1"}`,
		IndexInput: "family\x00smith",
		Purpose:    "cursor/Observation",
		TokenData:  `{"offset":50}`,
	}
	var err error
	if g.DEK, err = k.NewDEK(g.AD.Owner, t0); err != nil {
		t.Fatal(err)
	}
	if g.Ciphertext, err = dekOf(t, k, g.DEK).Seal([]byte(g.Plaintext), g.AD); err != nil {
		t.Fatal(err)
	}
	if g.Blind, err = k.NewSystemKey(SystemBlindIndex, t0); err != nil {
		t.Fatal(err)
	}
	if g.Token, err = k.NewSystemKey(SystemToken, t0); err != nil {
		t.Fatal(err)
	}
	if err := k.LoadSystemKeys(g.Blind, g.Token); err != nil {
		t.Fatal(err)
	}
	idx, err := k.BlindIndex(g.IndexInput)
	if err != nil {
		t.Fatal(err)
	}
	g.IndexHex = hex.EncodeToString(idx)
	if g.TokenText, err = k.SealToken(g.Purpose, []byte(g.TokenData)); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(goldenDir, "golden.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	copyFile(t, keyFile, filepath.Join(goldenDir, "kek.json"), 0o644)
}
