package web

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestKopanoTokenVector(t *testing.T) {
	// docs/compat.md §B.4: kopano's own algorithm, secret GEHEIM.
	got := KopanoToken([]byte("GEHEIM"), "markd@kopano.com", time.Unix(1421324321, 0))
	if want := "1421324321:markd@kopano.com:BFEYT0BCWNOXIFHNT9RYGRUKZDBGTSLSLDB7S4AI5BG="; got != want {
		t.Errorf("token %s, want %s", got, want)
	}
}

func TestKopanoVerify(t *testing.T) {
	k, err := NewKopano(KopanoConfig{Secret: []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	k.now = func() time.Time { return now }
	good := KopanoToken([]byte("s3cret"), "alice@example.com", now.Add(-time.Minute))
	tests := []struct {
		name, token string
		ok          bool
	}{
		{"fresh", good, true},
		{"4 minutes old", KopanoToken([]byte("s3cret"), "alice@example.com", now.Add(-4*time.Minute)), true},
		{"6 minutes old", KopanoToken([]byte("s3cret"), "alice@example.com", now.Add(-6*time.Minute)), false},
		{"from the future (kopano took these)", KopanoToken([]byte("s3cret"), "alice@example.com", now.Add(time.Hour)), false},
		{"30 s ahead (clock skew)", KopanoToken([]byte("s3cret"), "alice@example.com", now.Add(30*time.Second)), true},
		{"other secret", KopanoToken([]byte("other"), "alice@example.com", now), false},
		{"real (mixed-case) base64", strings.ToLower(good[:len(good)-10]) + good[len(good)-10:], false},
		{"user changed", strings.Replace(good, "alice", "mallory", 1), false},
		{"two parts", "1:alice@example.com", false},
		{"four parts", good + ":x", false},
		{"not a number", "soon:alice@example.com:" + good[strings.LastIndex(good, ":")+1:], false},
	}
	for _, tt := range tests {
		if _, err := k.verify(tt.token); (err == nil) != tt.ok {
			t.Errorf("%s: verify(%q) = %v, want ok=%v", tt.name, tt.token, err, tt.ok)
		}
	}
	if _, err := NewKopano(KopanoConfig{}); err == nil {
		t.Error("an empty secret was accepted")
	}
}

func kopanoServer(t *testing.T) (*Server, *Kopano, time.Time) {
	k, err := NewKopano(KopanoConfig{Secret: []byte("s3cret"), Visibility: SeeStatus})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k.now = func() time.Time { return now }
	s := newServer(t, func(o *Options) { o.Kopano = k })
	return s, k, now
}

func TestKopanoEndpoint(t *testing.T) {
	s, k, now := kopanoServer(t)
	tok := `"` + KopanoToken([]byte("s3cret"), "alice@example.com", now) + `"`
	tests := []struct {
		name, method, body string
		code               int
		want               string
	}{
		{"GET reads (with a body, as kopano's clients send)", "GET",
			`{"AuthenticationToken":` + tok + `,"Type":"UserStatus","UserStatus":[{"user_id":"alice@example.com"},{"user_id":"nobody@example.com"}]}`, 200,
			"{\n    \"Type\": \"UserStatus\",\n    \"UserStatus\": [\n        {\n            \"xmpp\": {\n                \"status\": \"busy\",\n                \"message\": \"In a meeting until 14:30\"\n            },\n            \"user_id\": \"alice@example.com\"\n        },\n        {\n            \"user_id\": \"nobody@example.com\"\n        }\n    ]\n}"},
		{"PUT own spreed status", "PUT",
			`{"AuthenticationToken":` + tok + `,"Type":"UserStatus","UserStatus":[{"user_id":"alice@example.com","spreed":{"status":"available","message":"B\u00fcro <b>"}}]}`, 200, ""},
		{"POST writes then reads", "POST",
			`{"AuthenticationToken":` + tok + `,"UserStatus":[{"user_id":"alice@example.com","spreed":{"status":"away","message":"lunch"}}]}`, 200,
			"{\n    \"Type\": \"UserStatus\",\n    \"UserStatus\": [\n        {\n            \"xmpp\": {\n                \"status\": \"busy\",\n                \"message\": \"In a meeting until 14:30\"\n            },\n            \"spreed\": {\n                \"status\": \"away\",\n                \"message\": \"lunch\"\n            },\n            \"user_id\": \"alice@example.com\"\n        }\n    ]\n}"},
		{"PUT someone else's status", "PUT",
			`{"AuthenticationToken":` + tok + `,"UserStatus":[{"user_id":"carol@example.com","spreed":{"status":"busy"}}]}`, 403, ""},
		{"PUT xmpp", "PUT",
			`{"AuthenticationToken":` + tok + `,"UserStatus":[{"user_id":"alice@example.com","xmpp":{"status":"busy"}}]}`, 403, ""},
		{"PUT a made-up status", "PUT",
			`{"AuthenticationToken":` + tok + `,"UserStatus":[{"user_id":"alice@example.com","spreed":{"status":"sleeping"}}]}`, 400, ""},
		{"no token", "GET", `{"UserStatus":[]}`, 401, ""},
		{"token for an unknown user", "GET",
			`{"AuthenticationToken":"` + KopanoToken([]byte("s3cret"), "nobody@example.com", now) + `","UserStatus":[]}`, 401, ""},
		{"no UserStatus", "GET", `{"AuthenticationToken":` + tok + `}`, 400, ""},
		{"no user_id", "GET", `{"AuthenticationToken":` + tok + `,"UserStatus":[{}]}`, 400, ""},
		{"not JSON", "POST", `AuthenticationToken=x`, 400, ""},
		{"empty list", "GET", `{"AuthenticationToken":` + tok + `,"UserStatus":[]}`, 200, "{\n    \"Type\": \"UserStatus\",\n    \"UserStatus\": []\n}"},
		{"PUT without a message: echoed as null", "POST",
			`{"AuthenticationToken":` + tok + `,"UserStatus":[{"user_id":"alice@example.com","spreed":{"status":"busy"}}]}`, 200,
			"{\n    \"Type\": \"UserStatus\",\n    \"UserStatus\": [\n        {\n            \"xmpp\": {\n                \"status\": \"busy\",\n                \"message\": \"In a meeting until 14:30\"\n            },\n            \"spreed\": {\n                \"status\": \"busy\",\n                \"message\": null\n            },\n            \"user_id\": \"alice@example.com\"\n        }\n    ]\n}"},
		{"trailing data", "GET", `{"AuthenticationToken":` + tok + `,"UserStatus":[]} {}`, 400, ""},
		{"more users than a batch", "GET", `{"AuthenticationToken":` + tok + `,"UserStatus":[{"user_id":"a@x"},{"user_id":"b@x"},{"user_id":"c@x"},{"user_id":"d@x"}]}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != tt.code || tt.want != "" && w.Body.String() != tt.want {
				t.Errorf("%d\n%s\nwant %d\n%s", w.Code, w.Body.String(), tt.code, tt.want)
			}
		})
	}
	// A GET carrying a body that is not typed JSON is still kopano's.
	req := httptest.NewRequest("GET", "/", strings.NewReader(`{"AuthenticationToken":`+tok+`,"UserStatus":[]}`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"UserStatus": []`) {
		t.Errorf("GET with a form-typed body: %d %s", w.Code, w.Body.String())
	}
	// The spreed status turns unavailable after two minutes without updates.
	k.now = func() time.Time { return now.Add(3 * time.Minute) }
	if sp, _ := k.spreedOf("alice@example.com"); sp.status != "unavailable" {
		t.Errorf("after 3 minutes: %+v", sp)
	}
	// Non-ASCII is escaped as Python's json.dumps does.
	if got := pyString("Büro <b> 😀\x7f"); got != `"B\u00fcro <b> \ud83d\ude00\u007f"` {
		t.Errorf("pyString = %s", got)
	}
}

// A token holder sees others' status text only where policy allows.
func TestKopanoVisibility(t *testing.T) {
	k, err := NewKopano(KopanoConfig{Secret: []byte("s3cret")}) // default: state only
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, func(o *Options) { o.Kopano = k })
	tok := KopanoToken([]byte("s3cret"), "carol@example.com", time.Now())
	req := httptest.NewRequest("GET", "/", strings.NewReader(`{"AuthenticationToken":"`+tok+`","UserStatus":[{"user_id":"alice@example.com"}]}`))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 200 || strings.Contains(w.Body.String(), "In a meeting") || !strings.Contains(w.Body.String(), `"status": "busy"`) {
		t.Errorf("state-only caller: %d %s", w.Code, w.Body.String())
	}
}
