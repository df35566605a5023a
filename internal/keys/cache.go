package keys

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phivault/phivault/internal/ident"
)

// dekCache is a bounded LRU of unwrapped DEKs with an absolute TTL. Keys
// are the owner and a SHA-256 of the wrapped bytes, so a rotated, rewrapped
// or shredded record never returns a stale DEK: a new record is a new key.
// It is safe for concurrent use.
type dekCache struct {
	size int           // 0 disables the cache
	ttl  time.Duration // time an entry lives after it was unwrapped
	now  func() time.Time

	mu sync.Mutex
	ll *list.List // of *cacheEntry, most recently used at the front
	m  map[cacheKey]*list.Element

	// hits and misses count get's answers (a disabled cache counts
	// nothing), for the metrics ([Keyring.DEKCacheStats]).
	hits, misses atomic.Uint64
}

type cacheKey struct {
	owner ident.Owner
	sum   [sha256.Size]byte
}

type cacheEntry struct {
	key     cacheKey
	dek     *DEK
	expires time.Time
}

func newDEKCache(size int, ttl time.Duration, now func() time.Time) *dekCache {
	if ttl <= 0 {
		size = 0
	}
	return &dekCache{size: size, ttl: ttl, now: now, ll: list.New(), m: make(map[cacheKey]*list.Element)}
}

func makeCacheKey(owner ident.Owner, wrapped []byte) cacheKey {
	return cacheKey{owner: owner, sum: sha256.Sum256(wrapped)}
}

// get returns the cached DEK for key if it has not expired.
func (c *dekCache) get(key cacheKey) (*DEK, bool) {
	if c.size == 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.remove(el)
		c.misses.Add(1)
		return nil, false
	}
	c.ll.MoveToFront(el)
	c.hits.Add(1)
	return e.dek, true
}

// put caches d under key, evicting the least recently used entries.
func (c *dekCache) put(key cacheKey, d *DEK) {
	if c.size == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	expires := c.now().Add(c.ttl)
	if el, ok := c.m[key]; ok {
		el.Value.(*cacheEntry).dek = d
		el.Value.(*cacheEntry).expires = expires
		c.ll.MoveToFront(el)
		return
	}
	c.m[key] = c.ll.PushFront(&cacheEntry{key: key, dek: d, expires: expires})
	for c.ll.Len() > c.size {
		c.remove(c.ll.Back())
	}
}

// forget drops every entry of owner. It scans the cache: forgetting is
// rare (shredding, rotation), and a scan of 10,000 entries takes
// microseconds.
func (c *dekCache) forget(owner ident.Owner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, el := range c.m {
		if key.owner == owner {
			c.remove(el)
		}
	}
}

// len returns the number of entries, expired ones included.
func (c *dekCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

func (c *dekCache) remove(el *list.Element) {
	e := c.ll.Remove(el).(*cacheEntry)
	delete(c.m, e.key)
}
