package main

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/ldapmap"
)

// The bearer token file is read again when it changes, and only then.
func TestFileToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ews.token")
	if err := os.WriteFile(path, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ft := newFileToken(path)
	if tok, err := ft.Token(t.Context()); err != nil || tok != "first" {
		t.Fatalf("token = %q, %v", tok, err)
	}
	// Rewritten by a refresher: the new token from the next request on.
	if err := os.WriteFile(path, []byte("second-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if tok, err := ft.Token(t.Context()); err != nil || tok != "second-token" {
		t.Errorf("after the file changed: %q, %v", tok, err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ft.Token(t.Context()); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty file: err = %v", err)
	}
	os.Remove(path)
	if _, err := ft.Token(t.Context()); err == nil {
		t.Error("missing file: no error")
	}
}

// The ICS template and map file are checked at start-up, with the
// config's line, and credentials in the template are refused.
func TestCheckCalendarICS(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feeds.csv"), []byte("mailbox,url\nnobody,https://x/y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ yaml, want string }{
		{"ics:\n  url_template: https://cloud.example.com/{{.nosuch}\n", "c.yaml:2: ics.url_template: template: ics-url:1: bad character U+007D '}'"},
		{"ics:\n  url_template: ftp://cloud.example.com/{{.localpart}}\n", "c.yaml:2: ics.url_template: URL template must give an http, https or webcal URL"},
		{"ics:\n  url_template: https://reader:pw@cloud.example.com/{{.localpart}}\n", "c.yaml:2: ics.url_template: must not hold credentials: use username and password_file"},
		{"ics:\n  url_map_file: feeds.csv\n", "c.yaml:2: ics.url_map_file: " + filepath.Join(dir, "feeds.csv") + ":2: \"nobody\" is not a mail address"},
	}
	for _, c := range cases {
		_, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(c.yaml), ldapmap.CheckLDAPConfig, checkCalendar)
		got := ""
		if err != nil {
			got = strings.ReplaceAll(err.Error(), filepath.Join(dir, "c.yaml"), "c.yaml")
		}
		if got != c.want {
			t.Errorf("%s: problems\n%s\nwant\n%s", c.yaml, got, c.want)
		}
	}
}

// An ICS feed behind a private CA is reached with ca_file (the system's
// roots alone refuse it), and the service account's credentials go to
// HTTPS feeds only.
func TestICSSourceCAFileAndBasicAuth(t *testing.T) {
	var mu sync.Mutex
	auth := map[string]string{} // scheme → Authorization header seen
	feed := func(scheme string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth[scheme] = r.Header.Get("Authorization")
			mu.Unlock()
			w.Header().Set("Content-Type", "text/calendar")
			start := time.Now().UTC().Add(-time.Minute).Format("20060102T150405Z")
			end := time.Now().UTC().Add(time.Hour).Format("20060102T150405Z")
			fmt.Fprintf(w, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:1@test\r\nDTSTAMP:20240101T000000Z\r\n"+
				"DTSTART:%s\r\nDTEND:%s\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", start, end)
		}
	}
	tlsSrv := httptest.NewTLSServer(feed("https"))
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(feed("http"))
	t.Cleanup(plain.Close)

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "ics.password")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	feeds := filepath.Join(dir, "feeds.csv")
	if err := os.WriteFile(feeds, []byte("mailbox,url\nbob@example.com,"+plain.URL+"/bob.ics\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.ICS{URLTemplate: tlsSrv.URL + "/{{.localpart}}.ics", URLMapFile: feeds, Username: "reader", PasswordFile: pw,
		MaxBytes: 1 << 20, Timeout: config.Duration(5 * time.Second), Concurrency: 2, Batch: 10}
	schedules := func(c config.ICS, mailbox string) error {
		src, err := icsSource(&c, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		now := time.Now()
		facts, err := src.Schedules(t.Context(), []string{mailbox}, now, now.Add(time.Hour))
		if err != nil {
			return err
		}
		if len(facts) != 1 {
			return fmt.Errorf("%d answers for %s", len(facts), mailbox)
		}
		if facts[0].Err != nil {
			return facts[0].Err
		}
		if len(facts[0].Events) != 1 {
			return fmt.Errorf("%d events for %s, want 1", len(facts[0].Events), mailbox)
		}
		return nil
	}

	noCA := cfg
	noCA.CAFile = ""
	if err := schedules(noCA, "alice@example.com"); err == nil {
		t.Error("feed behind a private CA read without ca_file")
	}
	withCA := cfg
	withCA.CAFile = ca
	if err := schedules(withCA, "alice@example.com"); err != nil {
		t.Errorf("with ca_file: %v", err)
	}
	if err := schedules(withCA, "bob@example.com"); err != nil {
		t.Errorf("mapped plain-HTTP feed: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("reader:s3cret")); auth["https"] != want {
		t.Errorf("HTTPS feed got Authorization %q, want %q", auth["https"], want)
	}
	if a, ok := auth["http"]; !ok || a != "" {
		t.Errorf("plain-HTTP feed got Authorization %q (asked: %v), want none", a, ok)
	}

	bad := withCA
	bad.CAFile = feeds
	if _, err := icsSource(&bad, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "ics ca_file "+feeds+" holds no PEM certificate") {
		t.Errorf("CA file without a certificate: err = %v", err)
	}
}
