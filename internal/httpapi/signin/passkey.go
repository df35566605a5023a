package signin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"time"

	_ "embed"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/web"
)

// Passkeys (ADR 0009): JSON endpoints under /auth/ for the WebAuthn
// ceremonies and the owner's passkey list, and the browser helper
// /static/webauthn.js that drives them.
//
//	POST   /auth/webauthn/register/begin   {"challenge"} enrolment, or {} with the session cookie + CSRF header (add)
//	POST   /auth/webauthn/register/finish  {"challenge"?, "ceremony", "name"?, "credential"}
//	POST   /auth/webauthn/login/begin      {"challenge"}
//	POST   /auth/webauthn/login/finish     {"challenge", "ceremony", "credential"}
//	GET    /auth/passkeys
//	PATCH  /auth/passkeys/{id}             {"name"}          (cookie + CSRF)
//	DELETE /auth/passkeys/{id}                                (cookie + CSRF)
//
// Begin answers {"options": {"publicKey": {...}}, "ceremony": "<sealed>"};
// binary fields of the options are base64url. "credential" is the
// PublicKeyCredential as JSON (W3C WebAuthn §5.1 toJSON form), checked
// by go-webauthn.

// maxPasskeyBody bounds the finish bodies: the authenticator's answer
// (passkey.MaxResponseBytes) plus a challenge, a ceremony (each at most
// keys.MaxTokenLen) and a name.
const maxPasskeyBody = passkey.MaxResponseBytes + 12<<10

// webauthnJS is the browser helper, embedded so the binary serves it
// with no CDN and a strict CSP (script-src 'self').
//
//go:embed static/webauthn.js
var webauthnJS []byte

// webauthnJSTag is the ETag of webauthnJS (FNV-1a: an identity for
// caches, not a security check).
var webauthnJSTag = func() string {
	h := fnv.New64a()
	h.Write(webauthnJS)
	return fmt.Sprintf(`"%x"`, h.Sum64())
}()

// WebAuthnScriptPath is where the browser helper is served.
const WebAuthnScriptPath = "/static/webauthn.js"

func (h *Handler) passkeyRoutes(mux *http.ServeMux) {
	mux.Handle("POST /auth/webauthn/register/begin", h.handle(h.passkeyRegisterBegin))
	mux.Handle("POST /auth/webauthn/register/finish", h.handleLimit(maxPasskeyBody, h.passkeyRegisterFinish))
	mux.Handle("POST /auth/webauthn/login/begin", h.handle(h.passkeyLoginBegin))
	mux.Handle("POST /auth/webauthn/login/finish", h.handleLimit(maxPasskeyBody, h.passkeyLoginFinish))
	mux.Handle("GET /auth/passkeys", h.handle(h.passkeyList))
	mux.Handle("PATCH /auth/passkeys/{id}", h.handle(h.passkeyRename))
	mux.Handle("DELETE /auth/passkeys/{id}", h.handle(h.passkeyDelete))
	mux.HandleFunc("GET "+WebAuthnScriptPath, serveWebAuthnJS)
}

// serveWebAuthnJS serves the helper: a JavaScript content type (with
// nosniff from web.SecurityHeaders, browsers refuse any other), revalidated
// with an ETag after an hour, so a new release reaches browsers soon.
func serveWebAuthnJS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("ETag", webauthnJSTag)
	http.ServeContent(w, r, "webauthn.js", time.Time{}, bytes.NewReader(webauthnJS))
}

// passkeyJSON is a passkey as its owner sees it: never the credential
// id or public key.
type passkeyJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Created        time.Time `json:"created"`
	LastUsed       time.Time `json:"last_used"`
	BackupEligible bool      `json:"backup_eligible"`
	BackupState    bool      `json:"backup_state"`
	Transports     []string  `json:"transports,omitempty"`
}

func toPasskeyJSON(c passkey.Credential) passkeyJSON {
	return passkeyJSON{ID: c.ID, Name: c.Name, Created: c.Created, LastUsed: c.LastUsed,
		BackupEligible: c.BackupEligible, BackupState: c.BackupState, Transports: c.Transports}
}

func writeBegin(w http.ResponseWriter, b login.PasskeyBegin) {
	writeAuthJSON(w, http.StatusOK, map[string]any{"options": b.Options, "ceremony": b.Ceremony})
}

// credentialJSON checks that the "credential" member is a JSON object
// before go-webauthn parses it.
func credentialJSON(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, &web.Error{Status: http.StatusBadRequest, Msg: "the body must be one JSON object with the documented fields",
			Err: errors.New("passkey credential is not a JSON object")}
	}
	return raw, nil
}

func (h *Handler) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge string `json:"challenge"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	if in.Challenge != "" {
		b, err := h.login.BeginPasskeyEnrol(r.Context(), in.Challenge, web.ClientAddr(r))
		if err != nil {
			return err
		}
		writeBegin(w, b)
		return nil
	}
	p, err := h.sessionPrincipal(r)
	if err != nil {
		return err
	}
	b, err := h.login.BeginPasskeyAdd(r.Context(), p, web.ClientAddr(r))
	if err != nil {
		return err
	}
	writeBegin(w, b)
	return nil
}

func (h *Handler) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge  string          `json:"challenge"`
		Ceremony   string          `json:"ceremony"`
		Name       string          `json:"name"`
		Credential json.RawMessage `json:"credential"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	cred, err := credentialJSON(in.Credential)
	if err != nil {
		return err
	}
	if in.Challenge != "" {
		st, pk, codes, err := h.login.FinishPasskeyEnrol(r.Context(), in.Challenge, in.Ceremony, in.Name, cred, web.ClientAddr(r))
		if err != nil {
			return err
		}
		shown := make([]string, len(codes))
		for i, c := range codes {
			shown[i] = c.Reveal()
		}
		writeStarted(w, st, map[string]any{"recovery_codes": shown, "passkey": toPasskeyJSON(pk)})
		return nil
	}
	p, err := h.sessionPrincipal(r)
	if err != nil {
		return err
	}
	pk, err := h.login.FinishPasskeyAdd(r.Context(), p, in.Ceremony, in.Name, cred, web.ClientAddr(r))
	if err != nil {
		return err
	}
	writeAuthJSON(w, http.StatusCreated, map[string]any{"passkey": toPasskeyJSON(pk)})
	return nil
}

func (h *Handler) passkeyLoginBegin(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge string `json:"challenge"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	b, err := h.login.BeginPasskeyLogin(r.Context(), in.Challenge, web.ClientAddr(r))
	if err != nil {
		return err
	}
	writeBegin(w, b)
	return nil
}

func (h *Handler) passkeyLoginFinish(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge  string          `json:"challenge"`
		Ceremony   string          `json:"ceremony"`
		Credential json.RawMessage `json:"credential"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	cred, err := credentialJSON(in.Credential)
	if err != nil {
		return err
	}
	st, err := h.login.FinishPasskeyLogin(r.Context(), in.Challenge, in.Ceremony, cred, web.ClientAddr(r))
	if err != nil {
		return err
	}
	writeStarted(w, st, nil)
	return nil
}

func (h *Handler) passkeyList(w http.ResponseWriter, r *http.Request) error {
	p, err := h.sessionPrincipal(r)
	if err != nil {
		return err
	}
	list, err := h.login.Passkeys(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]passkeyJSON, len(list))
	for i, c := range list {
		out[i] = toPasskeyJSON(c)
	}
	writeAuthJSON(w, http.StatusOK, map[string]any{"passkeys": out})
	return nil
}

func (h *Handler) passkeyRename(w http.ResponseWriter, r *http.Request) error {
	p, err := h.sessionPrincipal(r)
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	name, err := h.login.RenamePasskey(r.Context(), p, r.PathValue("id"), in.Name, web.ClientAddr(r))
	if err != nil {
		return err
	}
	writeAuthJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "name": name})
	return nil
}

func (h *Handler) passkeyDelete(w http.ResponseWriter, r *http.Request) error {
	p, err := h.sessionPrincipal(r)
	if err != nil {
		return err
	}
	if err := h.login.DeletePasskey(r.Context(), p, r.PathValue("id"), web.ClientAddr(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// passkeyErr maps the passkey errors to statuses and safe messages;
// nil when err is none of them.
func passkeyErr(err error) *web.Error {
	switch {
	case errors.Is(err, passkey.ErrInvalidCeremony):
		return &web.Error{Status: http.StatusUnauthorized, Msg: passkey.ErrInvalidCeremony.Error(), Err: err}
	case errors.Is(err, passkey.ErrRejected), errors.Is(err, passkey.ErrSignCount):
		return &web.Error{Status: http.StatusUnauthorized, Msg: passkey.ErrRejected.Error(), Err: err}
	case errors.Is(err, passkey.ErrTooMany), errors.Is(err, login.ErrLastFactor):
		return &web.Error{Status: http.StatusConflict, Msg: err.Error(), Err: err}
	case errors.Is(err, login.ErrPasskeysDisabled), errors.Is(err, login.ErrPasskeyNotFound):
		return &web.Error{Status: http.StatusNotFound, Msg: err.Error(), Err: err}
	case errors.Is(err, login.ErrNeedsVerifiedSession):
		return &web.Error{Status: http.StatusForbidden, Msg: err.Error(), Err: err}
	}
	return nil
}
