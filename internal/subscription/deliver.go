package subscription

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// ActionNotify is the audit action of a notification sent (or failed):
// Entities name the Subscription and the resource, Query the channel
// and the endpoint's host ("channel=rest-hook&host=example.org"), never
// its path or query; Agent is the subscription's owner with client
// "subscriptions"; Status the receiver's HTTP status.
const ActionNotify audit.Action = "subscription-notify"

// PolicySubscription is recorded on delivery events.
const PolicySubscription = "subscription-owner"

// outcome is what one attempt came to.
type outcome int

const (
	done    outcome = iota // delivered, or nothing to deliver: the notification is settled
	failed                 // the receiver failed: retry with backoff, count towards error
	blocked                // our own outage or a feed not yet caught up: retry after the lease
)

// deliverDue claims what is due and delivers it with Workers in parallel.
func (s *Service) deliverDue(ctx context.Context) error {
	for {
		ns, err := s.o.Store.Claim(ctx, s.o.Holder, s.o.Now(), s.o.Lease, claimBatch, s.hub.bound)
		if err != nil {
			return err
		}
		if len(ns) == 0 {
			return nil
		}
		work := make(chan Notification)
		var wg sync.WaitGroup
		for range min(s.o.Workers, len(ns)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range work {
					s.settle(ctx, n, s.attempt(ctx, n))
				}
			}()
		}
		for _, n := range ns {
			work <- n
		}
		close(work)
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(ns) < claimBatch {
			return nil
		}
	}
}

// settle records what an attempt came to.
func (s *Service) settle(ctx context.Context, n Notification, o outcome) {
	var err error
	switch o {
	case done:
		err = s.o.Store.Done(ctx, s.o.Holder, n)
	case blocked:
		// The lease runs out and the notification is claimed again.
	case failed:
		if n.Attempts+1 >= s.o.MaxAttempts {
			row, rerr := s.o.Store.Subscription(ctx, n.Sub)
			if rerr == nil && (row.State == StateActive || row.State == StateRequested) {
				row.Failures++
				err = s.failSub(ctx, row, errDelivery+" ("+strconv.Itoa(s.o.MaxAttempts)+" attempts)")
			} else {
				err = rerr
			}
			if err == nil {
				err = s.o.Store.Done(ctx, s.o.Holder, n)
			}
			break
		}
		err = s.o.Store.Retry(ctx, s.o.Holder, n, s.o.Now().Add(s.backoff(n.Attempts+1)))
	}
	if err != nil && ctx.Err() == nil {
		s.o.Logger.WarnContext(ctx, "settling a subscription notification failed", slog.String("subscription", n.Sub), slog.String("error", err.Error()))
	}
}

// attempt makes one attempt at n.
func (s *Service) attempt(ctx context.Context, n Notification) outcome {
	row, err := s.o.Store.Subscription(ctx, n.Sub)
	if errors.Is(err, storage.ErrNotFound) {
		return done
	}
	if err != nil {
		return s.blocked(ctx, n, err)
	}
	switch {
	case n.Kind == KindEvent && row.State != StateActive, n.Kind == KindHandshake && row.State != StateRequested:
		return done // off, in error, or not yet active when the change came: nothing owed
	}
	cur, err := s.o.Config.Current(ctx, n.Sub)
	if errors.Is(err, record.ErrGone) || errors.Is(err, record.ErrNotFound) {
		return done
	}
	if err != nil {
		return s.blocked(ctx, n, err)
	}
	if cur.Version != row.Version {
		// The resource changed since the row was made (another endpoint,
		// another owner): the feed brings the row up first.
		return blocked
	}
	sp, err := ParseSpec(cur.JSON)
	if err != nil {
		return s.settleErr(ctx, row, errInvalid)
	}
	owner := Owner{Kind: row.OwnerKind, ID: row.OwnerID}
	p, err := s.res.principal(ctx, owner)
	if errors.Is(err, ErrOwnerGone) {
		s.audit(ctx, n, sp, audit.Agent{User: owner.ID, Client: serviceClient}, "", audit.OutcomeDenied, 0)
		return s.settleErr(ctx, row, errOwnerGone)
	}
	if err != nil {
		return s.blocked(ctx, n, err)
	}
	c := record.Caller{
		Agent:     audit.Agent{User: p.ID, Role: strings.Join(p.Roles, ","), Client: serviceClient},
		Purpose:   authz.PurposeOf(p.Roles),
		RequestID: n.ID(),
		Guard:     s.o.Guards(p),
	}
	if n.Kind == KindHandshake {
		status, err := s.send(ctx, n, sp, nil)
		s.audit(ctx, n, sp, c.Agent, c.Purpose, outcomeOf(err), status)
		if err != nil {
			return failed
		}
		if err := s.setStatus(ctx, row, StateActive, ""); err != nil {
			return s.blocked(ctx, n, err)
		}
		return done
	}
	body, matched, err := s.evaluate(ctx, c, sp, n)
	if err != nil {
		var re *record.Error
		if errors.As(err, &re) && errors.Is(err, record.ErrInvalid) {
			return s.settleErr(ctx, row, errCriteriaEval)
		}
		if errors.Is(err, record.ErrForbidden) || errors.Is(err, record.ErrNotFound) {
			return done // the owner may not search this type: nothing matches
		}
		return s.blocked(ctx, n, err)
	}
	if !matched {
		return done
	}
	var status int
	switch sp.Channel {
	case ChannelWebsocket:
		if s.hub.ping(n.Sub) == 0 {
			err = errNoClient
		}
	default:
		if sp.Payload == "" {
			body = nil
		}
		status, err = s.send(ctx, n, sp, body)
	}
	s.audit(ctx, n, sp, c.Agent, c.Purpose, outcomeOf(err), status)
	if err != nil {
		return failed
	}
	if row.Failures > 0 {
		_ = s.o.Store.SetState(ctx, row.ID, row.Version, row.State, 0)
	}
	return done
}

var errNoClient = errors.New("subscription: no websocket client bound")

func outcomeOf(err error) audit.Outcome {
	if err != nil {
		return audit.OutcomeError
	}
	return audit.OutcomeSuccess
}

func (s *Service) blocked(ctx context.Context, n Notification, err error) outcome {
	if ctx.Err() == nil {
		s.o.Logger.WarnContext(ctx, "subscription delivery postponed", slog.String("subscription", n.Sub), slog.String("error", err.Error()))
	}
	return blocked
}

// settleErr puts the subscription in error; the notification is settled.
func (s *Service) settleErr(ctx context.Context, row Row, text string) outcome {
	if err := s.failSub(ctx, row, text); err != nil {
		s.o.Logger.WarnContext(ctx, "putting a subscription in error failed", slog.String("subscription", row.ID), slog.String("error", err.Error()))
		return blocked
	}
	return done
}

// evaluate runs the criteria as the owner's search restricted to the
// changed resource's id: the owner's narrowing, consents and labels
// decide as for any search the owner makes, and the search is audited
// as theirs. It returns the resource as the owner may see it (masked
// where their role must not see identifiers) when it matches.
func (s *Service) evaluate(ctx context.Context, c record.Caller, sp Spec, n Notification) ([]byte, bool, error) {
	page, err := s.o.Record.Search(ctx, c, sp.Criteria.Type, sp.Criteria.Search(n.ResID), record.SearchOptions{BaseURL: s.o.BaseURL})
	if err != nil {
		return nil, false, err
	}
	var b struct {
		Entry []struct {
			Resource json.RawMessage   `json:"resource"`
			Search   map[string]string `json:"search"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(page.Bundle, &b); err != nil {
		return nil, false, fmt.Errorf("decoding the criteria's search result: %w", err)
	}
	for _, e := range b.Entry {
		if e.Search["mode"] != "match" {
			continue
		}
		var id struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if json.Unmarshal(e.Resource, &id) == nil && id.ResourceType == n.ResType && id.ID == n.ResID {
			return e.Resource, true, nil
		}
	}
	return nil, false, nil
}

// ErrReceiver is the cause of a failed rest-hook delivery.
var ErrReceiver = errors.New("subscription: the receiver did not accept the notification")

// send delivers one rest-hook notification: a POST with no body to the
// endpoint (notification only, and the handshake), or, with a payload,
// the resource in a PUT to [endpoint]/[type]/[id] (R4 §2.46.7.1). It
// returns the receiver's status.
func (s *Service) send(ctx context.Context, n Notification, sp Spec, body []byte) (int, error) {
	if sp.Endpoint == nil {
		return 0, fmt.Errorf("%w: no endpoint", ErrReceiver)
	}
	if err := s.o.Endpoints.CheckURL(sp.Endpoint); err != nil {
		return 0, err
	}
	method, target := http.MethodPost, sp.Endpoint.String()
	if body != nil {
		method, target = http.MethodPut, strings.TrimSuffix(target, "/")+"/"+n.ResType+"/"+n.ResID
	}
	ctx, cancel := context.WithTimeout(ctx, DeliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: building the request", ErrReceiver)
	}
	for _, h := range sp.Headers {
		req.Header.Add(h[0], h[1])
	}
	if body != nil {
		req.Header.Set("Content-Type", PayloadFHIRJSON)
	}
	req.Header.Set("X-Phivault-Notification-Id", n.ID())
	req.Header.Set("User-Agent", "phivault-subscriptions")
	resp, err := s.client.Do(req)
	if err != nil {
		// The error names the endpoint's URL; the log gets only its kind.
		if errors.Is(err, ErrEndpoint) {
			return 0, ErrEndpoint
		}
		return 0, fmt.Errorf("%w: connection failed", ErrReceiver)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("%w: status %d", ErrReceiver, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// audit records one delivery event (durable; a failure is logged: the
// owner's search event, durable before anything left, names the access
// already).
func (s *Service) audit(ctx context.Context, n Notification, sp Spec, agent audit.Agent, purpose string, o audit.Outcome, status int) {
	ev := audit.Event{Time: s.o.Now(), Action: ActionNotify, Outcome: o, Agent: agent, Purpose: purpose,
		RequestID: n.ID(), Policies: []string{PolicySubscription}, Status: status, Query: "channel=" + sp.Channel}
	if sp.Endpoint != nil {
		ev.Query += "&host=" + sp.Endpoint.Hostname()
	}
	ev.Touch(subscriptionType + "/" + n.Sub)
	if n.Kind == KindEvent {
		ev.Touch(n.ResType+"/"+n.ResID+"/_history/"+strconv.FormatInt(n.ResVersion, 10), n.Patients...)
	}
	rec, err := s.o.Log.Seal(ev)
	if err == nil {
		err = s.o.Audit.Record(ctx, rec)
	}
	if err != nil && ctx.Err() == nil {
		s.o.Logger.ErrorContext(ctx, "recording a subscription delivery event failed", slog.String("subscription", n.Sub), slog.String("error", err.Error()))
	}
}
