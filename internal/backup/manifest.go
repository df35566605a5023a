package backup

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// FormatVersion is the archive format this package writes and reads.
const FormatVersion = 1

// Engines.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// manifestName is the archive's last entry: it is written after every
// file, whose hashes it holds.
const manifestName = "manifest.json"

// maxManifestBytes bounds what ParseManifest reads: a manifest lists a
// few dozen files (PostgreSQL: one per table), far below 1 MiB.
const maxManifestBytes = 1 << 20

// maxFiles bounds the files of an archive (the tables of the schema and
// the data directory's configuration, policies and TLS files).
const maxFiles = 4096

// ErrBadManifest means a manifest or summary does not parse or is not
// one this binary can trust; the message says which field.
var ErrBadManifest = errors.New("backup: bad manifest")

// Manifest describes one backup. It is the archive's last entry, inside
// the encryption; its Summary is also stored beside the archive in the
// clear.
type Manifest struct {
	Format int    `json:"format"`
	Engine string `json:"engine"`
	// Schema is the database's migration version (the highest applied).
	Schema int `json:"schema_version"`
	// Migrations are the applied migration versions (PostgreSQL: a
	// restore creates the schema from these migration files).
	Migrations []int     `json:"migrations,omitempty"`
	Version    string    `json:"phivault_version"`
	Created    time.Time `json:"created"`
	// Checkpoint is the audit log's newest signed checkpoint in the
	// snapshot: a restore must reproduce it.
	Checkpoint Checkpoint `json:"checkpoint"`
	// KEKIDs are the key ids of the key-encryption key that wrap the
	// snapshot's data keys: a key file must hold all of them to restore.
	KEKIDs []uint32 `json:"kek_ids"`
	Counts Counts   `json:"counts"`
	Files  []File   `json:"files"`
}

// Checkpoint is a signed checkpoint of the audit log (C2SP
// tlog-checkpoint): public by design.
type Checkpoint struct {
	Size int64  `json:"size"`
	Root []byte `json:"root"` // 32 bytes, base64 in JSON
	Note string `json:"note"` // the signed note
}

// Counts are what the snapshot holds.
type Counts struct {
	Resources    int64 `json:"resources"`     // current, not deleted
	Patients     int64 `json:"patients"`      // current Patient resources
	AuditEvents  int64 `json:"audit_events"`  // leaves under the checkpoint
	AuditPending int64 `json:"audit_pending"` // sequenced, not yet in the tree
}

// File is one file of the archive and its SHA-256.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// ParseManifest decodes and checks a manifest. Unknown fields, another
// format version, a bad engine, file name or hash are refused; errors
// wrap ErrBadManifest. It never panics.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := strictJSON(b, &m); err != nil {
		return Manifest{}, err
	}
	return m, m.check()
}

func (m Manifest) check() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("%w: format %d, this binary reads %d", ErrBadManifest, m.Format, FormatVersion)
	}
	if m.Engine != EngineSQLite && m.Engine != EnginePostgres {
		return fmt.Errorf("%w: engine %q", ErrBadManifest, m.Engine)
	}
	if m.Schema <= 0 {
		return fmt.Errorf("%w: schema version %d", ErrBadManifest, m.Schema)
	}
	if err := m.Checkpoint.check(); err != nil {
		return err
	}
	if m.Counts.Resources < 0 || m.Counts.Patients < 0 || m.Counts.AuditEvents < 0 || m.Counts.AuditPending < 0 {
		return fmt.Errorf("%w: negative count", ErrBadManifest)
	}
	if len(m.Files) == 0 || len(m.Files) > maxFiles {
		return fmt.Errorf("%w: %d files", ErrBadManifest, len(m.Files))
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if err := validEntryName(f.Name); err != nil {
			return err
		}
		if seen[f.Name] {
			return fmt.Errorf("%w: file %q listed twice", ErrBadManifest, f.Name)
		}
		seen[f.Name] = true
		if f.Size < 0 {
			return fmt.Errorf("%w: file %q has a negative size", ErrBadManifest, f.Name)
		}
		if h, err := hex.DecodeString(f.SHA256); err != nil || len(h) != 32 {
			return fmt.Errorf("%w: file %q has no SHA-256", ErrBadManifest, f.Name)
		}
	}
	return nil
}

func (c Checkpoint) check() error {
	switch {
	case c.Size < 0:
		return fmt.Errorf("%w: checkpoint size %d", ErrBadManifest, c.Size)
	case c.Size > 0 && len(c.Root) != 32:
		return fmt.Errorf("%w: checkpoint root of %d bytes", ErrBadManifest, len(c.Root))
	case c.Size > 0 && c.Note == "":
		return fmt.Errorf("%w: checkpoint without its signed note", ErrBadManifest)
	}
	return nil
}

// validEntryName accepts the archive's entry names: relative, clean,
// slash-separated, printable, without "..", at most 4 levels deep.
func validEntryName(name string) error {
	if name == "" || len(name) > 255 || name != path.Clean(name) || path.IsAbs(name) ||
		strings.HasPrefix(name, "../") || name == ".." || name == "." || strings.Count(name, "/") > 3 {
		return fmt.Errorf("%w: file name %q", ErrBadManifest, name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "" {
			return fmt.Errorf("%w: file name %q", ErrBadManifest, name)
		}
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return fmt.Errorf("%w: file name %q", ErrBadManifest, name)
		}
	}
	return nil
}

// Summary is the plaintext sidecar of a backup (NAME.json): what "backup
// list" shows without the identity. It holds no PHI and nothing secret:
// the checkpoint is the public signed tree head, key ids are not keys,
// and counts of patients or resources are left out. It is not
// authenticated: "backup verify" with the identity checks it against
// the manifest inside the encryption.
type Summary struct {
	Name       string    `json:"name"`
	Format     int       `json:"format"`
	Engine     string    `json:"engine"`
	Schema     int       `json:"schema_version"`
	Version    string    `json:"phivault_version"`
	Created    time.Time `json:"created"`
	Checkpoint struct {
		Size int64  `json:"size"`
		Root []byte `json:"root"`
	} `json:"checkpoint"`
	KEKIDs []uint32 `json:"kek_ids"`
	Size   int64    `json:"size"`   // of the ciphertext
	SHA256 string   `json:"sha256"` // of the ciphertext, hex
}

// Summary returns m's plaintext summary for the archive name of size
// bytes hashing to sum.
func (m Manifest) Summary(name string, size int64, sum string) Summary {
	s := Summary{Name: name, Format: m.Format, Engine: m.Engine, Schema: m.Schema, Version: m.Version,
		Created: m.Created, KEKIDs: slices.Clone(m.KEKIDs), Size: size, SHA256: sum}
	s.Checkpoint.Size, s.Checkpoint.Root = m.Checkpoint.Size, m.Checkpoint.Root
	return s
}

// ParseSummary decodes a sidecar summary; errors wrap ErrBadManifest.
func ParseSummary(b []byte) (Summary, error) {
	var s Summary
	if err := strictJSON(b, &s); err != nil {
		return Summary{}, err
	}
	if err := ValidName(s.Name); err != nil {
		return Summary{}, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if s.Engine != EngineSQLite && s.Engine != EnginePostgres {
		return Summary{}, fmt.Errorf("%w: engine %q", ErrBadManifest, s.Engine)
	}
	if s.Size < 0 || s.Checkpoint.Size < 0 {
		return Summary{}, fmt.Errorf("%w: negative size", ErrBadManifest)
	}
	if h, err := hex.DecodeString(s.SHA256); err != nil || len(h) != 32 {
		return Summary{}, fmt.Errorf("%w: no SHA-256", ErrBadManifest)
	}
	return s, nil
}

// ParseSum reads a NAME.sha256 sidecar: 64 hex digits, optionally
// followed by whitespace and the name (as sha256sum writes it).
func ParseSum(b []byte) (string, error) {
	if len(b) > 1024 {
		return "", fmt.Errorf("%w: checksum file too large", ErrBadManifest)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "", fmt.Errorf("%w: empty checksum file", ErrBadManifest)
	}
	if h, err := hex.DecodeString(f[0]); err != nil || len(h) != 32 {
		return "", fmt.Errorf("%w: checksum file holds no SHA-256", ErrBadManifest)
	}
	return strings.ToLower(f[0]), nil
}

func strictJSON(b []byte, v any) error {
	if len(b) > maxManifestBytes {
		return fmt.Errorf("%w: larger than %d bytes", ErrBadManifest, maxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", ErrBadManifest)
	}
	return nil
}
