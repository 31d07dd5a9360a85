package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencegw/presencegw/graph/graphtest"
	"github.com/presencegw/presencegw/internal/testenv"
)

// A gateway whose calendar source never answers (here: a wrong client
// secret) is not ready, and /readyz says why to a local caller; with the
// right secret it becomes ready once the first mailboxes are read.
func TestReadyNeedsACalendarRead(t *testing.T) {
	for _, tt := range []struct {
		name   string
		secret func(*graphtest.Server) string
		ready  bool
	}{
		{"wrong secret", func(*graphtest.Server) string { return "not-the-secret" }, false},
		{"right secret", func(f *graphtest.Server) string { return f.ClientSecret }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := graphtest.New(t)
			fake.SetMailbox("alice@example.com", graphtest.Mailbox{TimeZone: "UTC"})
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "people.csv"), []byte("mail,jid\nalice@example.com,alice@chat\n"), 0o600)
			os.WriteFile(filepath.Join(dir, "graph.secret"), []byte(tt.secret(fake)), 0o600)
			os.WriteFile(filepath.Join(dir, "fake-ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fake.Certificate().Raw}), 0o600)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			cfg := filepath.Join(dir, "config.yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
store: state.db
files:
  - name: people
    path: people.csv
graph:
  tenant_id: %s
  client_id: %s
  client_secret_file: graph.secret
  base_url: %s
  authority_host: %s
  ca_file: fake-ca.pem
`, addr, fake.TenantID, fake.ClientID, fake.BaseURL(), fake.AuthorityHost())), 0o600)

			ctx, cancel := context.WithCancel(context.Background())
			var logs testenv.Buffer
			done := make(chan int)
			go func() { done <- run(ctx, []string{"serve", "-c", cfg}, io.Discard, &logs) }()
			defer func() {
				cancel()
				<-done
			}()
			readyz := func() (int, string) {
				resp, err := http.Get("http://" + addr + "/readyz")
				if err != nil {
					return 0, err.Error()
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			// Until the directory is read the reason is the directory's;
			// wait for the calendar's verdict.
			var code int
			var body string
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				code, body = readyz()
				if code == http.StatusOK || strings.Contains(body, "calendar source") && strings.Contains(logs.String(), "calendar poll failed") {
					break
				}
			}
			if tt.ready {
				if code != http.StatusOK {
					t.Fatalf("/readyz = %d %s, want 200\n%s", code, body, logs.String())
				}
				return
			}
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "calendar source graph: none of its 1 mailboxes read yet") {
				t.Fatalf("/readyz = %d %s, want 503 naming the calendar\n%s", code, body, logs.String())
			}
		})
	}
}
