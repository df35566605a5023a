package bulk

// Transformer rewrites each exported resource before it is written: the
// seam for de-identification (package deid). Transform returns the
// resource to write, or nil to leave it out; an error leaves it out and
// is counted in the job's error file (never with the resource or its
// identifiers). It must be safe for concurrent use and must not keep
// body.
type Transformer interface {
	Transform(resourceType string, body []byte) ([]byte, error)
}

// Transformers gives the transformer of a kick-off's _deidentify value
// ("safe-harbor"), or ok=false when the server has none: the kick-off
// is then refused (400, "not available"). Options.Transformers nil
// means none is available.
type Transformers func(method string) (t Transformer, ok bool)
