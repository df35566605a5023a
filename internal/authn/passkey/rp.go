package passkey

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Limits on what a request can make phivault parse and store (STYLE 24).
const (
	// MaxResponseBytes bounds an authenticator's JSON answer. A "none"
	// attestation is well under 2 KiB; a packed one with a certificate
	// chain of three is about 6 KiB; 32 KiB leaves room without letting
	// a client feed the CBOR decoder megabytes.
	MaxResponseBytes = 32 << 10
	// MaxCredentialIDBytes is the spec's ceiling on a credential id
	// (§5.8.3: at most 1023 bytes).
	MaxCredentialIDBytes = 1023
	// MaxCredentials bounds a user's passkeys: enough for a phone, a
	// laptop and several security keys, and a bound on the credential
	// list sent to the browser and searched at sign-in.
	MaxCredentials = 16
	// MaxNameLen bounds the name a user gives a passkey, in bytes.
	MaxNameLen = 64
)

// CeremonyTTL is how long a ceremony stays usable: the browser's own
// timeout (Timeout below) plus a margin, and within the login
// challenge's five minutes.
const CeremonyTTL = 3 * time.Minute

// browserTimeout is the timeout the options ask the browser to apply,
// two minutes: time to find a security key or unlock a phone (the
// spec's recommended range for UV required is 5–10 minutes, but a
// second factor right after a password is quick).
const browserTimeout = 2 * time.Minute

// algorithms are the accepted COSE algorithms, most preferred first:
// ES256 (every platform authenticator and security key), EdDSA (newer
// security keys), RS256 (Windows Hello's TPM keys). No SHA-1, no PS*.
var algorithms = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
}

// Config is the relying party's configuration.
type Config struct {
	// BaseURL is phivault's public base URL, e.g. https://ehr.example.org
	// (or http://localhost:8080 for a loopback demo). Required.
	BaseURL string
	// Name is shown by the browser and authenticator; default "phivault".
	Name string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// RP is a WebAuthn relying party. It is safe for concurrent use.
type RP struct {
	w      *webauthn.WebAuthn
	id     string
	origin string
	now    func() time.Time
}

// New validates c and returns an RP whose ID is the host of c.BaseURL and
// whose only origin is its origin. A base URL whose host is an IP
// address gets [ErrIPAddress].
func New(c Config) (*RP, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, errors.New("passkey: new relying party: Config.BaseURL must be an absolute http(s) URL")
	}
	if net.ParseIP(u.Hostname()) != nil {
		return nil, ErrIPAddress
	}
	if c.Name == "" {
		c.Name = "phivault"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	rpID := strings.ToLower(u.Hostname())
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	w, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: c.Name,
		RPOrigins:     []string{origin},
		// Direct, top-level use only: no iframes on other sites.
		RPAllowCrossOrigin:    false,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: browserTimeout, TimeoutUVD: browserTimeout},
			Registration: webauthn.TimeoutConfig{Timeout: browserTimeout, TimeoutUVD: browserTimeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: new relying party: %w", err)
	}
	return &RP{w: w, id: rpID, origin: origin, now: c.Now}, nil
}

// ID returns the RP ID.
func (rp *RP) ID() string { return rp.id }

// Origin returns the one accepted origin.
func (rp *RP) Origin() string { return rp.origin }

// User is the account a ceremony is for, with its current credentials.
type User struct {
	ID          string // identity.User.ID: the WebAuthn user handle
	Name        string // the username
	DisplayName string // may be empty
	Credentials []Credential
}

// waUser adapts User to webauthn.User.
type waUser struct{ u User }

func (w waUser) WebAuthnID() []byte   { return []byte(w.u.ID) }
func (w waUser) WebAuthnName() string { return w.u.Name }
func (w waUser) WebAuthnDisplayName() string {
	if w.u.DisplayName != "" {
		return w.u.DisplayName
	}
	return w.u.Name
}

func (w waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(w.u.Credentials))
	for i, c := range w.u.Credentials {
		out[i] = c.toLibrary()
	}
	return out
}

func validUser(u User) error {
	if u.ID == "" || len(u.ID) > 64 || u.Name == "" {
		return errors.New("passkey: user needs an id of 1 to 64 bytes and a name")
	}
	return nil
}

// BeginRegistration returns the creation options for the browser
// (navigator.credentials.create({publicKey}) after base64url decoding)
// and the ceremony to seal. The user's existing credentials are
// excluded so one authenticator is not registered twice. Errors:
// [ErrTooMany].
func (rp *RP) BeginRegistration(u User, version int64) (*protocol.CredentialCreation, Ceremony, error) {
	if err := validUser(u); err != nil {
		return nil, Ceremony{}, err
	}
	if len(u.Credentials) >= MaxCredentials {
		return nil, Ceremony{}, ErrTooMany
	}
	excl := make([]protocol.CredentialDescriptor, len(u.Credentials))
	for i, c := range u.Credentials {
		lc := c.toLibrary()
		excl[i] = lc.Descriptor()
	}
	opts, sd, err := rp.w.BeginRegistration(waUser{u},
		webauthn.WithCredentialParameters(algorithms),
		webauthn.WithExclusions(excl),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("beginning passkey registration: %w", err)
	}
	return opts, rp.ceremony(KindRegister, u.ID, version, sd.Challenge), nil
}

// BeginLogin returns the request options for the browser, listing the
// user's credentials, and the ceremony to seal. A user without
// credentials gets [ErrRejected].
func (rp *RP) BeginLogin(u User, version int64) (*protocol.CredentialAssertion, Ceremony, error) {
	if err := validUser(u); err != nil {
		return nil, Ceremony{}, err
	}
	if len(u.Credentials) == 0 {
		return nil, Ceremony{}, &RejectError{Reason: "no passkeys registered"}
	}
	opts, sd, err := rp.w.BeginLogin(waUser{u}, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("beginning passkey login: %w", err)
	}
	return opts, rp.ceremony(KindLogin, u.ID, version, sd.Challenge), nil
}

func (rp *RP) ceremony(kind, user string, version int64, challenge string) Ceremony {
	return Ceremony{Kind: kind, User: user, Version: version, Challenge: challenge,
		Expires: rp.now().Add(CeremonyTTL).Unix()}
}

// session rebuilds the library's session data from a ceremony. Nothing
// else is needed: phivault requests no extensions, and the allowed
// credentials are the user's current ones, re-read at finish.
func (rp *RP) session(c Ceremony, userID string) webauthn.SessionData {
	sd := webauthn.SessionData{
		Challenge: c.Challenge, RelyingPartyID: rp.id, UserID: []byte(userID),
		UserVerification: protocol.VerificationRequired,
	}
	if c.Kind == KindRegister {
		sd.CredParams = algorithms
	}
	return sd
}

// check refuses a ceremony of another kind or user, or expired.
func (rp *RP) check(c Ceremony, kind string, u User) error {
	if c.Kind != kind || c.User != u.ID || rp.now().Unix() >= c.Expires {
		return ErrInvalidCeremony
	}
	return validUser(u)
}

// FinishRegistration verifies the authenticator's answer (the JSON of
// a PublicKeyCredential from navigator.credentials.create) to ceremony
// c of user u and returns the new credential, named name. Errors:
// [ErrInvalidCeremony], [*RejectError] ([ErrRejected]), [ErrTooMany].
func (rp *RP) FinishRegistration(u User, c Ceremony, response []byte, name string) (Credential, error) {
	if err := rp.check(c, KindRegister, u); err != nil {
		return Credential{}, err
	}
	if len(u.Credentials) >= MaxCredentials {
		return Credential{}, ErrTooMany
	}
	if len(response) > MaxResponseBytes {
		return Credential{}, &RejectError{Reason: "answer too large"}
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Credential{}, reject(err)
	}
	lc, err := rp.w.CreateCredential(waUser{u}, rp.session(c, u.ID), parsed)
	if err != nil {
		return Credential{}, reject(err)
	}
	if len(lc.ID) == 0 || len(lc.ID) > MaxCredentialIDBytes {
		return Credential{}, &RejectError{Reason: "credential id length out of range"}
	}
	for _, have := range u.Credentials {
		if bytes.Equal(have.CredentialID, lc.ID) {
			return Credential{}, &RejectError{Reason: "credential already registered"}
		}
	}
	now := rp.now().UTC().Truncate(time.Microsecond)
	cred := fromLibrary(*lc)
	cred.UserID, cred.Name, cred.Created, cred.LastUsed = u.ID, CleanName(name, now), now, now
	return cred, nil
}

// Use is the outcome of a successful sign-in: the credential as it is
// to be stored (new counter, backup state, last use) and the counter it
// had, for a compare-and-set.
type Use struct {
	Credential    Credential
	PrevSignCount uint32
}

// FinishLogin verifies the authenticator's answer (the JSON of a
// PublicKeyCredential from navigator.credentials.get) to ceremony c of
// user u. The credential must be one of u.Credentials. Errors:
// [ErrInvalidCeremony], [*RejectError] ([ErrRejected]), and
// [ErrSignCount] with the credential (for the audit) when the counter
// went backwards.
func (rp *RP) FinishLogin(u User, c Ceremony, response []byte) (Use, error) {
	if err := rp.check(c, KindLogin, u); err != nil {
		return Use{}, err
	}
	if len(u.Credentials) == 0 {
		return Use{}, &RejectError{Reason: "no passkeys registered"}
	}
	if len(response) > MaxResponseBytes {
		return Use{}, &RejectError{Reason: "answer too large"}
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Use{}, reject(err)
	}
	lc, err := rp.w.ValidateLogin(waUser{u}, rp.session(c, u.ID), parsed)
	if err != nil {
		return Use{}, reject(err)
	}
	var stored Credential
	for _, have := range u.Credentials {
		if bytes.Equal(have.CredentialID, lc.ID) {
			stored = have
		}
	}
	if stored.ID == "" {
		return Use{}, &RejectError{Reason: "unknown credential"}
	}
	if lc.Authenticator.CloneWarning {
		return Use{Credential: stored, PrevSignCount: stored.SignCount}, ErrSignCount
	}
	next := stored
	next.SignCount = lc.Authenticator.SignCount
	next.BackupState = lc.Flags.BackupState
	next.LastUsed = rp.now().UTC().Truncate(time.Microsecond)
	return Use{Credential: next, PrevSignCount: stored.SignCount}, nil
}
