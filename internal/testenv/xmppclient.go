package testenv

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"github.com/presencegw/presencegw/internal/xmppbind"
)

// Node is a received XML element kept whole, so tests can assert on any
// attribute or child without a struct per stanza kind.
type Node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []Node     `xml:",any"`
}

// Attr returns the attribute with the local name, "" if absent.
func (n Node) Attr(local string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child with the local name (any namespace).
func (n Node) Child(local string) (Node, bool) {
	for _, c := range n.Children {
		if c.XMLName.Local == local {
			return c, true
		}
	}
	return Node{}, false
}

// ChildText is the text of the first child with the local name.
func (n Node) ChildText(local string) string {
	c, _ := n.Child(local)
	return c.Text
}

// String renders the element back to XML, for failure messages.
func (n Node) String() string {
	var b strings.Builder
	b.WriteString("<" + n.XMLName.Local)
	if n.XMLName.Space != "" {
		fmt.Fprintf(&b, " xmlns=%q", n.XMLName.Space)
	}
	for _, a := range n.Attrs {
		if a.Name.Local == "xmlns" {
			continue
		}
		fmt.Fprintf(&b, " %s=%q", a.Name.Local, a.Value)
	}
	b.WriteString(">")
	for _, c := range n.Children {
		b.WriteString(c.String())
	}
	xml.EscapeText(&b, []byte(n.Text))
	b.WriteString("</" + n.XMLName.Local + ">")
	return b.String()
}

// Stanza is one top-level element a client or component received.
type Stanza struct {
	Node
	// At is when it arrived.
	At time.Time
}

// IsPresence reports whether the stanza is a presence.
func (s Stanza) IsPresence() bool { return s.XMLName.Local == "presence" }

// Show is a presence's <show/> ("" = available).
func (s Stanza) Show() string { return s.ChildText("show") }

// Status is a presence's <status/>.
func (s Stanza) Status() string { return s.ChildText("status") }

// Priority is a presence's <priority/> (0 when absent).
func (s Stanza) Priority() int {
	p, _ := strconv.Atoi(strings.TrimSpace(s.ChildText("priority")))
	return p
}

// XMPPClient is a real XMPP session (a client logged in as a user, or
// the raw component) that records everything it receives.
type XMPPClient struct {
	// JID is the session's address: the full JID of a client, the
	// domain of a component.
	JID     string
	session *xmpp.Session

	mu       sync.Mutex
	received []Stanza
	notify   chan struct{}
	done     chan struct{}
	closed   bool
	err      error
}

// DialXMPP logs user@Domain/resource in (password = user name, as
// XMPPOptions.Users registers) and serves its stream until the test ends.
// The connection is plain TCP on loopback, which the test servers accept;
// the session is marked secure so SASL PLAIN is offered.
func DialXMPP(t testing.TB, srv *XMPPServer, user, resource string) *XMPPClient {
	t.Helper()
	addr, err := jid.Parse(user + "@" + srv.Domain + "/" + resource)
	if err != nil {
		t.Fatalf("testenv: jid: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.C2SAddr)
	if err != nil {
		t.Fatalf("testenv: dial %s: %v", srv.C2SAddr, err)
	}
	s, err := xmpp.NewSession(ctx, addr.Domain(), addr, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", user, sasl.Plain),
			xmppbind.Feature(addr.Resourcepart()),
		}}
	}))
	if err != nil {
		conn.Close()
		t.Fatalf("testenv: log in %s on %s: %v\n%s", addr, srv.Kind, err, srv.Log())
	}
	c := serve(t, s, s.LocalAddr().String())
	// Ask for the roster as a real client does: the server sends roster
	// pushes only to resources that did.
	c.IQ(t, `<iq type="get" id="roster1"><query xmlns="jabber:iq:roster"/></iq>`)
	return c
}

// DialComponent connects as the server's XEP-0114 component.
func DialComponent(t testing.TB, srv *XMPPServer) *XMPPClient {
	t.Helper()
	c, err := TryDialComponent(srv)
	if err != nil {
		t.Fatalf("testenv: component %s on %s: %v\n%s", srv.ComponentJID, srv.Kind, err, srv.Log())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TryDialComponent is DialComponent returning the error, for tests that
// expect a refusal; the caller closes the client.
func TryDialComponent(srv *XMPPServer) (*XMPPClient, error) {
	addr, err := jid.Parse(srv.ComponentJID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.ComponentAddr)
	if err != nil {
		return nil, err
	}
	s, err := component.NewSession(ctx, addr, []byte(srv.ComponentSecret), conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return start(s, srv.ComponentJID), nil
}

func serve(t testing.TB, s *xmpp.Session, addr string) *XMPPClient {
	c := start(s, addr)
	t.Cleanup(func() { c.Close() })
	return c
}

func start(s *xmpp.Session, addr string) *XMPPClient {
	c := &XMPPClient{JID: addr, session: s, notify: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		err := s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var n Node
			d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r))
			if err := d.Decode(&n); err != nil {
				return err
			}
			c.mu.Lock()
			c.received = append(c.received, Stanza{Node: n, At: time.Now()})
			close(c.notify)
			c.notify = make(chan struct{})
			c.mu.Unlock()
			return nil
		}))
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}()
	return c
}

// Close ends the stream (the server then broadcasts unavailable) and
// waits for the session to stop. Safe to call twice.
func (c *XMPPClient) Close() {
	c.mu.Lock()
	closed := c.closed
	c.closed = true
	c.mu.Unlock()
	if closed {
		return
	}
	_ = c.session.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	_ = c.session.Conn().Close()
}

// Kill drops the TCP connection without closing the stream, as a crash
// or a cut network does.
func (c *XMPPClient) Kill() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	_ = c.session.Conn().Close()
	<-c.done
}

// Err is why the session ended (nil while it runs or after Close).
func (c *XMPPClient) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the session has ended (stream closed or cut).
func (c *XMPPClient) Done() <-chan struct{} { return c.done }

// Mark is the number of stanzas received so far; pass it to WaitFor or
// Received to look only at what arrives afterwards.
func (c *XMPPClient) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.received)
}

// Received returns the stanzas received since mark.
func (c *XMPPClient) Received(mark int) []Stanza {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mark > len(c.received) {
		return nil
	}
	return append([]Stanza(nil), c.received[mark:]...)
}

// WaitFor returns the first stanza since mark that match accepts, waiting
// up to timeout; it fails the test (saying what) if none arrives.
func (c *XMPPClient) WaitFor(t testing.TB, mark int, timeout time.Duration, what string, match func(Stanza) bool) Stanza {
	t.Helper()
	s, ok := c.Await(mark, timeout, match)
	if !ok {
		var got []string
		for _, r := range c.Received(mark) {
			got = append(got, r.String())
		}
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		t.Fatalf("%s: no %s within %v (session error: %v); received since mark:\n%s", c.JID, what, timeout, err, strings.Join(got, "\n"))
	}
	return s
}

// Await is WaitFor without failing: ok is false after timeout.
func (c *XMPPClient) Await(mark int, timeout time.Duration, match func(Stanza) bool) (Stanza, bool) {
	deadline := time.After(timeout)
	for i := mark; ; {
		c.mu.Lock()
		for ; i < len(c.received); i++ {
			if match(c.received[i]) {
				s := c.received[i]
				c.mu.Unlock()
				return s, true
			}
		}
		notify := c.notify
		c.mu.Unlock()
		select {
		case <-notify:
		case <-deadline:
			return Stanza{}, false
		case <-c.done:
			// Look once more at what arrived before the end.
			c.mu.Lock()
			for ; i < len(c.received); i++ {
				if match(c.received[i]) {
					s := c.received[i]
					c.mu.Unlock()
					return s, true
				}
			}
			c.mu.Unlock()
			return Stanza{}, false
		}
	}
}

// Send writes one raw stanza, e.g. `<presence><show>away</show></presence>`.
func (c *XMPPClient) Send(t testing.TB, raw string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.session.Send(ctx, rawTokens(raw)); err != nil {
		t.Fatalf("%s: send %s: %v", c.JID, raw, err)
	}
}

// SendPresence sends available presence (to "" = broadcast) with the
// given show, status and priority; empty show/status are left out.
func (c *XMPPClient) SendPresence(t testing.TB, to, show, status string, priority int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("<presence")
	if to != "" {
		fmt.Fprintf(&b, " to=%q", to)
	}
	b.WriteString(">")
	if show != "" {
		b.WriteString("<show>" + show + "</show>")
	}
	if status != "" {
		b.WriteString("<status>")
		xml.EscapeText(&b, []byte(status))
		b.WriteString("</status>")
	}
	fmt.Fprintf(&b, "<priority>%d</priority></presence>", priority)
	c.Send(t, b.String())
}

// IQ sends a raw <iq/> (get or set, with an id) and returns the reply
// (result or error).
func (c *XMPPClient) IQ(t testing.TB, raw string) Stanza {
	t.Helper()
	s, err := c.TryIQ(raw, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: iq %s: %v", c.JID, raw, err)
	}
	return s
}

// TryIQ is IQ returning the error.
func (c *XMPPClient) TryIQ(raw string, timeout time.Duration) (Stanza, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := c.session.SendIQ(ctx, rawTokens(raw))
	if err != nil {
		return Stanza{}, err
	}
	defer r.Close()
	d := xml.NewTokenDecoder(r)
	tok, err := d.Token()
	if err != nil {
		return Stanza{}, fmt.Errorf("reading reply: %w", err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return Stanza{}, fmt.Errorf("reply starts with %T", tok)
	}
	var n Node
	if err := d.DecodeElement(&n, &start); err != nil {
		return Stanza{}, fmt.Errorf("decoding reply: %w", err)
	}
	return Stanza{Node: n, At: time.Now()}, nil
}

// MakeContacts makes a and b mutual roster contacts (subscription both)
// by the ordinary subscription handshake. Both must have sent initial
// presence.
func MakeContacts(t testing.TB, a, b *XMPPClient) {
	t.Helper()
	aBare, bBare := bare(a.JID), bare(b.JID)
	for _, p := range [][2]*XMPPClient{{a, b}, {b, a}} {
		from, to := p[0], p[1]
		mark := to.Mark()
		from.Send(t, fmt.Sprintf(`<presence type="subscribe" to=%q/>`, bare(to.JID)))
		to.WaitFor(t, mark, 5*time.Second, "subscription request from "+bare(from.JID), func(s Stanza) bool {
			return s.IsPresence() && s.Attr("type") == "subscribe" && bare(s.Attr("from")) == bare(from.JID)
		})
		to.Send(t, fmt.Sprintf(`<presence type="subscribed" to=%q/>`, bare(from.JID)))
	}
	for _, p := range [][2]string{{a.JID, bBare}, {b.JID, aBare}} {
		c := a
		if p[0] == b.JID {
			c = b
		}
		c.WaitFor(t, 0, 5*time.Second, "roster push with subscription both for "+p[1], func(s Stanza) bool {
			if s.XMLName.Local != "iq" {
				return false
			}
			q, ok := s.Child("query")
			if !ok {
				return false
			}
			item, ok := q.Child("item")
			return ok && item.Attr("jid") == p[1] && item.Attr("subscription") == "both"
		})
	}
}

// Bare strips the resource from a JID string.
func Bare(j string) string { return bare(j) }

func bare(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

// rawTokens turns raw XML into tokens mellium can send: namespaces come
// from the element names, so the decoder's duplicate xmlns attributes are
// dropped.
func rawTokens(raw string) xml.TokenReader {
	return &stripXMLNS{d: xml.NewDecoder(strings.NewReader(raw))}
}

type stripXMLNS struct{ d *xml.Decoder }

func (s *stripXMLNS) Token() (xml.Token, error) {
	tok, err := s.d.Token()
	if err != nil {
		return tok, err
	}
	if start, ok := tok.(xml.StartElement); ok {
		attrs := start.Attr[:0:0]
		for _, a := range start.Attr {
			if a.Name.Space == "" && a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
				continue
			}
			attrs = append(attrs, a)
		}
		start.Attr = attrs
		return start, nil
	}
	return tok, err
}
