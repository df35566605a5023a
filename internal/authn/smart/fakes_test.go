package smart

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit"
)

// memStore is a hand-written in-memory Store.
type memStore struct {
	mu      sync.Mutex
	clients map[string]Client
	jtis    map[[2]string]time.Time
	tokens  map[string]Token
	lookups int
}

func newMemStore() *memStore {
	return &memStore{clients: map[string]Client{}, jtis: map[[2]string]time.Time{}, tokens: map[string]Token{}}
}

func (m *memStore) CreateClient(_ context.Context, c Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clients[c.ID]; ok {
		return ErrExists
	}
	m.clients[c.ID] = c
	return nil
}

func (m *memStore) Client(_ context.Context, id string) (Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return Client{}, ErrNotFound
	}
	return c, nil
}

func (m *memStore) setDisabled(id string, d bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.clients[id]
	c.Disabled = d
	m.clients[id] = c
}

func (m *memStore) UseJTI(_ context.Context, clientID, jti string, expires, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{clientID, jti}
	if exp, ok := m.jtis[k]; ok && !exp.Before(now) {
		return ErrReplay
	}
	m.jtis[k] = expires
	return nil
}

func (m *memStore) PutToken(_ context.Context, t Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[string(t.Hash)] = t
	return nil
}

func (m *memStore) TokenByHash(_ context.Context, h []byte) (Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	t, ok := m.tokens[string(h)]
	if !ok {
		return Token{}, ErrNotFound
	}
	t.Hash = bytes.Clone(t.Hash)
	return t, nil
}

func (m *memStore) RevokeToken(_ context.Context, h []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[string(h)]
	if !ok {
		return ErrNotFound
	}
	t.Revoked = true
	m.tokens[string(h)] = t
	return nil
}

// fakeAudit records events, or fails when fail is set.
type fakeAudit struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (a *fakeAudit) Record(_ context.Context, ev audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("audit log unavailable")
	}
	a.events = append(a.events, ev)
	return nil
}

func (a *fakeAudit) last() audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.events) == 0 {
		return audit.Event{}
	}
	return a.events[len(a.events)-1]
}
