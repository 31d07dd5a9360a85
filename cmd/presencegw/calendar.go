package main

import (
	"context"
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
// built-in calendar, or the sources configured (graph, ews, ics) behind
// the router that picks one per mailbox; nil when none is configured.
func calendarSource(cfg *config.Config, demo bool, log *slog.Logger) (presence.CalendarSource, error) {
	if demo {
		return graph.NewDemo(time.Now(), time.Local), nil
	}
	rc, err := routedSources(cfg, log)
	if rc == nil || err != nil {
		return nil, err
	}
	return rc, nil
}

// routedSources builds every configured calendar source and the router
// over them; nil without any.
func routedSources(cfg *config.Config, log *slog.Logger) (*routedCalendar, error) {
	var sources []namedSource
	if cfg.Graph != nil {
		s, err := graphSource(cfg.Graph, log)
		if err != nil {
			return nil, err
		}
		sources = append(sources, namedSource{config.SourceGraph, s})
	}
	if cfg.EWS != nil {
		s, err := ewsSource(cfg.EWS, log)
		if err != nil {
			return nil, err
		}
		sources = append(sources, namedSource{config.SourceEWS, s})
	}
	if cfg.ICS != nil {
		s, err := icsSource(cfg.ICS, log)
		if err != nil {
			return nil, err
		}
		sources = append(sources, namedSource{config.SourceICS, s})
	}
	if len(sources) == 0 {
		return nil, nil
	}
	return newRoutedCalendar(cfg.Calendar.Routing, sources, log), nil
}

// graphSource builds the Microsoft Graph source.
func graphSource(g *config.Graph, log *slog.Logger) (*graph.Source, error) {
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

// ewsSource builds the EWS source; the bearer token comes from a file
// (re-read when it changes) or the environment.
func ewsSource(e *config.EWS, log *slog.Logger) (*graph.EWS, error) {
	ec := graph.EWSConfig{URL: e.URL, Auth: e.Auth, Username: e.Username, Impersonate: e.Impersonate, SendingAs: e.SendingAs,
		ServerVersion: e.ServerVersion, CAFile: e.CAFile, Timeout: e.Timeout.D(), Concurrency: e.Concurrency,
		MaxBackOff: e.MaxBackOff.D(), AvailabilityBatch: e.AvailabilityBatch, MailTipsBatch: e.MailTipsBatch}
	if e.Domain != "" {
		ec.Username = e.Domain + `\` + e.Username
	}
	switch e.Auth {
	case "bearer":
		if e.TokenFile != "" {
			ec.Token = newFileToken(e.TokenFile).Token
		} else {
			tok, err := config.Secret("", e.TokenEnv)
			if err != nil {
				return nil, fmt.Errorf("ews token: %w", err)
			}
			ec.Token = func(context.Context) (string, error) { return tok, nil }
		}
	default:
		pw, err := config.Secret(e.PasswordFile, e.PasswordEnv)
		if err != nil {
			return nil, fmt.Errorf("ews password: %w", err)
		}
		ec.Password = pw
	}
	return graph.NewEWS(ec, log)
}
