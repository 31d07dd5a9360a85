package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/presencegw/presencegw/rules"
)

// encodingJSON is what json.Encoder writes for v, without the newline.
func encodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// presenceCases are answers with every field set and unset, and strings
// that need escaping.
func presenceCases() []presenceJSON {
	until := time.Date(2026, 11, 25, 14, 30, 0, 123456789, time.UTC)
	upd := time.Date(2026, 11, 25, 14, 0, 0, 0, time.FixedZone("x", 3600))
	odd := "a\"b\\c<d>e&f\u2028g\u2029h\x00\x01\x1f\x7f\t\n\r\b\féü€😀\xff\xfe end"
	return []presenceJSON{
		{Email: "nobody@example.com", State: rules.Unknown},
		{Email: "bad", State: rules.Unknown, Error: &apiError{Code: "invalid_address", Message: `"bad" is not <an> address`}},
		{Email: "alice@example.com", JID: "alice@chat", Name: "Alice", State: rules.Busy, Status: "In a meeting until 14:30",
			Source: rules.SourceCalendar, Until: &until, Updated: &upd, Stale: true,
			Calendar: &calendarJSON{State: rules.Busy, Status: "s", Until: &until, Tentative: true, WorkingElsewhere: true, Subject: odd, Location: "Room 1"},
			Chat:     &chatJSON{Online: true, Resources: []resourceJSON{{Name: "pc", Show: "dnd", Status: odd, Priority: -5}, {Name: odd, Priority: 0}}}},
		{Email: odd, Name: odd, State: rules.Available, Calendar: &calendarJSON{}, Chat: &chatJSON{}},
		{Email: "", State: "", Chat: &chatJSON{Resources: []resourceJSON{}}},
	}
}

func TestAppendPresenceMatchesEncodingJSON(t *testing.T) {
	for i, p := range presenceCases() {
		got, err := appendPresence(nil, &p)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if want := encodingJSON(t, p); !bytes.Equal(got, want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestAppendPresenceBadTime: a year encoding/json cannot write is an
// error, so the handlers fall back to encoding/json's own answer.
func TestAppendPresenceBadTime(t *testing.T) {
	bad := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := appendPresence(nil, &presenceJSON{Email: "a@b", Until: &bad}); err == nil {
		t.Error("year 10000: no error")
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c<d>e&f", "\u2028\u2029", "\x00\x1f\x7f", "\xff\xfe", "é😀", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := presenceJSON{Email: s, Name: s, State: rules.State(s), Error: &apiError{Code: s, Message: s},
			Chat: &chatJSON{Resources: []resourceJSON{{Name: s, Show: s, Status: s}}}}
		got, err := appendPresence(nil, &p)
		if err != nil {
			t.Fatal(err)
		}
		if want := encodingJSON(t, p); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

func FuzzQueryParam(f *testing.F) {
	for _, q := range []string{"", "email=a@b", "email=a@b&email=c", "x=1&email=a%40b", "%65mail=x", "email=a+b%2B",
		"email=a;b", "email=%zz&email=ok", "email", "&&email=&", "email=1" + strings.Repeat("&x=1", 20), "e%mail=1"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		u := &url.URL{RawQuery: q}
		want := u.Query()["email"]
		got, n := queryParam(q, "email")
		if n != len(want) || n > 0 && got != want[0] {
			t.Errorf("%q: queryParam = %q, %d; URL.Query = %q", q, got, n, want)
		}
	})
}

// TestLookupAnswers: the single and batch answers through the handlers
// are encoding/json's, for every visibility.
func TestLookupAnswers(t *testing.T) {
	s := newServer(t, nil)
	for _, key := range []string{statusKey, calendarKey} {
		c := s.keyCaller(key)
		for _, email := range []string{"alice@example.com", "carol@example.com", "nobody@example.com", "not an address"} {
			out, code := render(fakeBackend{}.Lookup(email), c)
			var want []byte
			if out.Error != nil {
				want = encodingJSON(t, map[string]any{"error": out.Error})
			} else {
				want = encodingJSON(t, out)
			}
			gotCode, h, body := do(s, "GET", "/api/v1/presence?email="+url.QueryEscape(email), key, "")
			if gotCode != code || body != string(want)+"\n" || h.Get("Content-Type") != "application/json" {
				t.Errorf("%s as %s: %d %q %s\nwant %d %s", email, c.ID, gotCode, h.Get("Content-Type"), body, code, want)
			}
			if out.Error == nil && h.Get("Cache-Control") != "private, no-store" {
				t.Errorf("%s: Cache-Control %q", email, h.Get("Cache-Control"))
			}
		}
		emails := []string{"alice@example.com", "bad", "nobody@example.com"}
		var results []presenceJSON
		for _, e := range emails {
			out, _ := render(fakeBackend{}.Lookup(e), c)
			results = append(results, out)
		}
		want := encodingJSON(t, map[string]any{"results": results})
		body, _ := json.Marshal(map[string]any{"emails": emails})
		code, h, got := do(s, "POST", "/api/v1/presence/batch", key, string(body))
		if code != http.StatusOK || got != string(want)+"\n" || h.Get("Cache-Control") != "private, no-store" {
			t.Errorf("batch as %s: %d %s\nwant %s", c.ID, code, got, want)
		}
	}
}

// TestSharedHeaderValues: a handler that adds to a header every answer
// carries does not change the next answer's.
func TestSharedHeaderValues(t *testing.T) {
	s := newServer(t, func(o *Options) { o.Anonymous = []string{"presence"} })
	inner := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Referrer-Policy", "strict-origin")
		w.Header().Add("Content-Type", "x")
		inner.ServeHTTP(w, r)
	})
	for range 2 {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/presence?email=carol@example.com", nil))
		if got := w.Header()["Referrer-Policy"]; len(got) != 2 || got[0] != "no-referrer" {
			t.Fatalf("Referrer-Policy %q", got)
		}
	}
	if hdrNoReferrer[0] != "no-referrer" || len(hdrNoReferrer) != 1 || hdrJSON[0] != "application/json" {
		t.Errorf("shared values changed: %q %q", hdrNoReferrer, hdrJSON)
	}
}
