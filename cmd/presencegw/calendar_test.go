package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencegw/presencegw/graph/graphtest"
	"github.com/presencegw/presencegw/internal/testenv"
)

// The whole chain: a people file maps addresses to mailboxes, the fake
// Graph holds their calendars, serve polls it through the real SDK and the
// presence flips at the meeting's start.
func TestServeWithGraph(t *testing.T) {
	fake := graphtest.New(t)
	// After the first poll (within ~2s of the start: directory sync, then
	// up to a second of jitter), so the flip is the engine's timer's.
	start := time.Now().Add(4 * time.Second).Truncate(time.Second)
	fake.SetMailbox("alice@example.com", graphtest.Mailbox{TimeZone: "UTC", Items: []graphtest.Item{
		{Start: start, End: start.Add(30 * time.Minute), Status: "busy"}}})
	fake.SetMailbox("bob@example.com", graphtest.Mailbox{AutoReply: &graphtest.AutoReply{Message: "<p>Back on Monday.</p>"}})

	cfg, addr := graphConfig(t, fake, "mail,jid\nalice@example.com,alice@chat\nbob@example.com,bob@chat\n")

	ctx, cancel := context.WithCancel(context.Background())
	var logs testenv.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{"serve", "-c", cfg}, io.Discard, &logs) }()
	wants := []string{
		`msg="presence changed" mailbox=alice@example.com state=busy status="In a meeting until `,
		`msg="presence changed" mailbox=bob@example.com state=oof status="Out of office: Back on Monday."`,
	}
	l := waitLogLines(t, &logs, wants, 30*time.Second) // generous: CI machines are shared
	for _, line := range strings.Split(l, "\n") {
		if !strings.Contains(line, "mailbox=alice@example.com state=busy") {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(strings.Fields(line)[0], "time="))
		if err != nil {
			t.Fatal(err)
		}
		if late := at.Sub(start); late < 0 || late > 500*time.Millisecond {
			t.Errorf("busy %v after the meeting's start, want within 500ms (a timer, not the 5-minute poll)", late)
		}
	}
	_, metrics := getText(addr, "/metrics")
	for _, want := range []string{`presencegw_graph_requests_total{status="200"}`, "presencegw_calendar_mailboxes 2"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d:\n%s", code, l)
	}
}

// graphConfig writes a serve configuration for a people file (CSV) and the
// fake Graph, on a free loopback port: the config's path and the address.
func graphConfig(t *testing.T, fake *graphtest.Server, people string) (cfg, addr string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "people.csv"), []byte(people), 0o600); err != nil {
		t.Fatal(err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
store: state.db
files:
  - name: people
    path: people.csv
%s`, addr, graphFiles(t, dir, fake))), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, addr
}

// graphFiles writes the fake Graph's client secret (graph.secret) and CA
// certificate (graph-ca.pem) into dir and returns the graph section of a
// configuration there that names them.
func graphFiles(t *testing.T, dir string, fake *graphtest.Server) string {
	t.Helper()
	for name, data := range map[string][]byte{
		"graph.secret": []byte(fake.ClientSecret),
		"graph-ca.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fake.Certificate().Raw}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf(`graph:
  tenant_id: %s
  client_id: %s
  client_secret_file: graph.secret
  base_url: %s
  authority_host: %s
  ca_file: graph-ca.pem
`, fake.TenantID, fake.ClientID, fake.BaseURL(), fake.AuthorityHost())
}
