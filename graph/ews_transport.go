package graph

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrEWSUnauthorized is wrapped by the error of a request Exchange
// answered with HTTP 401: wrong credentials, an expired token, or an auth
// method the EWS virtual directory does not offer. It is not retried.
var ErrEWSUnauthorized = errors.New("ews: unauthorized (HTTP 401)")

// EWSStatusError is an answer with an HTTP status the source does not
// retry or recognise (403, 404, a redirect …).
type EWSStatusError struct {
	Operation string
	Status    int
	// Snippet is the start of the answer's body, for the log.
	Snippet string
}

func (e *EWSStatusError) Error() string {
	s := fmt.Sprintf("ews %s: HTTP %d %s", e.Operation, e.Status, http.StatusText(e.Status))
	if e.Snippet != "" {
		s += ": " + e.Snippet
	}
	return s
}

// EWSStats counts the source's traffic.
type EWSStats struct {
	// Requests is every SOAP request sent, retries included; by operation.
	Requests    int64
	ByOperation map[string]int64
	// HTTPExchanges is every HTTP round trip, NTLM handshake legs included
	// (three for a request on a new connection, one on an authenticated
	// one).
	HTTPExchanges int64
	// ByStatus counts the answers by HTTP status.
	ByStatus map[int]int64
	// ServerBusy is the ErrorServerBusy answers; BackOff the time all
	// requests were held back for them.
	ServerBusy int64
	BackOff    time.Duration
	// Retried is the requests sent again (busy, 5xx, broken connections).
	Retried int64
	// Failed is the requests that gave up.
	Failed int64
}

type ewsCounters struct {
	requests, exchanges, busy, backOff, retried, failed atomic.Int64
	byStatus, byOp                                      sync.Map // key → *atomic.Int64
}

func bump(m *sync.Map, k any) {
	v, _ := m.LoadOrStore(k, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// Stats returns the source's request counters.
func (s *EWS) Stats() EWSStats {
	st := EWSStats{Requests: s.st.requests.Load(), HTTPExchanges: s.st.exchanges.Load(), ServerBusy: s.st.busy.Load(),
		BackOff: time.Duration(s.st.backOff.Load()), Retried: s.st.retried.Load(), Failed: s.st.failed.Load(),
		ByStatus: map[int]int64{}, ByOperation: map[string]int64{}}
	s.st.byStatus.Range(func(k, v any) bool {
		st.ByStatus[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	s.st.byOp.Range(func(k, v any) bool {
		st.ByOperation[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return st
}

// countingTransport counts HTTP round trips.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

// call sends a SOAP request and hands the answer to parse, retrying what
// Exchange says is passing:
//
//   - ErrorServerBusy (a fault, or a busy ResponseMessage): every request is
//     held back for BackOffMilliseconds, then this one is sent again; a
//     back-off longer than MaxBackOff or past the caller's deadline fails it
//     at once (the others still wait);
//   - HTTP 502/503/504, a 500 that is not a SOAP fault, a broken connection:
//     sent again after RetryDelay, doubled each time, with jitter (or the
//     Retry-After the server gives);
//
// each at most MaxRetries times. Other SOAP faults fail the request with
// Exchange's code and text (*EWSFault); HTTP 401 fails it with
// ErrEWSUnauthorized (with NTLM after one more handshake); a certificate
// the CA file does not vouch for fails it at once. impersonated names the
// mailbox the request impersonates, for the X-AnchorMailbox header.
func (s *EWS) call(ctx context.Context, op string, env []byte, impersonated string, parse func([]byte) error) error {
	delay := s.cfg.RetryDelay
	ntlmRetried := false
	for attempt := 0; ; attempt++ {
		if err := s.waitPause(ctx); err != nil {
			return fmt.Errorf("ews %s: %w", op, err)
		}
		raw, resp, err := s.post(ctx, op, env, impersonated)
		var wait time.Duration // from the server; 0: our backoff
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("ews %s: %w", op, ctx.Err())
			}
			var cert *tls.CertificateVerificationError
			if errors.Is(err, errTooLarge) || errors.As(err, &cert) {
				// Not passing: a retry would get the same.
				s.st.failed.Add(1)
				if cert != nil {
					return fmt.Errorf("ews %s: %w (set ca_file to the CA that issued the Exchange certificate)", op, err)
				}
				return err
			}
			err = fmt.Errorf("ews %s: %w", op, err)
		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusInternalServerError && isXML(raw):
			// SOAP faults come with 500; both go to the operation's parser,
			// which returns the fault as an *EWSFault.
			err = parse(raw)
			if err == nil {
				return nil
			}
			var fault *EWSFault
			switch {
			case errors.Is(err, ErrServerBusy):
				s.st.busy.Add(1)
				wait = backOffOf(err)
				if wait <= 0 {
					break // busy without a back-off: ours
				}
				if wait > s.cfg.MaxBackOff {
					s.pause(s.cfg.MaxBackOff)
					s.st.failed.Add(1)
					s.log.Warn("ews: server busy; back-off longer than allowed, holding all requests back", "operation", op, "back_off", wait, "held", s.cfg.MaxBackOff)
					return fmt.Errorf("%w (the back-off is longer than the %s allowed)", err, s.cfg.MaxBackOff)
				}
				s.pause(wait)
				s.st.backOff.Add(int64(wait))
			case errors.As(err, &fault) && fault.ResponseCode == "ErrorInternalServerTransientError":
			case fault != nil:
				s.st.failed.Add(1)
				return err
			case resp.StatusCode != http.StatusOK:
				// A 500 that is not a SOAP fault: a server error like any.
				err = &EWSStatusError{Operation: op, Status: resp.StatusCode, Snippet: snippet(raw)}
			default:
				if !isXML(raw) {
					err = fmt.Errorf("ews %s: the answer is %s, not SOAP (a proxy or login page in the way?): %s",
						op, resp.Header.Get("Content-Type"), snippet(raw))
				}
				s.st.failed.Add(1)
				return err
			}
		case resp.StatusCode == http.StatusUnauthorized:
			err = fmt.Errorf("%w: %s refused %s as %s with %s auth; check the credentials and that the EWS virtual directory allows %s (it offers: %s)",
				ErrEWSUnauthorized, s.url.Host, op, s.user(), s.cfg.Auth, s.cfg.Auth, offered(resp.Header))
			// NTLM authenticates a connection, and a handshake whose legs
			// the connection pool spread over two connections fails: one
			// fresh try tells that from wrong credentials.
			if s.cfg.Auth != "ntlm" || ntlmRetried {
				s.st.failed.Add(1)
				return err
			}
			ntlmRetried = true
		case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable ||
			resp.StatusCode == http.StatusGatewayTimeout || resp.StatusCode == http.StatusInternalServerError:
			err = &EWSStatusError{Operation: op, Status: resp.StatusCode, Snippet: snippet(raw)}
			if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				wait = d
				s.pause(wait)
			}
		default:
			s.st.failed.Add(1)
			return &EWSStatusError{Operation: op, Status: resp.StatusCode, Snippet: snippet(raw)}
		}
		// err is retryable; wait, unless the retries or the time are up.
		if wait <= 0 {
			wait = delay/2 + rand.N(delay)
			delay *= 2
		}
		if attempt >= s.cfg.MaxRetries {
			s.st.failed.Add(1)
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
			s.st.failed.Add(1)
			return fmt.Errorf("%w (a retry in %s would pass the deadline)", err, wait.Round(time.Millisecond))
		}
		s.st.retried.Add(1)
		s.log.Warn("ews: retrying", "operation", op, "wait", wait.Round(time.Millisecond), "attempt", attempt+1, "err", err)
		if !sleepCtx(ctx, wait) {
			return fmt.Errorf("ews %s: %w", op, ctx.Err())
		}
	}
}

var errTooLarge = errors.New("answer too large")

// backOffOf is the BackOffMilliseconds of a busy answer.
func backOffOf(err error) time.Duration {
	var fault *EWSFault
	if errors.As(err, &fault) {
		return fault.BackOff
	}
	var re *EWSResponseError
	if errors.As(err, &re) {
		return re.BackOff
	}
	return 0
}

// post sends one HTTP request and reads the answer, with a slot's client
// and within the per-attempt timeout.
func (s *EWS) post(ctx context.Context, op string, env []byte, impersonated string) ([]byte, *http.Response, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	s.idleMu.Lock()
	client := s.idle[len(s.idle)-1]
	s.idle = s.idle[:len(s.idle)-1]
	s.idleMu.Unlock()
	defer func() {
		s.idleMu.Lock()
		s.idle = append(s.idle, client)
		s.idleMu.Unlock()
		<-s.sem
	}()
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, s.cfg.URL, bytes.NewReader(env))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	req.Header.Set("User-Agent", "presencegw")
	if impersonated != "" {
		// Routes the request to the impersonated mailbox's server
		// (Exchange 2013 and later).
		req.Header.Set("X-AnchorMailbox", impersonated)
	}
	switch s.cfg.Auth {
	case "ntlm", "basic":
		// The NTLM Negotiator takes the credentials from here and never
		// sends them as Basic.
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	case "bearer":
		tok, err := s.cfg.Token(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("access token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	s.st.requests.Add(1)
	bump(&s.st.byOp, op)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	bump(&s.st.byStatus, resp.StatusCode)
	raw, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxResponseBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	if int64(len(raw)) > s.cfg.MaxResponseBytes {
		return nil, nil, fmt.Errorf("ews %s: %w: more than %d bytes (ask for fewer mailboxes or a shorter window, or raise max_response_bytes)",
			op, errTooLarge, s.cfg.MaxResponseBytes)
	}
	return raw, resp, nil
}

func (s *EWS) user() string {
	if s.cfg.Auth == "bearer" {
		return "(token)"
	}
	return s.cfg.Username
}

// offered lists the auth schemes of a 401's WWW-Authenticate headers.
func offered(h http.Header) string {
	var schemes []string
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, _, _ := strings.Cut(v, " ")
		schemes = append(schemes, scheme)
	}
	if len(schemes) == 0 {
		return "none named"
	}
	return strings.Join(schemes, ", ")
}

// isXML reports whether an answer looks like XML (a SOAP envelope), not an
// HTML error or login page.
func isXML(raw []byte) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n\ufeff")
	return bytes.HasPrefix(raw, []byte("<?xml")) || bytes.HasPrefix(raw, []byte("<s:")) ||
		bytes.HasPrefix(raw, []byte("<soap")) || bytes.HasPrefix(raw, []byte("<Envelope")) ||
		bytes.HasPrefix(raw, []byte("<S:")) || bytes.HasPrefix(raw, []byte("<SOAP"))
}

// snippet is the start of a body as one line, for errors.
func snippet(raw []byte) string {
	s := strings.Join(strings.Fields(string(raw[:min(len(raw), 300)])), " ")
	return strings.ToValidUTF8(s, "?")
}

// pause holds every request back for d from now: Exchange throttles the
// account, so the next request would be refused too.
func (s *EWS) pause(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until := time.Now().Add(d); until.After(s.pauseUntil) {
		s.pauseUntil = until
	}
}

func (s *EWS) waitPause(ctx context.Context) error {
	for {
		s.mu.Lock()
		d := time.Until(s.pauseUntil)
		s.mu.Unlock()
		if d <= 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(d).After(dl) {
			return fmt.Errorf("%w: Exchange asked to hold back for %s more, past the deadline", ErrServerBusy, d.Round(time.Millisecond))
		}
		if !sleepCtx(ctx, d) {
			return ctx.Err()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
