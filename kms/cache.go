package kms

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// defaultCacheSize is the number of unwrapped data keys kept when
// LocalOptions.CacheSize is 0.
const defaultCacheSize = 4096

// cacheKey identifies an unwrapped data key: SHA-256 over a domain string,
// the length-prefixed wrapped key and the canonical encryption context. A hit
// therefore means this exact ciphertext was already authenticated under this
// exact context.
type cacheKey [sha256.Size]byte

func makeCacheKey(ciphertext, encCtx []byte) cacheKey {
	const domain = "sealfs kms cache v1"
	var stack [256]byte // a wrapped data key and a two-pair context fit
	b := append(stack[:0], domain...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ciphertext)))
	b = append(b, ciphertext...)
	b = append(b, encCtx...)
	return sha256.Sum256(b)
}

// dekCache is a bounded LRU of unwrapped data keys. A nil *dekCache caches
// nothing. It never hands out its own slices. It does not check key states:
// the caller does, before every lookup.
type dekCache struct {
	mu      sync.Mutex
	max     int
	order   *list.List // front = most recently used; values are *cacheEntry
	entries map[cacheKey]*list.Element
}

type cacheEntry struct {
	key       cacheKey
	keyID     string
	plaintext []byte
	added     time.Time // when put last confirmed it (the external engine's bound)
}

func newDEKCache(size int) *dekCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = defaultCacheSize
	}
	return &dekCache{max: size, order: list.New(), entries: make(map[cacheKey]*list.Element)}
}

// get returns a copy of the cached plaintext for k.
func (c *dekCache) get(k cacheKey) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return append([]byte(nil), el.Value.(*cacheEntry).plaintext...), true
}

// getWithin returns a copy of the cached plaintext for k if it was put no
// earlier than since.
func (c *dekCache) getWithin(k cacheKey, since time.Time) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok || el.Value.(*cacheEntry).added.Before(since) {
		return nil, false
	}
	c.order.MoveToFront(el)
	return append([]byte(nil), el.Value.(*cacheEntry).plaintext...), true
}

// put stores a copy of plaintext, unwrapped by keyID, under k. Putting an
// entry that is there marks it confirmed now.
func (c *dekCache) put(k cacheKey, keyID string, plaintext []byte) {
	c.putAt(k, keyID, plaintext, time.Time{})
}

func (c *dekCache) putAt(k cacheKey, keyID string, plaintext []byte, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		el.Value.(*cacheEntry).added = now
		c.order.MoveToFront(el)
		return
	}
	c.entries[k] = c.order.PushFront(&cacheEntry{key: k, keyID: keyID, plaintext: append([]byte(nil), plaintext...), added: now})
	for c.order.Len() > c.max {
		c.removeLocked(c.order.Back())
	}
}

// evictKey drops every entry unwrapped by keyID.
func (c *dekCache) evictKey(keyID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*cacheEntry).keyID == keyID {
			c.removeLocked(el)
		}
		el = next
	}
}

// clear drops every entry.
func (c *dekCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.order.Front(); el != nil; el = c.order.Front() {
		c.removeLocked(el)
	}
}

func (c *dekCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func (c *dekCache) removeLocked(el *list.Element) {
	e := c.order.Remove(el).(*cacheEntry)
	clear(e.plaintext)
	delete(c.entries, e.key)
}
