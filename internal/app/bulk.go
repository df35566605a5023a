package app

import (
	"context"
	"log/slog"
	"slices"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/bulk"
	"github.com/phivault/phivault/internal/deid"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// WithBulkOptions lets edit adjust the bulk export service's options
// after Open has filled them in (tests: a clock, small files).
func WithBulkOptions(edit func(*bulk.Options)) Option {
	return func(o *openOptions) { o.bulk = append(o.bulk, edit) }
}

// notExported are the types a system-level export without _type leaves
// out: the audit log (served at /fhir/AuditEvent to auditors only) and
// Subscriptions (endpoints and channel headers are credentials).
var notExported = []string{"AuditEvent", "Subscription"}

// openBulk builds the FHIR Bulk Data export service (package bulk, ADR
// 0049): its searches run through the record as the client, each
// decided as a disclosure (authz.Export) for the client's registered
// purpose of use; its files are sealed under per-job keys.
func (a *App) openBulk(oo openOptions) error {
	reg := a.Record.Registry()
	var types []string
	for _, t := range fhir.R4Types() {
		if fhir.IsStorableType(t) && !slices.Contains(notExported, t) {
			types = append(types, t)
		}
	}
	c := a.Config.BulkExport
	bo := bulk.Options{
		Store:         a.db.BulkJobs(),
		Record:        a.Record,
		Keys:          a.Keys,
		Guards:        func(p authn.Principal) record.Guard { return a.Authz.For(p) },
		Clients:       bulkClients(a.db),
		Log:           a.Log,
		Audit:         a.batcher,
		CheckQuery:    criteriaCheck{reg}.CheckQuery,
		InCompartment: reg.InCompartment,
		Types:         types,
		Holder:        processName(),
		BaseURL:       a.Config.Server.BaseURL + "/fhir",
		Expiry:        c.Expiry.D(),
		MaxJobs:       c.MaxJobs,
		FileBytes:     c.FileBytes,
		Logger:        a.logger,
		Transformers:  safeHarbor(a.logger),
	}
	for _, edit := range oo.bulk {
		edit(&bo)
	}
	s, err := bulk.New(bo)
	if err != nil {
		return err
	}
	a.bulk = s
	return nil
}

// bulkClients reads a backend client's registration for an export.
func bulkClients(db *sqldb.Store) bulk.Clients {
	st := db.Smart()
	return func(ctx context.Context, id string) (bulk.Client, error) {
		c, err := st.Client(ctx, id)
		if err != nil {
			return bulk.Client{}, err
		}
		return bulk.Client{Purpose: c.Purpose, Usable: c.Type == smart.Backend && !c.Disabled && c.Approval.Usable()}, nil
	}
}

// Bulk is the bulk export service (tests drive its runs).
func (a *App) Bulk() *bulk.Service { return a.bulk }

// BulkJobs is the bulk export store (tests inspect sealed files).
func (a *App) BulkJobs() bulk.Store { return a.db.BulkJobs() }

// RunBulk runs queued exports and destroys expired ones until ctx ends
// (runBackground).
func (a *App) RunBulk(ctx context.Context) { a.bulk.Run(ctx) }

// safeHarbor gives each export that asks for _deidentify=safe-harbor a
// transformer of its own (package deid): a fresh pseudonym key per job,
// so two exports cannot be linked.
func safeHarbor(log *slog.Logger) bulk.Transformers {
	return func(method string) (bulk.Transformer, bool) {
		if method != bulk.DeidSafeHarbor {
			return nil, false
		}
		t, err := deid.New(deid.Options{})
		if err != nil {
			log.Error("bulk export: the de-identification transformer cannot start", slog.String("error", err.Error()))
			return nil, false
		}
		return t, true
	}
}
