package graph

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// throttle is the HTTP transport under the SDK. It bounds requests in
// flight, and on 429/503/504 waits as long as Graph's Retry-After says (or
// backs off exponentially with jitter) before trying again. A Retry-After
// pauses every request, not just the one that got it: Graph throttles per
// app, so the next request would be refused too.
type throttle struct {
	next       http.RoundTripper
	sem        chan struct{}
	maxRetries int
	timeout    time.Duration // per attempt
	log        *slog.Logger

	mu         sync.Mutex
	pauseUntil time.Time

	requests  atomic.Int64
	throttled atomic.Int64
	failed    atomic.Int64
	byStatus  sync.Map // int → *atomic.Int64
}

// Stats counts the source's HTTP traffic.
type Stats struct {
	// Requests is every HTTP request sent to Graph, retries included.
	Requests int64
	// Throttled is the responses with 429, 503 or 504.
	Throttled int64
	// Failed is the requests that gave up (after retries or on errors).
	Failed   int64
	ByStatus map[int]int64
}

func newThrottle(next http.RoundTripper, concurrency, maxRetries int, timeout time.Duration, log *slog.Logger) *throttle {
	return &throttle{next: next, sem: make(chan struct{}, concurrency), maxRetries: maxRetries, timeout: timeout, log: log}
}

// cancelOnClose ends an attempt's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func (t *throttle) stats() Stats {
	s := Stats{Requests: t.requests.Load(), Throttled: t.throttled.Load(), Failed: t.failed.Load(), ByStatus: map[int]int64{}}
	t.byStatus.Range(func(k, v any) bool {
		s.ByStatus[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	return s
}

// RoundTrip implements http.RoundTripper.
func (t *throttle) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// A RoundTripper must not change the caller's request.
	req = req.Clone(ctx)
	if req.Body != nil && req.GetBody == nil {
		// Keep the body so a retry can send it again (the SDK's bodies
		// are small JSON).
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.Body, _ = req.GetBody()
	}
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		if err := t.waitPause(ctx); err != nil {
			return nil, err
		}
		select {
		case t.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		r := req
		if attempt > 0 {
			r = req.Clone(ctx)
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					<-t.sem
					return nil, err
				}
				r.Body = body
			}
		}
		t.requests.Add(1)
		// Each attempt has its own timeout (a client-wide one would also
		// count the Retry-After waits); it ends when the body is closed.
		actx, cancel := context.WithTimeout(ctx, t.timeout)
		resp, err := t.next.RoundTrip(r.WithContext(actx))
		<-t.sem
		if err != nil {
			cancel()
			t.failed.Add(1)
			return nil, err
		}
		resp.Body = cancelOnClose{resp.Body, cancel}
		t.count(resp.StatusCode)
		if !retryable(resp.StatusCode) {
			return resp, nil
		}
		t.throttled.Add(1)
		wait, fromServer := retryAfter(resp.Header.Get("Retry-After"))
		if !fromServer {
			// Exponential backoff with full jitter around it.
			wait = backoff/2 + rand.N(backoff)
			backoff *= 2
		}
		if fromServer {
			t.pause(wait)
		}
		canRetry := attempt < t.maxRetries
		if !canRetry {
			t.failed.Add(1)
			return resp, nil // the SDK turns it into an error with the status
		}
		t.log.Warn("graph throttled, retrying", "status", resp.StatusCode, "wait", wait, "attempt", attempt+1, "path", req.URL.Path)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if !fromServer {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(h, 64); err == nil && secs >= 0 {
		// Clamp before converting: a huge value would overflow.
		return time.Duration(min(secs, 600) * float64(time.Second)), true
	}
	if at, err := http.ParseTime(h); err == nil {
		return min(max(time.Until(at), 0), 10*time.Minute), true
	}
	return 0, false
}

// pause holds every request back for d from now.
func (t *throttle) pause(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until := time.Now().Add(d); until.After(t.pauseUntil) {
		t.pauseUntil = until
	}
}

// Paused reports until when Graph asked the gateway to hold back.
func (t *throttle) paused() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pauseUntil
}

func (t *throttle) waitPause(ctx context.Context) error {
	for {
		d := time.Until(t.paused())
		if d <= 0 {
			return nil
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (t *throttle) count(status int) {
	v, _ := t.byStatus.LoadOrStore(status, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}
