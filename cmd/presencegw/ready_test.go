package main

import (
	"context"
	"io"
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
		name        string
		wrongSecret bool
		ready       bool
	}{
		{"wrong secret", true, false},
		{"right secret", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := graphtest.New(t)
			fake.SetMailbox("alice@example.com", graphtest.Mailbox{TimeZone: "UTC"})
			cfg, addr := graphConfig(t, fake, "mail,jid\nalice@example.com,alice@chat\n")
			if tt.wrongSecret {
				if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "graph.secret"), []byte("not-the-secret"), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			ctx, cancel := context.WithCancel(context.Background())
			var logs testenv.Buffer
			done := make(chan int)
			go func() { done <- run(ctx, []string{"serve", "-c", cfg}, io.Discard, &logs) }()
			defer func() {
				cancel()
				<-done
			}()
			// Until the directory is read the reason is the directory's;
			// wait for the calendar's verdict.
			var code int
			var body string
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				code, body = getText(addr, "/readyz")
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
