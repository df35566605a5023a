// Package password handles local-account passwords: hashing with
// argon2id, the NIST SP 800-63B rules for choosing one, per-account
// lockout with backoff and per-address rate limits. Decisions and
// measurements: docs/adr/0006-passwords.md.
//
// # Hashing
//
// [Hash] and [Verify] use argon2id (RFC 9106) and store PHC strings,
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>", so parameters can rise
// later: [Verify] reports needsRehash and the caller stores a new hash
// after a successful login. Servers use a [Hasher], which bounds the work
// at once (memory ≤ MaxConcurrent × m, 76 MiB by default) and has
// [Hasher.DummyVerify] for the unknown-user path.
//
// # Choosing a password
//
// [Check] applies NIST SP 800-63B §5.1.1.2: 12 to 128 characters, any
// characters, no composition rules, no expiry, and refusal of common and
// breached passwords (a bundled list, see NOTICE) and of context words.
//
// # Throttling
//
// A login handler checks [AddressLimiter.Allow] for the source address,
// then [Lockout.Allow] for the login name, then verifies (or dummy-
// verifies), then records [Lockout.Fail] or [Lockout.Succeed]:
//
//	if ok, wait := addrs.Allow(ip); !ok { return tooMany(wait) }
//	st := store.State(name) // a state exists for unknown names too
//	if ok, wait := lockout.Allow(st, now); !ok { return tooMany(wait) }
//	acct, found := store.Account(name)
//	var ok bool
//	if found {
//		ok, rehash, err = hasher.Verify(ctx, pw, acct.Hash)
//	} else {
//		ok, err = hasher.DummyVerify(ctx, pw)
//	}
//	if !ok { store.SetState(name, lockout.Fail(st, now)); return invalidCredentials }
//
// # Security invariants
//
//   - A password, salt or hash never appears in an error; errors name the
//     rule or the field only.
//   - Hashes compare in constant time (crypto/subtle).
//   - The unknown-user path runs the same code as a wrong password
//     (parse, NFKC, argon2id with the same parameters, compare) against a
//     PHC string no password matches, and returns the same result. A
//     malformed stored hash costs the same too. Hashes with older
//     parameters cost differently until rehashed on the next login.
//   - Work driven by input is bounded: passwords over [MaxPasswordBytes]
//     are refused before normalisation (and still cost one KDF run in
//     Verify); stored PHC strings are parsed strictly with m ≤ 1 GiB (and
//     ≤ the Hasher's MaxMemory), t ≤ 10, p ≤ 16, salt and hash lengths
//     bounded; a [Hasher] runs at most MaxConcurrent KDFs and queues at
//     most MaxWaiting callers, refusing the rest with [ErrBusy].
//   - Passwords are NFKC-normalised before hashing and before [Check]
//     counts characters, so equivalent Unicode input is one password.
//   - [Lockout] enforces NIST SP 800-63B §5.2.2: at most 100 consecutive
//     failures per account, with exponential delays before that.
//     [AddressLimiter] memory is capped whatever the number of sources.
//   - No mutable package state: the bundled list is decoded once into an
//     immutable sorted slice; randomness is crypto/rand; time is passed in
//     ([Lockout]) or injected ([AddressLimits].Now).
package password
