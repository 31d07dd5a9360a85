package web

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"net/http"
	"strings"

	"github.com/presencegw/presencegw/rules"
)

// badgeStyle is how a state looks: colour and a glyph, so the state does
// not hang on colour alone (WCAG 1.4.1), and a label.
type badgeStyle struct {
	fill, glyph, label string
}

var badgeStyles = map[rules.State]badgeStyle{
	rules.Available: {"#2e7d32", `<path d="M4.5 8.2l2.3 2.3 4.7-4.9" fill="none" stroke="#fff" stroke-width="1.8"/>`, "available"},
	rules.Away:      {"#f9a825", `<path d="M8 4.2v4l2.6 1.6" fill="none" stroke="#fff" stroke-width="1.6"/>`, "away"},
	rules.XA:        {"#ef6c00", `<path d="M10.8 4.6a4 4 0 1 0 0 6.8a3.2 3.2 0 1 1 0-6.8z" fill="#fff"/>`, "extended away"},
	rules.Busy:      {"#c62828", `<rect x="4.2" y="7.1" width="7.6" height="1.8" fill="#fff"/>`, "busy"},
	rules.DND:       {"#b71c1c", `<circle cx="8" cy="8" r="5.2" fill="none" stroke="#fff" stroke-width="1.2"/><rect x="5" y="7.1" width="6" height="1.8" fill="#fff"/>`, "do not disturb"},
	rules.OOF:       {"#6a1b9a", `<path d="M11.5 8H5m2.6-2.7L5 8l2.6 2.7" fill="none" stroke="#fff" stroke-width="1.6"/>`, "out of office"},
	rules.Offline:   {"#9e9e9e", `<circle cx="8" cy="8" r="3.6" fill="#fff"/>`, "offline"},
	rules.Unknown:   {"#757575", `<text x="8" y="11.2" font-size="9" font-family="sans-serif" text-anchor="middle" fill="#fff">?</text>`, "unknown"},
}

// getBadge is GET /badge/ADDR.svg: a 16×16 presence dot with a <title>,
// for intranet pages and mail signatures.
func (s *Server) getBadge(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r)
	addr, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "badges are /badge/ADDRESS.svg")
		return
	}
	out, code := render(s.backend.Lookup(addr), c)
	if out.Error != nil && code != http.StatusOK {
		writeJSON(w, code, map[string]any{"error": out.Error})
		return
	}
	st, ok := badgeStyles[out.State]
	if !ok {
		st = badgeStyles[rules.Unknown]
	}
	title := st.label
	if out.Name != "" {
		title = out.Name + ": " + title
	}
	if out.Status != "" {
		title += " — " + out.Status
	}
	t := html.EscapeString(title)
	svg := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16" role="img" aria-label="%s">`+
		`<title>%s</title><circle cx="8" cy="8" r="7.5" fill="%s"/>%s</svg>`, t, t, st.fill, st.glyph)
	sum := sha256.Sum256([]byte(svg))
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	h := w.Header()
	// Presence changes by the minute: caches may keep a badge briefly and
	// revalidate cheaply; it is the caller's own view, not a shared one.
	h.Set("Cache-Control", "private, max-age=30, must-revalidate")
	h.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "image/svg+xml")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write([]byte(svg))
}
