package subscription

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Channel types (R4 subscription-channel-type) supported.
const (
	ChannelRestHook  = "rest-hook"
	ChannelWebsocket = "websocket"
)

// PayloadFHIRJSON is the one payload MIME type supported (besides none).
const PayloadFHIRJSON = "application/fhir+json"

// Limits on a channel (STYLE rule 24).
const (
	MaxEndpointLen = 2048
	MaxHeaders     = 10
	MaxHeaderLen   = 4096
)

// ErrSpec is the cause of every refusal of a Subscription resource.
// Messages name the element at fault, never its value.
var ErrSpec = errors.New("subscription: invalid Subscription")

func specError(msg string) error { return fmt.Errorf("%w: %s", ErrSpec, msg) }

// Spec is what a Subscription resource asks for.
type Spec struct {
	Status   string
	Criteria Criteria
	Channel  string
	Endpoint *url.URL // rest-hook only
	Payload  string   // "" (notification only) or PayloadFHIRJSON
	Headers  [][2]string
}

// subscriptionJSON is the part of an R4 Subscription this server reads.
type subscriptionJSON struct {
	ResourceType string `json:"resourceType"`
	Status       string `json:"status"`
	Criteria     string `json:"criteria"`
	Channel      struct {
		Type     string   `json:"type"`
		Endpoint string   `json:"endpoint"`
		Payload  string   `json:"payload"`
		Header   []string `json:"header"`
	} `json:"channel"`
}

// ParseSpec reads a Subscription resource's JSON (untrusted).
func ParseSpec(body []byte) (Spec, error) {
	var r subscriptionJSON
	if err := json.Unmarshal(body, &r); err != nil {
		return Spec{}, specError("the Subscription is not valid JSON")
	}
	if r.ResourceType != "Subscription" {
		return Spec{}, specError("not a Subscription")
	}
	sp := Spec{Status: r.Status, Channel: r.Channel.Type, Payload: r.Channel.Payload}
	switch sp.Status {
	case StateRequested, StateActive, StateError, StateOff:
	default:
		return Spec{}, specError("status must be requested, active, error or off")
	}
	c, err := ParseCriteria(r.Criteria)
	if err != nil {
		return Spec{}, err
	}
	sp.Criteria = c
	switch sp.Payload {
	case "", PayloadFHIRJSON:
	default:
		return Spec{}, specError("channel.payload must be absent (notification only) or application/fhir+json")
	}
	switch sp.Channel {
	case ChannelRestHook:
		if r.Channel.Endpoint == "" || len(r.Channel.Endpoint) > MaxEndpointLen {
			return Spec{}, specError("a rest-hook channel needs an endpoint (at most 2048 characters)")
		}
		u, err := url.Parse(r.Channel.Endpoint)
		if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || (u.Scheme != "https" && u.Scheme != "http") {
			return Spec{}, specError("channel.endpoint must be an absolute https URL without credentials or fragment")
		}
		sp.Endpoint = u
	case ChannelWebsocket:
		if sp.Payload != "" {
			return Spec{}, specError("a websocket channel carries no payload (the server sends ping {id})")
		}
	default:
		return Spec{}, specError("channel.type must be rest-hook or websocket")
	}
	if len(r.Channel.Header) > MaxHeaders {
		return Spec{}, specError("channel.header has too many values")
	}
	for _, h := range r.Channel.Header {
		name, val, ok := strings.Cut(h, ":")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || len(h) > MaxHeaderLen || !validHeaderName(name) || strings.ContainsAny(val, "\r\n\x00") || reservedHeader(name) {
			return Spec{}, specError("channel.header values must be \"Name: value\" HTTP headers (not Host, Content-Type, Content-Length or hop-by-hop ones)")
		}
		sp.Headers = append(sp.Headers, [2]string{name, val})
	}
	return sp, nil
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)
		if !ok {
			return false
		}
	}
	return true
}

// reservedHeader names headers the server sets itself.
func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-type", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
		"keep-alive", "proxy-authorization", "proxy-connection", "x-phivault-notification-id":
		return true
	}
	return false
}
