package web

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencegw/presencegw/rules"
)

// ofPeople are the Openfire tests' people by JID, one per state.
var ofPeople = map[string]rules.Output{
	"avail@x":   {State: rules.Available},
	"chatty@x":  {State: rules.Available, Status: " \tCoding\n"},
	"blank@x":   {State: rules.Available, Status: "   "},
	"away@x":    {State: rules.Away, Status: "Lunch"},
	"xa@x":      {State: rules.XA},
	"dnd@x":     {State: rules.DND, Status: `Focus <deep> & "quiet"`},
	"busy@x":    {State: rules.Busy, Status: "In a meeting until 14:30"},
	"oof@x":     {State: rules.OOF, Status: "Out of office — back Monday, café 😀"},
	"off@x":     {State: rules.Offline},
	"offcal@x":  {State: rules.Offline, Status: " In a meeting until 15:00 "},
	"unknown@x": {State: rules.Unknown, Status: "never shown"},
	"inchat@x":  {State: rules.Available, Status: "Ask me", Source: rules.SourceXMPP},
	"mixed@x":   {State: rules.Available, Source: rules.SourceXMPP},
}

// ofChats are live resources: inchat's only resource is in chat; mixed
// has a plain available one too, which Openfire prefers.
var ofChats = map[string]rules.Chat{
	"inchat@x": {Known: true, Resources: []rules.Resource{{Name: "pc", Show: rules.ShowChat, Status: "Ask me", Priority: 1}}},
	"mixed@x": {Known: true, Resources: []rules.Resource{
		{Name: "pc", Show: rules.ShowChat, Priority: 9}, {Name: "phone", Priority: -1}}},
}

// ofBackend answers for ofPeople by JID and counts the lookups.
type ofBackend struct {
	lookups atomic.Int32
}

func (b *ofBackend) Changes(int) (<-chan string, func()) { return make(chan string), func() {} }

func (b *ofBackend) Lookup(string) Entry { return Entry{Status: NotFound} }

func (b *ofBackend) LookupJID(jid string) Entry {
	b.lookups.Add(1)
	jid = strings.ToLower(jid)
	out, ok := ofPeople[jid]
	if !ok {
		return Entry{Status: NotFound}
	}
	return Entry{Email: jid + ".example.com", Status: Found, JID: jid, Presence: out, Chat: ofChats[jid]}
}

func newOpenfireServer(t testing.TB, change func(*Options)) (*Server, *ofBackend) {
	t.Helper()
	o := Options{APIKeys: []APIKey{
		{Name: "intranet", SHA256: HashKey(statusKey), Visibility: SeeStatus},
		{Name: "wall", SHA256: HashKey(calendarKey), Visibility: SeeState},
	}}
	if change != nil {
		change(&o)
	}
	be := &ofBackend{}
	reg := prometheus.NewRegistry()
	s, err := New(o, be, func() error { return nil }, reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, be
}

// asCaller calls the endpoint's handler as c, past authentication: no
// credential proves a JID yet, so this is how a caller with one is tested.
func asCaller(s *Server, c *Caller, method, target, body string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req = req.WithContext(context.WithValue(req.Context(), callerKey{}, c))
	w := httptest.NewRecorder()
	openfireMethods(s.getOpenfireStatus)(w, req)
	return w
}

const forbiddenXML = `<presence type="error"%s><error code="403" type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>` + "\n"

// Every type × state × mode: what a caller who may see the status gets,
// what one who may see the state only gets, and that a caller who may
// not see the person gets the forbidden answer.
func TestOpenfireTypesStatesModes(t *testing.T) {
	people := []struct {
		jid   string
		image string // built-in image by state
		text  string // with the status visible
		xml   string
		// textState and xmlState: with the state only
		textState, xmlState string
	}{
		{"avail@x", ofAvailable, "Available\n", `<presence from="avail@x"/>` + "\n",
			"Available\n", `<presence from="avail@x"/>` + "\n"},
		{"chatty@x", ofAvailable, "Coding\n", "<presence from=\"chatty@x\"><status> \tCoding\n</status></presence>\n",
			"Available\n", `<presence from="chatty@x"/>` + "\n"},
		// A status of blanks is not empty: it prints an empty line.
		{"blank@x", ofAvailable, "\n", `<presence from="blank@x"><status>   </status></presence>` + "\n",
			"Available\n", `<presence from="blank@x"/>` + "\n"},
		{"away@x", ofAway, "Lunch\n", `<presence from="away@x"><show>away</show><status>Lunch</status></presence>` + "\n",
			"Available\n", `<presence from="away@x"><show>away</show></presence>` + "\n"},
		{"xa@x", ofXA, "Available\n", `<presence from="xa@x"><show>xa</show></presence>` + "\n",
			"Available\n", `<presence from="xa@x"><show>xa</show></presence>` + "\n"},
		{"dnd@x", ofDND, `Focus <deep> & "quiet"` + "\n", `<presence from="dnd@x"><show>dnd</show><status>Focus &lt;deep&gt; &amp; "quiet"</status></presence>` + "\n",
			"Available\n", `<presence from="dnd@x"><show>dnd</show></presence>` + "\n"},
		{"busy@x", ofDND, "In a meeting until 14:30\n", `<presence from="busy@x"><show>dnd</show><status>In a meeting until 14:30</status></presence>` + "\n",
			"Available\n", `<presence from="busy@x"><show>dnd</show></presence>` + "\n"},
		{"oof@x", ofXA, "Out of office ? back Monday, caf\xe9 ?\n", `<presence from="oof@x"><show>xa</show><status>Out of office — back Monday, café 😀</status></presence>` + "\n",
			"Available\n", `<presence from="oof@x"><show>xa</show></presence>` + "\n"},
		{"off@x", ofOffline, "Gone\n", `<presence type="unavailable" from="off@x"><status>Gone</status></presence>` + "\n",
			"Gone\n", `<presence type="unavailable" from="off@x"><status>Gone</status></presence>` + "\n"},
		{"offcal@x", ofOffline, "In a meeting until 15:00\n", `<presence type="unavailable" from="offcal@x"><status>In a meeting until 15:00</status></presence>` + "\n",
			"Gone\n", `<presence type="unavailable" from="offcal@x"><status>Gone</status></presence>` + "\n"},
		{"unknown@x", ofForbidden, "null\n", fmt.Sprintf(forbiddenXML, ` from="unknown@x"`),
			"null\n", fmt.Sprintf(forbiddenXML, ` from="unknown@x"`)},
		{"nobody@x", ofForbidden, "null\n", fmt.Sprintf(forbiddenXML, ` from="nobody@x"`),
			"null\n", fmt.Sprintf(forbiddenXML, ` from="nobody@x"`)},
	}
	public, _ := newOpenfireServer(t, func(o *Options) { o.Openfire = OpenfireOptions{Public: true, UnavailableText: "Gone"} })
	subscribed, _ := newOpenfireServer(t, func(o *Options) { o.Openfire.UnavailableText = "Gone" })
	status := &Caller{ID: "key:intranet", Visibility: SeeStatus}
	state := &Caller{ID: "anonymous:192.0.2.1", Anonymous: true, Visibility: SeeState}
	proven := &Caller{ID: "test:me", Visibility: SeeStatus, JID: "me@x"}
	modes := []struct {
		name   string
		s      *Server
		c      *Caller
		query  string
		shows  bool // presence shown
		status bool // status text shown
	}{
		{"public, status visibility", public, status, "", true, true},
		{"public, state visibility", public, state, "", true, false},
		{"public ignores req_jid", public, status, "&req_jid=nobody@x", true, true},
		{"subscribed, proven req_jid", subscribed, proven, "&req_jid=Me@X/phone", true, true},
		{"subscribed, no req_jid", subscribed, proven, "", false, false},
		{"subscribed, req_jid not proven", subscribed, status, "&req_jid=me@x", false, false},
		{"subscribed, someone else's req_jid", subscribed, proven, "&req_jid=boss@x", false, false},
		{"subscribed, same node other domain", subscribed, proven, "&req_jid=me@evil.example", false, false},
	}
	for _, m := range modes {
		for _, p := range people {
			for _, typ := range []string{"image", "text", "xml", ""} {
				t.Run(fmt.Sprintf("%s/%s/%s", m.name, p.jid, typ), func(t *testing.T) {
					target := "/plugins/presence/status?jid=" + p.jid + m.query
					if typ != "" {
						target += "&type=" + typ
					}
					w := asCaller(m.s, m.c, "GET", target, "")
					wantImage, wantText, wantXML := p.image, p.text, p.xml
					if !m.status {
						wantText, wantXML = p.textState, p.xmlState
					}
					if !m.shows {
						wantImage, wantText = ofForbidden, "null\n"
					}
					if wantImage == ofForbidden {
						// req_jid is echoed, lower-cased, whatever the mode.
						to := ""
						if req, ok := strings.CutPrefix(m.query, "&req_jid="); ok {
							to = ` to="` + strings.ToLower(req) + `"`
						}
						wantXML = fmt.Sprintf(forbiddenXML, ` from="`+p.jid+`"`+to)
					}
					var ctype, body string
					switch typ {
					case "image", "":
						ctype, body = "image/png", string(openfireImages[wantImage])
					case "text":
						ctype, body = "text/plain;charset=iso-8859-1", wantText
					case "xml":
						ctype, body = "text/xml;charset=utf-8", wantXML
					}
					if w.Code != 200 || w.Header().Get("Content-Type") != ctype || w.Body.String() != body {
						t.Errorf("%d %s %q\nwant 200 %s %q", w.Code, w.Header().Get("Content-Type"), w.Body.String(), ctype, body)
					}
				})
			}
		}
	}
}

// A caller who may not see a person, a person not found, a person whose
// state is unknown and a bad JID all get the same answer, headers
// included, in each type; and nothing is looked up for a caller who may
// see nobody.
func TestOpenfireForbiddenIsUnknown(t *testing.T) {
	norm := func(w *httptest.ResponseRecorder, jid string) string {
		h := w.Header().Clone()
		h.Del("Date")
		// The echoed from= is the only difference allowed.
		return fmt.Sprintf("%d %v %s", w.Code, h, strings.ReplaceAll(w.Body.String(), jid, "JID"))
	}
	subscribed, be := newOpenfireServer(t, nil)
	public, _ := newOpenfireServer(t, func(o *Options) { o.Openfire.Public = true })
	c := &Caller{ID: "key:intranet", Visibility: SeeStatus}
	for _, typ := range []string{"image", "text", "xml", "bogus"} {
		var first string
		for i, tc := range []struct {
			s   *Server
			jid string
		}{
			{subscribed, "avail@x"}, {subscribed, "off@x"}, {subscribed, "nobody@x"},
			{public, "nobody@x"}, {public, "unknown@x"},
		} {
			w := asCaller(tc.s, c, "GET", "/plugins/presence/status?type="+typ+"&jid="+tc.jid, "")
			got := norm(w, tc.jid)
			if i == 0 {
				first = got
			} else if got != first {
				t.Errorf("type %s, %s: %s\nwant %s", typ, tc.jid, got, first)
			}
		}
	}
	if n := be.lookups.Load(); n != 0 {
		t.Errorf("%d lookups for a caller who may see nobody", n)
	}
}

func TestOpenfireParameters(t *testing.T) {
	s, _ := newOpenfireServer(t, func(o *Options) { o.Openfire.Public = true })
	c := &Caller{ID: "key:intranet", Visibility: SeeStatus}
	tests := []struct {
		name, method, target, body string
		code                       int
		ctype, want                string
	}{
		{"no jid", "GET", "/plugins/presence/status?type=xml", "", 200, "text/xml;charset=utf-8",
			fmt.Sprintf(forbiddenXML, "")},
		{"no jid, text", "GET", "/plugins/presence/status?type=text", "", 200, "text/plain;charset=iso-8859-1", "null\n"},
		{"empty jid", "GET", "/plugins/presence/status?type=xml&jid=", "", 200, "text/xml;charset=utf-8",
			fmt.Sprintf(forbiddenXML, "")},
		{"no default domain: a bare name is a domain", "GET", "/plugins/presence/status?type=xml&jid=Avail", "", 200, "text/xml;charset=utf-8",
			fmt.Sprintf(forbiddenXML, ` from="avail"`)},
		{"leading @", "GET", "/plugins/presence/status?type=xml&jid=@x", "", 200, "text/xml;charset=utf-8", fmt.Sprintf(forbiddenXML, "")},
		{"empty domain", "GET", "/plugins/presence/status?type=xml&jid=avail@", "", 200, "text/xml;charset=utf-8", fmt.Sprintf(forbiddenXML, "")},
		{"trailing slash", "GET", "/plugins/presence/status?type=xml&jid=avail@x/", "", 200, "text/xml;charset=utf-8", fmt.Sprintf(forbiddenXML, "")},
		{"space in the node", "GET", "/plugins/presence/status?type=xml&jid=a%20vail@x", "", 200, "text/xml;charset=utf-8", fmt.Sprintf(forbiddenXML, "")},
		{"xmpp: URI", "GET", "/plugins/presence/status?type=xml&jid=xmpp:avail@x", "", 200, "text/xml;charset=utf-8", fmt.Sprintf(forbiddenXML, "")},
		{"node too long", "GET", "/plugins/presence/status?type=text&jid=" + strings.Repeat("a", 1024) + "@x", "", 200, "text/plain;charset=iso-8859-1", "null\n"},
		{"case and resource: online from is bare", "GET", "/plugins/presence/status?type=xml&jid=Away@X/Laptop", "", 200, "text/xml;charset=utf-8",
			`<presence from="away@x"><show>away</show><status>Lunch</status></presence>` + "\n"},
		{"offline from keeps the resource", "GET", "/plugins/presence/status?type=xml&jid=OFF@x/Laptop", "", 200, "text/xml;charset=utf-8",
			`<presence type="unavailable" from="off@x/Laptop"><status>Unavailable</status></presence>` + "\n"},
		{"@ after / is the resource's", "GET", "/plugins/presence/status?type=xml&jid=x/a@b", "", 200, "text/xml;charset=utf-8",
			fmt.Sprintf(forbiddenXML, ` from="x/a@b"`)},
		{"attribute escaping", "GET", "/plugins/presence/status?type=xml&jid=nobody@x/" + url.QueryEscape(`a&b<"c'>`) + "&req_jid=" + url.QueryEscape("Boss@X/r&d"), "", 200, "text/xml;charset=utf-8",
			fmt.Sprintf(forbiddenXML, ` from="nobody@x/a&amp;b&lt;&quot;c'&gt;" to="boss@x/r&amp;d"`)},
		{"req_jid without a node is echoed, no 500", "GET", "/plugins/presence/status?type=xml&jid=nobody@x&req_jid=x", "", 200, "text/xml;charset=utf-8",
			fmt.Sprintf(forbiddenXML, ` from="nobody@x" to="x"`)},
		{"invalid req_jid is not echoed", "GET", "/plugins/presence/status?type=xml&jid=nobody@x&req_jid=@x", "", 200, "text/xml;charset=utf-8",
			fmt.Sprintf(forbiddenXML, ` from="nobody@x"`)},
		{"type is case-sensitive", "GET", "/plugins/presence/status?type=TEXT&jid=avail@x", "", 200, "", ""},
		{"empty type", "GET", "/plugins/presence/status?type=&jid=avail@x", "", 200, "", ""},
		{"unknown type", "GET", "/plugins/presence/status?type=json&jid=avail@x", "", 200, "", ""},
		{"the first value counts", "GET", "/plugins/presence/status?type=text&type=xml&jid=away@x&jid=avail@x", "", 200, "text/plain;charset=iso-8859-1", "Lunch\n"},
		{"POST form", "POST", "/plugins/presence/status", "type=text&jid=away%40x", 200, "text/plain;charset=iso-8859-1", "Lunch\n"},
		{"the query string before the body", "POST", "/plugins/presence/status?type=text", "type=xml&jid=away@x", 200, "text/plain;charset=iso-8859-1", "Lunch\n"},
		{"a malformed pair is skipped", "GET", "/plugins/presence/status?x=%zz&type=text&jid=away@x", "", 200, "text/plain;charset=iso-8859-1", "Lunch\n"},
		{"form body too large", "POST", "/plugins/presence/status", "jid=" + strings.Repeat("a", maxFormBody), 413, "application/json",
			`{"error":{"code":"too_large","message":"the form body is over 64 KiB"}}` + "\n"},
		{"PUT", "PUT", "/plugins/presence/status?jid=avail@x", "", 405, "application/json",
			`{"error":{"code":"method_not_allowed","message":"use GET, HEAD or POST"}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := asCaller(s, c, tt.method, tt.target, tt.body)
			if w.Code != tt.code || w.Header().Get("Content-Type") != tt.ctype || w.Body.String() != tt.want {
				t.Errorf("%d %q %q\nwant %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String(), tt.code, tt.ctype, tt.want)
			}
		})
	}
	if w := asCaller(s, c, "DELETE", "/plugins/presence/status", ""); w.Header().Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("405 without Allow: %v", w.Header())
	}
}

func TestOpenfireRedirects(t *testing.T) {
	s, _ := newOpenfireServer(t, func(o *Options) {
		o.Openfire.Public = true
		o.Openfire.ImageHosts = []string{"img.example.com", "i.example.com", "a.example.com"}
	})
	c := &Caller{ID: "key:intranet", Visibility: SeeStatus}
	const tmpl = "images=" + "https%3A%2F%2Fimg.example.com%2F--IMAGE--%2F--IMAGE--.png"
	tests := []struct {
		name, query string
		location    string // "" for the built-in image of image
		image       string
	}{
		{"images template, every token", "jid=busy@x&" + tmpl, "https://img.example.com/dnd/dnd.png", ""},
		{"oof is xa", "jid=oof@x&" + tmpl, "https://img.example.com/xa/xa.png", ""},
		{"offline", "jid=off@x&" + tmpl, "https://img.example.com/offline/offline.png", ""},
		{"forbidden", "jid=nobody@x&" + tmpl, "https://img.example.com/forbidden/forbidden.png", ""},
		{"the token is case-sensitive", "jid=avail@x&images=http://i.example.com/--image--.gif", "http://i.example.com/--image--.gif", ""},
		{"per-state wins over images", "jid=away@x&away=http://a.example.com/away.gif&" + tmpl, "http://a.example.com/away.gif", ""},
		{"another state's parameter is not used", "jid=away@x&dnd=http://a.example.com/dnd.gif&" + tmpl, "https://img.example.com/away/away.png", ""},
		{"forbidden parameter", "jid=nobody@x&forbidden=https://a.example.com/f.gif", "https://a.example.com/f.gif", ""},
		{"chat parameter: nobody is in chat", "jid=avail@x&chat=https://a.example.com/c.gif", "", ofAvailable},
		{"chat parameter: free to chat", "jid=inchat@x&chat=https://a.example.com/c.gif", "https://a.example.com/c.gif", ""},
		{"chat token", "jid=inchat@x&" + tmpl, "https://img.example.com/chat/chat.png", ""},
		{"plain available beats chat, priority ignored", "jid=mixed@x&" + tmpl, "https://img.example.com/available/available.png", ""},
		{"refused per-state URL: built-in, not images", "jid=away@x&away=file:///etc/passwd&" + tmpl, "", ofAway},
		{"empty per-state URL", "jid=dnd@x&dnd=&" + tmpl, "", ofDND},
		{"refused: javascript", "jid=avail@x&images=javascript:alert(1)//--IMAGE--", "", ofAvailable},
		{"refused: data", "jid=avail@x&available=data:image/png;base64,AAAA", "", ofAvailable},
		{"refused: ftp", "jid=avail@x&available=ftp://a.example.com/a.gif", "", ofAvailable},
		{"refused: relative", "jid=avail@x&images=/img/--IMAGE--.gif", "", ofAvailable},
		{"refused: scheme-relative", "jid=avail@x&images=//evil.example/--IMAGE--.gif", "", ofAvailable},
		{"refused: user info", "jid=avail@x&images=" + url.QueryEscape("https://good.example.com@evil.example/x.gif"), "", ofAvailable},
		{"refused: backslashes", "jid=avail@x&images=" + url.QueryEscape(`https:\\evil.example\x.gif`), "", ofAvailable},
		{"refused: empty", "jid=avail@x&images=", "", ofAvailable},
		{"refused: a host not on the list (no open redirect)", "jid=avail@x&images=https://evil.example/phish?--IMAGE--", "", ofAvailable},
		{"refused: a look-alike host", "jid=avail@x&available=https://img.example.com.evil.example/a.png", "", ofAvailable},
		{"no parameters", "jid=xa@x", "", ofXA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := asCaller(s, c, "GET", "/plugins/presence/status?"+tt.query, "")
			if tt.location != "" {
				if w.Code != http.StatusFound || w.Header().Get("Location") != tt.location || w.Body.Len() != 0 {
					t.Errorf("%d Location %q body %q, want 302 %q and no body", w.Code, w.Header().Get("Location"), w.Body.String(), tt.location)
				}
				return
			}
			if w.Code != 200 || w.Header().Get("Location") != "" || w.Header().Get("Content-Type") != "image/png" || !bytes.Equal(w.Body.Bytes(), openfireImages[tt.image]) {
				t.Errorf("%d Location %q %s, want the built-in %s image", w.Code, w.Header().Get("Location"), w.Header().Get("Content-Type"), tt.image)
			}
		})
	}
}

// The built-in images are 16×16 PNGs: green, yellow, red, and a grey
// ring (transparent in the middle) for offline and forbidden.
func TestOpenfireImages(t *testing.T) {
	want := map[string][2]uint32{ // centre and ring pixel RGBA>>8: R, A
		ofAvailable: {0x2e, 0x2e}, ofAway: {0xf9, 0xf9}, ofXA: {0xf9, 0xf9}, ofDND: {0xc6, 0xc6}, ofOffline: {0, 0x9e}, ofForbidden: {0, 0x9e},
	}
	for state, w := range want {
		img, err := png.Decode(bytes.NewReader(openfireImages[state]))
		if err != nil {
			t.Fatalf("%s: %v", state, err)
		}
		if b := img.Bounds(); b.Dx() != 16 || b.Dy() != 16 {
			t.Errorf("%s: %v", state, b)
		}
		r, _, _, _ := img.At(8, 8).RGBA()
		ring, _, _, _ := img.At(8, 2).RGBA()
		if r>>8 != w[0] || ring>>8 != w[1] {
			t.Errorf("%s: centre red %#x, ring red %#x; want %#x, %#x", state, r>>8, ring>>8, w[0], w[1])
		}
		if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
			t.Errorf("%s: corner not transparent", state)
		}
	}
}

// Through the whole server: the endpoint group, the exact path, headers,
// and HEAD.
func TestOpenfireServer(t *testing.T) {
	closed, _ := newOpenfireServer(t, nil)
	if code, h, _ := do(closed, "GET", "/plugins/presence/status?jid=avail@x&type=text", "", ""); code != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("anonymous on a closed group: %d %v", code, h)
	}
	// A key passes authentication; subscribed mode still shows nothing.
	if code, _, body := do(closed, "GET", "/plugins/presence/status?jid=avail@x&type=text&req_jid=avail@x", statusKey, ""); code != 200 || body != "null\n" {
		t.Errorf("key in subscribed mode: %d %q", code, body)
	}
	s, _ := newOpenfireServer(t, func(o *Options) {
		o.Anonymous = []string{"openfire"}
		o.Openfire.Public = true
		o.Openfire.ImageHosts = []string{"i.example.com"}
	})
	code, h, body := do(s, "GET", "/plugins/presence/status?jid=away@x&type=text", "", "")
	if code != 200 || body != "Available\n" {
		t.Errorf("anonymous, public: %d %q (anonymous callers see the state only)", code, body)
	}
	if code, _, body := do(s, "GET", "/plugins/presence/status?jid=away@x&type=text", statusKey, ""); code != 200 || body != "Lunch\n" {
		t.Errorf("status key, public: %d %q", code, body)
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN",
		"Cache-Control": "private, no-store", "Content-Type": "text/plain;charset=iso-8859-1"} {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
	if h.Get("Set-Cookie") != "" {
		t.Errorf("a cookie: %q", h.Get("Set-Cookie"))
	}
	for _, path := range []string{"/plugins/presence/STATUS", "/plugins/presence/status/", "/plugins/Presence/status"} {
		if code, _, _ := do(s, "GET", path+"?jid=away@x", "", ""); code != 404 {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}

	// HEAD on a real connection: the headers of GET, no body.
	ts := httptest.NewServer(s)
	defer ts.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, q := range []string{"type=text&jid=dnd@x", "type=xml&jid=nobody@x", "jid=off@x", "type=bogus&jid=off@x"} {
		get, err := client.Get(ts.URL + "/plugins/presence/status?" + q)
		if err != nil {
			t.Fatal(err)
		}
		getBody, _ := io.ReadAll(get.Body)
		get.Body.Close()
		head, err := client.Head(ts.URL + "/plugins/presence/status?" + q)
		if err != nil {
			t.Fatal(err)
		}
		headBody, _ := io.ReadAll(head.Body)
		head.Body.Close()
		if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") ||
			head.ContentLength != int64(len(getBody)) || len(headBody) != 0 {
			t.Errorf("%s: HEAD %d %q length %d body %d; GET %d %q body %d", q, head.StatusCode, head.Header.Get("Content-Type"),
				head.ContentLength, len(headBody), get.StatusCode, get.Header.Get("Content-Type"), len(getBody))
		}
	}
	head, err := client.Head(ts.URL + "/plugins/presence/status?jid=avail@x&images=https://i.example.com/--IMAGE--.png")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != 302 || head.Header.Get("Location") != "https://i.example.com/available.png" {
		t.Errorf("HEAD redirect: %d %q", head.StatusCode, head.Header.Get("Location"))
	}
}

func TestOpenfireEncoding(t *testing.T) {
	tests := []struct{ in, latin1, text, attr string }{
		{"plain", "plain", "plain", "plain"},
		{"café", "caf\xe9", "café", "café"},
		{"€ 😀", "? ?", "€ 😀", "€ 😀"},
		{"bad \xff byte", "bad ? byte", "bad \uFFFD byte", "bad \uFFFD byte"},
		{"a\tb\nc\rd\x01e\x1f", "a\tb\nc\rd\x01e\x1f", "a\tb\nc\rd&#1;e&#31;", "a\tb\nc\rd&#1;e&#31;"},
		{`<&>"'`, `<&>"'`, `&lt;&amp;&gt;"'`, `&lt;&amp;&gt;&quot;'`},
	}
	for _, tt := range tests {
		if got := string(latin1(tt.in)); got != tt.latin1 {
			t.Errorf("latin1(%q) = %q, want %q", tt.in, got, tt.latin1)
		}
		if got := xmlText(tt.in); got != tt.text {
			t.Errorf("xmlText(%q) = %q, want %q", tt.in, got, tt.text)
		}
		if got := xmlAttr(tt.in); got != tt.attr {
			t.Errorf("xmlAttr(%q) = %q, want %q", tt.in, got, tt.attr)
		}
	}
	if got := javaTrim("\x00 \t\u00a0x\u2003 \n"); got != "\u00a0x\u2003" {
		t.Errorf("javaTrim strips %q", got)
	}
}
