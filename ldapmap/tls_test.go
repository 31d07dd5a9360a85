package ldapmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/testenv"
)

// adTLSYAML is the "ad" source of configYAML alone, with the given URLs
// (a YAML flow list), start_tls and ca_file ("" for none: the system roots).
func adTLSYAML(t *testing.T, s *testenv.Slapd, urls []string, startTLS bool, caFile string) string {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "svc.password")
	if err := os.WriteFile(pw, []byte(s.BindPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := ""
	if caFile != "" {
		ca = "    ca_file: " + caFile + "\n"
	}
	return fmt.Sprintf(`
ldap:
  - name: ad
    priority: 10
    domains: [example.com, example.org]
    url: [%s]
    start_tls: %t
%s    bind_dn: %s
    bind_password_file: %s
    base_dn: ou=Users,dc=example,dc=com
    user_filter: (objectClass=user)
    page_size: 50
    timeout: 5s
    attributes:
      user_principal: userPrincipalName
    jid:
      template: "{{.sAMAccountName}}@chat.example.com"
`, strings.Join(urls, ", "), startTLS, ca, s.BindDN, pw)
}

// TestLDAPTLS syncs the AD-like directory over LDAPS and StartTLS from a
// slapd with a throwaway CA: trusting that CA (ca_file) works, trusting
// another CA or only the system roots fails on the certificate as an
// unreachable source, and a dead ldaps:// URL first in the list fails over
// to the next.
func TestLDAPTLS(t *testing.T) {
	ad := testenv.StartSlapd(t, testenv.SlapdOptions{TLS: true, LDIF: []string{readFile(t, "testdata/ad-seed.ldif")}})
	const dead = "ldaps://127.0.0.1:1" // nothing listens on port 1: refused at once
	tests := []struct {
		name     string
		urls     []string
		startTLS bool
		caFile   string
		// server is the URL a working sync reads from; "" means the sync
		// must fail on the certificate.
		server string
		// checkOK and checkErr, if set, are what LDAPSource.Check must say:
		// no error, or an error containing all of checkErr (Check tries
		// every URL, so a dead one fails it even where a sync fails over).
		checkOK  bool
		checkErr []string
	}{
		{name: "ldaps", urls: []string{ad.LDAPSURL}, caFile: ad.CAFile, server: ad.LDAPSURL, checkOK: true},
		{name: "starttls", urls: []string{ad.URL}, startTLS: true, caFile: ad.CAFile, server: ad.URL},
		{name: "ldaps wrong CA", urls: []string{ad.LDAPSURL}, caFile: ad.WrongCAFile,
			checkErr: []string{"ldap dial " + ad.LDAPSURL + ": ", "x509: certificate signed by unknown authority"}},
		{name: "starttls wrong CA", urls: []string{ad.URL}, startTLS: true, caFile: ad.WrongCAFile,
			checkErr: []string{"ldap starttls " + ad.URL + ": ", "x509: certificate signed by unknown authority"}},
		{name: "ldaps system roots", urls: []string{ad.LDAPSURL}},
		{name: "ldaps failover", urls: []string{dead, ad.LDAPSURL}, caFile: ad.CAFile, server: ad.LDAPSURL,
			checkErr: []string{"ldap dial " + dead + ": ", "connection refused"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := &directories{ad: ad, cfg: parseConfig(t, adTLSYAML(t, ad, tc.urls, tc.startTLS, tc.caFile))}
			dir, st := d.open(t, filepath.Join(t.TempDir(), "state.db"))
			defer st.Close()
			ctx := context.Background()
			results, err := dir.SyncFull(ctx, nil)
			if tc.server == "" {
				if err == nil {
					t.Fatalf("SyncFull succeeded (%+v), want a certificate error", results)
				}
				if !errors.Is(err, ErrUnreachable) {
					t.Errorf("SyncFull: %v, want ErrUnreachable", err)
				}
				if msg := err.Error(); !strings.Contains(msg, "x509: certificate signed by unknown authority") {
					t.Errorf("SyncFull: %v, want the certificate error", err)
				}
				checkResolve(t, dir, []want{{query: "alice@example.com", status: StatusNotFound}})
			} else {
				if err != nil {
					t.Fatalf("SyncFull: %v", err)
				}
				// alice, carol, dave, frank, henry, irene, zoe; bob disabled.
				if r := results[0].Stats; r.People != 7 || r.Disabled != 1 {
					t.Errorf("stats = %+v, want 7 people, 1 disabled", r)
				}
				checkResolve(t, dir, []want{
					{query: "alice@example.com", status: StatusResolved, jid: "alice@chat.example.com", source: "ad"},
					{query: "Alice.Smith@EXAMPLE.com", status: StatusResolved, jid: "alice@chat.example.com"},
				})
			}

			src, err := NewLDAPSource(d.cfg.LDAP[0], quietLog())
			if err != nil {
				t.Fatal(err)
			}
			if tc.server != "" {
				if snap, err := src.Full(ctx, nil); err != nil {
					t.Errorf("Full: %v", err)
				} else if snap.Cursor.Server != tc.server {
					t.Errorf("Full read from %s, want %s", snap.Cursor.Server, tc.server)
				}
			}
			switch err := src.Check(ctx); {
			case tc.checkOK && err != nil:
				t.Errorf("Check: %v", err)
			case len(tc.checkErr) > 0 && err == nil:
				t.Errorf("Check succeeded, want an error with %q", tc.checkErr)
			case len(tc.checkErr) > 0:
				for _, want := range tc.checkErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Check: %v\nwant it to contain %q", err, want)
					}
				}
				if tc.server != "" && strings.Contains(err.Error(), tc.server) {
					t.Errorf("Check: %v\nwant no complaint about the working %s", err, tc.server)
				}
			}
		})
	}
}

// TestLDAPTLSHandshakeStall: a server that accepts StartTLS, or the TCP
// connection of ldaps://, and then never answers the TLS handshake must not
// hang a sync; the source's timeout bounds it, and so does cancelling the
// context. (go-ldap's StartTLS has no timeout of its own.)
func TestLDAPTLSHandshakeStall(t *testing.T) {
	// The LDAPMessage {messageID 1, extendedResp {success, "", ""}} that
	// accepts go-ldap's first request, the StartTLS extended operation.
	startTLSOK := []byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00}
	tests := []struct {
		name     string
		scheme   string
		startTLS bool
		timeout  string
		cancel   time.Duration // cancel the context after this long; 0: never
		want     string
	}{
		{"starttls timeout", "ldap", true, "500ms", 0, "ldap starttls "},
		{"starttls cancelled", "ldap", true, "1m", 300 * time.Millisecond, "ldap starttls "},
		{"ldaps timeout", "ldaps", false, "500ms", 0, "ldap dial "},
		{"ldaps cancelled", "ldaps", false, "1m", 300 * time.Millisecond, "ldap dial "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var conns []net.Conn
			t.Cleanup(func() {
				l.Close()
				mu.Lock()
				for _, c := range conns {
					c.Close()
				}
				mu.Unlock()
				wg.Wait()
			})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					wg.Add(1)
					go func() {
						defer wg.Done()
						if tc.startTLS {
							// The 31-byte StartTLS request comes in one segment.
							if _, err := c.Read(make([]byte, 512)); err != nil {
								return
							}
							if _, err := c.Write(startTLSOK); err != nil {
								return
							}
						}
						_, _ = io.Copy(io.Discard, c) // swallow the ClientHello, never answer
					}()
				}
			}()
			url := tc.scheme + "://" + l.Addr().String()
			cfg := parseConfig(t, fmt.Sprintf(`
ldap:
  - name: stall
    url: %s
    start_tls: %t
    base_dn: dc=example,dc=com
    timeout: %s
    jid:
      template: "{{.sAMAccountName}}@chat.example.com"
`, url, tc.startTLS, tc.timeout))
			src, err := NewLDAPSource(cfg.LDAP[0], quietLog())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel > 0 {
				time.AfterFunc(tc.cancel, cancel)
			}
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := src.Full(ctx, nil)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), tc.want+url) {
					t.Errorf("Full: %v, want ErrUnreachable from %q", err, tc.want+url)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("Full took %v", d)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Full still hangs after 10s in the TLS handshake")
			}
		})
	}
}
