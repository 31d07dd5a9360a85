package xmppbot

import (
	"context"
	"strings"
)

// Fallbacks: how calendar states reach contacts on a server that cannot
// load the overlay module (see README.md, "Publishing mechanisms").
//
//   - ejabberd with its HTTP API (Config.SessionsAPI): a calendar
//     session, user@host/calendar, logged in with a token
//     (fallback_session.go).
//   - otherwise nothing is published, and State.Off says so.

// Mechanism names, as State.Mechanism, logs and doctor report them.
const (
	MechanismModule  = "overlay module"
	MechanismSession = "ejabberd calendar session"
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
	why := "no fallback either: no sessions_api is configured"
	if b.cfg.SessionsAPI != "" {
		why = "no fallback either: sessions_api is set but the server is not ejabberd (it advertised " + adv.ns + ")"
	}
	return nil, why + "; contacts see only what people set themselves"
}

// calendarSession reports whether resource of bareJID is the gateway's
// own calendar session (so the presence learnt from it is not the
// person's choice: rules.Resource.ByGateway).
func (b *Bot) calendarSession(bareJID, resource string) bool {
	return resource == calendarResource && b.cal != nil && b.cal.has(strings.ToLower(bareJID))
}
