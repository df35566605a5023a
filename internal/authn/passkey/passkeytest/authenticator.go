// Package passkeytest is a software WebAuthn authenticator for tests:
// one ES256 (ECDSA P-256) credential, "none" attestation, built byte for
// byte per W3C WebAuthn Level 3 §6.1 (authenticator data), §6.5
// (attestation object), §5.8.1 (client data) and §6.3.3 (assertion
// signature over authenticatorData ‖ SHA-256(clientDataJSON)).
//
// It plays the browser too (it writes clientDataJSON), so a test can
// make it lie: claim another origin, hash another RP ID, leave the UV
// flag off, or send a counter that does not grow. It signs; it never
// verifies — verification is go-webauthn's job in the code under test.
//
// It is imported by tests only; nothing in the server links it.
package passkeytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Flags of the authenticator data (§6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// Authenticator holds one credential. The exported fields are what the
// next ceremony will claim; a test may change them between calls. It is
// not safe for concurrent use.
type Authenticator struct {
	// Origin is written into clientDataJSON ("origin").
	Origin string
	// RPID is hashed into the authenticator data (rpIdHash). Empty: the
	// RP ID of the options.
	RPID string
	// UV sets the user-verified flag (default true from New); UP the
	// user-present flag (default true).
	UV, UP bool
	// Counter is the signature counter the next assertion reports; each
	// assertion adds Step to it first. Step 0 reports the same count
	// again (a clone's behaviour when Counter > 0).
	Counter uint32
	Step    uint32
	// AAGUID is reported at registration (zero by default).
	AAGUID [16]byte

	key        *ecdsa.PrivateKey
	credID     []byte
	userHandle []byte
}

// New returns an authenticator that will claim origin, with a fresh
// key and a random 32-byte credential id.
func New(origin string) (*Authenticator, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return &Authenticator{Origin: origin, UV: true, UP: true, Step: 1, key: k, credID: id}, nil
}

// CredentialID returns the credential id.
func (a *Authenticator) CredentialID() []byte { return bytes.Clone(a.credID) }

// options is the part of {"publicKey": ...} the authenticator reads.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

func parseOptions(b []byte) (options, error) {
	var o options
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("passkeytest: options: %w", err)
	}
	if o.PublicKey.Challenge == "" {
		return o, errors.New("passkeytest: options without a challenge")
	}
	return o, nil
}

var b64 = base64.RawURLEncoding

func (a *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) flags() byte {
	var f byte
	if a.UP {
		f |= flagUP
	}
	if a.UV {
		f |= flagUV
	}
	return f
}

func (a *Authenticator) rpIDHash(fromOptions string) []byte {
	id := a.RPID
	if id == "" {
		id = fromOptions
	}
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// coseKey is the credential public key as a COSE_Key (RFC 9053 §7.1.1:
// kty EC2, alg ES256, crv P-256, x, y).
func (a *Authenticator) coseKey() ([]byte, error) {
	pub, err := a.key.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, err
	}
	return webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:65]})
}

// Register answers creation options (the JSON of {"publicKey": ...}
// with base64url binary fields) with the PublicKeyCredential JSON of a
// new credential.
func (a *Authenticator) Register(optionsJSON []byte) ([]byte, error) {
	o, err := parseOptions(optionsJSON)
	if err != nil {
		return nil, err
	}
	uh, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, fmt.Errorf("passkeytest: user id: %w", err)
	}
	a.userHandle = uh
	ck, err := a.coseKey()
	if err != nil {
		return nil, err
	}
	var ad bytes.Buffer
	ad.Write(a.rpIDHash(o.PublicKey.RP.ID))
	ad.WriteByte(a.flags() | flagAT)
	_ = binary.Write(&ad, binary.BigEndian, a.Counter)
	ad.Write(a.AAGUID[:])
	_ = binary.Write(&ad, binary.BigEndian, uint16(len(a.credID)))
	ad.Write(a.credID)
	ad.Write(ck)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad.Bytes()})
	if err != nil {
		return nil, err
	}
	cd := a.clientData("webauthn.create", o.PublicKey.Challenge)
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(att),
			"transports": []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
}

// Assert answers request options with the PublicKeyCredential JSON of
// an assertion by this credential (whether or not the options list it).
func (a *Authenticator) Assert(optionsJSON []byte) ([]byte, error) {
	o, err := parseOptions(optionsJSON)
	if err != nil {
		return nil, err
	}
	a.Counter += a.Step
	var ad bytes.Buffer
	ad.Write(a.rpIDHash(o.PublicKey.RPID))
	ad.WriteByte(a.flags())
	_ = binary.Write(&ad, binary.BigEndian, a.Counter)
	cd := a.clientData("webauthn.get", o.PublicKey.Challenge)
	h := sha256.Sum256(cd)
	// ES256: ECDSA over SHA-256 of the signed data (RFC 9053 §2.1).
	digest := sha256.Sum256(append(bytes.Clone(ad.Bytes()), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		return nil, err
	}
	resp := map[string]any{
		"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad.Bytes()),
		"signature": b64.EncodeToString(sig),
	}
	if a.userHandle != nil {
		resp["userHandle"] = b64.EncodeToString(a.userHandle)
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"authenticatorAttachment": "platform", "response": resp, "clientExtensionResults": map[string]any{},
	})
}

// Host returns the host name of an origin (the usual RP ID).
func Host(origin string) string {
	u, err := url.Parse(origin)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
