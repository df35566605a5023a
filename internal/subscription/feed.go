package subscription

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// feedName is the feed's cursor in audit_export_cursors.
const feedName = "subscriptions"

// feed is the change feed: an export sink over the integrated audit log,
// in leaf order, behind a durable cursor that one process at a time
// advances (compare-and-set: a process that lost the race re-reads).
// Every committed write leaves its audit event in the same transaction,
// and a leaf index is assigned once, after commit, without gaps, so the
// feed misses no write and sees each in one order on every process of a
// fleet. Send only enqueues (idempotently): it may run twice for one
// batch.
type feed struct{ s *Service }

var _ export.Sink = feed{}

func (feed) Name() string { return feedName }
func (feed) Close() error { return nil }

// writeActions are the events that commit stored versions.
var writeActions = map[audit.Action]bool{
	audit.ActionCreate: true, audit.ActionUpdate: true, audit.ActionDelete: true,
	audit.ActionTransaction: true, audit.ActionBatch: true, audit.ActionImport: true,
}

// Send implements export.Sink.
func (f feed) Send(ctx context.Context, batch []export.Record) error {
	s := f.s
	now := s.o.Now()
	subscribed := map[string][]Row{}
	var ns []Notification
	for _, r := range batch {
		ev := r.Event
		if ev.Outcome != audit.OutcomeSuccess || !writeActions[ev.Action] {
			continue
		}
		for i, ent := range ev.Entities {
			typ, id, ver, ok := parseEntity(ent)
			if !ok {
				continue
			}
			if typ == subscriptionType {
				if err := s.refresh(ctx, r.Index, id, ver, ev); err != nil {
					return err
				}
				clear(subscribed)
				continue
			}
			if ev.Action == audit.ActionDelete {
				continue // a deleted resource matches no search: nothing to evaluate
			}
			rows, ok := subscribed[typ]
			if !ok {
				var err error
				if rows, err = s.o.Store.SubscribedTo(ctx, typ, StateActive); err != nil {
					return err
				}
				subscribed[typ] = rows
			}
			for _, row := range rows {
				ns = append(ns, Notification{Sub: row.ID, Leaf: r.Index, ResType: typ, ResID: id, ResVersion: ver,
					Kind: KindEvent, Patients: patientsOf(ev, i), NextAt: now, Created: now})
			}
		}
	}
	return s.o.Store.Enqueue(ctx, ns)
}

const subscriptionType = "Subscription"

// parseEntity splits "Type/id/_history/v".
func parseEntity(ent string) (typ, id string, ver int64, ok bool) {
	parts := strings.Split(ent, "/")
	if len(parts) != 4 || parts[2] != "_history" || parts[0] == "" || !record.ValidID(parts[1]) {
		return "", "", 0, false
	}
	v, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || v < 1 {
		return "", "", 0, false
	}
	return parts[0], parts[1], v, true
}

// patientsOf returns the patients entity i of ev is about, when the
// event says (its compartments, or it touched one entity); none when it
// cannot tell (the delivery event then names no patient rather than a
// wrong one).
func patientsOf(ev audit.Event, i int) []string {
	if len(ev.Compartments) == len(ev.Entities) && ev.Compartments != nil {
		var out []string
		for _, j := range ev.Compartments[i] {
			if j >= 0 && j < len(ev.Patients) {
				out = append(out, ev.Patients[j])
			}
		}
		return out
	}
	if len(ev.Entities) == 1 {
		return ev.Patients
	}
	return nil
}

// Error texts a Subscription's error element may carry: fixed phrases,
// never PHI, an endpoint or a response body.
const (
	errOwnerKind    = "subscriptions are owned by API tokens and signed-in accounts only: this one was written by another kind of client"
	errOwnerGone    = "the subscription's owner can no longer be authorized (account disabled or removed, or token revoked)"
	errInvalid      = "the subscription is not valid: its criteria or channel cannot be processed"
	errEndpoint     = "the channel endpoint is refused by the server's endpoint policy"
	errDelivery     = "delivery failed repeatedly"
	errCriteriaEval = "the criteria can no longer be evaluated"
)

// refresh brings the row of Subscription id up to the write of version
// ver (leaf), whose audit event ev names the writer.
func (s *Service) refresh(ctx context.Context, leaf int64, id string, ver int64, ev audit.Event) error {
	old, err := s.o.Store.Subscription(ctx, id)
	exists := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	again := exists && old.Version == ver // this batch sent again (the feed is at least once)
	if exists && old.Version > ver || again && old.State != StateRequested {
		return nil // a later write was seen, or this one was handled
	}
	now := s.o.Now()
	cur, err := s.o.Config.Current(ctx, id)
	switch {
	case errors.Is(err, record.ErrGone), errors.Is(err, record.ErrNotFound):
		row := old
		row.ID, row.Version, row.State, row.Updated = id, ver, StateOff, now
		if err := s.o.Store.PutSubscription(ctx, row); err != nil {
			return err
		}
		return s.o.Store.DropPending(ctx, id)
	case err != nil:
		return err
	case cur.Version > ver:
		return nil // a later write follows in the feed
	}
	owner, self := ownerOf(ev.Agent)
	row := Row{ID: id, Version: ver, Updated: now}
	if self {
		// The service's own status write: the owner stands, the state
		// is the status written.
		row.OwnerKind, row.OwnerID, row.CritType, row.Channel, row.Failures = old.OwnerKind, old.OwnerID, old.CritType, old.Channel, old.Failures
		sp, err := ParseSpec(cur.JSON)
		row.State = StateError
		if err == nil {
			row.State = sp.Status
		}
		if row.State == StateRequested && exists {
			row.State = old.State
		}
		return s.o.Store.PutSubscription(ctx, row)
	}
	row.OwnerKind, row.OwnerID = owner.Kind, owner.ID
	if !again {
		// A new configuration: what was owed under the old one is not.
		if err := s.o.Store.DropPending(ctx, id); err != nil {
			return err
		}
	}
	sp, perr := ParseSpec(cur.JSON)
	if perr == nil {
		row.CritType, row.Channel = sp.Criteria.Type, sp.Channel
	}
	switch {
	case owner.Kind == "":
		return s.failSub(ctx, row, errOwnerKind)
	case perr != nil:
		return s.failSub(ctx, row, errInvalid)
	case sp.Status == StateOff:
		row.State = StateOff
		return s.o.Store.PutSubscription(ctx, row)
	case sp.Endpoint != nil && s.o.Endpoints.CheckURL(sp.Endpoint) != nil:
		return s.failSub(ctx, row, errEndpoint)
	}
	row.State = StateRequested
	if err := s.o.Store.PutSubscription(ctx, row); err != nil {
		return err
	}
	if sp.Channel == ChannelWebsocket {
		// Nothing to shake hands with: a client binds when it connects.
		return s.setStatus(ctx, row, StateActive, "")
	}
	return s.o.Store.Enqueue(ctx, []Notification{{Sub: id, Leaf: leaf, ResType: subscriptionType, ResID: id, ResVersion: ver,
		Kind: KindHandshake, NextAt: now, Created: now}})
}

// failSub puts the subscription in error with text (a fixed phrase).
func (s *Service) failSub(ctx context.Context, row Row, text string) error {
	row.State = StateError
	if err := s.o.Store.PutSubscription(ctx, row); err != nil {
		return err
	}
	if err := s.o.Store.DropPending(ctx, row.ID); err != nil {
		return err
	}
	return s.setStatus(ctx, row, StateError, text)
}

// setStatus writes the status (and error text) into the Subscription
// resource and the row. A client's write meanwhile wins: the feed
// brings its version next.
func (s *Service) setStatus(ctx context.Context, row Row, status, text string) error {
	v, err := s.o.Config.SetStatus(ctx, ServiceAgent, row.ID, row.Version, status, text)
	if errors.Is(err, record.ErrPreconditionFailed) || errors.Is(err, record.ErrConflict) ||
		errors.Is(err, record.ErrGone) || errors.Is(err, record.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	row.Version, row.State, row.Updated = v, status, s.o.Now()
	return s.o.Store.PutSubscription(ctx, row)
}
