package web

import (
	"bytes"
	"cmp"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/presencegw/presencegw/rules"
)

// The Openfire presence plugin's endpoint, /plugins/presence/status, as
// docs/compat.md (A: the plugin's wire behaviour, C: what presencegw does
// differently) describes it. The answers are the plugin's byte for byte,
// except where C makes them safer:
//
//   - A per-state image URL (available=, away=, …) is never fetched: it is
//     a 302 redirect, like images=, and only to an absolute http(s) URL
//     without user info; any other URL gets the built-in image.
//   - req_jid is an unverified claim. In subscribed mode (the default) it
//     counts only when it is the caller's own JID as its credentials prove
//     it (Caller.JID); with no such credential every answer is the
//     forbidden one. Public mode shows presence to every caller the
//     "openfire" endpoint group admits, cut to what the caller may see.
//   - Unknown people, people not shown and bad JIDs all get the forbidden
//     answer, and a req_jid without a node too (Openfire: 500).
//   - The XML of an online person is made here (there is no client
//     stanza): from is the bare JID, then show and status.

// OpenfireOptions configure /plugins/presence/status.
type OpenfireOptions struct {
	// Public shows presence to every caller the "openfire" endpoint group
	// admits, whatever req_jid says (the plugin's "public" mode). Otherwise
	// ("subscribed", the default) req_jid must be the caller's own JID.
	Public bool
	// UnavailableText is the status of an offline person who has none.
	// Default "Unavailable".
	UnavailableText string
	// ImageHosts are the hosts images= and the per-state parameters may
	// redirect to; empty (the default) serves the built-in images only, so
	// the endpoint is no open redirect.
	ImageHosts []string
}

// The plugin's state names: in its per-state parameters, in place of
// --IMAGE--, and in XML <show> (available has none).
const (
	ofAvailable = "available"
	ofChat      = "chat"
	ofAway      = "away"
	ofXA        = "xa"
	ofDND       = "dnd"
	ofOffline   = "offline"
	ofForbidden = "forbidden"
)

// openfireState maps a presence to the plugin's: calendar states to their
// nearest XMPP show, and what cannot be told to forbidden. "chat" is no
// state of ours, so it comes from the live resources, chosen as Openfire
// chooses (PresenceManagerImpl): the lowest show ordinal wins — none -1,
// chat 0, away 1, xa 2, dnd 3 — priority ignored; so "chat" only when no
// resource is plainly available.
func openfireState(out rules.Output, chat rules.Chat) string {
	switch out.State {
	case rules.Available:
		if out.Source == rules.SourceXMPP && openfireChat(chat) {
			return ofChat
		}
		return ofAvailable
	case rules.Away:
		return ofAway
	case rules.XA, rules.OOF:
		return ofXA
	case rules.DND, rules.Busy:
		return ofDND
	case rules.Offline:
		return ofOffline
	}
	return ofForbidden
}

// openfireChat reports whether Openfire would pick a chat resource.
func openfireChat(chat rules.Chat) bool {
	best := 99
	for _, r := range chat.Resources {
		if !r.ByGateway {
			best = min(best, openfireOrdinal(r.Show))
		}
	}
	return best == 0
}

// openfireOrdinal is Presence.Show's ordinal in Openfire, none = -1.
func openfireOrdinal(s rules.Show) int {
	switch s {
	case rules.ShowChat:
		return 0
	case rules.ShowAway:
		return 1
	case rules.ShowXA:
		return 2
	case rules.ShowDND:
		return 3
	}
	return -1
}

// maxFormBody bounds a POST's form body: the parameters are a few URLs.
const maxFormBody = 64 << 10

// openfireMethods answers what the servlet answers: GET, HEAD and POST;
// anything else is 405.
func openfireMethods(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost:
			next(w, r)
			return
		}
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET, HEAD or POST")
	}
}

// getOpenfireStatus is GET|POST|HEAD /plugins/presence/status?jid=…&type=image|text|xml.
func (s *Server) getOpenfireStatus(w http.ResponseWriter, r *http.Request) {
	param, err := openfireParams(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the form body is over 64 KiB")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "cannot read the form body")
		return
	}
	rawJID, _ := param("jid")
	target, targetOK := parseJID(rawJID)
	rawReq, _ := param("req_jid")
	req, reqOK := parseJID(rawReq)

	c := callerFrom(r)
	state, status := ofForbidden, ""
	if targetOK && target.node != "" && s.openfireAllowed(c, req, reqOK) {
		if e := s.backend.LookupJID(target.bare()); e.Status == Found {
			out, _ := render(e, c)
			state, status = openfireState(e.Presence, e.Chat), out.Status
		}
	}

	h := w.Header()
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	typ, ok := param("type")
	if !ok {
		typ = "image"
	}
	switch typ {
	case "image":
		openfireImage(w, param, state, s.opts.Openfire.ImageHosts)
	case "text":
		h.Set("Content-Type", "text/plain;charset=iso-8859-1")
		_, _ = w.Write(latin1(s.openfireText(state, status) + "\n"))
	case "xml":
		h.Set("Content-Type", "text/xml;charset=utf-8")
		var b strings.Builder
		switch state {
		case ofForbidden:
			b.WriteString(`<presence type="error"`)
			if targetOK {
				b.WriteString(` from="` + xmlAttr(target.String()) + `"`)
			}
			if reqOK {
				b.WriteString(` to="` + xmlAttr(req.String()) + `"`)
			}
			b.WriteString(`><error code="403" type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`)
		case ofOffline:
			b.WriteString(`<presence type="unavailable" from="` + xmlAttr(target.String()) + `"><status>` +
				xmlText(s.openfireText(state, status)) + `</status></presence>`)
		case ofAvailable:
			if status == "" {
				// dom4j closes an element without children itself.
				b.WriteString(`<presence from="` + xmlAttr(target.bare()) + `"/>`)
				break
			}
			b.WriteString(`<presence from="` + xmlAttr(target.bare()) + `"><status>` + xmlText(status) + `</status></presence>`)
		default:
			b.WriteString(`<presence from="` + xmlAttr(target.bare()) + `"><show>` + state + `</show>`)
			if status != "" {
				b.WriteString("<status>" + xmlText(status) + "</status>")
			}
			b.WriteString("</presence>")
		}
		b.WriteString("\n")
		_, _ = w.Write([]byte(b.String()))
	default:
		// The plugin writes nothing for a type it does not know.
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	}
}

// openfireParams returns the request's parameters as the servlet reads
// them: the first value, from the query string before a POST's form body.
// Malformed pairs are skipped, as url.ParseQuery does.
func openfireParams(w http.ResponseWriter, r *http.Request) (func(string) (string, bool), error) {
	query := r.URL.Query()
	var form url.Values
	if r.Method == http.MethodPost && strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/x-www-form-urlencoded") {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
		if err != nil {
			return nil, err
		}
		form, _ = url.ParseQuery(string(body))
	}
	return func(name string) (string, bool) {
		if v, ok := query[name]; ok && len(v) > 0 {
			return v[0], true
		}
		if v, ok := form[name]; ok && len(v) > 0 {
			return v[0], true
		}
		return "", false
	}, nil
}

// openfireAllowed tells whether the caller may see presence: in public
// mode anyone the endpoint group admits; in subscribed mode only a caller
// whose req_jid is its own proven JID (the bare JIDs compared whole, not
// only the node as the plugin did).
func (s *Server) openfireAllowed(c *Caller, req xmppJID, reqOK bool) bool {
	if s.opts.Openfire.Public {
		return true
	}
	return reqOK && req.node != "" && c.JID != "" && strings.EqualFold(req.bare(), c.JID)
}

// openfireText is the text answer's line: the plugin's "null" for
// forbidden, the trimmed status, or its stand-ins.
func (s *Server) openfireText(state, status string) string {
	switch state {
	case ofForbidden:
		return "null"
	case ofOffline:
		// The plugin's offline status is trimmed where it is stored.
		if t := javaTrim(status); t != "" {
			return t
		}
		return cmp.Or(s.opts.Openfire.UnavailableText, "Unavailable")
	}
	// Not trimmed before the test: a status of blanks prints an empty
	// line, as the plugin's does.
	if status != "" {
		return javaTrim(status)
	}
	return "Available"
}

// openfireImage answers type=image: a redirect to the caller's image for
// the state when it names one that may be redirected to, else the
// built-in image. A per-state URL wins over images=, as in the plugin,
// even when it is refused.
func openfireImage(w http.ResponseWriter, param func(string) (string, bool), state string, hosts []string) {
	target, ok := param(state)
	if !ok {
		if tmpl, ok := param("images"); ok {
			target = strings.ReplaceAll(tmpl, "--IMAGE--", state)
		}
	}
	if redirectable(target, hosts) {
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(openfireImages[state])
}

// redirectable allows redirects only to absolute http and https URLs
// without user info: no javascript:, data: or file:, no scheme-relative
// "//host" and no "https://trusted@evil".
func redirectable(s string, hosts []string) bool {
	if s == "" || len(hosts) == 0 {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return false
	}
	for _, h := range hosts {
		if strings.EqualFold(u.Hostname(), h) {
			return true
		}
	}
	return false
}

// xmppJID is a JID split as Tinder's JID class splits it.
type xmppJID struct {
	node, domain, resource string
}

// parseJID splits s as the plugin's JID parser does: the node before the
// first "@" if it comes before the first "/", the domain up to the "/",
// the resource after it. Node and domain are lower-cased (the plugin's
// stringprep also applies NFKC and IDNA, which this does not). It reports
// false for what the plugin refuses as a JID: empty, a leading "@", an
// empty domain or resource, a part over 1,023 bytes, characters nodeprep
// prohibits in the node, or none that a domain may not hold.
func parseJID(s string) (xmppJID, bool) {
	var j xmppJID
	if s == "" || !utf8.ValidString(s) {
		return j, false
	}
	rest := s
	slash := strings.IndexByte(s, '/')
	if at := strings.IndexByte(s, '@'); at >= 0 && (slash < 0 || at < slash) {
		j.node, rest = s[:at], s[at+1:]
		if j.node == "" {
			return j, false
		}
	}
	j.domain = rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		j.domain, j.resource = rest[:i], rest[i+1:]
		if j.resource == "" {
			return j, false
		}
	}
	bad := func(prohibited string) func(rune) bool {
		return func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(prohibited, r)
		}
	}
	switch {
	case j.domain == "", len(j.node) > 1023, len(j.domain) > 1023, len(j.resource) > 1023,
		strings.ContainsFunc(j.node, bad(`"&'/:<>@`)),
		strings.ContainsFunc(j.domain, bad(`"&'/:<>@\`)),
		strings.ContainsFunc(j.resource, unicode.IsControl):
		return j, false
	}
	j.node, j.domain = strings.ToLower(j.node), strings.ToLower(j.domain)
	return j, true
}

// bare is node@domain (or the domain alone).
func (j xmppJID) bare() string {
	if j.node == "" {
		return j.domain
	}
	return j.node + "@" + j.domain
}

// String is the JID as the plugin writes it, with its resource.
func (j xmppJID) String() string {
	if j.resource == "" {
		return j.bare()
	}
	return j.bare() + "/" + j.resource
}

// javaTrim is Java's String.trim: it strips code points up to U+0020
// from both ends, and no other white space.
func javaTrim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

// latin1 encodes s in ISO-8859-1 as the plugin's servlet writer does: a
// character outside it (or a byte that is not UTF-8) becomes "?".
func latin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff || r == utf8.RuneError {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return b
}

// xmlText escapes character data as dom4j does: &, < and > as entities,
// tab, CR and LF kept, other control characters as &#N;. A byte that is
// not UTF-8 becomes U+FFFD.
func xmlText(s string) string { return xmlEscape(s, false) }

// xmlAttr escapes an attribute value as dom4j does: as xmlText, plus ".
func xmlAttr(s string) string { return xmlEscape(s, true) }

func xmlEscape(s string, attr bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"' && attr:
			b.WriteString("&quot;")
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r':
			b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// openfireImages are the built-in 16×16 images by state: green for
// available, yellow for away and extended away, red for do not disturb, a
// grey ring for offline and forbidden (the plugin's colours, drawn here:
// none of its files).
var openfireImages = func() map[string][]byte {
	green := dot(color.NRGBA{0x2e, 0x7d, 0x32, 0xff}, false)
	yellow := dot(color.NRGBA{0xf9, 0xa8, 0x25, 0xff}, false)
	red := dot(color.NRGBA{0xc6, 0x28, 0x28, 0xff}, false)
	grey := dot(color.NRGBA{0x9e, 0x9e, 0x9e, 0xff}, true)
	return map[string][]byte{ofAvailable: green, ofChat: green, ofAway: yellow, ofXA: yellow, ofDND: red, ofOffline: grey, ofForbidden: grey}
}()

// dot draws a 16×16 PNG disc (or ring) of colour c, anti-aliased by 4×4
// supersampling.
func dot(c color.NRGBA, ring bool) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			n := 0
			for sy := range 4 {
				for sx := range 4 {
					dx, dy := float64(x)+(float64(sx)+0.5)/4-8, float64(y)+(float64(sy)+0.5)/4-8
					d := dx*dx + dy*dy
					if d <= 7*7 && (!ring || d >= 4.5*4.5) {
						n++
					}
				}
			}
			px := c
			px.A = uint8(int(c.A) * n / 16)
			img.SetNRGBA(x, y, px)
		}
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		panic(err) // cannot happen writing to memory
	}
	return b.Bytes()
}
