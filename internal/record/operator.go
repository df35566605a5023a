package record

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/phivault/phivault/internal/storage"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/fhir"
)

// Operator is the record service in the hands of an operator who holds
// the key file and the data directory: the trusted offline commands
// (import, demo seeding, reindex). Every access is allowed (the Offline
// guard) and audited with the policy PolicyOffline, by the agent
// {User: user, Client: "cli"}. Only the composition root makes one
// (internal/archtest): nothing that serves requests may.
type Operator struct {
	s *Service
	c Caller
}

// NewOperator returns the operator user ("" for an unnamed one) over s.
func NewOperator(s *Service, user string) *Operator {
	return &Operator{s: s, c: Caller{Agent: audit.Agent{User: user, Client: "cli"}, Purpose: "HOPERAT", Guard: Offline()}}
}

// ImportBundle parses body, a transaction or batch Bundle, and processes
// it, answering with the minimal response bundle. An error names its
// internal cause too (operations and references, never content): the
// operator runs the command and reads it.
func (o *Operator) ImportBundle(ctx context.Context, body []byte) ([]byte, error) {
	res, err := o.s.Parse(body)
	if err == nil {
		var out []byte
		// A bulk load: its transactions may be committed together
		// without savepoints (ADR 0041).
		if out, err = o.s.ProcessBundle(storage.WithBulk(ctx), o.c, res, ReturnMinimal); err == nil {
			return out, nil
		}
	}
	var re *Error
	if errors.As(err, &re) && re.Err != nil {
		return nil, fmt.Errorf("%w (%v)", err, re.Err)
	}
	return nil, err
}

// Create stores res as a new resource and returns its reference
// ("Type/id").
func (o *Operator) Create(ctx context.Context, res fhir.Resource) (string, error) {
	st, _, err := o.s.Create(ctx, o.c, res, "")
	if err != nil {
		return "", err
	}
	return res.Type() + "/" + st.ID, nil
}

// Search runs a search of typ with vals and returns its page.
func (o *Operator) Search(ctx context.Context, typ string, vals url.Values) (Page, error) {
	return o.s.Search(ctx, o.c, typ, vals, SearchOptions{})
}

// Reindex rebuilds every current resource's index rows (Service.Reindex).
func (o *Operator) Reindex(ctx context.Context, progress func(int64)) (int64, error) {
	return o.s.Reindex(ctx, o.c, progress)
}
