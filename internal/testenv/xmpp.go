package testenv

import (
	"testing"
	"time"
)

// XMPPServer is a real XMPP server (Prosody or ejabberd) started for a
// test by StartProsody or StartEjabberd on 127.0.0.1 with random ports.
// Both run one virtual host, Domain, and accept one XEP-0114 component,
// ComponentJID, with XEP-0356 presence permission and (unless
// XMPPOptions.NoModule) the project's overlay module
// (docs/overlay-protocol.md) loaded for that component.
type XMPPServer struct {
	// Kind is "prosody" or "ejabberd".
	Kind string
	// Domain is the virtual host, e.g. "example.test".
	Domain string
	// C2SAddr is host:port for client connections (STARTTLS offered with
	// a test certificate, plain auth allowed on loopback).
	C2SAddr string
	// ComponentAddr is host:port for XEP-0114 components.
	ComponentAddr string
	// ComponentJID and ComponentSecret authenticate the component.
	ComponentJID    string
	ComponentSecret string
	// HTTPAddr is host:port of the server's HTTP listener (ejabberd's
	// mod_http_api on /api; Prosody's http port), "" if none.
	HTTPAddr string
	// Dir holds the config, data and logs; removed at cleanup.
	Dir string

	impl xmppImpl
}

// xmppImpl is what each server kind provides.
type xmppImpl interface {
	register(user, password string) error
	stop() error
	start() error
	log() string
}

// XMPPOptions tune StartProsody and StartEjabberd.
type XMPPOptions struct {
	// NoModule starts the server without the overlay module, as a site
	// that cannot load it would run.
	NoModule bool
	// WithoutScheduled starts the overlay module as one from before
	// scheduled overlays: it does not advertise urn:presencegw:overlay:0#since
	// and applies an overlay with since at once (Prosody
	// presencegw_scheduled = false, ejabberd scheduled: false).
	WithoutScheduled bool
	// GracePeriod is the module's grace period after the component
	// disconnects (default 120 s, the module's own default).
	GracePeriod time.Duration
	// Users are registered before the function returns, password = user.
	Users []string
	// RosterPermission is the XEP-0356 roster permission Prosody grants
	// the component: "get" (default), "set", "both" or "none". ejabberd
	// always grants both.
	RosterPermission string
}

// Register creates a user account on the server.
func (s *XMPPServer) Register(t testing.TB, user, password string) {
	t.Helper()
	if err := s.impl.register(user, password); err != nil {
		t.Fatalf("testenv: %s: register %s: %v\n%s", s.Kind, user, err, s.Log())
	}
}

// Stop stops the server (every process it started); Start starts it
// again on the same ports with the same data, as a server restart does.
func (s *XMPPServer) Stop(t testing.TB) {
	t.Helper()
	if err := s.impl.stop(); err != nil {
		t.Fatalf("testenv: %s: stop: %v\n%s", s.Kind, err, s.Log())
	}
}

// Start starts a stopped server again.
func (s *XMPPServer) Start(t testing.TB) {
	t.Helper()
	if err := s.impl.start(); err != nil {
		t.Fatalf("testenv: %s: start: %v\n%s", s.Kind, err, s.Log())
	}
}

// Log returns the tail of the server's log, for failure messages.
func (s *XMPPServer) Log() string { return s.impl.log() }
