// Package keys is phivault's only cryptographic API: the key hierarchy,
// resource encryption, blind indexes, opaque tokens and key rotation, all
// built on Google Tink (github.com/tink-crypto/tink-go/v2). No primitive is
// assembled by hand here; every cipher, nonce and key id comes from a
// Tink keyset.
//
// # Key hierarchy
//
// The root of trust is the key-encryption key ([KEK]). It is either a
// local key file (a cleartext Tink JSON keyset of AES-256-GCM keys,
// created O_EXCL with mode 0600 by [CreateKeyFile], stored apart from the
// database) or a HashiCorp Vault transit key named by an "hcvault://" URI
// (see [OpenKEK]). The KEK never encrypts data; it only wraps other keys.
//
// Below it, each owner has one data-encryption key ([DEK]): "Patient/<id>"
// for resources in a patient compartment, "org" for the rest. A DEK is a
// Tink AES-256-GCM keyset, serialised with Tink's encrypted-keyset writer
// under the KEK, and stored as [storage.KeyRecord.Wrapped]. System keys
// are wrapped the same way: "system/blind-index" (an HMAC-SHA256 PRF
// keyset), "system/token" and "system/audit" (AES-256-GCM keysets; the
// audit log key is not a patient key, so erasing a patient keeps the trail).
//
// A [Keyring] holds the KEK, the loaded system keys and a bounded,
// TTL-limited cache of unwrapped DEKs keyed by owner and a SHA-256 of the
// wrapped bytes, so a replaced or shredded record never hits a stale entry.
//
// # Associated data
//
// Every AEAD call binds its context as associated data, encoded without
// ambiguity: a domain string followed by each field as a 4-byte big-endian
// length and its bytes (integers as 8 bytes big-endian).
//
//   - Wrapped keys: "phivault/key/v1" + owner. A wrapped DEK copied onto
//     another owner's record fails to open.
//   - Resources: "phivault/resource/v1" + type + id + version + owner
//     ([ResourceAD]). A ciphertext copied onto another resource, version or
//     patient fails to open.
//   - Tokens: "phivault/token/v1" + purpose. A paging cursor cannot be
//     replayed as another kind of token.
//   - Audit bodies: "phivault/audit/v1" + a caller-chosen context.
//
// # Blind indexes
//
// [Keyring.BlindIndex] is HMAC-SHA256 (a Tink PRF) under the blind-index
// key, truncated to 128 bits. It lets the database match equal values
// without holding them. What it leaks: equality of normalised values.
// Anyone with database access sees which rows share a name, identifier or
// birth date, how often each value occurs (frequency analysis against a
// public name list is the main risk), and, across parameters, equal inputs
// unless the caller puts the parameter code into the input. It reveals
// nothing else without the key. Callers should normalise and then prefix
// the parameter code, e.g. "family\x00smith".
//
// # Rotation
//
// KEK rotation: [RotateKeyFile] adds a new primary key and keeps the old
// ones, so every existing wrap still opens; a running server swaps in the
// reopened file with [Keyring.SetKEK]; [Keyring.Rewrap] then re-wraps
// each record under the new primary and sets KEKID, so a scan can resume
// by skipping records whose KEKID already equals [KEK.PrimaryID].
//
// DEK rotation for one owner: [Keyring.RotateDEK] adds a new primary key
// to the owner's keyset (old ciphertexts still open); the caller re-seals
// every version whose ciphertext is not [DEK.SealedWithPrimary] (the check
// reads Tink's 5-byte key-id prefix, so the job is resumable), and finally
// [Keyring.RetireOldDEKKeys] destroys the old keys. The blind-index key is
// not rotated online: rotating it means rebuilding every index row.
//
// # Crypto-shredding
//
// Erasing a patient destroys its wrapped DEK (the storage layer sets
// Wrapped to nil and Shredded to true, keeping KEKID). [Keyring.DEK]
// returns [ErrShredded] for such a record before looking at the cache,
// and [Keyring.Forget] drops any unwrapped copy from memory at once.
//
// That is not enough on its own: older copies of the wrapped DEK stay in
// free pages, the WAL, dead tuples, replicas and backups, and open with
// the key file. Erasure is final only when every KEK key that wrapped
// the DEK is destroyed.
//
// # KEK epochs
//
// A KEK epoch (docs/adr/0015; the job is internal/keys/lifecycle) adds a
// key with [AddKEKKey] (never reusing an id the database fenced off),
// installs it with [Keyring.SetKEK], re-wraps every live record with
// [Keyring.Rewrap], checks each with [KEK.CheckWrappedByPrimary] (it
// opens under the new key alone), and only then removes the old keys
// with [DestroyKEKKeys]. Every write of the key file is atomic (0600
// temporary, fsync, rename, fsync of the directory), zeroes the bytes of
// the replaced file through a descriptor kept across the rename, and
// scrubs temporaries an interrupted write left; the key file never
// loses a key that a live record needs, whatever step a crash stops.
// Processes that loaded the old file adopt the new one with
// [Keyring.ReloadKEK], or when [Options.Destroyed] (the database's
// record of destroyed keys) vouches for the keys it lacks.
//
// A Vault transit KEK keeps its versions in Vault: the operator rotates
// the transit key, every record is re-wrapped (the newest version
// encrypts), and the older versions are trimmed in Vault.
//
// # Security invariants
//
//   - Unwrapped key material is never written anywhere but the key file
//     (everything else stores keys wrapped under the KEK), and never
//     appears in an error, a log line or fmt output: every key type
//     implements String, GoString and [slog.LogValuer] without secrets.
//   - Every ciphertext is AES-256-GCM from Tink with a random 96-bit nonce
//     and a 5-byte key-id prefix; no nonce is ever chosen by this package.
//   - Open, OpenToken and unwrapping fail closed with [ErrDecrypt]; no
//     partial plaintext is returned.
//   - A DEK seals only for its own owner ([DEK.Seal] refuses another
//     owner's [ResourceAD]); system key names can never be used as DEKs.
//   - Unwrapped DEKs stay in memory at most [Options.CacheTTL] after
//     unwrapping, however hot they are.
//   - Input-driven work is capped: tokens at [MaxTokenLen] characters,
//     wrapped keys at 64 KiB, the key file at 1 MiB.
//
// All exported methods of [KEK], [Keyring] and [DEK] are safe for
// concurrent use.
package keys
