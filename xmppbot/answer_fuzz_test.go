package xmppbot

import (
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/presencegw/presencegw/web"
)

// The fuzz targets feed arbitrary stanzas to the component's stanza
// handler (through the same in-memory TokenReadEncoder as the unit tests)
// and check that nothing panics and that whatever comes back is
// well-formed: stanzas in the component namespace, one reply with the
// request's id to every IQ get or set, none to anything else, and error
// replies that carry a defined condition. The seeds run in every
// `go test`.

var fuzzSeeds = []string{
	`<iq type="get" id="1" from="alice@example.com/a" to="presence.example.com"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`,
	`<iq type="get" id="2" from="admin@example.com/a" to="presence.example.com"><query xmlns="http://jabber.org/protocol/disco#items" node="http://jabber.org/protocol/commands"/></iq>`,
	`<iq type="get" id="3" from="alice@example.com/a" to="presence.example.com"><query xmlns="http://jabber.org/protocol/disco#info" node="resolve"/></iq>`,
	`<iq type="get" id="4" from="alice@example.com/a" to="presence.example.com"><lookup xmlns="urn:presencegw:lookup:0"><address>alice@corp.example</address><jid>carol@example.com</jid><address>x</address></lookup></iq>`,
	`<iq type="get" id="5" from="mallory@elsewhere.test/a"><lookup xmlns="urn:presencegw:lookup:0"><address>alice@corp.example</address></lookup></iq>`,
	`<iq type="set" id="6" from="admin@example.com/a"><command xmlns="http://jabber.org/protocol/commands" node="resolve" action="execute"/></iq>`,
	`<iq type="set" id="7" from="admin@example.com/a"><command xmlns="http://jabber.org/protocol/commands" node="resolve" sessionid="resolve:x"><x xmlns="jabber:x:data" type="submit"><field var="address"><value>a@b</value></field></x></command></iq>`,
	`<iq type="set" id="8" from="admin@example.com/a"><command xmlns="http://jabber.org/protocol/commands" node="resolve"><x xmlns="jabber:x:data" type="submit"><field var="address"><value>bob@corp.example</value></field></x></command></iq>`,
	`<iq type="set" id="9" from="alice@example.com/a"><command xmlns="http://jabber.org/protocol/commands" node="calendar-off"/></iq>`,
	`<iq type="set" id="10" from="alice@example.com/a"><command xmlns="http://jabber.org/protocol/commands" node="status" action="bogus"/></iq>`,
	`<iq type="set" id="11" from="admin@example.com/a"><command xmlns="http://jabber.org/protocol/commands" node="sync"/></iq>`,
	`<iq type="get" id="12" from="alice@example.com/a"><ping xmlns="urn:xmpp:ping"/></iq>`,
	`<iq type="get" id="13" from="alice@example.com/a"/>`,
	`<iq type="get" id="14" from="alice@example.com/a"><a xmlns="x"/><b xmlns="y"/></iq>`,
	`<iq type="result" id="15" from="example.com"/>`,
	`<iq type="get" id="16" from="::::" to="@@"><lookup xmlns="urn:presencegw:lookup:0"><address>a</address></lookup></iq>`,
	`<iq type="get" id="17" from="alice@example.com/a"><x:lookup xmlns:x="urn:presencegw:lookup:0"><x:jid>alice@example.com</x:jid><x:address><![CDATA[<&>]]></x:address></x:lookup></iq>`,
	`<iq type="get" id="18" from="alice@example.com/a"><lookup xmlns="urn:presencegw:lookup:0"><address>a<b/></address></lookup></iq>`,
	`<message type="chat" id="m1" from="alice@example.com/a" to="presence.example.com"><body>status</body></message>`,
	`<message type="chat" id="m2" from="admin@example.com/a"><body>resolve bob@corp.example</body></message>`,
	`<message type="chat" id="m3" from="admin@example.com/a"><body>sync</body></message>`,
	`<message type="chat" id="m4" from="alice@example.com/a"><body>calendar off</body></message>`,
	`<message type="normal" id="m5" from="mallory@elsewhere.test/a"><body>help</body></message>`,
	`<message type="error" id="m6" from="alice@example.com/a"><body>help</body></message>`,
	`<message type="chat" id="m7" from="alice@example.com/a"><body>a</body><body xml:lang="de">b</body></message>`,
	`<message type="chat" id="m8" from="alice@example.com/a"><body>` + strings.Repeat("é", 3000) + `</body></message>`,
	`<message from="example.com"><privilege xmlns="urn:xmpp:privilege:2"><perm access="presence" type="managed_entity"/></privilege></message>`,
	`<presence from="alice@example.com/laptop"><show>dnd</show></presence>`,
	`<message type="chat" id="s1" from="bob@example.com/pc" to="alice\40example.com@presence.example.com"><body>are you free?</body></message>`,
	`<message type="chat" id="s2" from="bob@example.com/pc" to="alice\40elsewhere.test@presence.example.com"><body>hi</body></message>`,
	`<presence type="probe" from="bob@example.com/pc" to="alice\40example.com@presence.example.com"/>`,
	`<presence type="subscribe" from="carol@example.com" to="alice\5c40example.com@presence.example.com"/>`,
}

func FuzzAnswerIQ(f *testing.F) {
	for _, s := range fuzzSeeds {
		if strings.HasPrefix(s, "<iq") {
			f.Add(s)
		}
	}
	w := newAnsWorld(f, func(c *Config) { c.Visibility = web.SeeCalendar })
	w.bot.ans.limits = newSenderLimits(1e9, 1e9)
	f.Fuzz(func(t *testing.T, in string) {
		checkAnswer(t, w, in)
	})
}

func FuzzChatMessage(f *testing.F) {
	for _, s := range fuzzSeeds {
		if !strings.HasPrefix(s, "<iq") {
			f.Add(s)
		}
	}
	w := newAnsWorld(f, nil)
	w.bot.ans.limits = newSenderLimits(1e9, 1e9)
	f.Fuzz(func(t *testing.T, in string) {
		checkAnswer(t, w, in)
	})
}

// checkAnswer feeds one stanza and checks the replies.
func checkAnswer(t *testing.T, w *ansWorld, in string) {
	// Drain summaries of background syncs.
	for len(w.sent) > 0 {
		checkWellFormed(t, <-w.sent)
	}
	start, ok := firstStart(in)
	if !ok {
		return // not a stanza: the stream would have ended before
	}
	out, err := feed(w.bot, in)
	if err != nil {
		// Handlers fail only when writing fails.
		t.Fatalf("handler: %v\nin: %q", err, in)
	}
	replies, perr := parseReplies(out)
	if perr != nil {
		t.Fatalf("reply is not well-formed: %v\nin:  %q\nout: %q", perr, in, out)
	}
	typ, id := "", ""
	for _, a := range start.Attr {
		switch a.Name.Local {
		case "type":
			typ = a.Value
		case "id":
			id = a.Value
		}
	}
	for _, r := range replies {
		if r.XMLName.Space != "jabber:component:accept" || (r.XMLName.Local != "iq" && r.XMLName.Local != "message") {
			t.Fatalf("reply %v\nin: %q", r.XMLName, in)
		}
		if r.attr("type") == "error" {
			if _, cond, _, _ := r.stanzaErr(); !definedConditions[cond] {
				t.Fatalf("error reply without a defined condition: %q\nin: %q", out, in)
			}
		}
	}
	switch {
	case start.Name.Local == "iq" && (typ == "get" || typ == "set"):
		if len(replies) != 1 || replies[0].XMLName.Local != "iq" || replies[0].attr("id") != id ||
			(replies[0].attr("type") != "result" && replies[0].attr("type") != "error") {
			t.Fatalf("want one IQ result or error with id %q, got %q\nin: %q", id, out, in)
		}
	case start.Name.Local == "iq":
		if len(replies) != 0 {
			t.Fatalf("replied to an IQ of type %q: %q", typ, out)
		}
	case start.Name.Local == "message":
		if typ == "error" || typ == "groupchat" || typ == "headline" {
			if len(replies) != 0 {
				t.Fatalf("replied to a message of type %q: %q", typ, out)
			}
		}
		if len(replies) > 1 {
			t.Fatalf("%d replies to one message: %q", len(replies), out)
		}
	}
}

// firstStart is the stanza's start element as the stream would read it.
func firstStart(in string) (xml.StartElement, bool) {
	d := xml.NewDecoder(strings.NewReader(ansStreamOpen + in))
	if _, err := d.Token(); err != nil {
		return xml.StartElement{}, false
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t.Copy(), true
		case xml.CharData:
		default:
			return xml.StartElement{}, false
		}
	}
}

func checkWellFormed(t *testing.T, s string) {
	t.Helper()
	if _, err := parseReplies(s); err != nil {
		t.Fatalf("sent stanza is not well-formed: %v\n%s", err, s)
	}
}

// definedConditions are RFC 6120's stanza error conditions.
var definedConditions = map[string]bool{}

func init() {
	for _, c := range []stanza.Condition{stanza.BadRequest, stanza.Conflict, stanza.FeatureNotImplemented, stanza.Forbidden,
		stanza.Gone, stanza.InternalServerError, stanza.ItemNotFound, stanza.JIDMalformed, stanza.NotAcceptable, stanza.NotAllowed,
		stanza.NotAuthorized, stanza.PolicyViolation, stanza.RecipientUnavailable, stanza.Redirect, stanza.RegistrationRequired,
		stanza.RemoteServerNotFound, stanza.RemoteServerTimeout, stanza.ResourceConstraint, stanza.ServiceUnavailable,
		stanza.SubscriptionRequired, stanza.UndefinedCondition, stanza.UnexpectedRequest} {
		definedConditions[string(c)] = true
	}
}
