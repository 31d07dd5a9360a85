package web

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Whatever the body or method, the kopano endpoint answers 2xx or a JSON
// 4xx, never a 5xx or a panic.
func FuzzKopanoBody(f *testing.F) {
	tok := KopanoToken([]byte("s3cret"), "alice@example.com", time.Now())
	for _, seed := range []string{
		`{"AuthenticationToken":"` + tok + `","UserStatus":[{"user_id":"alice@example.com","spreed":{"status":"away","message":"x"}}]}`,
		`{"AuthenticationToken":"` + tok + `","UserStatus":[{"user_id":1}]}`,
		`{"AuthenticationToken":null}`, `[]`, `{"UserStatus":{}}`, "\xff",
	} {
		f.Add("POST", seed)
		f.Add("GET", seed)
	}
	k, err := NewKopano(KopanoConfig{Secret: []byte("s3cret")})
	if err != nil {
		f.Fatal(err)
	}
	s := newServer(f, func(o *Options) { o.Kopano = k })
	f.Fuzz(func(t *testing.T, method, body string) {
		switch method {
		case "GET", "PUT", "POST":
		default:
			return
		}
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code >= 400 && !json.Valid(w.Body.Bytes()) {
			t.Errorf("%s %q: %d %s", method, body, w.Code, w.Body.String())
		}
	})
}

// Whatever the query, the Openfire endpoint never answers 5xx.
func FuzzOpenfireQuery(f *testing.F) {
	for _, seed := range []string{"jid=alice@example.com&type=text", "jid=&type=xml", "jid=a@b/c&type=image&images=http://x/--IMAGE--.png",
		"jid=%ff&req_jid=@&type=xml", "type=image&available=file:///etc/passwd&jid=alice@example.com"} {
		f.Add(seed)
	}
	s, _ := newOpenfireServer(f, nil)
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest("GET", "/plugins/presence/status", nil)
		req.URL.RawQuery = query
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Errorf("query %q: %d %s", query, w.Code, w.Body.String())
		}
		// No image hosts are configured: never a redirect.
		if loc := w.Header().Get("Location"); loc != "" {
			t.Errorf("query %q: redirect to %q", query, loc)
		}
	})
}
