package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// WebhookType is the "type" of every payload the webhook sink posts.
const WebhookType = "phivault.audit.batch"

// maxWebhookResponse bounds how much of a receiver's answer is read.
const maxWebhookResponse = 4 << 10

// WebhookOptions configure a [WebhookSink].
type WebhookOptions struct {
	URL string
	// Secret is the signing secret in the Standard Webhooks form
	// ("whsec_" and base64 of at least 24 random bytes).
	Secret string
	// Client sends the requests. It must not follow redirects (the sink
	// sets CheckRedirect on a copy) and should carry a timeout.
	Client *http.Client
	// AllowLoopbackHTTP permits http:// to a loopback address (a local
	// collector, tests). Anything else must be https.
	AllowLoopbackHTTP bool
}

// WebhookSink posts each batch as one JSON payload signed per the
// Standard Webhooks specification (https://www.standardwebhooks.com):
// headers webhook-id, webhook-timestamp and webhook-signature
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>"). The id names the
// batch's first and last leaf indexes, so a retried batch carries
// the same id and a receiver can drop a repeat. Any 2xx answer accepts
// the batch; anything else is retried.
type WebhookSink struct {
	name   string
	url    string
	wh     *standardwebhooks.Webhook
	client *http.Client
	now    func() time.Time
}

// webhookPayload is the body: the Standard Webhooks envelope.
type webhookPayload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      webhookData `json:"data"`
}

type webhookData struct {
	First  int64    `json:"first_index"`
	Last   int64    `json:"last_index"`
	Events []Record `json:"events"`
}

// NewWebhook validates opt and returns the sink.
func NewWebhook(name string, opt WebhookOptions) (*WebhookSink, error) {
	u, err := url.Parse(opt.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("export %s: webhook url is not an absolute URL", name)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && opt.AllowLoopbackHTTP && isLoopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("export %s: webhook url must be https", name)
	}
	if u.User != nil {
		return nil, fmt.Errorf("export %s: webhook url must not carry credentials", name)
	}
	wh, err := standardwebhooks.NewWebhook(opt.Secret)
	if err != nil || len(opt.Secret) < len("whsec_")+32 {
		return nil, fmt.Errorf("export %s: webhook secret must be \"whsec_\" and base64 of at least 24 random bytes", name)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	if opt.Client != nil {
		cc := *opt.Client
		c = &cc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &WebhookSink{name: name, url: u.String(), wh: wh, client: c, now: time.Now}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Name implements [Sink].
func (s *WebhookSink) Name() string { return s.name }

// BatchID is the webhook-id of a batch.
func BatchID(batch []Record) string {
	if len(batch) == 0 {
		return "phivault-audit-empty"
	}
	return "phivault-audit-" + strconv.FormatInt(batch[0].Index, 10) + "-" + strconv.FormatInt(batch[len(batch)-1].Index, 10)
}

// Send implements [Sink].
func (s *WebhookSink) Send(ctx context.Context, batch []Record) error {
	if len(batch) == 0 {
		return nil
	}
	now := s.now().UTC()
	body, err := json.Marshal(webhookPayload{
		Type: WebhookType, Timestamp: now,
		Data: webhookData{First: batch[0].Index, Last: batch[len(batch)-1].Index, Events: batch},
	})
	if err != nil {
		return fmt.Errorf("export %s: encoding: %w", s.name, err)
	}
	id := BatchID(batch)
	sig, err := s.wh.Sign(id, now, body)
	if err != nil {
		return fmt.Errorf("export %s: signing: %w", s.name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("export %s: %w", s.name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		// The error of an *url.Error names the URL; that is
		// configuration, not PHI.
		return fmt.Errorf("export %s: posting: %w", s.name, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookResponse))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("export %s: receiver answered %d %s", s.name, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return nil
}

// Close implements [Sink].
func (s *WebhookSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
