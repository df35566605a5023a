package ledger

import (
	"encoding/json"

	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// expected is one version as the log says it is stored.
type expected struct {
	pos     int64
	owner   ident.Owner
	deleted bool
	v       []byte // commitment; nil for a marker the log implies
	derived bool   // a delete marker implied by an erasure of owner at pos
	scheme  int    // how v was keyed (audit.Commit.Scheme)
}

// indexCommit is the log's commitment to a version's index rows.
type indexCommit struct {
	i      []byte
	scheme int
	owner  ident.Owner // whose ledger key keyed i (scheme 2)
}

// replay turns the commitments to one resource into its expected
// versions, the index commitment of each version, and the newest
// version the log knows of (0 if none).
func (c *checker) replay(es []entry) (exp map[int64]*expected, idx map[int64]indexCommit, newest int64) {
	exp = map[int64]*expected{}
	idx = map[int64]indexCommit{}
	var cur *expected // the newest version, when committed
	last := int64(-1)
	// erase applies an erasure of the current owner that came between
	// two commitments: a live resource it owned got a delete marker.
	erase := func(before int64) {
		if cur == nil || cur.deleted {
			return
		}
		if at := c.view.erasedBetween(cur.owner, last, before); at >= 0 {
			newest++
			cur = &expected{pos: at, owner: cur.owner, deleted: true, derived: true}
			exp[newest] = cur
		}
	}
	for _, e := range es {
		erase(e.pos)
		switch e.kind {
		case audit.CommitPut, audit.CommitBaseline, audit.CommitRewrite:
			x := &expected{pos: e.pos, owner: e.owner, deleted: e.deleted, v: e.v, scheme: e.scheme}
			exp[e.version] = x
			if e.version >= newest {
				newest, cur = e.version, x
			}
			if e.i != nil {
				idx[e.version] = indexCommit{e.i, e.scheme, e.owner}
			}
		case audit.CommitIndex:
			idx[e.version] = indexCommit{e.i, e.scheme, e.owner}
		}
		last = e.pos
	}
	erase(1 << 62)
	return exp, idx, newest
}

// head is what a version's plaintext says about itself.
type head struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
}

// evaluate compares one resource's stored state with the log.
func (c *checker) evaluate(key string, st storage.ResourceState, ix indexState, r *result) {
	ref := func(v int64) string { return key + "/_history/" + strconv.FormatInt(v, 10) }
	exp, idx, newest := c.replay(c.view.entries(key))
	byVer := make(map[int64]storage.Version, len(st.Versions))
	for _, v := range st.Versions {
		byVer[v.Version] = v
	}
	if len(st.Versions) == 0 && st.Current == nil {
		if len(exp) > 0 {
			r.add(key, KindMissingResource, fmt.Sprintf("the log committed %d version(s) (the newest v%d), but no row of this resource is stored: it was deleted", len(exp), newest))
		}
		if ix.n > 0 {
			r.add(key, KindIndex, fmt.Sprintf("%d index rows of a resource that is not stored (repointed from another resource?)", ix.n))
		}
		return
	}

	// Every version row.
	posOf := func(v int64) int64 {
		if e := exp[v]; e != nil {
			return e.pos
		}
		return -1
	}
	var dbMax int64
	want := int64(1)
	for _, v := range st.Versions {
		r.versions++
		dbMax = max(dbMax, v.Version)
		if v.Version != want && exp[want] == nil {
			r.add(ref(v.Version), KindMissingVersion, fmt.Sprintf("version %d is missing before it", want))
		}
		want = v.Version + 1
		c.version(v, exp[v.Version], st, ix, byVer, posOf, ref(v.Version), r)
	}

	// Committed versions that are not stored, and the current pointer.
	var missing []int64
	for _, v := range slices.Sorted(maps.Keys(exp)) {
		if _, ok := byVer[v]; !ok {
			missing = append(missing, v)
		}
	}
	cur := st.Current
	reported := map[int64]bool{}
	switch {
	case cur == nil:
		r.add(key, KindCurrentRow, fmt.Sprintf("the current pointer row is missing: the resource is not served (%d version rows stored)", len(st.Versions)))
	case cur.Version < newest:
		var gone []int64
		for _, v := range missing {
			if v > cur.Version {
				gone = append(gone, v)
				reported[v] = true
			}
		}
		switch {
		case len(gone) == 1 && gone[0] == newest && exp[newest].derived:
			r.add(ref(newest), KindErasure, fmt.Sprintf("the log erased %s while it owned this resource, which should then have got a delete marker (v%d); none is stored and the resource is still served", exp[newest].owner, newest))
		case len(gone) > 0:
			r.add(ref(newest), KindRollback, fmt.Sprintf("rolled back: the log committed up to v%d, version(s) %s are missing and the current pointer names v%d", newest, versionList(gone), cur.Version))
		default:
			r.add(ref(cur.Version), KindRepointed, fmt.Sprintf("the current pointer names v%d, but the log's newest version v%d is stored", cur.Version, newest))
		}
	case cur.Version != dbMax && dbMax > 0:
		r.add(ref(cur.Version), KindRepointed, fmt.Sprintf("the current pointer names v%d, but v%d is stored", cur.Version, dbMax))
	}
	for _, v := range missing {
		switch {
		case reported[v]:
		case exp[v].derived:
			r.add(ref(v), KindErasure, fmt.Sprintf("the log erased %s while it owned this resource, which should then have got this delete marker; it is missing", exp[v].owner))
		default:
			r.add(ref(v), KindMissingVersion, "the log committed this version, but its row is missing (deleted)")
		}
	}
	if cur != nil {
		if row, ok := byVer[cur.Version]; !ok {
			if !reported[cur.Version] && exp[cur.Version] == nil {
				r.add(ref(cur.Version), KindCurrentRow, fmt.Sprintf("the current pointer names v%d, which has no row", cur.Version))
			}
		} else if row.Owner != cur.Owner || row.Deleted != cur.Deleted || !row.LastUpdated.Equal(cur.LastUpdated) {
			r.add(ref(cur.Version), KindCurrentRow, "the current pointer row differs from the version row it names (owner, deletion flag or time)")
		}
	}

	// The index rows of the current version.
	w := c.wantIndex(key, st, idx, ref)
	if ix.known {
		c.index(w, ix, st, r)
	} else {
		r.index = &w // judged once the index pass is done
	}
}

// version checks one version row against its expected form.
func (c *checker) version(v storage.Version, e *expected, st storage.ResourceState, ix indexState, byVer map[int64]storage.Version, posOf func(int64) int64, ref string, r *result) {
	rec, haveKey := c.keyrecs[v.Owner]
	if e != nil && e.derived {
		if !v.Deleted || v.Owner != e.owner {
			r.add(ref, KindContent, fmt.Sprintf("the log's erasure of %s implies a delete marker here; the row is not one (deleted=%t, owner differs=%t)", e.owner, v.Deleted, v.Owner != e.owner))
			return
		}
		r.deleted++
		return
	}
	if e != nil {
		if v.Owner != e.owner || v.Deleted != e.deleted {
			r.add(ref, KindContent, fmt.Sprintf("the row differs from what the log committed: owner differs=%t, deleted %t (committed %t)", v.Owner != e.owner, v.Deleted, e.deleted))
			return
		}
		if v.Deleted {
			if !c.noMAC && !equalBytes(c.keyed(e.scheme, v.Owner, c.o.Ledger.Version(v, nil)), e.v) {
				r.add(ref, KindContent, "the delete marker differs from what the log committed (its time)")
				return
			}
			r.deleted++
			return
		}
		switch {
		case !haveKey:
			r.add(ref, KindKey, "its data key is missing")
			return
		case rec.Shredded:
			r.erased++ // unreadable by design; owner and flag checked above
			return
		}
		pt, ok := c.decrypt(v, rec, ref, r)
		if !ok {
			return
		}
		if c.noMAC {
			if _, ok := c.head(v, pt, ref, r); !ok {
				return
			}
		} else if !equalBytes(c.keyed(e.scheme, v.Owner, c.o.Ledger.Version(v, pt)), e.v) {
			// The commitment covers the plaintext: equal, it names
			// this resource and version as it did when written.
			r.add(ref, KindContent, "the row differs from what the log committed (its time or body: an older copy put back?)")
			return
		}
		r.verified++
		return
	}

	// Not committed.
	if v.Deleted {
		if c.erasureExplains(v, byVer, posOf) {
			r.deleted++
			c.baseline(v, nil, st, ix, ref, r)
			return
		}
		if c.preLedger(v.LastUpdated) {
			r.pre++
			c.baseline(v, nil, st, ix, ref, r)
			return
		}
		r.add(ref, KindForgedMarker, "a delete marker that no event in the log commits to, and no erasure explains")
		return
	}
	t := v.LastUpdated
	var pt []byte
	switch {
	case !haveKey:
		r.add(ref, KindKey, "its data key is missing")
		return
	case rec.Shredded:
		r.erased++
	default:
		var ok bool
		if pt, ok = c.decrypt(v, rec, ref, r); !ok {
			return
		}
		h, ok := c.head(v, pt, ref, r)
		if !ok {
			return
		}
		if lu, err := time.Parse(time.RFC3339Nano, h.Meta.LastUpdated); err == nil {
			t = lu // authenticated by the AEAD, unlike the row's time
		}
	}
	if c.preLedger(t) {
		r.pre++
		c.baseline(v, pt, st, ix, ref, r)
		return
	}
	r.add(ref, KindUncommitted, "no event in the log commits to this version: a forged row, or a write whose audit event was deleted before it was integrated")
}

// decrypt opens v with its owner's key (the AEAD binds type, id,
// version and owner).
func (c *checker) decrypt(v storage.Version, rec storage.KeyRecord, ref string, r *result) ([]byte, bool) {
	dek, err := c.o.Keys.DEK(rec)
	if err != nil {
		r.add(ref, KindKey, "its data key cannot be unwrapped")
		return nil, false
	}
	pt, err := dek.Open(v.Ciphertext, keys.ResourceAD{Type: v.Type, ID: v.ID, Version: v.Version, Owner: v.Owner})
	if err != nil {
		r.add(ref, KindCiphertext, "the ciphertext fails authentication (altered, moved or copied from another row)")
		return nil, false
	}
	return pt, true
}

// head checks that the plaintext of v names it, and returns its head.
func (c *checker) head(v storage.Version, pt []byte, ref string, r *result) (head, bool) {
	var h head
	if err := json.Unmarshal(pt, &h); err != nil {
		r.add(ref, KindCiphertext, "the plaintext is not JSON")
		return h, false
	}
	if h.ResourceType != v.Type || h.ID != v.ID || h.Meta.VersionID != strconv.FormatInt(v.Version, 10) {
		r.add(ref, KindCiphertext, "the plaintext names another resource or version")
		return h, false
	}
	return h, true
}

// erasureExplains reports whether the uncommitted delete marker v is
// one an erasure of its owner appended: the version before it was live
// and had the same owner, and the log erased that owner after that
// version was committed (and before the version after v, if committed).
func (c *checker) erasureExplains(v storage.Version, byVer map[int64]storage.Version, posOf func(int64) int64) bool {
	prev, ok := byVer[v.Version-1]
	if !ok || prev.Deleted || prev.Owner != v.Owner {
		return false
	}
	before := int64(1 << 62)
	if p := posOf(v.Version + 1); p >= 0 {
		before = p
	}
	return c.view.erasedBetween(v.Owner, posOf(v.Version-1), before) >= 0
}

// preLedger reports whether a version of time t, without commitment, was
// written before the ledger started (and no baseline committed it).
func (c *checker) preLedger(t time.Time) bool {
	return !c.strict && t.Before(c.startTime)
}

// indexWant is what the index rows of a resource must be.
type indexWant struct {
	key, ref string // "Type/id"; the current version (the key without one)
	version  int64  // the current version (0: no current pointer)
	none     bool   // no rows: no current pointer, or a deleted or erased resource
	deleted  bool   // (with none) the resource is deleted or erased
	digest   []byte // the rows' commitment; nil (and not none): not checked
	scheme   int    // how digest was keyed, with owner's key
	owner    ident.Owner
}

// wantIndex says what the index rows of the resource's current version
// must be, from its pointer, key and the log's index commitments idx.
func (c *checker) wantIndex(key string, st storage.ResourceState, idx map[int64]indexCommit, ref func(int64) string) indexWant {
	cur := st.Current
	if cur == nil {
		return indexWant{key: key, ref: key, none: true}
	}
	w := indexWant{key: key, ref: ref(cur.Version), version: cur.Version}
	rec, haveKey := c.keyrecs[cur.Owner]
	if cur.Deleted || (haveKey && rec.Shredded) {
		w.none, w.deleted = true, true
		return w
	}
	if want, ok := idx[cur.Version]; ok && !c.noMAC {
		w.digest, w.scheme, w.owner = want.i, want.scheme, want.owner
	} // else: written before ledger v1 (no commitment), or unverifiable
	return w
}

// index checks the stored index rows ix against w; st (when the rows
// are known) lets a difference name its parameters.
func (c *checker) index(w indexWant, ix indexState, st storage.ResourceState, r *result) {
	switch {
	case w.none && ix.n == 0:
	case w.none && w.deleted:
		r.add(w.ref, KindIndex, fmt.Sprintf("%d index rows of a deleted or erased resource: searches still find it", ix.n))
	case w.none:
		r.add(w.ref, KindIndex, fmt.Sprintf("%d index rows of a resource without a current pointer", ix.n))
	case w.digest == nil:
	case ix.split:
		// Judged when the resource is read again, rows and all.
		r.add(w.ref, KindIndex, "the index rows are stored apart from each other")
	case !equalBytes(c.keyed(w.scheme, w.owner, ix.digest), w.digest):
		typ, id, _ := strings.Cut(w.key, "/")
		r.add(w.ref, KindIndex, "the index rows differ from the ones the log committed"+c.indexDiff(typ, id, w, st, ix))
	}
}

// indexDiff names the parameters whose rows differ, when the rows
// recomputed from the body are the committed ones.
func (c *checker) indexDiff(typ, id string, w indexWant, st storage.ResourceState, ix indexState) string {
	version := w.version
	if c.o.Rows == nil || ix.rows == nil {
		return fmt.Sprintf(" (%d rows stored)", ix.n)
	}
	var v *storage.Version
	for i := range st.Versions {
		if st.Versions[i].Version == version {
			v = &st.Versions[i]
		}
	}
	rec, ok := c.keyrecs[st.Current.Owner]
	if v == nil || !ok {
		return fmt.Sprintf(" (%d rows stored)", ix.n)
	}
	dek, err := c.o.Keys.DEK(rec)
	if err != nil {
		return fmt.Sprintf(" (%d rows stored)", ix.n)
	}
	pt, err := dek.Open(v.Ciphertext, keys.ResourceAD{Type: v.Type, ID: v.ID, Version: v.Version, Owner: v.Owner})
	if err != nil {
		return fmt.Sprintf(" (%d rows stored)", ix.n)
	}
	rows, err := c.o.Rows(typ, pt)
	if err != nil || !equalBytes(c.keyed(w.scheme, w.owner, c.o.Ledger.Index(typ, id, rows)), w.digest) {
		return fmt.Sprintf(" (%d rows stored)", ix.n)
	}
	// Count rows per parameter, stored minus recomputed.
	type k struct{ param, val string }
	count := map[k]int{}
	enc := func(r storage.IndexRow) k {
		if r.IsDate {
			return k{r.Param, fmt.Sprintf("d%d:%d", r.Lo, r.Hi)}
		}
		return k{r.Param, "h" + string(r.Hash)}
	}
	for _, x := range ix.rows {
		count[enc(x)]++
	}
	for _, x := range rows {
		count[enc(x)]--
	}
	extra, lack := map[string]int{}, map[string]int{}
	for key, n := range count {
		switch {
		case n > 0:
			extra[key.param] += n
		case n < 0:
			lack[key.param] -= n
		}
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(lack)) {
		parts = append(parts, fmt.Sprintf("%s: %d row(s) missing", p, lack[p]))
	}
	for _, p := range slices.Sorted(maps.Keys(extra)) {
		parts = append(parts, fmt.Sprintf("%s: %d row(s) not committed", p, extra[p]))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// versionList is "v2, v3".
func versionList(vs []int64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = "v" + strconv.FormatInt(v, 10)
	}
	return strings.Join(s, ", ")
}

// keyed returns a system-keyed commitment digest as the log keyed it:
// itself (scheme 0), or under owner's ledger key (audit.CommitSchemeOwner).
// nil when owner's ledger key cannot be opened: the comparison fails.
func (c *checker) keyed(scheme int, owner ident.Owner, digest []byte) []byte {
	if scheme == 0 || digest == nil {
		return digest
	}
	c.olMu.Lock()
	ol, ok := c.ownerLedgers[owner]
	c.olMu.Unlock()
	if !ok {
		if rec, have := c.keyrecs[owner]; have {
			ol, _ = c.o.Keys.OwnerLedger(rec)
		}
		c.olMu.Lock()
		if c.ownerLedgers == nil {
			c.ownerLedgers = map[ident.Owner]*keys.OwnerLedger{}
		}
		c.ownerLedgers[owner] = ol
		c.olMu.Unlock()
	}
	if ol == nil {
		return nil
	}
	return ol.Commit(digest)
}
