package passkey

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Credential is a registered passkey of a user. CredentialID and
// PublicKey are public values but are still kept out of logs and error
// texts; the API names a passkey by ID.
type Credential struct {
	ID           string // phivault's opaque id (a UUID), used by the API and the audit log
	UserID       string
	CredentialID []byte // the authenticator's credential id, at most MaxCredentialIDBytes
	PublicKey    []byte // COSE_Key, as attested
	SignCount    uint32
	AAGUID       []byte // 16 bytes; all zero with "none" attestation from many authenticators
	Transports   []string
	// Flags as last seen: BE never changes, BS may (a passkey that
	// became synced), UV is latched at registration.
	BackupEligible bool
	BackupState    bool
	UserVerified   bool
	Name           string // given by the user
	Created        time.Time
	LastUsed       time.Time
}

// toLibrary converts to go-webauthn's credential record.
func (c Credential) toLibrary() webauthn.Credential {
	f := protocol.FlagUserPresent
	if c.UserVerified {
		f |= protocol.FlagUserVerified
	}
	if c.BackupEligible {
		f |= protocol.FlagBackupEligible
	}
	if c.BackupState {
		f |= protocol.FlagBackupState
	}
	tr := make([]protocol.AuthenticatorTransport, len(c.Transports))
	for i, t := range c.Transports {
		tr[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID: c.CredentialID, PublicKey: c.PublicKey, AttestationType: "none", AttestationFormat: "none",
		Transport: tr, Flags: webauthn.NewCredentialFlags(f),
		Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
	}
}

// maxTransports bounds the stored transport hints (the spec knows six).
const maxTransports = 8

func fromLibrary(lc webauthn.Credential) Credential {
	var tr []string
	for _, t := range lc.Transport {
		s := string(t)
		if len(tr) < maxTransports && s != "" && len(s) <= 32 && !strings.ContainsAny(s, ", ") {
			tr = append(tr, s)
		}
	}
	return Credential{
		CredentialID: lc.ID, PublicKey: lc.PublicKey, SignCount: lc.Authenticator.SignCount,
		AAGUID: lc.Authenticator.AAGUID, Transports: tr,
		BackupEligible: lc.Flags.BackupEligible, BackupState: lc.Flags.BackupState, UserVerified: lc.Flags.UserVerified,
	}
}

// CleanName returns name as it is stored: control characters dropped,
// spaces trimmed, cut to [MaxNameLen] bytes on a rune boundary; an empty
// result becomes "Passkey added <date>".
func CleanName(name string, now time.Time) string {
	var b strings.Builder
	for _, r := range name {
		if r == utf8.RuneError || unicode.IsControl(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > MaxNameLen {
			break
		}
		b.WriteRune(r)
	}
	s := strings.TrimSpace(b.String())
	if s == "" {
		s = "Passkey added " + now.UTC().Format("2006-01-02")
	}
	return s
}
