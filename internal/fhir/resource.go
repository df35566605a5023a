package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Resource is a decoded FHIR resource in its JSON form: objects are
// map[string]any, arrays []any, numbers [json.Number] (so decimals keep
// their precision: 1.50 stays 1.50), strings string, booleans bool.
//
// A Resource is not safe for concurrent mutation; concurrent reads are
// fine. The setters modify the map in place.
type Resource map[string]any

// Type returns the resourceType, or "" if it is absent or not a string.
func (r Resource) Type() string {
	s, _ := r["resourceType"].(string)
	return s
}

// ID returns the logical id, or "" if it is absent or not a string.
func (r Resource) ID() string {
	s, _ := r["id"].(string)
	return s
}

// SetID sets the logical id; an empty id removes it.
func (r Resource) SetID(id string) {
	if id == "" {
		delete(r, "id")
		return
	}
	r["id"] = id
}

// VersionID returns meta.versionId, or "".
func (r Resource) VersionID() string {
	s, _ := r.meta(false)["versionId"].(string)
	return s
}

// SetVersionID sets meta.versionId, creating meta if needed. Any
// non-object meta is replaced.
func (r Resource) SetVersionID(v string) {
	r.meta(true)["versionId"] = v
}

// LastUpdated returns meta.lastUpdated parsed as an instant, and whether
// it was present and valid.
func (r Resource) LastUpdated() (time.Time, bool) {
	s, _ := r.meta(false)["lastUpdated"].(string)
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// SetLastUpdated sets meta.lastUpdated to t in UTC with microsecond
// precision (the precision the store keeps), creating meta if needed.
func (r Resource) SetLastUpdated(t time.Time) {
	r.meta(true)["lastUpdated"] = t.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z07:00")
}

func (r Resource) meta(create bool) map[string]any {
	m, ok := r["meta"].(map[string]any)
	if !ok {
		if !create {
			return nil
		}
		m = map[string]any{}
		r["meta"] = m
	}
	return m
}

// Marshal encodes r as compact JSON with resourceType first and the other
// members in sorted order. Numbers are written exactly as decoded, HTML
// characters are not escaped (narrative XHTML stays readable). The error
// wraps [ErrInvalid] if r holds a value JSON cannot represent.
func (r Resource) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	keys := make([]string, 0, len(r))
	for k := range r {
		if k != "resourceType" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if _, ok := r["resourceType"]; ok {
		keys = append([]string{"resourceType"}, keys...)
	}
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return nil, fmt.Errorf("encoding resource: unsupported member name: %w", ErrInvalid)
		}
		buf.Truncate(buf.Len() - 1) // Encode appends a newline
		buf.WriteByte(':')
		if err := enc.Encode(r[k]); err != nil {
			// The json error may quote a value: do not wrap it.
			return nil, fmt.Errorf("encoding resource: unsupported value: %w", ErrInvalid)
		}
		buf.Truncate(buf.Len() - 1)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
