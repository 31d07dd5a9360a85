// Command xmppclients logs XMPP users into a loopback server and holds
// their presence until SIGTERM or SIGINT: the load test's online users on
// Prosody (and ejabberd), in place of the research's slixmpp script.
//
//	xmppclients -addr 127.0.0.1:5222 -domain example.com SPEC...
//
// SPEC is user:password:show:status, show one of available, away, chat,
// dnd, xa. Each user sends one presence with priority 1 (the top resource,
// which Prosody's mod_webpresence reports). When every user is logged in
// and has sent its presence it prints "READY n"; a failed login is fatal.
// The connections are plain TCP: loopback only, SASL PLAIN or SCRAM-SHA-1.
package main

import (
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

type spec struct {
	user, password, show, status string
}

func parseSpec(s string) (spec, error) {
	f := strings.SplitN(s, ":", 4)
	if len(f) != 4 || f[0] == "" {
		return spec{}, fmt.Errorf("spec %q: want user:password:show:status", s)
	}
	sp := spec{user: f[0], password: f[1], show: f[2], status: f[3]}
	switch sp.show {
	case "available":
		sp.show = ""
	case "away", "chat", "dnd", "xa":
	default:
		return spec{}, fmt.Errorf("spec %q: show must be available, away, chat, dnd or xa", s)
	}
	return sp, nil
}

// presence is the one stanza each client sends.
type presence struct {
	XMLName  xml.Name `xml:"jabber:client presence"`
	Show     string   `xml:"show,omitempty"`
	Status   string   `xml:"status,omitempty"`
	Priority int      `xml:"priority"`
}

func login(ctx context.Context, addr, domain, resource string, sp spec) (*xmpp.Session, error) {
	j, err := jid.New(sp.user, domain, resource)
	if err != nil {
		return nil, err
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Secure: the stream is plain TCP on loopback, but the servers are
	// configured to accept PLAIN there, and mellium offers it only on a
	// stream it believes secure.
	s, err := xmpp.NewSession(ctx, j.Domain(), j, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", sp.password, sasl.ScramSha1, sasl.Plain),
			xmpp.BindResource(),
		}}
	}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := s.Encode(ctx, presence{Show: sp.show, Status: sp.status, Priority: 1}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:5222", "the server's c2s address")
	domain := flag.String("domain", "example.com", "the users' domain")
	resource := flag.String("resource", "bench", "resource to ask for")
	timeout := flag.Duration("timeout", 20*time.Second, "how long logging everyone in may take")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("xmppclients: ")
	var specs []spec
	for _, a := range flag.Args() {
		sp, err := parseSpec(a)
		if err != nil {
			log.Fatal(err)
		}
		specs = append(specs, sp)
	}
	if len(specs) == 0 {
		log.Fatal("no users: give user:password:show:status...")
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	sessions := make([]*xmpp.Session, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, sp := range specs {
		wg.Go(func() {
			sessions[i], errs[i] = login(ctx, *addr, *domain, *resource, sp)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s@%s: %w", sp.user, *domain, errs[i])
			}
		})
	}
	wg.Wait()
	cancel()
	if err := errors.Join(errs...); err != nil {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
		log.Fatal(err)
	}
	// Serve each stream (the server's roster, presence and pings) until
	// it ends; an ended stream while holding is an error.
	lost := make(chan error, len(sessions))
	for i, s := range sessions {
		go func() {
			err := s.Serve(nil)
			lost <- fmt.Errorf("%s@%s: stream ended: %v", specs[i].user, *domain, err)
		}()
	}
	fmt.Printf("READY %d\n", len(sessions))
	code := 0
	select {
	case <-stop:
	case err := <-lost:
		log.Print(err)
		code = 1
	}
	for _, s := range sessions {
		_ = s.SetCloseDeadline(time.Now().Add(2 * time.Second))
		_ = s.Close()
	}
	os.Exit(code)
}
