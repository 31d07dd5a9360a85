package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// DefaultEntraAuthority is the Entra ID sign-in host of Microsoft's global
// cloud.
const DefaultEntraAuthority = "https://login.microsoftonline.com"

const (
	// entraLeeway is the clock skew allowed for exp, nbf and iat.
	entraLeeway = time.Minute
	// entraFetchTimeout bounds one fetch of metadata or keys.
	entraFetchTimeout = 10 * time.Second
)

// Why Verify refuses a token, for errors.Is.
var (
	// ErrInsufficientScope: the token is good but lacks the required scope
	// in scp (HTTP 403, not 401).
	ErrInsufficientScope = errors.New("the token lacks the required scope")
	// ErrTenantNotAllowed: the token's tid is not on the allow-list.
	ErrTenantNotAllowed = errors.New("tenant not allowed")
	// ErrEntraUnavailable: the tenant's signing keys could not be fetched
	// (metadata or key set unreachable or bad); a later token tries again.
	ErrEntraUnavailable = errors.New("the tenant's signing keys are unavailable")
	// errClaims: a claim checked here rather than by jwt is wrong.
	errClaims = errors.New("claims not accepted")
)

// EntraConfig configures the verifier of Entra ID access tokens: those an
// Outlook add-in gets with Nested App Authentication for this API.
type EntraConfig struct {
	// Tenants is the allow-list of tenant IDs (GUIDs). Keys are fetched
	// for these tenants only, each from its own OpenID metadata, on the
	// first token from that tenant.
	Tenants []string
	// Audiences accepted in aud: the API's application (client) ID, which
	// is what v2.0 access tokens carry.
	Audiences []string
	// Scope must be among the delegated scopes in scp. Default
	// "access_as_user".
	Scope string
	// Authority is the sign-in host, DefaultEntraAuthority when empty. It
	// must be https.
	Authority string
	// ClientApps, when set, are the only client applications (azp) whose
	// tokens are accepted: the add-in's client ID.
	ClientApps []string
	// Visibility is what these callers see.
	Visibility Visibility
	// HTTPClient fetches metadata and keys. Default: a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Logger receives key fetch failures. Default slog.Default().
	Logger *slog.Logger
}

// Entra verifies Entra ID v2.0 access tokens: an RS256 signature by a key
// of the token's tenant (which must be allowed), that tenant's exact v2.0
// issuer, an accepted audience, exp/nbf/iat with a minute of leeway, the
// required scope and, if configured, the client application. Safe for
// concurrent use.
type Entra struct {
	ctx        context.Context
	authority  string
	audiences  []string
	scope      string
	clientApps []string
	visibility Visibility
	client     *http.Client
	log        *slog.Logger
	tenants    map[string]*entraTenant
	parser     *jwt.Parser

	// retryAfter is how long a failed key load answers for its tenant
	// before a token tries again; unknownKID is the least time between two
	// key set refetches for a token whose kid is not known.
	retryAfter, unknownKID time.Duration
}

// entraTenant is one allowed tenant and, once loaded, its key set.
type entraTenant struct {
	id     string
	issuer string // the only iss accepted: {authority}/{tid}/v2.0

	mu      sync.Mutex
	keys    keyfunc.Keyfunc
	stop    context.CancelFunc // ends the key set's refresh
	loading chan struct{}      // closed when the load under way ends
	err     error              // of the last load
	failed  time.Time          // of the last load that failed
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// NewEntra checks cfg and returns a verifier. It fetches nothing: each
// tenant's keys are fetched on its first token, so startup does not depend
// on Microsoft being reachable. ctx bounds the life of the key sets'
// background refreshes.
func NewEntra(ctx context.Context, cfg EntraConfig) (*Entra, error) {
	authority := strings.TrimSuffix(cfg.Authority, "/")
	if authority == "" {
		authority = DefaultEntraAuthority
	}
	if u, err := url.Parse(authority); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("entra: authority %q must be an https URL", cfg.Authority)
	}
	if len(cfg.Tenants) == 0 {
		return nil, errors.New("entra: no tenants allowed")
	}
	if len(cfg.Audiences) == 0 || slices.Contains(cfg.Audiences, "") {
		return nil, errors.New("entra: audiences are required")
	}
	scope := cfg.Scope
	if scope == "" {
		scope = "access_as_user"
	}
	if strings.ContainsAny(scope, " \t") {
		return nil, fmt.Errorf("entra: scope %q must be one scope", scope)
	}
	e := &Entra{ctx: ctx, authority: authority, audiences: slices.Clone(cfg.Audiences), scope: scope,
		clientApps: slices.Clone(cfg.ClientApps), visibility: cfg.Visibility, client: cfg.HTTPClient, log: cfg.Logger,
		tenants: map[string]*entraTenant{}, retryAfter: 30 * time.Second, unknownKID: 5 * time.Minute}
	if e.client == nil {
		e.client = &http.Client{Timeout: entraFetchTimeout}
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	for _, tid := range cfg.Tenants {
		tid = strings.ToLower(strings.TrimSpace(tid))
		if !guidRE.MatchString(tid) {
			return nil, fmt.Errorf("entra: tenant %q is not a tenant ID (a GUID)", tid)
		}
		e.tenants[tid] = &entraTenant{id: tid, issuer: authority + "/" + tid + "/v2.0"}
	}
	e.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}), // none, HS*, PS*, ES* are refused before any key is looked up
		jwt.WithAudience(e.audiences...),        // any of them
		jwt.WithLeeway(entraLeeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	return e, nil
}

// entraClaims are the claims of an Entra access token read here.
type entraClaims struct {
	jwt.RegisteredClaims
	TenantID          string `json:"tid"`
	ObjectID          string `json:"oid"`
	Scope             string `json:"scp"`
	Version           string `json:"ver"`
	AuthorizedParty   string `json:"azp"`
	PreferredUsername string `json:"preferred_username"`
}

// Verify checks a raw access token (without "Bearer ") and returns its
// caller, "entra:<tid>/<oid>". Errors wrap ErrInsufficientScope,
// ErrTenantNotAllowed, ErrEntraUnavailable or jwt's errors.
func (e *Entra) Verify(ctx context.Context, token string) (*Caller, error) {
	var claims entraClaims
	var tenant *entraTenant
	_, err := e.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// The claims are decoded, not yet trusted: tid only picks the key
		// set, so a tenant off the allow-list never causes a fetch and one
		// tenant's keys never verify another tenant's token.
		if kid, _ := t.Header["kid"].(string); kid == "" {
			return nil, errors.New("no kid in the header")
		}
		if tenant = e.tenants[claims.TenantID]; tenant == nil {
			return nil, fmt.Errorf("%w: %q", ErrTenantNotAllowed, claims.TenantID)
		}
		kf, err := tenant.keyfunc(ctx, e)
		if err != nil {
			return nil, err
		}
		return kf.KeyfuncCtx(ctx)(t)
	})
	if err != nil {
		return nil, err
	}
	// Signature, exp, nbf, iat and aud are good.
	switch {
	case claims.Version != "2.0":
		return nil, fmt.Errorf("%w: ver %q, want 2.0", errClaims, claims.Version)
	case claims.Issuer != tenant.issuer:
		return nil, fmt.Errorf("%w: %q", jwt.ErrTokenInvalidIssuer, claims.Issuer)
	case !guidRE.MatchString(claims.ObjectID):
		return nil, fmt.Errorf("%w: oid %q", errClaims, claims.ObjectID)
	case len(e.clientApps) > 0 && !slices.Contains(e.clientApps, claims.AuthorizedParty):
		return nil, fmt.Errorf("%w: client application (azp) %q not allowed", errClaims, claims.AuthorizedParty)
	case !slices.Contains(strings.Fields(claims.Scope), e.scope):
		return nil, fmt.Errorf("%w %q (scp %q)", ErrInsufficientScope, e.scope, claims.Scope)
	}
	return &Caller{ID: "entra:" + claims.TenantID + "/" + claims.ObjectID, Visibility: e.visibility,
		Directory: true, Username: claims.PreferredUsername}, nil
}

// keyfunc returns the tenant's key set, loading it first if need be. One
// load runs at a time; a failed one answers for retryAfter, so a flood of
// tokens during an outage does not hammer Entra.
func (t *entraTenant) keyfunc(ctx context.Context, e *Entra) (keyfunc.Keyfunc, error) {
	t.mu.Lock()
	if t.keys != nil {
		defer t.mu.Unlock()
		return t.keys, nil
	}
	if t.err != nil && time.Since(t.failed) < e.retryAfter {
		defer t.mu.Unlock()
		return nil, t.err
	}
	done := t.loading
	if done == nil {
		done = make(chan struct{})
		t.loading = done
		// Not bound to the request: a caller that goes away must not
		// cancel the load that others wait for.
		go t.load(e, done)
	}
	t.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys != nil {
		return t.keys, nil
	}
	return nil, t.err
}

func (t *entraTenant) load(e *Entra, done chan struct{}) {
	defer close(done)
	keys, stop, err := e.loadKeys(t)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.loading = nil
	if err != nil {
		t.err, t.failed = fmt.Errorf("%w: tenant %s: %v", ErrEntraUnavailable, t.id, err), time.Now()
		e.log.Warn("entra: cannot load signing keys", "tenant", t.id, "error", err)
		return
	}
	t.keys, t.stop, t.err = keys, stop, nil
}

// loadKeys reads the tenant's v2.0 OpenID metadata, then its key set,
// which is refreshed hourly and, at most every unknownKID, when a token
// names a kid it does not hold.
func (e *Entra) loadKeys(t *entraTenant) (keyfunc.Keyfunc, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(e.ctx, entraFetchTimeout)
	defer cancel()
	jwksURI, err := e.discover(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	failFirst := false
	life, stop := context.WithCancel(e.ctx)
	kf, err := keyfunc.NewDefaultOverrideCtx(life, []string{jwksURI}, keyfunc.Override{
		Client:      e.client,
		HTTPTimeout: entraFetchTimeout,
		// A key set that cannot be read now fails the load, which a later
		// token retries, rather than leaving an empty set.
		NoErrorReturnFirstHTTPReq: &failFirst,
		RefreshInterval:           time.Hour,
		// One refetch per interval for an unknown kid; beyond that the
		// wait would pass RateLimitWaitMax, so forged kids fail at once.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(e.unknownKID), 1),
		// Bounds the wait for the limiter and the refetch itself.
		RateLimitWaitMax: entraFetchTimeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				e.log.WarnContext(ctx, "entra: cannot refresh signing keys", "tenant", t.id, "url", u, "error", err)
			}
		},
	})
	if err != nil {
		stop() // the refresh goroutine started before the first fetch failed
		return nil, nil, err
	}
	return kf, stop, nil
}

// discover reads {authority}/{tid}/v2.0/.well-known/openid-configuration
// and returns its jwks_uri, after checking that it names the tenant's own
// issuer.
func (e *Entra) discover(ctx context.Context, t *entraTenant) (string, error) {
	u := e.authority + "/" + t.id + "/v2.0/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("metadata %s: HTTP %d", u, resp.StatusCode)
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md); err != nil {
		return "", fmt.Errorf("metadata %s: %w", u, err)
	}
	if md.Issuer != t.issuer {
		return "", fmt.Errorf("metadata %s: issuer %q, want %q", u, md.Issuer, t.issuer)
	}
	if ju, err := url.Parse(md.JWKSURI); err != nil || ju.Scheme != "https" || ju.Host == "" {
		return "", fmt.Errorf("metadata %s: jwks_uri %q is not an https URL", u, md.JWKSURI)
	}
	return md.JWKSURI, nil
}

// looksLikeJWT tells a JWT (three base64url parts separated by dots; the
// signature may be empty, as in alg "none", to be refused as a token)
// from an API key.
func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for _, r := range p {
			if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// entraProblem words why a token was refused, for the caller: enough to
// fix a client, without the verifier's internals.
func entraProblem(err error) string {
	for _, p := range []struct {
		err error
		msg string
	}{
		{ErrTenantNotAllowed, "the token's tenant is not allowed"},
		{jwt.ErrTokenMalformed, "the token is malformed"},
		{jwt.ErrTokenSignatureInvalid, "the token's signature is invalid (RS256 required)"},
		{jwt.ErrTokenUnverifiable, "the token's signing key is unknown"},
		{jwt.ErrTokenExpired, "the token has expired"},
		{jwt.ErrTokenNotValidYet, "the token is not valid yet"},
		{jwt.ErrTokenUsedBeforeIssued, "the token is issued in the future"},
		{jwt.ErrTokenInvalidAudience, "the token is not for this API (aud)"},
		{jwt.ErrTokenInvalidIssuer, "the token's issuer is not accepted (v2.0 tokens of an allowed tenant only)"},
		{jwt.ErrTokenRequiredClaimMissing, "the token lacks a required claim"},
		{errClaims, "the token's claims are not accepted"},
	} {
		if errors.Is(err, p.err) {
			return p.msg
		}
	}
	return "the token is not accepted"
}
