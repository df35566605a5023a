package bulk

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
)

// Level is where an export was started.
type Level string

// Export levels (Bulk Data IG v2, "Bulk Data Kick-off Request").
const (
	LevelSystem  Level = "system"  // [base]/$export
	LevelPatient Level = "patient" // [base]/Patient/$export
	LevelGroup   Level = "group"   // [base]/Group/[id]/$export
)

// Limits on a kick-off (STYLE rule 24): each type and each filter is a
// search of its own, each patient a compartment search.
const (
	MaxTypes       = 200  // _type entries
	MaxTypeFilters = 50   // _typeFilter queries
	MaxFilterLen   = 2048 // characters of one _typeFilter query
	MaxPatients    = 1000 // patient parameters (POST)
	MaxBodyBytes   = 256 << 10
)

// DeidSafeHarbor is the value of the phivault-specific kick-off
// parameter _deidentify that asks for HIPAA Safe Harbor
// de-identification (§164.514(b)(2)) of the output.
const DeidSafeHarbor = "safe-harbor"

// Request is a parsed kick-off. It holds search values (_typeFilter,
// patient ids): it is PHI, stored only sealed under the job key.
type Request struct {
	Level Level  `json:"level"`
	Group string `json:"group,omitempty"` // Group id (LevelGroup)
	// Types are the resource types asked for (_type); empty: every type
	// the level and the client's scopes allow.
	Types []string `json:"types,omitempty"`
	// Since is _since: only resources updated after it (zero: all).
	Since time.Time `json:"since,omitzero"`
	// Filters are _typeFilter queries by type: a resource of the type is
	// exported when it matches any of them.
	Filters map[string][]string `json:"filters,omitempty"`
	// Patients are the patient ids of the patient parameter (POST).
	Patients []string `json:"patients,omitempty"`
	// Deidentify is _deidentify ("" or DeidSafeHarbor).
	Deidentify string `json:"deidentify,omitempty"`
	// URL is the kick-off request URL (the manifest's "request"). A GET's
	// query is kept as sent; it is stored sealed with the rest.
	URL string `json:"url"`
	// Ignored names the parameters ignored under handling=lenient.
	Ignored []string `json:"ignored,omitempty"`
}

// outputFormats are the accepted values of _outputFormat (the IG's
// abbreviations for application/fhir+ndjson included).
var outputFormats = map[string]bool{
	"application/fhir+ndjson": true, "application/ndjson": true, "ndjson": true,
}

// filterStart finds where a comma-separated _typeFilter value starts a
// new query: a comma followed by a resource type and "?".
var filterStart = regexp.MustCompile(`,([A-Z][A-Za-z]{1,63})\?`)

// param is one kick-off parameter: from the query (GET, or POST with a
// query) or from a Parameters body.
type param struct{ name, value string }

// ParseKickoff parses a kick-off: the URL query and, for a POST, the
// Parameters body (nil for a GET). lenient is Prefer: handling=lenient:
// parameters the server does not support are then ignored (and named in
// Ignored) instead of refused. Errors are *ParamError.
func ParseKickoff(level Level, group string, query url.Values, body []byte, lenient bool) (Request, error) {
	r := Request{Level: level, Group: group}
	if len(body) > 0 && len(query) > 0 {
		// Which of the two is meant? Refuse rather than merge or pick.
		return Request{}, invalid("a POST kick-off takes its parameters in the Parameters body only, not also in the URL query")
	}
	var ps []param
	for k, vs := range query {
		for _, v := range vs {
			ps = append(ps, param{k, plusInQuery(k, v)})
		}
	}
	slices.SortStableFunc(ps, func(a, b param) int { return strings.Compare(a.name, b.name) })
	if len(body) > 0 {
		bp, err := parseParameters(body)
		if err != nil {
			return Request{}, err
		}
		ps = append(ps, bp...)
	}
	seenSince, seenFormat := false, false
	nTypes := 0 // _type entries, repeats and duplicates included
	for _, p := range ps {
		switch p.name {
		case "_outputFormat":
			if seenFormat && !lenient {
				return Request{}, invalid("_outputFormat is given more than once")
			}
			seenFormat = true
			if !outputFormats[p.value] {
				return Request{}, notSupported("_outputFormat: only application/fhir+ndjson is supported")
			}
		case "_since":
			if seenSince {
				return Request{}, invalid("_since is given more than once")
			}
			seenSince = true
			t, err := time.Parse(time.RFC3339Nano, p.value)
			if err != nil {
				return Request{}, invalid("_since must be a FHIR instant with a time zone (e.g. 2024-01-01T00:00:00Z)")
			}
			r.Since = t.UTC()
		case "_type":
			for t := range strings.SplitSeq(p.value, ",") {
				t = strings.TrimSpace(t)
				if t == "" {
					// "_type=" or "_type=,,": not "every type" (that is
					// leaving _type out), but a mistake.
					return Request{}, invalid("_type holds an empty entry: list resource types separated by commas, or leave _type out for every type")
				}
				if nTypes++; nTypes > MaxTypes {
					return Request{}, invalid(fmt.Sprintf("_type lists more than %d resource types", MaxTypes))
				}
				if !fhir.IsStorableType(t) || t == "AuditEvent" {
					if lenient {
						r.Ignored = appendOnce(r.Ignored, "_type")
						continue
					}
					return Request{}, notSupported("_type names a resource type that cannot be exported (unknown, not R4, or AuditEvent)")
				}
				if !slices.Contains(r.Types, t) {
					r.Types = append(r.Types, t)
				}
			}
		case "_typeFilter":
			if err := r.addFilters(p.value); err != nil {
				return Request{}, err
			}
		case "patient":
			if level == LevelSystem {
				return Request{}, notSupported("patient is accepted at the Patient and Group levels only")
			}
			id, ok := strings.CutPrefix(p.value, ident.PatientPrefix)
			if !ok || !validID(id) {
				return Request{}, invalid("patient must be a reference Patient/<id>")
			}
			if !slices.Contains(r.Patients, id) {
				r.Patients = append(r.Patients, id)
			}
			if len(r.Patients) > MaxPatients {
				return Request{}, &ParamError{Code: "too-costly", Msg: "too many patient parameters"}
			}
		case "_deidentify":
			if p.value != DeidSafeHarbor {
				return Request{}, notSupported("_deidentify: only safe-harbor is defined")
			}
			r.Deidentify = p.value
		case "includeAssociatedData", "_elements", "organizeOutputBy", "allowPartialManifests":
			if !lenient {
				return Request{}, notSupported(p.name + " is not supported (send Prefer: handling=lenient to have it ignored)")
			}
			r.Ignored = appendOnce(r.Ignored, p.name)
		default:
			if !lenient {
				return Request{}, notSupported("unknown kick-off parameter " + safeName(p.name) + " (send Prefer: handling=lenient to have it ignored)")
			}
			r.Ignored = appendOnce(r.Ignored, safeName(p.name))
		}
	}
	// A filter names a type that _type leaves out: the IG lets servers
	// refuse it; it would export nothing.
	if len(r.Types) > 0 {
		for t := range r.Filters {
			if !slices.Contains(r.Types, t) {
				return Request{}, invalid("_typeFilter names a resource type that _type does not list")
			}
		}
	}
	return r, nil
}

// addFilters adds one _typeFilter value: one query, or several joined
// by commas ("Observation?code=x,Condition?onset-date=ge2020").
func (r *Request) addFilters(v string) error {
	var queries []string
	last := 0
	for _, m := range filterStart.FindAllStringIndex(v, -1) {
		queries = append(queries, v[last:m[0]])
		last = m[0] + 1
	}
	queries = append(queries, v[last:])
	for _, q := range queries {
		typ, raw, ok := strings.Cut(q, "?")
		if !ok || !fhir.IsStorableType(typ) || typ == "AuditEvent" {
			return invalid("_typeFilter must be [type]?[search parameters] with an exportable resource type")
		}
		if len(raw) > MaxFilterLen {
			return &ParamError{Code: "too-costly", Msg: "a _typeFilter query is too long"}
		}
		vals, err := url.ParseQuery(raw)
		if err != nil || len(vals) == 0 {
			return invalid("_typeFilter holds a query that does not parse")
		}
		for k := range vals {
			switch {
			case k == "_count" || k == "_page" || k == "_sort" || k == "_total" || k == "_summary" || k == "_elements" ||
				k == "_include" || k == "_revinclude" || k == "_contained" || k == "_containedType" || k == "_format":
				return notSupported("_typeFilter may hold search parameters only, not result parameters such as " + k)
			}
		}
		if r.Filters == nil {
			r.Filters = map[string][]string{}
		}
		n := 0
		for _, fs := range r.Filters {
			n += len(fs)
		}
		if n >= MaxTypeFilters {
			return &ParamError{Code: "too-costly", Msg: "too many _typeFilter queries"}
		}
		r.Filters[typ] = append(r.Filters[typ], vals.Encode())
	}
	return nil
}

// plusInQuery undoes the query decoding of a literal "+" where that is
// unambiguous: a client that does not percent-encode "+" (as %2B) sends
// "application/fhir+ndjson" and "2024-01-01T00:00:00+02:00", which
// decode with a space in its place. A space is never valid in a media
// type, nor before a time zone offset of an instant, so it is read as
// the "+" it was. Other parameters are left as decoded.
func plusInQuery(name, v string) string {
	switch name {
	case "_outputFormat":
		return strings.ReplaceAll(v, " ", "+")
	case "_since":
		if m := sinceSpaceOffset.FindStringSubmatchIndex(v); m != nil {
			return v[:m[2]] + "+" + v[m[3]:]
		}
	}
	return v
}

// sinceSpaceOffset finds a decoded "+hh:mm" zone offset ending an instant.
var sinceSpaceOffset = regexp.MustCompile(`T[0-9:.]+( )[0-9]{2}:[0-9]{2}$`)

// parseParameters reads a FHIR Parameters body into kick-off parameters.
func parseParameters(body []byte) ([]param, error) {
	if len(body) > MaxBodyBytes {
		return nil, &ParamError{Code: "too-costly", Msg: "the Parameters body is too large"}
	}
	var p struct {
		ResourceType string `json:"resourceType"`
		Parameter    []struct {
			Name           string  `json:"name"`
			ValueString    *string `json:"valueString"`
			ValueCode      *string `json:"valueCode"`
			ValueInstant   *string `json:"valueInstant"`
			ValueReference *struct {
				Reference string `json:"reference"`
			} `json:"valueReference"`
			ValueBoolean *bool `json:"valueBoolean"`
		} `json:"parameter"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.ResourceType != "Parameters" {
		return nil, invalid("the body must be a FHIR Parameters resource")
	}
	out := make([]param, 0, len(p.Parameter))
	for _, x := range p.Parameter {
		var v string
		n := 0
		for _, s := range []*string{x.ValueString, x.ValueCode, x.ValueInstant} {
			if s != nil {
				v, n = *s, n+1
			}
		}
		if x.ValueReference != nil {
			v, n = x.ValueReference.Reference, n+1
		}
		if x.ValueBoolean != nil {
			v, n = "false", n+1
			if *x.ValueBoolean {
				v = "true"
			}
		}
		if x.Name == "" || n != 1 {
			return nil, invalid("each Parameters.parameter needs a name and exactly one value (valueString, valueCode, valueInstant or valueReference)")
		}
		out = append(out, param{x.Name, v})
	}
	return out, nil
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// safeName is a parameter name fit for an error text: names are chosen
// by the client, so anything but a short token is not repeated.
func safeName(n string) string {
	if len(n) > 40 {
		return "(a long name)"
	}
	for _, c := range n {
		if !(c == '_' || c == '-' || c == '.' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "(a name with unusual characters)"
		}
	}
	return n
}

// idPattern is the FHIR id datatype.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func validID(id string) bool { return idPattern.MatchString(id) }
