package web

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	tenantA   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	tenantB   = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490" // allowed too
	tenantX   = "11111111-2222-3333-4444-555555555555" // not allowed
	apiClient = "6e74172b-be56-4843-9ff4-e66a39bb12e3" // the API's registration: aud
	addinApp  = "0f3a9b7c-1d2e-4f50-8a6b-7c8d9e0f1a2b" // the add-in's registration: azp
	userOID   = "690222be-ff1a-4d56-abd1-7e4f7d38e474"
)

// fakeEntra serves, over TLS, each tenant's v2.0 OpenID metadata and a key
// set shaped like Entra's (kty, use, kid, x5t, n, e, x5c, issuer template),
// and counts the fetches per tenant.
type fakeEntra struct {
	srv      *httptest.Server
	failMeta atomic.Bool // metadata answers 503

	mu   sync.Mutex
	keys map[string]fakeKey // by kid
	hits map[string]int     // "metadata <tid>", "keys <tid>"
}

type fakeKey struct {
	key  *rsa.PrivateKey
	cert []byte // self-signed, for x5c and x5t
}

func newFakeEntra(t *testing.T) *fakeEntra {
	t.Helper()
	f := &fakeEntra{keys: map[string]fakeKey{}, hits: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tid}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		tid := r.PathValue("tid")
		f.hit("metadata " + tid)
		if f.failMeta.Load() {
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                f.srv.URL + "/" + tid + "/v2.0",
			"jwks_uri":                              f.srv.URL + "/" + tid + "/discovery/v2.0/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /{tid}/discovery/v2.0/keys", func(w http.ResponseWriter, r *http.Request) {
		f.hit("keys " + r.PathValue("tid"))
		f.mu.Lock()
		defer f.mu.Unlock()
		keys := []map[string]any{}
		for kid, k := range f.keys {
			th := sha1.Sum(k.cert)
			keys = append(keys, map[string]any{
				"kty": "RSA", "use": "sig", "kid": kid,
				"x5t":    base64.RawURLEncoding.EncodeToString(th[:]),
				"n":      base64.RawURLEncoding.EncodeToString(k.key.N.Bytes()),
				"e":      "AQAB",
				"x5c":    []string{base64.StdEncoding.EncodeToString(k.cert)},
				"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
			})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEntra) hit(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits[what]++
}

func (f *fakeEntra) count(what string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[what]
}

// publish adds a signing key to every tenant's key set.
func (f *fakeEntra) publish(t *testing.T, kid string, k *rsa.PrivateKey) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "accounts.accesscontrol.windows.net"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[kid] = fakeKey{key: k, cert: der}
}

// claims are those of a v2.0 access token an Outlook add-in gets with NAA
// for api://<host>/<api client id>/access_as_user.
func (f *fakeEntra) claims(tid string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"aud": apiClient, "iss": f.srv.URL + "/" + tid + "/v2.0",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"azp": addinApp, "azpacr": "0", "name": "Alice Example", "preferred_username": "alice@example.com",
		"oid": userOID, "tid": tid, "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
		"scp": "access_as_user", "ver": "2.0",
	}
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signRS256(t *testing.T, k *rsa.PrivateKey, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestEntra(t *testing.T, f *fakeEntra, change func(*EntraConfig)) *Entra {
	t.Helper()
	cfg := EntraConfig{
		Tenants:    []string{tenantA, strings.ToUpper(tenantB)},
		Audiences:  []string{apiClient},
		Authority:  f.srv.URL + "/",
		ClientApps: []string{addinApp},
		Visibility: SeeStatus,
		HTTPClient: f.srv.Client(), // trusts the test certificate
		Logger:     slog.New(slog.DiscardHandler),
	}
	if change != nil {
		change(&cfg)
	}
	e, err := NewEntra(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// errorJSON is the error object of an answer.
func errorJSON(t *testing.T, body string) apiError {
	t.Helper()
	var v struct{ Error apiError }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return v.Error
}

func TestEntraTokens(t *testing.T) {
	f := newFakeEntra(t)
	k1 := rsaKey(t)
	f.publish(t, "k1", k1)
	s := newServer(t, func(o *Options) { o.Entra = newTestEntra(t, f, nil) })
	stranger := rsaKey(t)

	token := func(tid string, edit func(jwt.MapClaims)) string {
		c := f.claims(tid)
		if edit != nil {
			edit(c)
		}
		return signRS256(t, k1, "k1", c)
	}
	now := time.Now()
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	pubDER, err := x509.MarshalPKIXPublicKey(&k1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, f.claims(tenantA))
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const aliceStatus = `{"email":"alice@example.com","jid":"alice@chat","name":"Alice","state":"busy","status":"In a meeting until 14:30","source":"calendar","until":"2026-11-25T14:30:00Z","updated":"2026-11-25T14:00:00Z"}`

	tests := []struct {
		name  string
		token string
		code  int
		want  string // the exact body of a 200, or a part of the error message
	}{
		{"valid: status visibility", token(tenantA, nil), 200, aliceStatus},
		{"valid, second tenant", token(tenantB, nil), 200, aliceStatus},
		{"scope among others", token(tenantA, func(c jwt.MapClaims) { c["scp"] = "User.Read access_as_user" }), 200, aliceStatus},
		{"expired within leeway", token(tenantA, func(c jwt.MapClaims) { c["exp"] = at(-30 * time.Second) }), 200, aliceStatus},
		{"nbf within leeway", token(tenantA, func(c jwt.MapClaims) { c["nbf"] = at(30 * time.Second) }), 200, aliceStatus},
		{"an API key alongside", statusKey, 200, aliceStatus},

		{"wrong aud", token(tenantA, func(c jwt.MapClaims) { c["aud"] = "00000003-0000-0000-c000-000000000000" }), 401, "not for this API"},
		{"aud as the App ID URI", token(tenantA, func(c jwt.MapClaims) { c["aud"] = "api://example.com/" + apiClient }), 401, "not for this API"},
		{"aud missing", token(tenantA, func(c jwt.MapClaims) { delete(c, "aud") }), 401, "required claim"},
		{"wrong iss", token(tenantA, func(c jwt.MapClaims) { c["iss"] = "https://evil.example/" + tenantA + "/v2.0" }), 401, "issuer"},
		{"iss of the other allowed tenant", token(tenantA, func(c jwt.MapClaims) { c["iss"] = f.srv.URL + "/" + tenantB + "/v2.0" }), 401, "issuer"},
		{"v1 issuer", token(tenantA, func(c jwt.MapClaims) { c["iss"] = "https://sts.windows.net/" + tenantA + "/" }), 401, "issuer"},
		{"v1 token", token(tenantA, func(c jwt.MapClaims) {
			c["iss"], c["ver"], c["appid"] = "https://sts.windows.net/"+tenantA+"/", "1.0", addinApp
			delete(c, "azp")
		}), 401, "claims"},
		{"expired", token(tenantA, func(c jwt.MapClaims) { c["exp"] = at(-2 * time.Minute) }), 401, "expired"},
		{"no exp", token(tenantA, func(c jwt.MapClaims) { delete(c, "exp") }), 401, "required claim"},
		{"nbf beyond leeway", token(tenantA, func(c jwt.MapClaims) { c["nbf"] = at(5 * time.Minute) }), 401, "not valid yet"},
		{"iat in the future", token(tenantA, func(c jwt.MapClaims) { c["iat"] = at(5 * time.Minute) }), 401, "issued in the future"},
		{"missing scope", token(tenantA, func(c jwt.MapClaims) { c["scp"] = "User.Read" }), 403, "access_as_user"},
		{"app-only token: roles, no scp", token(tenantA, func(c jwt.MapClaims) { delete(c, "scp"); c["roles"] = []string{"access_as_user"} }), 403, "access_as_user"},
		{"client app not allowed", token(tenantA, func(c jwt.MapClaims) { c["azp"] = "99999999-0000-0000-0000-000000000000" }), 401, "claims"},
		{"oid missing", token(tenantA, func(c jwt.MapClaims) { delete(c, "oid") }), 401, "claims"},
		{"tenant not allowed", token(tenantX, func(c jwt.MapClaims) { c["iss"] = f.srv.URL + "/" + tenantX + "/v2.0" }), 401, "tenant is not allowed"},
		{"tid missing", token(tenantA, func(c jwt.MapClaims) { delete(c, "tid") }), 401, "tenant is not allowed"},
		{"alg none", unsigned(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), 401, "signature"},
		{"HS256 keyed with the public key", unsigned(jwt.SigningMethodHS256, pubDER), 401, "signature"},
		{"RS256 by a stranger naming kid k1", signRS256(t, stranger, "k1", f.claims(tenantA)), 401, "signature"},
		{"no kid", signRS256(t, k1, "", f.claims(tenantA)), 401, "signing key"},
		{"JWT-shaped garbage", "abc.def.ghi", 401, "malformed"},
		{"not a JWT and no key", "wrong", 401, "unknown or invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := do(s, "GET", "/api/v1/presence?email=alice@example.com", tt.token, "")
			if code != tt.code {
				t.Fatalf("%d %s, want %d", code, body, tt.code)
			}
			switch code {
			case 200:
				if strings.TrimSpace(body) != tt.want {
					t.Errorf("%s\nwant %s", body, tt.want)
				}
				return
			case 401:
				if e := errorJSON(t, body); e.Code != "unauthorized" || !strings.Contains(e.Message, tt.want) {
					t.Errorf("error %+v, want unauthorized with %q", e, tt.want)
				}
				if looksLikeJWT(tt.token) && !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate %q", h.Get("WWW-Authenticate"))
				}
			case 403:
				if e := errorJSON(t, body); e.Code != "insufficient_scope" || !strings.Contains(e.Message, tt.want) {
					t.Errorf("error %+v, want insufficient_scope with %q", e, tt.want)
				}
				if w := h.Get("WWW-Authenticate"); !strings.Contains(w, `error="insufficient_scope"`) || !strings.Contains(w, `scope="access_as_user"`) {
					t.Errorf("WWW-Authenticate %q", w)
				}
			}
			if strings.Contains(body, "busy") {
				t.Errorf("a refused caller saw presence: %s", body)
			}
		})
	}
	// One metadata and one key set fetch per allowed tenant that sent a
	// token; none ever for the tenant off the allow-list.
	for _, tid := range []string{tenantA, tenantB} {
		if m, k := f.count("metadata "+tid), f.count("keys "+tid); m != 1 || k != 1 {
			t.Errorf("tenant %s: metadata fetched %d times, keys %d; want 1 and 1", tid, m, k)
		}
	}
	if m, k := f.count("metadata "+tenantX), f.count("keys "+tenantX); m+k != 0 {
		t.Errorf("the tenant not allowed caused fetches: metadata %d, keys %d", m, k)
	}
}

func TestEntraCaller(t *testing.T) {
	f := newFakeEntra(t)
	k1 := rsaKey(t)
	f.publish(t, "k1", k1)
	e := newTestEntra(t, f, func(c *EntraConfig) { c.Visibility, c.ClientApps, c.Scope = SeeCalendar, nil, "Presence.Read" })
	c := f.claims(tenantA)
	c["scp"] = "Presence.Read"
	got, err := e.Verify(t.Context(), signRS256(t, k1, "k1", c))
	if err != nil {
		t.Fatal(err)
	}
	want := Caller{ID: "entra:" + tenantA + "/" + userOID, Visibility: SeeCalendar, Directory: true, Username: "alice@example.com"}
	if *got != want {
		t.Errorf("caller %+v, want %+v", *got, want)
	}
	// The default scope is no longer enough.
	if _, err := e.Verify(t.Context(), signRS256(t, k1, "k1", f.claims(tenantA))); !errors.Is(err, ErrInsufficientScope) {
		t.Errorf("scope access_as_user for Presence.Read: %v", err)
	}
}

// A key Entra rolls in after the key set was read is found with one
// refetch; a kid still unknown within the rate limit costs no fetch.
func TestEntraUnknownKID(t *testing.T) {
	f := newFakeEntra(t)
	k1 := rsaKey(t)
	f.publish(t, "k1", k1)
	e := newTestEntra(t, f, nil)
	s := newServer(t, func(o *Options) { o.Entra = e })
	get := func(tok string) int {
		code, _, body := do(s, "GET", "/api/v1/presence?email=alice@example.com", tok, "")
		t.Logf("%d %s", code, strings.TrimSpace(body))
		return code
	}
	if code := get(signRS256(t, k1, "k1", f.claims(tenantA))); code != 200 {
		t.Fatalf("k1: %d", code)
	}
	if n := f.count("keys " + tenantA); n != 1 {
		t.Fatalf("key set fetched %d times, want 1", n)
	}
	k2 := rsaKey(t)
	f.publish(t, "k2", k2)
	if code := get(signRS256(t, k2, "k2", f.claims(tenantA))); code != 200 {
		t.Fatalf("rolled-in k2: %d", code)
	}
	if n := f.count("keys " + tenantA); n != 2 {
		t.Fatalf("key set fetched %d times, want 2 (one refetch)", n)
	}
	if code := get(signRS256(t, k2, "k2", f.claims(tenantA))); code != 200 {
		t.Fatalf("k2 again: %d", code)
	}
	start := time.Now()
	if code := get(signRS256(t, rsaKey(t), "k3", f.claims(tenantA))); code != 401 {
		t.Fatalf("unknown k3: %d", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the throttled lookup took %v", d)
	}
	if n := f.count("keys " + tenantA); n != 2 {
		t.Errorf("key set fetched %d times, want still 2 (throttled)", n)
	}
	if m := f.count("metadata " + tenantA); m != 1 {
		t.Errorf("metadata fetched %d times, want 1", m)
	}
}

// Startup does not need Entra; while it is unreachable a token gets 503
// (it may be good), failures are not retried at once, and it recovers.
func TestEntraUnavailable(t *testing.T) {
	dead := httptest.NewTLSServer(http.NotFoundHandler())
	dead.Close()
	e, err := NewEntra(t.Context(), EntraConfig{Tenants: []string{tenantA}, Audiences: []string{apiClient}, Authority: dead.URL,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("NewEntra with Entra unreachable: %v", err)
	}
	f := newFakeEntra(t)
	k1 := rsaKey(t)
	f.publish(t, "k1", k1)
	if _, err := e.Verify(t.Context(), signRS256(t, k1, "k1", f.claims(tenantA))); !errors.Is(err, ErrEntraUnavailable) {
		t.Fatalf("unreachable: %v", err)
	}

	f.failMeta.Store(true)
	e = newTestEntra(t, f, nil)
	s := newServer(t, func(o *Options) { o.Entra = e })
	tok := signRS256(t, k1, "k1", f.claims(tenantA))
	for range 3 {
		code, h, body := do(s, "GET", "/api/v1/presence?email=alice@example.com", tok, "")
		if code != 503 || errorJSON(t, body).Code != "unavailable" || h.Get("Retry-After") == "" {
			t.Fatalf("while metadata fails: %d %v %s", code, h, body)
		}
	}
	if n := f.count("metadata " + tenantA); n != 1 {
		t.Errorf("metadata fetched %d times in the retry interval, want 1", n)
	}
	f.failMeta.Store(false)
	e.retryAfter = 0
	if code, _, body := do(s, "GET", "/api/v1/presence?email=alice@example.com", tok, ""); code != 200 {
		t.Fatalf("after recovery: %d %s", code, body)
	}
}

// Tokens of a tenant arriving together cause one load.
func TestEntraConcurrentFirstTokens(t *testing.T) {
	f := newFakeEntra(t)
	k1 := rsaKey(t)
	f.publish(t, "k1", k1)
	e := newTestEntra(t, f, nil)
	tok := signRS256(t, k1, "k1", f.claims(tenantB))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := e.Verify(t.Context(), tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if m, k := f.count("metadata "+tenantB), f.count("keys "+tenantB); m != 1 || k != 1 {
		t.Errorf("metadata fetched %d times, keys %d; want 1 and 1", m, k)
	}
	// A caller that gives up does not spoil the load for the others.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _ = e.Verify(ctx, signRS256(t, k1, "k1", f.claims(tenantA))) // most likely ctx.Err(), while the load goes on
	if _, err := e.Verify(t.Context(), signRS256(t, k1, "k1", f.claims(tenantA))); err != nil {
		t.Errorf("after a cancelled first token: %v", err)
	}
	if m := f.count("metadata " + tenantA); m != 1 {
		t.Errorf("tenant A: metadata fetched %d times, want 1", m)
	}
}

func TestNewEntraRefuses(t *testing.T) {
	ok := EntraConfig{Tenants: []string{tenantA}, Audiences: []string{apiClient}}
	tests := []struct {
		name   string
		change func(*EntraConfig)
		want   string
	}{
		{"http authority", func(c *EntraConfig) { c.Authority = "http://login.microsoftonline.com" }, "https"},
		{"no tenants", func(c *EntraConfig) { c.Tenants = nil }, "tenants"},
		{"tenant not a GUID", func(c *EntraConfig) { c.Tenants = []string{"contoso.onmicrosoft.com"} }, "GUID"},
		{"no audiences", func(c *EntraConfig) { c.Audiences = nil }, "audiences"},
		{"two scopes", func(c *EntraConfig) { c.Scope = "a b" }, "one scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			if _, err := NewEntra(t.Context(), c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want one about %s", err, tt.want)
			}
		})
	}
	if _, err := NewEntra(t.Context(), ok); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for s, want := range map[string]bool{
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln": true,
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.":      true, // alg none: refused by Entra, not taken for a key
		"status-key-0123456789":                     false,
		"a.b":                                       false,
		"a.b.c.d":                                   false,
		".b.c":                                      false,
		"a.b+/.c":                                   false,
		"a.b=.c":                                    false,
	} {
		if got := looksLikeJWT(s); got != want {
			t.Errorf("looksLikeJWT(%q) = %v, want %v", s, got, want)
		}
	}
}

// An Entra ID user is a person of the directory: the address the token
// names resolves to their JID, which proves an Openfire req_jid; a user the
// directory does not know learns nothing about anyone.
func TestEntraPerson(t *testing.T) {
	f := newFakeEntra(t)
	k1 := rsaKey(t)
	f.publish(t, "k1", k1)
	s := newServer(t, func(o *Options) { o.Entra = newTestEntra(t, f, nil) })
	as := func(user string) string {
		c := f.claims(tenantA)
		if user == "" {
			delete(c, "preferred_username")
		} else {
			c["preferred_username"] = user
		}
		return signRS256(t, k1, "k1", c)
	}
	alice := as("Alice@Example.com")
	tests := []struct {
		name, token, target string
		code                int
		want                string // the body of a 200, or the error code
	}{
		{"a colleague asks", alice, "/api/v1/presence?email=carol@example.com", 200,
			`{"email":"carol@example.com","jid":"carol@chat","state":"available","source":"xmpp"}`},
		{"a guest", as("guest@partner.example"), "/api/v1/presence?email=carol@example.com", 403, "not_in_directory"},
		{"no address in the token", as(""), "/api/v1/presence?email=carol@example.com", 403, "not_in_directory"},
		{"a guest asks a badge", as("guest@partner.example"), "/badge/carol@example.com.svg", 403, "not_in_directory"},
		// Openfire's subscribed mode: req_jid must be the caller's own JID.
		{"openfire: own req_jid", alice, "/plugins/presence/status?type=text&jid=carol@chat&req_jid=Alice@Chat/pc", 200, "Available\n"},
		{"openfire: someone else's req_jid", alice, "/plugins/presence/status?type=text&jid=carol@chat&req_jid=carol@chat", 200, "null\n"},
		{"openfire: guest", as("guest@partner.example"), "/plugins/presence/status?type=text&jid=carol@chat&req_jid=guest@partner.example", 403, "not_in_directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := do(s, "GET", tt.target, tt.token, "")
			if code != tt.code {
				t.Fatalf("%d %s, want %d", code, body, tt.code)
			}
			if code == 200 {
				if strings.TrimSpace(body) != strings.TrimSpace(tt.want) {
					t.Errorf("%q, want %q", body, tt.want)
				}
				return
			}
			if e := errorJSON(t, body); e.Code != tt.want {
				t.Errorf("error %+v, want code %s", e, tt.want)
			}
			if strings.Contains(body, "available") {
				t.Errorf("a refused caller saw presence: %s", body)
			}
		})
	}
}
