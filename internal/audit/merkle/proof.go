package merkle

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// ProofHeader is the first line of a C2SP tlog-proof.
const ProofHeader = "c2sp.org/tlog-proof@v1"

// maxProofHashes bounds the hashes of an inclusion or consistency proof
// read from anywhere: a tree of 2^62 leaves needs at most 2·62.
const maxProofHashes = 128

// maxNumberLen caps a decimal parameter: 19 digits hold any int64.
const maxNumberLen = 19

// ParseIndex parses a non-negative decimal leaf index or tree size (a
// query parameter) without sign, spaces or leading zeros. name appears
// in the error, which wraps ErrBadRequest.
func ParseIndex(name, s string) (int64, error) {
	if s == "" || len(s) > maxNumberLen || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%w: %s must be a decimal number without leading zeros", ErrBadRequest, name)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %s must be a decimal number without leading zeros", ErrBadRequest, name)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is out of range", ErrBadRequest, name)
	}
	return n, nil
}

// InclusionRequest is a parsed /log/proof/inclusion request: the leaf
// index and the tree size (0 means the latest checkpoint).
type InclusionRequest struct {
	Index, Size int64
}

// ParseInclusionRequest parses the "index" and optional "size" query
// parameters. Errors wrap ErrBadRequest.
func ParseInclusionRequest(index, size string) (InclusionRequest, error) {
	var r InclusionRequest
	var err error
	if r.Index, err = ParseIndex("index", index); err != nil {
		return r, err
	}
	if size != "" {
		if r.Size, err = ParseIndex("size", size); err != nil {
			return r, err
		}
		if r.Index >= r.Size {
			return r, fmt.Errorf("%w: index %d is not below size %d", ErrBadRequest, r.Index, r.Size)
		}
	}
	return r, nil
}

// ConsistencyRequest is a parsed /log/proof/consistency request.
type ConsistencyRequest struct {
	Old, New int64
}

// ParseConsistencyRequest parses the "old" and "new" query parameters:
// 0 < old <= new. Errors wrap ErrBadRequest.
func ParseConsistencyRequest(old, new string) (ConsistencyRequest, error) {
	var r ConsistencyRequest
	var err error
	if r.Old, err = ParseIndex("old", old); err != nil {
		return r, err
	}
	if r.New, err = ParseIndex("new", new); err != nil {
		return r, err
	}
	if r.Old == 0 || r.Old > r.New {
		return r, fmt.Errorf("%w: want 0 < old <= new, got old %d and new %d", ErrBadRequest, r.Old, r.New)
	}
	return r, nil
}

// FormatInclusionProof writes a C2SP tlog-proof: the header, the leaf
// index, the inclusion proof hashes and, after an empty line, the
// signed checkpoint verbatim.
func FormatInclusionProof(index int64, p tlog.RecordProof, checkpoint []byte) []byte {
	return formatProof(nil, index, p, checkpoint)
}

func formatProof(extra []byte, index int64, p tlog.RecordProof, checkpoint []byte) []byte {
	var b bytes.Buffer
	b.WriteString(ProofHeader + "\n")
	if extra != nil {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(extra) + "\n")
	}
	fmt.Fprintf(&b, "index %d\n", index)
	for _, h := range p {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(checkpoint)
	return b.Bytes()
}

// InclusionProof is a parsed C2SP tlog-proof.
type InclusionProof struct {
	Extra      []byte
	Index      int64
	Proof      tlog.RecordProof
	Checkpoint []byte // the signed note, still to be verified
}

// ParseInclusionProof parses a C2SP tlog-proof. It checks the syntax
// only: the caller opens the checkpoint with OpenCheckpoint and checks
// the proof with CheckInclusion. Errors wrap ErrBadRequest.
func ParseInclusionProof(b []byte) (InclusionProof, error) {
	var p InclusionProof
	bad := func(why string) (InclusionProof, error) {
		return InclusionProof{}, fmt.Errorf("%w: tlog-proof: %s", ErrBadRequest, why)
	}
	if len(b) > MaxCheckpointSize+maxProofHashes*64+1024 {
		return bad("too large")
	}
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return bad("no empty line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != ProofHeader {
		return bad("first line is not " + ProofHeader)
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		x, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			return bad("extra line is not base64")
		}
		p.Extra = x
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return bad("no index line")
	}
	idx, err := ParseIndex("index", strings.TrimPrefix(lines[0], "index "))
	if err != nil {
		return bad("bad index")
	}
	p.Index = idx
	lines = lines[1:]
	if len(lines) > maxProofHashes {
		return bad("too many proof hashes")
	}
	for _, l := range lines {
		h, err := tlog.ParseHash(l)
		if err != nil || base64.StdEncoding.EncodeToString(h[:]) != l {
			return bad("proof line is not a base64 SHA-256 hash")
		}
		p.Proof = append(p.Proof, h)
	}
	p.Checkpoint = cp
	return p, nil
}

// FormatConsistencyProof writes one base64 hash per line (the hashes of
// tlog.TreeProof, as RFC 6962 orders them).
func FormatConsistencyProof(p tlog.TreeProof) []byte {
	var b bytes.Buffer
	for _, h := range p {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	return b.Bytes()
}

// ParseConsistencyProof parses FormatConsistencyProof's output. Errors
// wrap ErrBadRequest.
func ParseConsistencyProof(b []byte) (tlog.TreeProof, error) {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil, nil
	}
	lines := strings.Split(s, "\n")
	if len(lines) > maxProofHashes {
		return nil, fmt.Errorf("%w: too many proof hashes", ErrBadRequest)
	}
	p := make(tlog.TreeProof, 0, len(lines))
	for _, l := range lines {
		h, err := tlog.ParseHash(l)
		if err != nil || base64.StdEncoding.EncodeToString(h[:]) != l {
			return nil, fmt.Errorf("%w: proof line is not a base64 SHA-256 hash", ErrBadRequest)
		}
		p = append(p, h)
	}
	return p, nil
}

// CheckInclusion checks that the leaf with hash leaf is at index in the
// tree of size with root (RFC 6962 inclusion proof).
func CheckInclusion(p tlog.RecordProof, size int64, root tlog.Hash, index int64, leaf tlog.Hash) error {
	if err := tlog.CheckRecord(p, size, root, index, leaf); err != nil {
		return fmt.Errorf("inclusion proof of leaf %d in tree %d: %w", index, size, err)
	}
	return nil
}

// CheckConsistency checks that the tree of size oldSize with root
// oldRoot is a prefix of the tree of size newSize with root newRoot.
func CheckConsistency(p tlog.TreeProof, newSize int64, newRoot tlog.Hash, oldSize int64, oldRoot tlog.Hash) error {
	if err := tlog.CheckTree(p, newSize, newRoot, oldSize, oldRoot); err != nil {
		return fmt.Errorf("consistency proof from %d to %d: %w", oldSize, newSize, err)
	}
	return nil
}
