package authz

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

//go:embed policies/default.cedar policies/schema.cedarschema
var embedded embed.FS

// SchemaFile is the name of the embedded Cedar schema.
const SchemaFile = "schema.cedarschema"

// DefaultSource is the Source of the embedded default policies.
const DefaultSource = "embedded"

// Limits on an override directory, which an operator controls but a
// mistake can fill: policies are read once at start.
const (
	maxPolicyFiles = 64
	maxPolicyBytes = 1 << 20 // per file
)

// Policies is a parsed, schema-validated policy set. It is immutable and
// safe for concurrent use.
type Policies struct {
	set     *cedar.PolicySet
	ids     []string
	conceal map[string]bool // policies annotated @conceal("true")
	files   map[string][]byte
	hash    string
	source  string
	// labels are the string literals the policies compare resource or
	// patient labels with (FilterLabels included): the labels search
	// narrowing probes.
	labels []string
}

// Labels returns the security labels search narrowing decides on: the
// built-in [FilterLabels] and every label literal the policies compare
// a labels attribute with.
func (p *Policies) Labels() []string { return slices.Clone(p.labels) }

// Hash is the SHA-256 (hex) of the policy files, names and contents in
// name order: the version of the policy set.
func (p *Policies) Hash() string { return p.hash }

// Source is DefaultSource or the directory the policies came from.
func (p *Policies) Source() string { return p.source }

// IDs lists the @id of every policy, sorted.
func (p *Policies) IDs() []string { return slices.Clone(p.ids) }

// Text returns the policy files, by name (a copy).
func (p *Policies) Text() map[string][]byte {
	out := make(map[string][]byte, len(p.files))
	for k, v := range p.files {
		out[k] = bytes.Clone(v)
	}
	return out
}

// DefaultFiles returns the embedded default policy files.
func DefaultFiles() map[string][]byte {
	b, err := embedded.ReadFile("policies/default.cedar")
	if err != nil {
		panic("authz: embedded default policies missing: " + err.Error()) // programmer error: go:embed
	}
	return map[string][]byte{"default.cedar": b}
}

// SchemaText returns the embedded Cedar schema.
func SchemaText() []byte {
	b, err := embedded.ReadFile("policies/" + SchemaFile)
	if err != nil {
		panic("authz: embedded schema missing: " + err.Error())
	}
	return b
}

// Defaults returns the embedded default policies, validated.
func Defaults() (*Policies, error) {
	return ParsePolicies(DefaultSource, DefaultFiles())
}

// LoadPolicies returns the policies of a deployment: the *.cedar files
// of dir if it holds any (they replace the defaults entirely), else the
// embedded defaults. A missing dir means the defaults. Any parse or
// validation error is returned wrapping [ErrInvalidPolicy], naming the
// file and policy.
func LoadPolicies(dir string) (*Policies, error) {
	if dir == "" {
		return Defaults()
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Defaults()
	}
	if err != nil {
		return nil, fmt.Errorf("reading policy directory %s: %w", dir, err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".cedar") {
			continue
		}
		if len(files) == maxPolicyFiles {
			return nil, fmt.Errorf("policy directory %s: more than %d .cedar files: %w", dir, maxPolicyFiles, ErrInvalidPolicy)
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("reading policy file %s: %w", e.Name(), err)
		}
		if info.Size() > maxPolicyBytes {
			return nil, fmt.Errorf("policy file %s: larger than %d bytes: %w", e.Name(), maxPolicyBytes, ErrInvalidPolicy)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading policy file %s: %w", e.Name(), err)
		}
		files[e.Name()] = b
	}
	if len(files) == 0 {
		return Defaults()
	}
	return ParsePolicies(dir, files)
}

// ParsePolicies parses and validates policy files (name → Cedar text)
// against the embedded schema. Every policy needs a unique
// @id("...") annotation. Errors wrap [ErrInvalidPolicy].
func ParsePolicies(source string, files map[string][]byte) (*Policies, error) {
	v, err := validator()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	set := cedar.NewPolicySet()
	h := sha256.New()
	var ids []string
	conceal := map[string]bool{}
	labels := map[string]bool{}
	for _, l := range FilterLabels {
		labels[l] = true
	}
	kept := make(map[string][]byte, len(files))
	for _, name := range names {
		text := files[name]
		// Name and length prefix each file so that moving text between
		// files changes the hash.
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(text))
		h.Write(text)
		kept[name] = bytes.Clone(text)
		list, err := cedar.NewPolicyListFromBytes(name, text)
		if err != nil {
			return nil, fmt.Errorf("policy file %s: %w: %w", name, ErrInvalidPolicy, err)
		}
		for i, p := range list {
			id, ok := p.Annotations()["id"]
			if !ok || id == "" {
				return nil, fmt.Errorf("policy file %s: policy %d (line %d) has no @id annotation: %w", name, i+1, p.Position().Line, ErrInvalidPolicy)
			}
			if !set.Add(cedar.PolicyID(id), p) {
				return nil, fmt.Errorf("policy file %s: duplicate policy @id %q: %w", name, id, ErrInvalidPolicy)
			}
			if err := v.Policy(string(id), (*xast.Policy)(p.AST())); err != nil {
				return nil, fmt.Errorf("policy file %s: policy %q does not match the schema: %w: %w", name, id, ErrInvalidPolicy, err)
			}
			ids = append(ids, string(id))
			if p.Annotations()["conceal"] == "true" {
				conceal[string(id)] = true
			}
			js, err := p.MarshalJSON()
			if err != nil {
				return nil, fmt.Errorf("policy file %s: policy %q: %w: %w", name, id, ErrInvalidPolicy, err)
			}
			var tree any
			if err := json.Unmarshal(js, &tree); err != nil {
				return nil, fmt.Errorf("policy file %s: policy %q: %w: %w", name, id, ErrInvalidPolicy, err)
			}
			labelLiterals(tree, false, labels)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("policy set from %s has no policies (everything would be denied): %w", source, ErrInvalidPolicy)
	}
	sort.Strings(ids)
	return &Policies{set: set, ids: ids, conceal: conceal, files: kept, hash: hex.EncodeToString(h.Sum(nil)), source: source,
		labels: slices.Sorted(maps.Keys(labels))}, nil
}

// labelLiterals adds to out the string literals of every comparison in
// a policy's JSON form (Cedar's JSON policy format) that involves a
// "labels" attribute: resource.labels.containsAny(["HIV", ...]),
// resource.labels.contains("X"), and the like.
func labelLiterals(n any, inLabels bool, out map[string]bool) {
	switch x := n.(type) {
	case map[string]any:
		if !inLabels && mentionsLabels(x) {
			for _, op := range []string{"contains", "containsAll", "containsAny", "==", "!="} {
				if _, ok := x[op]; ok {
					inLabels = true
				}
			}
		}
		if v, ok := x["Value"].(string); ok && inLabels {
			out[v] = true
		}
		for _, c := range x {
			labelLiterals(c, inLabels, out)
		}
	case []any:
		for _, c := range x {
			labelLiterals(c, inLabels, out)
		}
	}
}

// mentionsLabels reports whether the subtree reads an attribute "labels".
func mentionsLabels(n any) bool {
	switch x := n.(type) {
	case map[string]any:
		if a, ok := x["attr"].(string); ok && a == "labels" {
			return true
		}
		for _, c := range x {
			if mentionsLabels(c) {
				return true
			}
		}
	case []any:
		for _, c := range x {
			if mentionsLabels(c) {
				return true
			}
		}
	}
	return false
}

func validator() (*validate.Validator, error) {
	var s schema.Schema
	if err := s.UnmarshalCedar(SchemaText()); err != nil {
		return nil, fmt.Errorf("parsing the authorization schema: %w", err)
	}
	r, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("resolving the authorization schema: %w", err)
	}
	return validate.New(r), nil
}

// PolicyVersion is one policy set that came into force, as the store
// records it when a process starts with a set whose hash differs from
// the last recorded one ([Policies.Hash], [Policies.Source]).
type PolicyVersion struct {
	Seq     int64 // 1, 2, 3... in the order they came into force
	Hash    string
	Source  string
	Created time.Time
}
