package bulk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/record"
)

// Run claims and runs queued jobs, and destroys expired ones, until ctx
// ends. On a fleet every process runs it: a job is claimed by one
// process at a time (a conditional update of its row), renewed while it
// runs, and claimed again by another process if its holder stops
// renewing (it crashed): the run starts over from its first file, and
// after MaxAttempts runs the job fails. Nothing is left running forever.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	lastSweep := time.Time{}
	for {
		if now := s.o.Now(); now.Sub(lastSweep) >= time.Minute {
			if _, err := s.Sweep(ctx, now); err != nil && ctx.Err() == nil {
				s.o.Logger.ErrorContext(ctx, "destroying expired bulk exports failed", slog.String("error", err.Error()))
			} else {
				lastSweep = now
			}
		}
		if err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.ErrorContext(ctx, "running bulk exports failed", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// RunOnce claims and runs every job that is queued (or whose holder's
// lease ran out), one after another, and returns when none is left.
func (s *Service) RunOnce(ctx context.Context) error {
	for ctx.Err() == nil {
		now := s.o.Now()
		j, ok, err := s.o.Store.ClaimJob(ctx, s.o.Holder, now, now.Add(s.o.Lease))
		if err != nil || !ok {
			return err
		}
		s.runOne(ctx, j)
	}
	return ctx.Err()
}

// runOne runs one claimed job to its end (done or failed).
func (s *Service) runOne(ctx context.Context, j Job) {
	log := s.o.Logger.With(slog.String("job", j.ID))
	finish := func(state State, msg string) {
		exp := s.o.Now().Add(s.o.Expiry)
		if err := s.o.Store.FinishJob(context.WithoutCancel(ctx), j.ID, s.o.Holder, state, msg, exp); err != nil && !errors.Is(err, ErrLeaseLost) {
			log.ErrorContext(ctx, "finishing a bulk export failed", slog.String("error", err.Error()))
		}
	}
	if j.Attempts > MaxAttempts {
		finish(StateFailed, "the export was interrupted too often; start a new export")
		return
	}
	err := s.export(ctx, j)
	switch {
	case err == nil:
		finish(StateDone, "")
	case errors.Is(err, ErrLeaseLost):
		log.InfoContext(ctx, "bulk export stopped: deleted or taken over")
	case ctx.Err() != nil:
		// Shutting down: the lease runs out and a process (this one after
		// a restart, or another) runs the job again.
	default:
		log.ErrorContext(ctx, "bulk export failed", slog.String("error", err.Error()))
		finish(StateFailed, "the export failed on the server; start a new export")
	}
}

// export runs job j: every search the request implies, as the client,
// narrowed as a disclosure for its registered purpose; each match is a
// line of its type's NDJSON output, files are sealed as they fill.
func (s *Service) export(ctx context.Context, j Job) error {
	key, err := s.o.Keys.ExportKey(j.ID, j.Key)
	if err != nil {
		return err
	}
	sd, err := openParams(key, j.Params)
	if err != nil {
		return err
	}
	if err := s.o.Store.ResetFiles(ctx, j.ID, s.o.Holder); err != nil {
		return err
	}
	cl, err := s.o.Clients(ctx, j.Client)
	if err != nil {
		return err
	}
	if !cl.Usable || cl.Purpose != sd.Purpose {
		return fmt.Errorf("client %s is no longer usable for this export: %w", j.Client, ErrForbidden)
	}
	sc, err := scope.ParseSet(sd.Scopes)
	if err != nil {
		return fmt.Errorf("export scopes: %w", err)
	}
	p := authn.Principal{Kind: authn.KindSMARTClient, ID: j.Client, Roles: []string{"system"}, Scopes: &sc, Purpose: sd.Purpose}
	r := &run{s: s, j: j, req: sd.Request, w: newWriter(s, j, key), lastRenew: s.o.Now(),
		caller: record.Caller{
			Agent:   audit.Agent{User: j.Client, Role: "system", Client: string(authn.KindSMARTClient)},
			Purpose: sd.Purpose, RequestID: "bulk-" + j.ID, Guard: exportGuard{g: s.o.Guards(p)},
			SearchAction: audit.ActionBulkExport,
		},
	}
	// The cohort of a Patient-level export is listed by a search of
	// Patient ids, decided as a disclosure like the rest (a patient whose
	// consent refuses is never listed) but allowed by a Patient search
	// and read scope the client may lack (system/Observation.rs exports the
	// Observations of every patient it may receive); nothing of it is
	// written, and it is audited as the search it is.
	ls, err := scope.ParseSet(sd.Scopes + " system/Patient.rs") // export decides as read
	if err != nil {
		return fmt.Errorf("export scopes: %w", err)
	}
	lp := p
	lp.Scopes = &ls
	r.list = r.caller
	r.list.Guard, r.list.SearchAction = exportGuard{g: s.o.Guards(lp)}, ""
	if sd.Request.Deidentify != "" {
		t, ok := s.o.Transformers.get(sd.Request.Deidentify)
		if !ok {
			return errors.New("the de-identification transformer is no longer available")
		}
		r.w.transform = t
	}
	if err := r.setPhase(ctx, "started"); err != nil {
		return err
	}
	switch sd.Request.Level {
	case LevelSystem:
		err = r.system(ctx, sd.Types)
	case LevelPatient:
		err = r.patients(ctx, sd.Types)
	case LevelGroup:
		err = r.group(ctx, sd.Types, p)
	default:
		err = fmt.Errorf("unknown export level %q", sd.Request.Level)
	}
	if err != nil {
		return err
	}
	if r.wantsDeleted() {
		if err := r.deleted(ctx, sd.Types); err != nil {
			return err
		}
	}
	if err := r.setPhase(ctx, "writing the last files"); err != nil {
		return err
	}
	return r.w.finish(ctx)
}

func (t Transformers) get(method string) (Transformer, bool) {
	if t == nil {
		return nil, false
	}
	return t(method)
}
