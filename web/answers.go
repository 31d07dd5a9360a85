package web

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// A single lookup's answer is the same bytes for every caller who sees as
// much, until the person's presence or the directory changes. Rendering
// it (directory resolution, engine lookup, JSON) was a tenth of the
// server's CPU per request, so the bytes are kept and sent again.

// versionedBackend is a Backend that can tell when its answers may have
// changed: Version differs after every change to what Lookup returns,
// except for time alone turning calendar facts stale (see answerTTL).
// Reading it must be cheap (an atomic load): it is asked per request.
type versionedBackend interface {
	Version() uint64
}

const (
	// answerTTL bounds how long an answer is reused even when the backend
	// reports no change: Entry.Stale turns with time alone. Facts go
	// stale after two poll intervals (minutes), so a second late is fine.
	answerTTL = time.Second
	// maxAnswers bounds the cache (a full one is emptied, then refilled by
	// the lookups that follow): addresses come from callers, so the keys
	// are not bounded by the directory. About 600 bytes each.
	maxAnswers = 16384
	// maxKeptAddress is the longest address asked for whose answer is
	// kept (RFC 5321's 320; longer ones are invalid anyway), so a caller
	// cannot fill the cache with huge keys.
	maxKeptAddress = 320
)

// answerKey is what a single lookup's answer depends on besides the
// backend's state: the address as asked and what the caller may see.
type answerKey struct {
	email      string
	visibility Visibility
	directory  bool
}

// answer is a rendered lookup: its HTTP status and body (newline
// included), valid while the backend's version is the same and until
// expires.
type answer struct {
	version uint64
	expires time.Time
	code    int
	body    []byte
}

// answerCache holds rendered answers. The zero value is not usable: see
// newAnswerCache.
type answerCache struct {
	backend versionedBackend // nil: nothing is kept
	now     func() time.Time // time.Now; tests freeze it
	mu      sync.RWMutex
	m       map[answerKey]*answer
}

// newAnswerCache keeps answers for b if it can say when they change.
func newAnswerCache(b Backend) *answerCache {
	vb, _ := b.(versionedBackend)
	return &answerCache{backend: vb, now: time.Now, m: map[answerKey]*answer{}}
}

// get returns a kept answer that is still right at now, and the backend's
// version to keep a new one under. It reads the version before the caller
// asks the backend, so an answer built meanwhile is kept under the older
// version and is not reused after the change.
func (c *answerCache) get(k answerKey, now time.Time) (a *answer, version uint64, ok bool) {
	if c.backend == nil {
		return nil, 0, false
	}
	version = c.backend.Version()
	c.mu.RLock()
	a = c.m[k]
	c.mu.RUnlock()
	if a != nil && a.version == version && now.Before(a.expires) {
		return a, version, true
	}
	return nil, version, false
}

// put keeps a copy of body as k's answer at version. Answers to malformed
// addresses and over-long keys are not kept: they cost little to make
// again, and a caller could otherwise fill the cache with them. The key's
// address is copied, so the kept entry does not hold the request's memory.
func (c *answerCache) put(k answerKey, version uint64, now time.Time, code int, body []byte) {
	if c.backend == nil || code == http.StatusBadRequest || len(k.email) > maxKeptAddress {
		return
	}
	k.email = strings.Clone(k.email)
	a := &answer{version: version, expires: now.Add(answerTTL), code: code, body: append([]byte(nil), body...)}
	c.mu.Lock()
	if len(c.m) >= maxAnswers {
		clear(c.m)
	}
	c.m[k] = a
	c.mu.Unlock()
}
