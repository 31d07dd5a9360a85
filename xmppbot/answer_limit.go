package xmppbot

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// senderLimits bounds each sender's requests: a token bucket per local
// user (by bare JID) and one shared by every other sender, so strangers
// cannot grow the table. Buckets idle long enough to be full again are
// forgotten.
type senderLimits struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	remote  *rate.Limiter
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newSenderLimits(perSecond float64, burst int) *senderLimits {
	l := rate.Limit(perSecond)
	return &senderLimits{limit: l, burst: burst, buckets: map[string]*bucket{}, remote: rate.NewLimiter(l, burst)}
}

// allow takes one request of c's from its bucket.
func (s *senderLimits) allow(c caller) bool {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.local {
		return s.remote.AllowN(now, 1)
	}
	b := s.buckets[c.bare]
	if b == nil {
		s.sweep(now)
		b = &bucket{lim: rate.NewLimiter(s.limit, s.burst)}
		s.buckets[c.bare] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

// sweep forgets the buckets that have refilled; the caller holds s.mu.
func (s *senderLimits) sweep(now time.Time) {
	if len(s.buckets) < 1024 || now.Sub(s.swept) < 10*time.Second {
		return
	}
	s.swept = now
	full := time.Second
	if s.limit > 0 && s.limit != rate.Inf {
		full = time.Duration(float64(s.burst) / float64(s.limit) * float64(time.Second))
	}
	for k, b := range s.buckets {
		if now.Sub(b.seen) > full {
			delete(s.buckets, k)
		}
	}
}
