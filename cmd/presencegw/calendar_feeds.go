package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/presencegw/presencegw/graph"
	"github.com/presencegw/presencegw/ics"
	"github.com/presencegw/presencegw/internal/config"
)

// fileToken is an OAuth access token kept in a file by something that
// refreshes it (a sidecar, a cron job with the client-credentials grant):
// the file is read again whenever its modification time or size changes,
// so a new token is used from the next request without a restart.
type fileToken struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	token   string
}

func newFileToken(path string) *fileToken { return &fileToken{path: path} }

// Token returns the file's token, reading the file again when it changed.
func (f *fileToken) Token(context.Context) (string, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("ews token: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token != "" && fi.ModTime().Equal(f.modTime) && fi.Size() == f.size {
		return f.token, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return "", fmt.Errorf("ews token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("ews token: %s is empty", f.path)
	}
	f.token, f.modTime, f.size = tok, fi.ModTime(), fi.Size()
	return tok, nil
}

// icsSource builds the ICS feed source: a mailbox's feed is the map
// file's entry, else the template's URL.
func icsSource(c *config.ICS, log *slog.Logger) (*ics.Source, error) {
	var tmpl func(string) (string, bool)
	if c.URLTemplate != "" {
		var err error
		if tmpl, err = ics.URLTemplate(c.URLTemplate); err != nil {
			return nil, err
		}
	}
	var feeds *feedMap
	if c.URLMapFile != "" {
		feeds = &feedMap{path: c.URLMapFile, log: log}
		if err := feeds.load(); err != nil {
			return nil, err
		}
	}
	feedURL := func(mailbox string) (string, bool) {
		if feeds != nil {
			if u, ok := feeds.lookup(mailbox); ok {
				return u, true
			}
		}
		if tmpl != nil {
			return tmpl(mailbox)
		}
		return "", false
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CAFile != "" {
		pool, err := rootsWith("ics ca_file", c.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if c.Username != "" {
		pw, err := config.Secret(c.PasswordFile, c.PasswordEnv)
		if err != nil {
			return nil, fmt.Errorf("ics password: %w", err)
		}
		rt = basicAuth{next: tr, user: c.Username, password: pw}
	}
	return ics.New(ics.Config{URL: feedURL, LoadZone: graph.LoadZone, MaxSize: c.MaxBytes, Timeout: c.Timeout.D(),
		Concurrency: c.Concurrency, Batch: c.Batch, MinInterval: c.MinInterval.D(), Transport: rt}, log)
}

// rootsWith is the system's root certificates plus those of the PEM file
// at path (a private CA); field names the setting in errors.
func rootsWith(field, path string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", field, path)
	}
	return pool, nil
}

// basicAuth adds the configured credentials to feed requests whose URL
// holds none, over HTTPS only: a password is not sent in clear text.
type basicAuth struct {
	next           http.RoundTripper
	user, password string
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "https" && r.URL.User == nil && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.SetBasicAuth(b.user, b.password)
	}
	return b.next.RoundTrip(r)
}

// feedMap is the url_map_file: mailbox → feed URL, read again when the
// file changes (checked at most every few seconds), so feeds can be added
// without a restart. A file that turns invalid keeps the last good table.
type feedMap struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	checked time.Time
	modTime time.Time
	urls    map[string]string
}

func (m *feedMap) load() error {
	fi, err := os.Stat(m.path)
	if err != nil {
		return fmt.Errorf("ics url_map_file: %w", err)
	}
	data, err := os.ReadFile(m.path)
	if err != nil {
		return fmt.Errorf("ics url_map_file: %w", err)
	}
	urls, err := ics.ParseURLMap(m.path, data)
	if err != nil {
		return err
	}
	m.urls, m.modTime = urls, fi.ModTime()
	return nil
}

func (m *feedMap) lookup(mailbox string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now := time.Now(); now.Sub(m.checked) > 5*time.Second {
		m.checked = now
		if fi, err := os.Stat(m.path); err == nil && !fi.ModTime().Equal(m.modTime) {
			if err := m.load(); err != nil {
				m.log.Warn("ics url_map_file changed but cannot be read; keeping the last good one", "err", err)
				m.modTime = fi.ModTime() // say it once per change
			}
		}
	}
	u, ok := m.urls[strings.ToLower(strings.TrimSpace(mailbox))]
	return u, ok && u != ""
}

// checkCalendar is a config.Check: the ICS template compiles and gives
// no credentials, the map file reads.
func checkCalendar(c *config.Config, p *config.Problems) {
	i := c.ICS
	if i == nil {
		return
	}
	if i.URLTemplate != "" {
		if fn, err := ics.URLTemplate(i.URLTemplate); err != nil {
			p.Add("ics.url_template", "%v", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "ics: URL template: "), "ics: "))
		} else if u, _ := fn("someone@example.com"); hasUserinfo(u) {
			p.Add("ics.url_template", "must not hold credentials: use username and password_file")
		}
	}
	if i.URLMapFile != "" {
		if data, err := os.ReadFile(i.URLMapFile); err == nil {
			if _, err := ics.ParseURLMap(i.URLMapFile, data); err != nil {
				for _, e := range strings.Split(err.Error(), "\n") {
					p.Add("ics.url_map_file", "%s", e)
				}
			}
		}
	}
}

func hasUserinfo(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil
}
