package config

// Subscriptions configures the delivery of FHIR Subscriptions (package
// subscription, ADR 0030). The zero value is the safe default: rest-hook
// endpoints over https to public addresses only.
type Subscriptions struct {
	// AllowLoopback lets rest-hook endpoints be on a loopback address
	// (127.0.0.0/8, ::1, localhost), over http too: a receiver on the
	// same host, and tests. Off by default (server-side request forgery).
	AllowLoopback bool `json:"allow_loopback"`
	// AllowPrivate lets rest-hook endpoints be on private, link-local
	// and shared addresses (an integration engine on the hospital
	// network), over https. Cloud metadata addresses stay refused.
	AllowPrivate bool `json:"allow_private"`
	// MaxAttempts is how many failed attempts at one notification put
	// the subscription in error; 0 means the default (6).
	MaxAttempts int `json:"max_attempts"`
}
