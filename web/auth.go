package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Caller is who asks, as authentication found out.
type Caller struct {
	// ID names the caller for logs and rate limits ("key:intranet",
	// "anonymous:192.0.2.1").
	ID string
	// Anonymous is true when no credentials were given.
	Anonymous bool
	// Visibility is how much of a person the caller may see.
	Visibility Visibility
	// Directory lets the caller learn whether an address exists (404).
	Directory bool
	// Username is an Entra ID user's preferred_username, for display and
	// logs only: it can change and be reused, so ID is what identifies.
	Username string
	// JID is the caller's own bare JID, lower-cased, when its credentials
	// prove it: the only identity an Openfire req_jid may claim. An Entra
	// ID user's JID is the directory's for the address the token names
	// (entraPerson); an API key is a service's and has none.
	JID string
}

type callerKey struct{}

func callerFrom(r *http.Request) *Caller {
	c, _ := r.Context().Value(callerKey{}).(*Caller)
	return c
}

// APIKey is a service's key: only its SHA-256 is configured, so the
// config file does not hold the secret itself.
type APIKey struct {
	Name string
	// SHA256 is the hex SHA-256 of the key.
	SHA256     string
	Visibility Visibility
}

// HashKey returns what to put in the config for a key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// authenticate finds the caller as authenticateCaller does and passes it
// on in the request's context (callerFrom).
func (s *Server) authenticate(group string, next http.HandlerFunc) http.HandlerFunc {
	return s.authenticateCaller(group, func(w http.ResponseWriter, r *http.Request, c *Caller) {
		next(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// authenticateCaller finds the caller: a bearer Entra ID access token (when
// Options.Entra is set, any bearer token shaped like a JWT), a bearer API
// key, or anonymous when the endpoint group allows it. It answers 401 (403
// for a token without the required scope) itself when none applies. The
// lookups take the caller as an argument: a request copied with a new
// context is a cost they need not pay.
func (s *Server) authenticateCaller(group string, next func(http.ResponseWriter, *http.Request, *Caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var c *Caller
		if auth := r.Header.Get("Authorization"); auth != "" {
			// Failed credentials are limited per client address, so keys
			// cannot be guessed at line rate (and forged JWTs cost no
			// unbounded RSA work).
			fails := "fail:" + clientIP(r)
			if !s.peek(fails) {
				w.Header().Set("Retry-After", "10")
				writeError(w, http.StatusTooManyRequests, "rate_limited", "too many failed authentications; wait")
				return
			}
			token, ok := strings.CutPrefix(auth, "Bearer ")
			if !ok {
				s.allow(fails)
				writeError(w, http.StatusUnauthorized, "unauthorized", "Authorization must be a Bearer token")
				return
			}
			token = strings.TrimSpace(token)
			if s.opts.Entra != nil && looksLikeJWT(token) {
				var err error
				if c, err = s.opts.Entra.Verify(r.Context(), token); err != nil {
					s.allow(fails)
					s.entraRefused(w, err)
					return
				}
				if !s.entraPerson(w, c) {
					return
				}
			} else if c = s.keyCaller(token); c == nil {
				s.allow(fails)
				writeError(w, http.StatusUnauthorized, "unauthorized", "unknown or invalid token")
				return
			}
		} else if s.anonymous[group] {
			c = &Caller{ID: "anonymous:" + clientIP(r), Anonymous: true, Visibility: s.opts.AnonymousVisibility}
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="presencegw"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "authentication required")
			return
		}
		if !s.allow(c.ID) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests; slow down")
			return
		}
		next(w, r, c)
	}
}

// entraRefused answers a refused Entra ID token as RFC 6750 says: 403
// insufficient_scope when only the scope is missing, 401 invalid_token
// otherwise. When the tenant's keys cannot be fetched the token may well be
// good: 503, so the client retries rather than signs in again.
func (s *Server) entraRefused(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrInsufficientScope):
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="presencegw", error="insufficient_scope", scope=%q`, s.opts.Entra.scope))
		writeError(w, http.StatusForbidden, "insufficient_scope", fmt.Sprintf("the token lacks the scope %s", s.opts.Entra.scope))
	case errors.Is(err, ErrEntraUnavailable):
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "cannot verify Entra ID tokens now (signing keys unavailable); try again later")
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="presencegw", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "invalid Entra ID token: "+entraProblem(err))
	}
}

// entraPerson maps a verified Entra ID user to a person of the directory
// by the address the token names (preferred_username, the UPN, which the
// directory indexes with mail and proxyAddresses), and fills in the
// caller's JID. A user the directory does not know — a guest,
// an external account, a leaver — learns nothing about anyone: 403. The
// object ID stays the caller's identity for rate limits and logs; it is
// not used to find the person because on-premises directories do not hold
// it. It answers itself and returns false when the caller is refused.
func (s *Server) entraPerson(w http.ResponseWriter, c *Caller) bool {
	if c.Username != "" {
		if e := s.backend.Lookup(c.Username); e.Status == Found && e.JID != "" {
			c.JID = strings.ToLower(e.JID)
			return true
		}
	}
	writeError(w, http.StatusForbidden, "not_in_directory",
		fmt.Sprintf("your account %q is not a person of this organisation's directory; presence is shown to colleagues only", c.Username))
	return false
}

// keyCaller checks an API key against every configured hash in constant
// time, so timing tells nothing about which key is close.
func (s *Server) keyCaller(token string) *Caller {
	sum := sha256.Sum256([]byte(token))
	var found *APIKey
	for i := range s.keys {
		k := &s.keys[i]
		if subtle.ConstantTimeCompare(sum[:], k.hash) == 1 {
			found = &k.APIKey
		}
	}
	if found == nil {
		return nil
	}
	return &Caller{ID: "key:" + found.Name, Visibility: found.Visibility, Directory: true}
}

type apiKey struct {
	APIKey
	hash []byte
}

func parseKeys(keys []APIKey) ([]apiKey, error) {
	out := make([]apiKey, 0, len(keys))
	for _, k := range keys {
		h, err := hex.DecodeString(k.SHA256)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("api key %s: sha256 must be 64 hex digits", k.Name)
		}
		out = append(out, apiKey{APIKey: k, hash: h})
	}
	return out, nil
}

// clientIP is the client's address for rate limits: an IPv6 client is
// its /64, since one host usually holds a whole /64.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	// netip parses without allocating; a zoned address is left as it is
	// (net.ParseIP, used before, did not parse it either).
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() && ip.Zone() == "" {
		p, _ := ip.Prefix(64)
		return p.Addr().String() + "/64"
	}
	return host
}

// limiters is a token bucket per caller, forgotten after a while idle.
type limiters struct {
	mu    sync.Mutex
	rate  rate.Limit
	burst int
	m     map[string]*limiterEntry
	last  time.Time
}

type limiterEntry struct {
	l    *rate.Limiter
	seen time.Time
}

func (s *Server) allow(id string) bool {
	if s.limits.rate <= 0 {
		return true
	}
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.last) > time.Minute {
		for k, e := range l.m {
			if now.Sub(e.seen) > 10*time.Minute {
				delete(l.m, k)
			}
		}
		l.last = now
	}
	e, ok := l.m[id]
	if !ok {
		e = &limiterEntry{l: rate.NewLimiter(l.rate, l.burst)}
		l.m[id] = e
	}
	e.seen = now
	return e.l.AllowN(now, 1)
}

// peek reports whether id's bucket has a token left, without taking it.
func (s *Server) peek(id string) bool {
	if s.limits.rate <= 0 {
		return true
	}
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[id]
	return !ok || e.l.TokensAt(time.Now()) >= 1
}

// cors answers preflights and sets CORS headers for allowed origins only.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if len(s.origins) > 0 {
			// The answer depends on the origin: caches must know.
			w.Header().Add("Vary", "Origin")
		}
		if origin != "" && s.origins[origin] {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
