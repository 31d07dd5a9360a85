package xmppbot

import (
	"context"
	"strings"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Fallbacks: how calendar states reach contacts on a server that cannot
// load the overlay module (see README.md, "Publishing mechanisms").
//
//   - ejabberd with its HTTP API (Config.SessionsAPI): a calendar
//     session, user@host/calendar, logged in with a token
//     (fallback_session.go).
//   - with Config.ShadowContacts and the XEP-0356 roster permission
//     (both): a shadow contact per person, alice\40host@component, in
//     each contact's roster (fallback_shadow.go).
//   - otherwise nothing is published, and State.Off says so.

// Mechanism names, as State.Mechanism, logs and doctor report them.
const (
	MechanismModule  = "overlay module"
	MechanismSession = "ejabberd calendar session"
	MechanismShadow  = "shadow contact"
	MechanismNone    = "none"
)

// chooseFallback picks the best stock mechanism for a connection whose
// server has no overlay module, and says in words what contacts see
// with it. It is called by setup after the module check; adv is the
// server's XEP-0356 advertisement.
func (c *conn) chooseFallback(ctx context.Context, adv privAdvert) (mechanism, string) {
	b := c.bot
	switch {
	case b.cfg.SessionsAPI != "" && adv.ns != NSPrivilege2:
		// mod_http_api is ejabberd's; Prosody (privilege:2) has no
		// oauth_issue_token.
		if !b.probe {
			b.cal.attach(ctx, c)
		}
		return b.cal, "instead each person in a calendar state gets a session " + calendarResource +
			" (dnd or xa with the calendar text, priority -1, token login through the sessions API): " +
			"Conversations, Gajim and Dino show it, Monal only until the person's next presence, Pidgin, Psi, Converse.js and Movim do not"
	}
	var why []string
	if b.cfg.SessionsAPI == "" {
		why = append(why, "no sessions_api is configured")
	} else {
		why = append(why, "sessions_api is set but the server is not ejabberd (it advertised "+adv.ns+")")
	}
	switch {
	case !b.cfg.ShadowContacts:
		why = append(why, "shadow_contacts is off")
	case adv.perms["roster"] != "both":
		why = append(why, "shadow_contacts is on but the server granted roster = "+orNone(adv.perms["roster"])+" (want both)")
	default:
		ok, whyNot := c.rosterSetWorks(ctx)
		if ok {
			return b.shadow, "instead each person in a calendar state has a shadow contact in their contacts' rosters, " +
				"\"<name> (calendar)\" (" + escapeLocal("alice@"+b.cfg.Hosts[0]) + "@" + b.jid.Domainpart() +
				"), showing dnd or xa with the calendar text: every client shows it, as a second contact beside the person"
		}
		why = append(why, "shadow_contacts is on but "+whyNot)
	}
	return nil, "no fallback either: " + strings.Join(why, ", ") + "; contacts see only what people set themselves"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// calendarSession reports whether resource of bareJID is the gateway's
// own calendar session (so the presence learnt from it is not the
// person's choice: rules.Resource.ByGateway).
func (b *Bot) calendarSession(bareJID, resource string) bool {
	return resource == calendarResource && b.cal != nil && b.cal.has(strings.ToLower(bareJID))
}

// userKey is the key a fallback keeps a person under (the bare JID in
// lower case), or the jid-malformed error its apply returns for anything
// but a user's bare JID.
func userKey(bareJID string) (string, error) {
	j, err := jid.Parse(bareJID)
	if err != nil || j.Localpart() == "" {
		return "", stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed, Text: map[string]string{"": "not a user's bare JID: " + bareJID}}
	}
	return strings.ToLower(bareJID), nil
}

// wishOf is the wish a fallback records for an apply: o when set, nil
// (nothing) when cleared.
func wishOf(o overlay, set bool) *overlay {
	if !set {
		return nil
	}
	return &o
}

// workQueue hands people (keys) to a fixed set of workers, each key
// queued once however often it is asked for until a worker takes it:
// the fallbacks' reconciles outside the publisher.
type workQueue struct {
	mu    sync.Mutex
	ctx   context.Context // the workers'; nil until start
	dirty map[string]bool // keys queued and not yet taken
	work  chan string
}

func newWorkQueue() *workQueue {
	return &workQueue{dirty: map[string]bool{}, work: make(chan string, 1024)}
}

// start runs n workers calling do for each key until ctx ends. Only the
// first call starts them; it reports whether this one did.
func (q *workQueue) start(ctx context.Context, n int, do func(ctx context.Context, k string)) bool {
	q.mu.Lock()
	first := q.ctx == nil
	if first {
		q.ctx = ctx
	}
	q.mu.Unlock()
	if !first {
		return false
	}
	for range n {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case k := <-q.work:
					q.mu.Lock()
					delete(q.dirty, k)
					q.mu.Unlock()
					do(ctx, k)
				}
			}
		}()
	}
	return true
}

// add queues k for a worker unless it is queued already; before start
// there are no workers and nothing is queued.
func (q *workQueue) add(k string) {
	q.mu.Lock()
	ctx := q.ctx
	if ctx == nil || q.dirty[k] {
		q.mu.Unlock()
		return
	}
	q.dirty[k] = true
	q.mu.Unlock()
	go func() {
		select {
		case q.work <- k:
		case <-ctx.Done():
		}
	}()
}
