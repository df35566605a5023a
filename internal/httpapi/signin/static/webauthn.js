// phivault passkeys: the browser side of the /auth/webauthn/ endpoints.
//
// Served by the phivault binary at /static/webauthn.js. It works under a
// strict Content-Security-Policy (script-src 'self'): no inline script,
// no eval, no dynamic code, no third-party requests. It defines one
// global, window.phivaultWebAuthn, whose functions return Promises:
//
//   enrol(challenge, name)  first sign-in: register a passkey instead of
//                           TOTP with the "challenge" of /auth/login;
//                           resolves to {session, csrf_token,
//                           recovery_codes, passkey} (show the codes once).
//   signIn(challenge)       second factor after the password; resolves to
//                           {session, csrf_token}.
//   add(csrfToken, name)    register another passkey from a signed-in
//                           session; resolves to {passkey}.
//   list()                  resolves to {passkeys: [...]}.
//   rename(csrfToken, id, name), remove(csrfToken, id)
//
// A refusal rejects with an Error whose message is the server's safe
// message (or the browser's, e.g. NotAllowedError when the user cancels)
// and whose .status is the HTTP status (0 for a browser error).
(function () {
  "use strict";

  // base64url (RFC 4648 §5, no padding) <-> ArrayBuffer.
  function toBuffer(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toBase64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: toBuffer(d.id) };
      if (d.transports) { out.transports = d.transports; }
      return out;
    });
  }

  // creationOptions turns the server's JSON options into the
  // PublicKeyCredentialCreationOptions the browser takes.
  function creationOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = toBuffer(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: toBuffer(pk.user.id) });
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = toBuffer(pk.challenge);
    pk.allowCredentials = descriptors(pk.allowCredentials);
    return { publicKey: pk };
  }

  // credentialJSON is the PublicKeyCredential in its JSON form (WebAuthn
  // §5.1, the form PublicKeyCredential.toJSON() returns).
  function credentialJSON(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      if (typeof r.getTransports === "function") { response.transports = r.getTransports(); }
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) { response.userHandle = toBase64url(r.userHandle); }
    }
    return {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function call(method, path, body, csrfToken) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    if (csrfToken) { headers["X-CSRF-Token"] = csrfToken; }
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      if (res.status === 204) { return {}; }
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (!res.ok) {
          var e = new Error(j.error || ("request failed with status " + res.status));
          e.status = res.status;
          throw e;
        }
        return j;
      });
    });
  }

  function browserError(err) {
    var e = new Error(err && err.name ? err.name + ": " + err.message : String(err));
    e.status = 0;
    e.name = err && err.name ? err.name : "Error";
    throw e;
  }

  function register(begin, finish, csrfToken) {
    return call("POST", "/auth/webauthn/register/begin", begin, csrfToken).then(function (b) {
      return navigator.credentials.create(creationOptions(b.options)).catch(browserError).then(function (cred) {
        finish.ceremony = b.ceremony;
        finish.credential = credentialJSON(cred);
        return call("POST", "/auth/webauthn/register/finish", finish, csrfToken);
      });
    });
  }

  window.phivaultWebAuthn = Object.freeze({
    supported: function () {
      return typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
    },
    enrol: function (challenge, name) {
      return register({ challenge: challenge }, { challenge: challenge, name: name || "" });
    },
    add: function (csrfToken, name) {
      return register({}, { name: name || "" }, csrfToken);
    },
    signIn: function (challenge) {
      return call("POST", "/auth/webauthn/login/begin", { challenge: challenge }).then(function (b) {
        return navigator.credentials.get(requestOptions(b.options)).catch(browserError).then(function (cred) {
          return call("POST", "/auth/webauthn/login/finish",
            { challenge: challenge, ceremony: b.ceremony, credential: credentialJSON(cred) });
        });
      });
    },
    list: function () { return call("GET", "/auth/passkeys"); },
    rename: function (csrfToken, id, name) {
      return call("PATCH", "/auth/passkeys/" + encodeURIComponent(id), { name: name }, csrfToken);
    },
    remove: function (csrfToken, id) {
      return call("DELETE", "/auth/passkeys/" + encodeURIComponent(id), undefined, csrfToken);
    },
    // The conversions, pure functions, for pages that drive a ceremony
    // step by step (and for tests).
    codec: Object.freeze({
      toBuffer: toBuffer, toBase64url: toBase64url,
      creationOptions: creationOptions, requestOptions: requestOptions, credentialJSON: credentialJSON
    })
  });
})();
