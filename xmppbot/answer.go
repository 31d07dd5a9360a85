package xmppbot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// The component answers over XMPP (docs/xmpp-protocol.md): service
// discovery, a lookup IQ, chat commands and XEP-0050 ad-hoc commands.
// Handlers run inside the session's read loop, so none of them blocks:
// whatever may take long (a directory sync) runs in the background and
// reports by message.

// Namespaces of the answers.
const (
	// NSLookup is the lookup IQ's namespace (docs/xmpp-protocol.md).
	NSLookup = "urn:presencegw:lookup:0"

	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsCommands   = "http://jabber.org/protocol/commands"
	nsData       = "jabber:x:data"
)

// Limits on what a request may ask.
const (
	// maxLookupItems is the most addresses and JIDs one lookup may hold.
	maxLookupItems = 100
	// maxBody is the longest chat command in bytes.
	maxBody = 4096
	// maxPayloadTokens and maxPayloadBytes bound an IQ's payload as read
	// into memory; a larger one is refused unread.
	maxPayloadTokens = 4096
	maxPayloadBytes  = 64 << 10
	// maxPayloadDepth bounds the payload's nesting.
	maxPayloadDepth = 32
	// Each sender may send commandRate requests per second, commandBurst
	// at once (chat commands, lookups, ad-hoc commands); more are dropped
	// (messages) or refused (IQs).
	commandRate  = 5
	commandBurst = 10
)

// answers is the state of the answering side of the component.
type answers struct {
	bot    *Bot
	admins map[string]bool // lower-case bare JIDs
	limits *senderLimits
	adhoc  *adhocSessions

	// syncing is set while a directory sync runs: one at a time.
	syncing atomic.Bool
	// syncTimeout bounds a sync.
	syncTimeout time.Duration

	// send delivers a stanza outside a handler (a sync's summary); nil
	// uses the current connection. Tests set it before any request.
	send func(xml.TokenReader) error
}

func newAnswers(b *Bot) *answers {
	a := &answers{bot: b, admins: map[string]bool{}, limits: newSenderLimits(commandRate, commandBurst),
		adhoc: newAdhocSessions(), syncTimeout: 2 * time.Minute}
	for _, s := range b.cfg.Admins {
		if j, err := jid.Parse(strings.TrimSpace(s)); err == nil {
			a.admins[strings.ToLower(j.Bare().String())] = true
		} else {
			b.log.Warn("xmpp: ignoring an admin that is not a JID", "admin", s, "err", err)
		}
	}
	return a
}

// deliver sends a stanza outside a handler.
func (a *answers) deliver(r xml.TokenReader) error {
	if a.send != nil {
		return a.send(r)
	}
	b := a.bot
	b.mu.Lock()
	c := b.conn
	b.mu.Unlock()
	if c == nil {
		return errors.New("not connected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.s.Send(ctx, r)
}

// caller is who sent a request, as the server vouches for it.
type caller struct {
	full  string // the sender's address, where replies go
	bare  string // lower-case bare JID
	local bool   // a user of one of Config.Hosts
	admin bool   // a local user listed in Config.Admins
}

// callerOf classifies a stanza's sender; ok is false when it is no
// user's JID (a server, a component, garbage).
func (b *Bot) callerOf(from string) (caller, bool) {
	j, err := jid.Parse(from)
	if err != nil || j.Localpart() == "" {
		return caller{}, false
	}
	c := caller{full: j.String(), bare: strings.ToLower(j.Bare().String())}
	c.local = b.hosts[strings.ToLower(j.Domainpart())]
	c.admin = c.local && b.ans.admins[c.bare]
	return c, true
}

// forMe reports whether an IQ's "to" is the component itself (a
// missing "to" is, RFC 6120 §10.3). A JID with a localpart at the
// component's domain names nobody.
func (b *Bot) forMe(to string) bool {
	if to == "" {
		return true
	}
	j, err := jid.Parse(to)
	return err == nil && j.Localpart() == "" && strings.EqualFold(j.Domainpart(), b.jid.Domainpart())
}

// iqRequest is an IQ get or set being answered.
type iqRequest struct {
	id, typ, from, to string
	caller            caller
	user              bool // caller is a user's JID
}

// start is the reply's start element: to and from swapped.
func (r *iqRequest) start(b *Bot, typ string) xml.StartElement {
	from := r.to
	if from == "" {
		from = b.jid.String()
	}
	attrs := []xml.Attr{{Name: xml.Name{Local: "type"}, Value: typ}, {Name: xml.Name{Local: "from"}, Value: from}}
	if r.from != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "to"}, Value: r.from})
	}
	attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "id"}, Value: r.id})
	return xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: attrs}
}

// result answers with payload (nil for an empty result).
func (b *Bot) result(w xmlstream.TokenWriter, r *iqRequest, payload xml.TokenReader) error {
	_, err := xmlstream.Copy(w, xmlstream.Wrap(payload, r.start(b, "result")))
	return err
}

// fail answers with an error; app is an application-specific condition
// element (nil for none).
func (b *Bot) fail(w xmlstream.TokenWriter, r *iqRequest, e stanza.Error, app xml.TokenReader) error {
	_, err := xmlstream.Copy(w, xmlstream.Wrap(e.Wrap(app), r.start(b, "error")))
	return err
}

// stanzaError is an error of the given type and condition with a text.
func stanzaError(typ stanza.ErrorType, cond stanza.Condition, text string) stanza.Error {
	e := stanza.Error{Type: typ, Condition: cond}
	if text != "" {
		e.Text = map[string]string{"": text}
	}
	return e
}

// handleIQ answers IQs addressed to the component: every get and set
// gets exactly one reply; results and errors are not answered.
func (b *Bot) handleIQ(rw xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	r := iqRequest{}
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "id":
			r.id = a.Value
		case "type":
			r.typ = a.Value
		case "from":
			r.from = a.Value
		case "to":
			r.to = a.Value
		}
	}
	if r.typ != "get" && r.typ != "set" {
		return nil
	}
	r.caller, r.user = b.callerOf(r.from)
	p, err := readPayload(rw)
	switch {
	case errors.Is(err, errTooLarge):
		return b.fail(rw, &r, stanzaError(stanza.Modify, stanza.PolicyViolation, err.Error()), nil)
	case err != nil:
		return b.fail(rw, &r, stanzaError(stanza.Modify, stanza.BadRequest, err.Error()), nil)
	}
	if !b.forMe(r.to) {
		return b.fail(rw, &r, stanzaError(stanza.Cancel, stanza.ServiceUnavailable, ""), nil)
	}
	switch p.name() {
	case xml.Name{Space: nsDiscoInfo, Local: "query"}:
		return b.discoInfo(rw, &r, p)
	case xml.Name{Space: nsDiscoItems, Local: "query"}:
		return b.discoItems(rw, &r, p)
	case xml.Name{Space: NSLookup, Local: "lookup"}:
		return b.lookup(rw, &r, p)
	case xml.Name{Space: nsCommands, Local: "command"}:
		return b.command(rw, &r, p)
	}
	return b.fail(rw, &r, stanzaError(stanza.Cancel, stanza.ServiceUnavailable, ""), nil)
}

// handleChat answers a message (commands, see commands.go). Only chat
// and normal messages with a body are read; error, groupchat and
// headline messages never get a reply, so two services cannot talk to
// each other forever, and each sender's rate is bounded.
func (b *Bot) handleChat(rw xmlstream.TokenReadEncoder, from, id, typ, body string) error {
	switch typ {
	case "", "normal", "chat":
	default:
		return nil
	}
	if strings.TrimSpace(body) == "" {
		return nil // chat states, receipts and the like
	}
	c, ok := b.callerOf(from)
	if !ok || !b.ans.limits.allow(c) {
		return nil
	}
	if !c.local {
		return b.chat(rw, c.full, "This service answers users of "+strings.Join(b.cfg.Hosts, ", ")+" only.")
	}
	if len(body) > maxBody {
		e := stanzaError(stanza.Modify, stanza.PolicyViolation, "a command is at most 4096 bytes")
		m := stanza.Message{ID: id, To: mustJID(c.full), From: b.jid, Type: stanza.ErrorMessage}
		_, err := xmlstream.Copy(rw, m.Wrap(e.TokenReader()))
		return err
	}
	return b.chat(rw, c.full, b.runChat(c, body))
}

// chat writes a chat message from the component to w.
func (b *Bot) chat(w xmlstream.TokenWriter, to, text string) error {
	_, err := xmlstream.Copy(w, b.chatMessage(to, text))
	return err
}

// chatMessage is a chat message from the component.
func (b *Bot) chatMessage(to, text string) xml.TokenReader {
	return el(xml.Name{Local: "message"},
		attrs("type", "chat", "from", b.jid.String(), "to", to, "id", newID()),
		el(xml.Name{Local: "body"}, nil).text(text)).reader()
}

func mustJID(s string) jid.JID {
	j, _ := jid.Parse(s)
	return j
}

// newID is a random stanza or session id.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errTooLarge is a payload over the limits.
var errTooLarge = errors.New("the request is too large")

// payload is an IQ's child element, read into memory.
type payload struct {
	toks []xml.Token // from its start element to its end element
}

func (p *payload) name() xml.Name { return p.toks[0].(xml.StartElement).Name }

// attr is an attribute of the payload element ("" when absent).
func (p *payload) attr(local string) string {
	for _, a := range p.toks[0].(xml.StartElement).Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// decode unmarshals the payload into v.
func (p *payload) decode(v any) error {
	return xml.NewTokenDecoder(&sliceReader{toks: p.toks}).Decode(v)
}

// readPayload reads an IQ's content (up to and including the IQ's end
// element, as the session hands it over) and returns its one child
// element, within the size limits.
func readPayload(r xml.TokenReader) (*payload, error) {
	var p *payload
	depth, size, n := 0, 0, 0
	for {
		tok, err := r.Token()
		if tok != nil {
			if n++; n > maxPayloadTokens {
				return nil, errTooLarge
			}
			if size += tokenSize(tok); size > maxPayloadBytes {
				return nil, errTooLarge
			}
			switch tok.(type) {
			case xml.StartElement:
				if depth == 0 {
					if p != nil {
						return nil, errNotOneChild
					}
					p = &payload{}
				}
				if depth++; depth > maxPayloadDepth {
					return nil, errTooLarge
				}
				p.toks = append(p.toks, xml.CopyToken(tok))
			case xml.EndElement:
				if depth == 0 {
					break // the IQ's own end
				}
				depth--
				p.toks = append(p.toks, tok)
			default:
				if depth > 0 {
					p.toks = append(p.toks, xml.CopyToken(tok))
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.New("malformed XML")
		}
	}
	if p == nil || depth != 0 {
		return nil, errNotOneChild
	}
	return p, nil
}

var errNotOneChild = errors.New("an IQ get or set has exactly one child element")

// tokenSize is roughly how many bytes a token takes.
func tokenSize(tok xml.Token) int {
	switch t := tok.(type) {
	case xml.StartElement:
		n := len(t.Name.Space) + len(t.Name.Local)
		for _, a := range t.Attr {
			n += len(a.Name.Space) + len(a.Name.Local) + len(a.Value)
		}
		return n
	case xml.EndElement:
		return len(t.Name.Space) + len(t.Name.Local)
	case xml.CharData:
		return len(t)
	case xml.Comment:
		return len(t)
	case xml.ProcInst:
		return len(t.Target) + len(t.Inst)
	case xml.Directive:
		return len(t)
	}
	return 0
}

// sliceReader reads tokens from a slice.
type sliceReader struct {
	toks []xml.Token
	i    int
}

func (s *sliceReader) Token() (xml.Token, error) {
	if s.i >= len(s.toks) {
		return nil, io.EOF
	}
	s.i++
	return s.toks[s.i-1], nil
}

// element is an XML element to write.
type element struct {
	name  xml.Name
	attrs []xml.Attr
	body  string
	kids  []*element
}

// el makes an element with attributes and children (nil children are
// left out).
func el(name xml.Name, attrs []xml.Attr, kids ...*element) *element {
	e := &element{name: name, attrs: attrs}
	for _, k := range kids {
		if k != nil {
			e.kids = append(e.kids, k)
		}
	}
	return e
}

// text sets the element's character data.
func (e *element) text(s string) *element {
	e.body = s
	return e
}

// add appends children.
func (e *element) add(kids ...*element) *element {
	for _, k := range kids {
		if k != nil {
			e.kids = append(e.kids, k)
		}
	}
	return e
}

func (e *element) tokens(out []xml.Token) []xml.Token {
	out = append(out, xml.StartElement{Name: e.name, Attr: e.attrs})
	if e.body != "" {
		out = append(out, xml.CharData(e.body))
	}
	for _, k := range e.kids {
		out = k.tokens(out)
	}
	return append(out, xml.EndElement{Name: e.name})
}

func (e *element) reader() xml.TokenReader { return &sliceReader{toks: e.tokens(nil)} }

// attrs makes attributes from name, value pairs, leaving out empty
// values.
func attrs(kv ...string) []xml.Attr {
	var out []xml.Attr
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			out = append(out, xml.Attr{Name: xml.Name{Local: kv[i]}, Value: kv[i+1]})
		}
	}
	return out
}
