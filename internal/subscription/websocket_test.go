package subscription_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/httpapi"
)

// TestWebsocketBindPing: the owner's client authenticates with its
// bearer token, binds its websocket subscription ("bind {id}" →
// "bound {id}") and gets "ping {id}" when a matching change is made;
// no ping for a change that does not match. Another principal's bind of
// the same subscription, and of an unknown id, close the connection
// alike; a connection without credentials is refused.
func TestWebsocketBindPing(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	ts := httptest.NewTLSServer(s.App.Handler())
	t.Cleanup(ts.Close)
	wsURL := "wss" + strings.TrimPrefix(ts.URL, "https") + httpapi.WebsocketPath
	dial := func(token string) (*websocket.Conn, *http.Response, error) {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: ts.Client(), HTTPHeader: h})
	}
	read := func(c *websocket.Conn) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, b, err := c.Read(ctx)
		return string(b), err
	}
	write := func(c *websocket.Conn, msg string) {
		if err := c.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	// The capability statement advertises the channel.
	md := s.Do(t, http.MethodGet, "/fhir/metadata", nil, nil).Want(t, http.StatusOK)
	if !strings.Contains(string(md.Body), "capabilitystatement-websocket") || !strings.Contains(string(md.Body), "wss://") ||
		!strings.Contains(string(md.Body), httpapi.WebsocketPath) {
		t.Fatalf("metadata does not advertise the websocket channel: %.300s", md.Body)
	}
	pid, qid := patient(t, s), patient(t, s)
	sid := s.Create(t, map[string]any{"resourceType": "Subscription", "status": "requested", "reason": "ws",
		"criteria": "Observation?patient=Patient/" + pid, "channel": map[string]any{"type": "websocket"}})
	until(t, s, "active", func() bool { st, _ := status(t, s, sid); return st == "active" })

	if _, resp, err := dial(""); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated dial: %v %v", resp, err)
	}
	c, _, err := dial(s.Token())
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	write(c, "bind "+sid)
	if msg, err := read(c); err != nil || msg != "bound "+sid {
		t.Fatalf("bind: %q %v", msg, err)
	}
	s.Create(t, observation(qid, "")) // not matching: no ping
	s.Create(t, observation(pid, ""))
	msgs := make(chan string, 4)
	go func() {
		for {
			m, err := read(c)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- m
		}
	}()
	var got []string
	until(t, s, "ping", func() bool {
		select {
		case m := <-msgs:
			got = append(got, m)
		default:
		}
		return len(got) > 0
	})
	settle(t, s)
	select {
	case m := <-msgs:
		got = append(got, m)
	case <-time.After(200 * time.Millisecond):
	}
	if len(got) != 1 || got[0] != "ping "+sid {
		t.Fatalf("messages %q, want one ping", got)
	}

	// Another principal: the same refusal for someone else's
	// subscription and for an id that does not exist.
	other, err := s.App.Tokens().Create(t.Context(), "other", []string{"system"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{sid, "no-such-subscription"} {
		c2, _, err := dial(other.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		write(c2, "bind "+id)
		_, err = read(c2)
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("bind of %s by another principal: %v", id, err)
		}
		c2.CloseNow()
	}
}
