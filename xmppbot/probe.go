package xmppbot

import (
	"context"
	"errors"
	"sync"

	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/rules"
)

// Probe connects once as the component, reads the XEP-0356 permissions
// the server grants and whether the overlay module answers, and hangs
// up. It publishes, clears and learns nothing, so doctor can run beside a
// live gateway (a second component connection is refused by Prosody with
// "conflict" and let in by ejabberd). ctx bounds the whole check.
func Probe(ctx context.Context, cfg Config) (State, error) {
	cfg.Lookup, cfg.Admin = nil, nil
	b, err := New(cfg, probeEngine{}, probeDirectory{}, nil)
	if err != nil {
		return State{}, err
	}
	b.probe = true
	err = b.session(ctx)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	st := b.Status()
	if err != nil && st.Connected {
		err = nil // the set-up completed; the error is our own hang-up
	}
	if err == nil && !st.Connected {
		err = errors.New("the component link did not come up")
	}
	return st, err
}

// probeEngine is an engine that knows nobody.
type probeEngine struct{}

func (probeEngine) Subscribe(int) (<-chan presence.Change, func()) {
	ch := make(chan presence.Change)
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}
func (probeEngine) Get(string) (rules.Output, bool) { return rules.Output{State: rules.Unknown}, false }
func (probeEngine) Mailboxes() []string             { return nil }
func (probeEngine) SetChat(string, rules.Chat)      {}
func (probeEngine) SetOptOut(string, bool) error    { return errors.New("not available while probing") }
func (probeEngine) OptedOut(string) bool            { return false }

// probeDirectory is a directory that knows nobody.
type probeDirectory struct{}

func (probeDirectory) JIDOf(string) (string, bool)     { return "", false }
func (probeDirectory) MailboxOf(string) (string, bool) { return "", false }
