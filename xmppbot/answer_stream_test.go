package xmppbot

import (
	"context"
	"crypto/sha1"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// acceptComponent is the server side of the XEP-0114 handshake (mellium
// implements only the component's side).
func acceptComponent(addr jid.JID, secret []byte) xmpp.Negotiator {
	return func(ctx context.Context, in, out *stream.Info, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, any, error) {
		r := s.TokenReader()
		defer r.Close()
		d := xml.NewTokenDecoder(r)
		var start xml.StartElement
		for {
			tok, err := d.Token()
			if err != nil {
				return 0, nil, nil, err
			}
			if st, ok := tok.(xml.StartElement); ok {
				start = st
				break
			}
		}
		if err := in.FromStartElement(start); err != nil {
			return 0, nil, nil, err
		}
		const id = "stream-1"
		if _, err := fmt.Fprintf(s.Conn(), `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='%s'>`, id, addr); err != nil {
			return 0, nil, nil, err
		}
		out.XMLNS = component.NSAccept
		var hs string
		tok, err := d.Token()
		if err != nil {
			return 0, nil, nil, err
		}
		st, ok := tok.(xml.StartElement)
		if !ok || st.Name.Local != "handshake" {
			return 0, nil, nil, errors.New("want a handshake")
		}
		if err := d.DecodeElement(&hs, &st); err != nil {
			return 0, nil, nil, err
		}
		if want := fmt.Sprintf("%x", sha1.Sum(append([]byte(id), secret...))); hs != want {
			return 0, nil, nil, errors.New("wrong handshake")
		}
		if _, err := fmt.Fprint(s.Conn(), `<handshake/>`); err != nil {
			return 0, nil, nil, err
		}
		return xmpp.Ready | xmpp.Authn, nil, nil, nil
	}
}

// testAnswerOverComponentStream runs the handlers behind a real mellium
// component session (XEP-0114 handshake over an in-memory pipe, the
// server side's handshake played by acceptComponent): replies
// reach the sender, mellium adds no second answer to an IQ, and a sync's
// summary goes out over the connection.
func testAnswerOverComponentStream(t *testing.T) {
	w := newAnsWorld(t, nil)
	w.bot.ans.send = nil // deliver over the connection
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := jid.MustParse(ansComponent)
	srvConn, compConn := net.Pipe()
	defer srvConn.Close()
	defer compConn.Close()

	type result struct {
		s   *xmpp.Session
		err error
	}
	srvc := make(chan result, 1)
	go func() {
		s, err := xmpp.ReceiveSession(ctx, srvConn, 0, acceptComponent(addr, []byte("s")))
		srvc <- result{s, err}
	}()
	comp, err := component.NewSession(ctx, addr, []byte("s"), compConn)
	if err != nil {
		t.Fatalf("component handshake: %v", err)
	}
	sr := <-srvc
	if sr.err != nil {
		t.Fatalf("server handshake: %v", sr.err)
	}
	srv := sr.s
	c := &conn{bot: w.bot, s: comp, privileges: make(chan privAdvert, 1), done: make(chan struct{})}
	w.bot.mu.Lock()
	w.bot.conn = c
	w.bot.mu.Unlock()
	go func() {
		_ = comp.Serve(xmpp.HandlerFunc(c.handle))
		close(c.done)
	}()
	// The server side sees what the component sends that is not an IQ
	// reply.
	inbox := make(chan xnode, 16)
	go func() {
		_ = srv.Serve(xmpp.HandlerFunc(func(rw xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			var n xnode
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), rw)).Decode(&n); err == nil {
				inbox <- n
			}
			return nil
		}))
	}()
	defer func() {
		comp.Close()
		srv.Close()
	}()

	alice := jid.MustParse(ansAdmin)
	ask := func(typ stanza.IQType, payload string) xnode {
		t.Helper()
		d := xml.NewDecoder(strings.NewReader(payload))
		r, err := srv.SendIQ(ctx, stanza.IQ{To: addr, From: alice, Type: typ}.Wrap(xmlstream.ReaderFunc(d.Token)))
		if err != nil {
			t.Fatalf("IQ: %v", err)
		}
		defer r.Close()
		var n xnode
		if err := xml.NewTokenDecoder(r).Decode(&n); err != nil {
			t.Fatalf("reply: %v", err)
		}
		return n
	}

	if r := ask(stanza.GetIQ, `<query xmlns="http://jabber.org/protocol/disco#info"/>`); r.attr("type") != "result" ||
		r.child("query").child("identity").attr("type") != "presence" {
		t.Errorf("disco#info: %+v", r)
	}
	r := ask(stanza.GetIQ, `<lookup xmlns="urn:presencegw:lookup:0"><address>alice@corp.example</address></lookup>`)
	if p := r.child("lookup").child("person"); r.attr("type") != "result" || p.attr("state") != "busy" || p.attr("jid") != "alice@example.com" {
		t.Errorf("lookup: %+v", r)
	}
	wantError(t, ask(stanza.GetIQ, `<query xmlns="jabber:iq:version"/>`), "cancel", "service-unavailable", "")
	r = ask(stanza.SetIQ, `<command xmlns="http://jabber.org/protocol/commands" node="sync"/>`)
	if r.child("command").attr("status") != "completed" {
		t.Errorf("sync: %+v", r)
	}

	// The sync's summary, then a chat reply; nothing else (no second
	// answer to any IQ).
	if err := srv.Send(ctx, stanza.Message{To: addr, From: alice, Type: stanza.ChatMessage}.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData("help")), xml.StartElement{Name: xml.Name{Local: "body"}}))); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case n := <-inbox:
			if n.XMLName.Local != "message" || n.attr("to") != ansAdmin {
				t.Fatalf("unexpected stanza %+v", n)
			}
			got = append(got, n.child("body").Text)
		case <-ctx.Done():
			t.Fatalf("got %q, want the sync's summary and help", got)
		}
	}
	joined := strings.Join(got, "\n")
	if !strings.Contains(joined, "Directory sync finished: 3 changes") || !strings.Contains(joined, "calendar off") {
		t.Errorf("messages %q", got)
	}
	select {
	case n := <-inbox:
		t.Errorf("extra stanza %+v", n)
	case <-time.After(200 * time.Millisecond):
	}
}
