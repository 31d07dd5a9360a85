package xmppbot

import (
	"encoding/xml"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

// XEP-0050 ad-hoc commands: the same commands as by chat message. All
// but resolve complete in one stage; resolve asks for the address with a
// form first (or takes it from a form sent with the first request).

// Ad-hoc session bounds: a session lives adhocTTL; a requester may hold
// adhocPerOwner open sessions, all requesters adhocMax.
const (
	adhocTTL      = 10 * time.Minute
	adhocPerOwner = 4
	adhocMax      = 256
)

// adhocSession is a multi-stage command's session.
type adhocSession struct {
	node    string
	owner   string // the requester's full JID
	expires time.Time
	ended   bool // completed or canceled
}

// adhocSessions are the sessions by id. Ended and expired ones are kept
// for another adhocTTL so that their use is answered session-expired
// (XEP-0050 §4.6) rather than bad-sessionid.
type adhocSessions struct {
	mu sync.Mutex
	m  map[string]*adhocSession
}

func newAdhocSessions() *adhocSessions { return &adhocSessions{m: map[string]*adhocSession{}} }

// open starts a session; ok is false when the requester (or everyone)
// holds too many.
func (s *adhocSessions) open(node, owner string, now time.Time) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mine, all := 0, 0
	for id, x := range s.m {
		if now.After(x.expires.Add(adhocTTL)) {
			delete(s.m, id)
			continue
		}
		if !x.ended && !now.After(x.expires) {
			all++
			if x.owner == owner {
				mine++
			}
		}
	}
	if mine >= adhocPerOwner || all >= adhocMax || len(s.m) >= 4*adhocMax {
		return "", false
	}
	id := node + ":" + newID()
	s.m[id] = &adhocSession{node: node, owner: owner, expires: now.Add(adhocTTL)}
	return id, true
}

// sessionState is what a sessionid names.
type sessionState int

const (
	sessionMissing sessionState = iota // unknown, or another's, or another node's
	sessionExpired                     // timed out, completed or canceled
	sessionOpen
)

// get looks a session up for its owner and node.
func (s *adhocSessions) get(id, node, owner string, now time.Time) sessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[id]
	switch {
	case x == nil || x.owner != owner || x.node != node:
		return sessionMissing
	case x.ended || now.After(x.expires):
		return sessionExpired
	}
	return sessionOpen
}

// end closes a session.
func (s *adhocSessions) end(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.m[id]; x != nil {
		x.ended, x.expires = true, now
	}
}

// commandRequest is an XEP-0050 <command/> as requesters send it.
type commandRequest struct {
	Node      string `xml:"node,attr"`
	SessionID string `xml:"sessionid,attr"`
	Action    string `xml:"action,attr"`
	Forms     []struct {
		Type   string `xml:"type,attr"`
		Fields []struct {
			Var    string   `xml:"var,attr"`
			Values []string `xml:"value"`
		} `xml:"field"`
	} `xml:"jabber:x:data x"`
}

// address is the address field of the first submitted form.
func (c *commandRequest) address() (string, bool) {
	for _, f := range c.Forms {
		// XEP-0050 §3.4.1: a form of type cancel counts as submit.
		if f.Type != "submit" && f.Type != "cancel" {
			continue
		}
		for _, fl := range f.Fields {
			if fl.Var == "address" && len(fl.Values) > 0 {
				if a := strings.TrimSpace(fl.Values[0]); a != "" {
					return a, true
				}
			}
		}
		return "", false
	}
	return "", false
}

// command executes an XEP-0050 command.
func (b *Bot) command(w xmlstream.TokenWriter, r *iqRequest, p *payload) error {
	if r.typ != "set" {
		return b.fail(w, r, stanzaError(stanza.Modify, stanza.BadRequest, "commands are executed with an IQ set"), nil)
	}
	var req commandRequest
	if err := p.decode(&req); err != nil {
		return b.fail(w, r, stanzaError(stanza.Modify, stanza.BadRequest, "malformed command"), nil)
	}
	if !r.user || !r.caller.local {
		return b.fail(w, r, stanzaError(stanza.Cancel, stanza.Forbidden, ""), nil)
	}
	cmd := commandByNode(req.Node)
	switch {
	case cmd == nil:
		return b.fail(w, r, stanzaError(stanza.Cancel, stanza.ItemNotFound, "no such command"), nil)
	case cmd.admin && !r.caller.admin:
		return b.fail(w, r, stanzaError(stanza.Cancel, stanza.Forbidden, "for administrators only"), nil)
	case !cmd.available(b):
		return b.fail(w, r, stanzaError(stanza.Cancel, stanza.ServiceUnavailable, "not available on this gateway"), nil)
	}
	switch req.Action {
	case "", "execute", "complete", "cancel", "next", "prev":
	default:
		return b.commandError(w, r, "malformed-action", "unknown action")
	}
	if !b.ans.limits.allow(r.caller) {
		return b.fail(w, r, stanzaError(stanza.Wait, stanza.ResourceConstraint, "too many requests; slow down"), nil)
	}
	now := time.Now()
	if req.SessionID != "" {
		return b.continueCommand(w, r, cmd, &req, now)
	}
	switch req.Action {
	case "", "execute", "complete":
	default:
		return b.commandError(w, r, "bad-action", "a new command can only be executed")
	}
	if cmd.node != "resolve" {
		return b.completed(w, r, cmd.node, newID(), b.runCommand(cmd, r.caller))
	}
	if addr, ok := req.address(); ok {
		return b.completed(w, r, cmd.node, newID(), b.resolve(addr))
	}
	id, ok := b.ans.adhoc.open(cmd.node, r.caller.full, now)
	if !ok {
		return b.fail(w, r, stanzaError(stanza.Cancel, stanza.NotAllowed, "too many open command sessions"), nil)
	}
	form := el(xml.Name{Space: nsData, Local: "x"}, attrs("type", "form"),
		el(xml.Name{Local: "title"}, nil).text("Resolve an address"),
		el(xml.Name{Local: "instructions"}, nil).text("Which address should the directory resolve?"),
		el(xml.Name{Local: "field"}, attrs("var", "address", "type", "text-single", "label", "Address"),
			el(xml.Name{Local: "required"}, nil)))
	out := el(xml.Name{Space: nsCommands, Local: "command"}, attrs("node", cmd.node, "sessionid", id, "status", "executing"),
		el(xml.Name{Local: "actions"}, attrs("execute", "complete"), el(xml.Name{Local: "complete"}, nil)),
		form)
	return b.result(w, r, out.reader())
}

// continueCommand takes the next stage of an open session.
func (b *Bot) continueCommand(w xmlstream.TokenWriter, r *iqRequest, cmd *command, req *commandRequest, now time.Time) error {
	switch b.ans.adhoc.get(req.SessionID, cmd.node, r.caller.full, now) {
	case sessionMissing:
		return b.commandError(w, r, "bad-sessionid", "no such session")
	case sessionExpired:
		return b.fail(w, r, stanzaError(stanza.Cancel, stanza.NotAllowed, "the session has expired"),
			el(xml.Name{Space: nsCommands, Local: "session-expired"}, nil).reader())
	}
	switch req.Action {
	case "cancel":
		b.ans.adhoc.end(req.SessionID, now)
		out := el(xml.Name{Space: nsCommands, Local: "command"}, attrs("node", cmd.node, "sessionid", req.SessionID, "status", "canceled"))
		return b.result(w, r, out.reader())
	case "next", "prev":
		return b.commandError(w, r, "bad-action", "this stage can only be completed or canceled")
	}
	addr, ok := req.address()
	if !ok {
		return b.commandError(w, r, "bad-payload", "submit the form with an address")
	}
	b.ans.adhoc.end(req.SessionID, now)
	return b.completed(w, r, cmd.node, req.SessionID, b.resolve(addr))
}

// runCommand runs a one-stage command.
func (b *Bot) runCommand(cmd *command, c caller) reply {
	switch cmd.node {
	case "status":
		return b.statusOf(c)
	case "calendar-off", "calendar-on":
		return b.setCalendar(c, cmd.node == "calendar-on")
	case "sync":
		return b.startSync(c)
	}
	return failed("not a one-stage command")
}

// completed answers a finished command with its note.
func (b *Bot) completed(w xmlstream.TokenWriter, r *iqRequest, node, sessionID string, rep reply) error {
	typ := "info"
	if rep.failed {
		typ = "error"
	}
	out := el(xml.Name{Space: nsCommands, Local: "command"}, attrs("node", node, "sessionid", sessionID, "status", "completed"),
		el(xml.Name{Local: "note"}, attrs("type", typ)).text(rep.text))
	return b.result(w, r, out.reader())
}

// commandError is a bad-request with an XEP-0050 condition.
func (b *Bot) commandError(w xmlstream.TokenWriter, r *iqRequest, condition, text string) error {
	return b.fail(w, r, stanzaError(stanza.Modify, stanza.BadRequest, text),
		el(xml.Name{Space: nsCommands, Local: condition}, nil).reader())
}
