package web

import (
	"encoding/xml"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBadge(t *testing.T) {
	s := newServer(t, func(o *Options) { o.Anonymous = []string{"badge"} })
	tests := []struct {
		name, path, key string
		code            int
		title           string
	}{
		{"anonymous: state only", "/badge/alice@example.com.svg", "", 200, "busy"},
		{"a key sees name and status", "/badge/alice@example.com.svg", statusKey, 200, "Alice: busy — In a meeting until 14:30"},
		{"unknown to anonymous: an unknown badge", "/badge/nobody@example.com.svg", "", 200, "unknown"},
		{"unknown to a key: 404", "/badge/nobody@example.com.svg", statusKey, 404, ""},
		{"not .svg", "/badge/alice@example.com.png", "", 404, ""},
		{"malformed", "/badge/nope.svg", "", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := do(s, "GET", tt.path, tt.key, "")
			if code != tt.code {
				t.Fatalf("%d %s, want %d", code, body, tt.code)
			}
			if tt.title == "" {
				if h.Get("Content-Type") != "application/json" {
					t.Errorf("error as %s", h.Get("Content-Type"))
				}
				return
			}
			var svg struct {
				XMLName xml.Name `xml:"svg"`
				Role    string   `xml:"role,attr"`
				Label   string   `xml:"aria-label,attr"`
				Title   string   `xml:"title"`
			}
			if err := xml.Unmarshal([]byte(body), &svg); err != nil {
				t.Fatalf("not XML: %v\n%s", err, body)
			}
			if svg.Title != tt.title || svg.Label != tt.title || svg.Role != "img" {
				t.Errorf("title %q label %q role %q, want %q", svg.Title, svg.Label, svg.Role, tt.title)
			}
			if h.Get("Content-Type") != "image/svg+xml" || !strings.Contains(h.Get("Cache-Control"), "max-age=30") || h.Get("ETag") == "" {
				t.Errorf("headers %v", h)
			}
		})
	}
	// Revalidation: 304 with the ETag.
	_, h, _ := do(s, "GET", "/badge/alice@example.com.svg", "", "")
	req := httptest.NewRequest("GET", "/badge/alice@example.com.svg", nil)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("revalidation: %d", w.Code)
	}
	// Every state has its own shape, not only a colour (WCAG 1.4.1).
	glyphs := map[string]bool{}
	for _, st := range badgeStyles {
		glyphs[st.glyph] = true
	}
	if len(glyphs) != len(badgeStyles) {
		t.Errorf("%d distinct glyphs for %d states: some states differ by colour only", len(glyphs), len(badgeStyles))
	}
}
