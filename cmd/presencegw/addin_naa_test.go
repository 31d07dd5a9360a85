package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/presencegw/presencegw/graph"
	"github.com/presencegw/presencegw/web"
)

const (
	naaTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	naaAPI    = "6e74172b-be56-4843-9ff4-e66a39bb12e3" // the API's client id (aud)
	naaAddin  = "0f4a5b6c-1d2e-4f30-8a9b-c0d1e2f3a4b5" // the add-in's client id (azp)
)

// fakeEntraIssuer is the tenant's OpenID metadata and key set over TLS, as
// login.microsoftonline.com serves them, with a key that signs test tokens.
type fakeEntraIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newFakeEntraIssuer(t *testing.T) *fakeEntraIssuer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEntraIssuer{key: k}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tid}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		tid := r.PathValue("tid")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": f.srv.URL + "/" + tid + "/v2.0",
			"jwks_uri": f.srv.URL + "/" + tid + "/discovery/v2.0/keys", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /{tid}/discovery/v2.0/keys", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]any{{"kty": "RSA", "use": "sig", "kid": "k1",
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()), "e": "AQAB"}}})
	})
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// token is a v2.0 access token for the API as NAA hands it to the add-in.
func (f *fakeEntraIssuer) token(t *testing.T, user string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": naaAPI, "iss": f.srv.URL + "/" + naaTenant + "/v2.0", "iat": now.Add(-time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(), "azp": naaAddin, "name": user,
		"preferred_username": user, "oid": "00000000-0000-0000-66f3-3332eca7ea81", "tid": naaTenant, "sub": "s-" + user,
		"scp": "access_as_user", "ver": "2.0"})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(f.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeNAABridge is window.nestedAppAuthBridge as Outlook provides it to
// MSAL: it answers GetInitContext and GetToken with accessToken, and keeps
// the token requests in window.__naaRequests.
func fakeNAABridge(accessToken, user string) []byte {
	b64 := func(v any) string { j, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(j) }
	idToken := b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(map[string]any{"aud": naaAddin, "iss": "https://login.microsoftonline.com/" + naaTenant + "/v2.0",
		"tid": naaTenant, "oid": "00000000-0000-0000-66f3-3332eca7ea81", "preferred_username": user, "name": user, "sub": "s-" + user,
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "ver": "2.0"}) + ".sig"
	account := map[string]any{"homeAccountId": "00000000-0000-0000-66f3-3332eca7ea81." + naaTenant, "environment": "login.microsoftonline.com",
		"tenantId": naaTenant, "username": user, "localAccountId": "00000000-0000-0000-66f3-3332eca7ea81", "name": user}
	tok := map[string]any{"access_token": accessToken, "expires_in": 3600, "id_token": idToken, "properties": nil}
	a, _ := json.Marshal(account)
	tk, _ := json.Marshal(tok)
	return []byte(`
(function () {
  var listeners = [];
  window.__naaRequests = [];
  window.nestedAppAuthBridge = {
    addEventListener: function (type, fn) { if (type === "message") listeners.push(fn); },
    removeEventListener: function () {},
    postMessage: function (raw) {
      var req = JSON.parse(raw);
      var res = { messageType: "NestedAppAuthResponse", requestId: req.requestId, success: true };
      if (req.method === "GetInitContext") {
        res.initContext = { sdkName: "fake-host", sdkVersion: "1.0", capabilities: { queryAccount: false } };
      } else if (req.method === "GetToken" || req.method === "GetTokenPopup") {
        window.__naaRequests.push(req.tokenParams);
        res.token = Object.assign({ scope: req.tokenParams.scope }, ` + string(tk) + `);
        res.account = ` + string(a) + `;
      } else {
        res.success = false;
        res.error = { status: "NOT_SUPPORTED_ERROR", description: req.method };
      }
      setTimeout(function () { listeners.forEach(function (l) { l(JSON.stringify(res)); }); }, 0);
    }
  };
})();
`)
}

// TestAddinSignsInWithNAA runs the pane's real sign-in: MSAL's nestable
// client asks the host's NAA bridge (a stand-in) for a token for the
// configured scope, the pane sends it, and the gateway verifies it against
// the tenant's keys (a fake Entra over TLS) before it answers. A user the
// directory does not know is refused, and the pane says why.
func TestAddinSignsInWithNAA(t *testing.T) {
	issuer := newFakeEntraIssuer(t)
	var mu sync.Mutex
	entra, err := web.NewEntra(t.Context(), web.EntraConfig{Tenants: []string{naaTenant}, Audiences: []string{naaAPI},
		Authority: issuer.srv.URL, ClientApps: []string{naaAddin}, Visibility: web.SeeStatus,
		HTTPClient: issuer.srv.Client(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	scope := "api://" + naaAPI + "/access_as_user"
	src := &browserSource{Demo: graph.NewDemo(time.Now(), time.UTC)}
	base, gate, _ := browserGateway(t, src, func(o *web.Options) {
		o.Anonymous = nil // a token or nothing
		o.Entra = entra
		o.Addin = &web.AddinOptions{ClientID: naaAddin, Authority: "https://login.microsoftonline.com/" + naaTenant, Scope: scope}
	})

	user := "alice@example.com"
	item := map[string]any{"itemType": "message", "from": addr{"carol@example.com", "Carol White"}, "to": []addr{{"bob@example.com", "Bob Jones"}}}
	ctx := browser(t, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		js := fakeOffice(item, nil)
		js = []byte(strings.Replace(string(js), `return name === "Mailbox" &&`, `return (name === "NestedAppAuth" && v === "1.1") || name === "Mailbox" &&`, 1))
		return append(fakeNAABridge(issuer.token(t, user), user), js...)
	})

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/addin/taskpane.html")); err != nil {
		t.Fatal(err)
	}
	paneWait(t, ctx, "signed-in presence", `document.body.dataset.stream === "live" && document.querySelectorAll("li.person").length === 2 &&
		!document.querySelector('li.person[data-state="pending"]')`, 30*time.Second)
	type tokenParams struct {
		ClientID string `json:"clientId"`
		Scope    string `json:"scope"`
	}
	reqs := eval[[]tokenParams](t, ctx, `window.__naaRequests`)
	if len(reqs) == 0 || reqs[0].ClientID != naaAddin || !strings.Contains(" "+reqs[0].Scope+" ", " "+scope+" ") {
		t.Errorf("token requests to the host %+v, want client %s and scope %s", reqs, naaAddin, scope)
	}
	// The API got the host's token for alice (and verified it: it answered).
	gate.mu.Lock()
	auths := append([]string(nil), gate.auths...)
	gate.mu.Unlock()
	sent := false
	for _, a := range auths {
		var claims jwt.MapClaims
		if raw, ok := strings.CutPrefix(a, "Bearer "); ok {
			if _, _, err := jwt.NewParser().ParseUnverified(raw, &claims); err == nil {
				sent = sent || claims["preferred_username"] == "alice@example.com" && claims["azp"] == naaAddin
			}
		}
	}
	if !sent {
		t.Errorf("the API saw no bearer token of alice's: %q", auths)
	}
	// MSAL kept the token in the page's memory: no web storage holds it.
	if kept := eval[[]string](t, ctx, `[sessionStorage, localStorage].flatMap(s => Object.keys(s).filter(k => s.getItem(k).includes("eyJ")))`); len(kept) > 0 {
		t.Errorf("web storage holds token material under %q", kept)
	}
	rows := eval[[]paneRow](t, ctx, readRows)
	for _, r := range rows {
		if r.Email == "carol@example.com" && r.State != "available" || r.Email == "bob@example.com" && r.State != "oof" {
			t.Errorf("signed in: %s is %q", r.Email, r.State)
		}
	}
	// Without a token the API refuses: the rows above came with it.
	resp, err := http.Get(base + "/api/v1/presence?email=carol@example.com")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous lookup: %s, want 401", resp.Status)
	}

	// A guest's token: 403 from the gateway, its reason on screen, no retries.
	mu.Lock()
	user = "guest@partner.example"
	mu.Unlock()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/addin/taskpane.html")); err != nil {
		t.Fatal(err)
	}
	paneWait(t, ctx, "refused", `document.getElementById("notice").dataset.kind === "error" &&
		document.getElementById("notice").textContent.includes("The presence gateway refused access: your account \"guest@partner.example\" is not a person of this organisation's directory")`, 30*time.Second)
	if n := eval[string](t, ctx, `document.getElementById("notice").textContent`); strings.Contains(n, "Retrying") || !strings.Contains(n, "Retry now") {
		t.Errorf("refused notice %q: want a Retry button and no automatic retries", n)
	}
	paneWait(t, ctx, "rows say so", `[...document.querySelectorAll("li.person .state")].every(s => s.textContent === "Presence not available")`, 10*time.Second)
	screenshot(t, ctx, artifacts(t), "addin-7-refused.png")
}
