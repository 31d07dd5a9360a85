package main

import (
	"os"
	"path/filepath"
	"strings"
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
