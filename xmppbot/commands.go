package xmppbot

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/presencegw/presencegw/rules"
	"github.com/presencegw/presencegw/web"
)

// command is one thing people can ask the component, by chat message
// (words) or as an XEP-0050 ad-hoc command (node).
type command struct {
	node  string
	words string
	name  string
	help  string
	admin bool
	// needs reports whether the gateway can run it at all.
	needs func(*Bot) bool
}

func (c *command) available(b *Bot) bool { return c.needs(b) }

func hasLookup(b *Bot) bool { return b.cfg.Lookup != nil }
func hasOptOut(b *Bot) bool { return b.cfg.Lookup != nil && b.engine != nil }
func hasAdmin(b *Bot) bool  { return b.cfg.Admin != nil }

// commands are every command, in the order help lists them.
var commands = []command{
	{node: "status", words: "status", name: "My presence: what the gateway believes and why",
		help: "what the gateway believes about you, and why", needs: hasLookup},
	{node: "calendar-off", words: "calendar off", name: "Calendar states off",
		help: "keep meetings and out-of-office out of your presence", needs: hasOptOut},
	{node: "calendar-on", words: "calendar on", name: "Calendar states on",
		help: "show meetings and out-of-office in your presence again", needs: hasOptOut},
	{node: "resolve", words: "resolve ADDRESS", name: "Resolve an address (admin)",
		help: "how the directory maps an address, and why", admin: true, needs: hasAdmin},
	{node: "sync", words: "sync", name: "Sync the directory now (admin)",
		help: "run an incremental directory sync", admin: true, needs: hasAdmin},
}

func commandByNode(node string) *command {
	for i := range commands {
		if commands[i].node == node {
			return &commands[i]
		}
	}
	return nil
}

// reply is a command's answer; failed marks one that did not do what
// was asked (an XEP-0050 note of type error).
type reply struct {
	text   string
	failed bool
}

func failed(format string, args ...any) reply {
	return reply{text: fmt.Sprintf(format, args...), failed: true}
}

// runChat runs a chat command of a local user and words the answer.
func (b *Bot) runChat(c caller, body string) string {
	fields := strings.Fields(body)
	word, args := strings.ToLower(fields[0]), fields[1:]
	var cmd *command
	switch word {
	case "help", "?":
		return b.helpText(c)
	case "status":
		cmd = commandByNode("status")
	case "calendar":
		switch {
		case len(args) == 1 && strings.EqualFold(args[0], "off"):
			cmd = commandByNode("calendar-off")
		case len(args) == 1 && strings.EqualFold(args[0], "on"):
			cmd = commandByNode("calendar-on")
		default:
			return `Send "calendar off" to keep meetings and out-of-office out of your presence, "calendar on" to show them again.`
		}
	case "resolve":
		cmd = commandByNode("resolve")
	case "sync":
		cmd = commandByNode("sync")
	default:
		return fmt.Sprintf("Unknown command %q. Send \"help\" for the list.", clip(fields[0], 40))
	}
	switch {
	case cmd.admin && !c.admin:
		return fmt.Sprintf("%q is for administrators only. Send \"help\" for your commands.", word)
	case !cmd.available(b):
		return fmt.Sprintf("%q is not available on this gateway.", word)
	}
	switch cmd.node {
	case "status":
		return b.statusOf(c).text
	case "calendar-off", "calendar-on":
		return b.setCalendar(c, cmd.node == "calendar-on").text
	case "resolve":
		if len(args) != 1 {
			return "Usage: resolve ADDRESS"
		}
		return b.resolve(args[0]).text
	case "sync":
		return b.startSync(c).text
	}
	return ""
}

// helpText lists the commands c may run.
func (b *Bot) helpText(c caller) string {
	var s strings.Builder
	s.WriteString("Commands (send one as a message; your client's ad-hoc commands menu has them too):\n")
	for i := range commands {
		cmd := &commands[i]
		if (cmd.admin && !c.admin) || !cmd.available(b) {
			continue
		}
		fmt.Fprintf(&s, "  %s — %s\n", cmd.words, cmd.help)
	}
	s.WriteString("  help — this list")
	return s.String()
}

// statusOf says what the gateway believes about c and why.
func (b *Bot) statusOf(c caller) reply {
	var s strings.Builder
	e := b.cfg.Lookup.LookupJID(c.bare)
	if e.Status != web.Found {
		return failed("The directory has no person with the JID %s, so Outlook shows no presence for you and your calendar does not change your chat presence.", c.bare)
	}
	name := e.Name
	if name == "" {
		name = c.bare
	}
	fmt.Fprintf(&s, "%s — %s (%s)\n", name, e.Email, c.bare)
	p := e.Presence
	fmt.Fprintf(&s, "Outlook shows: %s", stateWords(p.State, p.Status, p.Until))
	if why := sourceWords(p.Source); why != "" {
		s.WriteString(" — " + why)
	}
	s.WriteString(".\n")
	optedOut := e.Mailbox != "" && b.engine != nil && b.engine.OptedOut(e.Mailbox)
	switch cal := p.Calendar; {
	case e.Mailbox == "":
		s.WriteString("Calendar: no mailbox is known for you.\n")
	case optedOut:
		s.WriteString("Calendar: not used — you turned calendar states off (send \"calendar on\" to undo).\n")
	case cal.State == "" || cal.State == rules.Unknown:
		s.WriteString("Calendar: nothing known yet.\n")
	default:
		w := stateWords(cal.State, cal.Status, cal.Until)
		if cal.Tentative {
			w += " (tentative)"
		}
		if cal.WorkingElsewhere {
			w += " (working elsewhere)"
		}
		fmt.Fprintf(&s, "Calendar: %s. Calendar states are on (send \"calendar off\" to keep them out of your presence).\n", w)
	}
	if e.Stale {
		s.WriteString("The calendar facts are out of date (the calendar source is not answering).\n")
	}
	if o, ok := b.pub.published(c.bare); ok {
		how := "set by the gateway on your server"
		switch b.Status().Mechanism {
		case MechanismSession:
			how = "on an extra resource " + calendarResource + " the gateway logs in for you while you are online"
		case MechanismShadow:
			how = "on a second contact \"(calendar)\" the gateway put in their rosters, while you are online"
		}
		fmt.Fprintf(&s, "Your contacts see: %s, %s.\n", stateWords(rules.State(o.Show), o.Status, o.Until), how)
	} else {
		s.WriteString("Your contacts see: your own presence; the gateway has set nothing.\n")
	}
	online := b.live.online(c.bare)
	if len(online) == 0 {
		s.WriteString("Online: no client of yours, as far as the gateway knows.")
	} else {
		s.WriteString("Online:")
		for i, r := range online {
			if i > 0 {
				s.WriteString(";")
			}
			show := string(r.Show)
			if show == "" {
				show = "available"
			}
			fmt.Fprintf(&s, " %s — %s", r.Name, show)
			if r.Status != "" {
				fmt.Fprintf(&s, " %q", r.Status)
			}
			fmt.Fprintf(&s, ", priority %d", r.Priority)
		}
		s.WriteString(".")
	}
	return reply{text: s.String()}
}

// stateWords is "busy “In a meeting until 14:30” until 2026-05-04 14:30 UTC".
func stateWords(state rules.State, status string, until time.Time) string {
	w := string(state)
	if w == "" {
		w = string(rules.Unknown)
	}
	if status != "" {
		w += " “" + status + "”"
	}
	if !until.IsZero() {
		w += " until " + until.UTC().Format("2006-01-02 15:04 UTC")
	}
	return w
}

func sourceWords(s rules.Source) string {
	switch s {
	case rules.SourceCalendar:
		return "from your calendar"
	case rules.SourceManual:
		return "you set it in your chat client"
	case rules.SourceXMPP:
		return "from your chat presence"
	}
	return ""
}

// setCalendar turns c's calendar states on or off (Engine.SetOptOut
// keeps the choice in the store).
func (b *Bot) setCalendar(c caller, on bool) reply {
	e := b.cfg.Lookup.LookupJID(c.bare)
	if e.Status != web.Found || e.Mailbox == "" {
		return failed("The gateway knows no mailbox for %s, so there are no calendar states to turn on or off.", c.bare)
	}
	was := !b.engine.OptedOut(e.Mailbox)
	if err := b.engine.SetOptOut(e.Mailbox, !on); err != nil {
		b.log.Error("xmpp: saving a calendar opt-out", "jid", c.bare, "mailbox", e.Mailbox, "err", err)
		return failed("Your choice could not be saved; please try again later.")
	}
	switch {
	case on && was:
		return reply{text: "Calendar states were already on for you: meetings and out-of-office show in your presence."}
	case on:
		return reply{text: "Calendar states are on again: meetings and out-of-office show in your presence. Send \"calendar off\" to turn them off."}
	case !was:
		return reply{text: "Calendar states were already off for you."}
	}
	return reply{text: "Calendar states are off: meetings and out-of-office no longer change your presence. Send \"calendar on\" to turn them back on."}
}

// resolve explains how the directory maps an address.
func (b *Bot) resolve(address string) reply {
	address = strings.TrimSpace(address)
	switch {
	case address == "":
		return failed("Usage: resolve ADDRESS")
	case len(address) > maxItemLength:
		return failed("That address is longer than %d bytes.", maxItemLength)
	}
	text := strings.TrimSpace(b.cfg.Admin.Explain(address))
	if text == "" {
		text = "The directory says nothing about " + address + "."
	}
	return reply{text: text}
}

// startSync starts a directory sync in the background, one at a time,
// bounded by syncTimeout; its summary goes to c by chat message.
func (b *Bot) startSync(c caller) reply {
	a := b.ans
	if !a.syncing.CompareAndSwap(false, true) {
		return failed("A directory sync is already running; try again when it has finished.")
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.syncTimeout)
	type result struct {
		summary string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		defer a.syncing.Store(false)
		s, err := b.cfg.Admin.Sync(ctx)
		done <- result{s, err}
	}()
	go func() {
		defer cancel()
		var text string
		select {
		case r := <-done:
			switch {
			case r.err != nil:
				text = "Directory sync failed: " + r.err.Error()
			case strings.TrimSpace(r.summary) == "":
				text = "Directory sync finished."
			default:
				text = "Directory sync finished: " + strings.TrimSpace(r.summary)
			}
		case <-ctx.Done():
			text = fmt.Sprintf("Directory sync did not finish within %s.", a.syncTimeout)
		}
		b.log.Info("xmpp: directory sync by command", "by", c.bare, "result", text)
		if err := a.deliver(b.chatMessage(c.full, text)); err != nil {
			b.log.Warn("xmpp: could not send a sync's summary", "to", c.full, "err", err)
		}
	}()
	return reply{text: "Directory sync started; its summary follows in a chat message when it is done."}
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
