package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/presencegw/presencegw/graph"
	"github.com/presencegw/presencegw/internal/config"
	"github.com/presencegw/presencegw/internal/presence"
	"github.com/presencegw/presencegw/rules"
)

// policyFrom turns the configured policy into the rules' one, with the
// status texts compiled once.
func policyFrom(p config.Policy) (rules.Policy, error) {
	pol := rules.Policy{
		Automatic:     rules.Automatic{Meetings: slices.Contains(p.Automatic, "meetings"), OOF: slices.Contains(p.Automatic, "oof")},
		TentativeBusy: p.Tentative != "free",
		AllDay:        p.AllDay == "respect",
		MergeGap:      p.MergeGap.D(),
		ShowSubject:   p.ShowSubject,
	}
	t := rules.Texts{Meeting: p.Texts.Meeting, MeetingWith: p.Texts.MeetingWith, OOF: p.Texts.OOF,
		Elsewhere: p.Texts.Elsewhere, TimeLayout: p.Texts.TimeLayout, DateLayout: p.Texts.DateLayout}
	copy(t.Weekdays[:], p.Texts.Weekdays)
	copy(t.Months[:], p.Texts.Months)
	texts, err := t.Compile()
	if err != nil {
		return pol, err
	}
	pol.Texts = texts
	return pol, nil
}

// checkPolicy is a config.Check: the status templates parse and run.
func checkPolicy(c *config.Config, p *config.Problems) {
	if _, err := policyFrom(c.Policy); err != nil {
		p.Add("policy.texts", "%v", err)
	}
}

// calendarSource builds the configured calendar source: the demo's
// built-in calendar, Microsoft Graph, or none.
func calendarSource(cfg *config.Config, demo bool, log *slog.Logger) (presence.CalendarSource, error) {
	if demo {
		return graph.NewDemo(time.Now(), time.Local), nil
	}
	g := cfg.Graph
	if g == nil {
		return nil, nil
	}
	gc := graph.Config{TenantID: g.TenantID, ClientID: g.ClientID, BaseURL: g.BaseURL, AuthorityHost: g.AuthorityHost,
		AutoReplies: g.AutoReplies, MailTipsBatch: g.MailTipsBatch, Concurrency: g.Concurrency}
	if g.CertificateFile != "" {
		pem, err := os.ReadFile(g.CertificateFile)
		if err != nil {
			return nil, fmt.Errorf("graph certificate: %w", err)
		}
		gc.CertificatePEM = pem
	} else {
		secret, err := config.Secret(g.ClientSecretFile, g.ClientSecretEnv)
		if err != nil {
			return nil, fmt.Errorf("graph client secret: %w", err)
		}
		gc.ClientSecret = secret
	}
	if g.CAFile != "" {
		pemData, err := os.ReadFile(g.CAFile)
		if err != nil {
			return nil, fmt.Errorf("graph ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("graph ca_file %s holds no PEM certificate", g.CAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		gc.Transport = tr
	}
	return graph.New(gc, log)
}
