package ics

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/template"
)

// URLTemplate builds Config.URL from a text/template, for sites where
// every feed follows one pattern, e.g. a Nextcloud public calendar:
//
//	https://cloud.example.com/remote.php/dav/public-calendars/{{.localpart}}?export
//
// The fields are .mailbox (the whole address), .localpart and .domain
// (the parts around the last "@"), each escaped for a URL path segment
// (so "../x" cannot climb the path); .raw holds the same three
// unescaped. A template that produces an empty string for a mailbox
// means it has no feed.
func URLTemplate(text string) (func(mailbox string) (string, bool), error) {
	tmpl, err := template.New("ics-url").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("ics: URL template: %w", err)
	}
	fn := func(mailbox string) (string, bool) {
		var b strings.Builder
		if err := tmpl.Execute(&b, urlFields(mailbox)); err != nil {
			return "", false
		}
		out := strings.TrimSpace(b.String())
		return out, out != ""
	}
	// Check it once, so a typo fails at start-up and not per mailbox.
	var b strings.Builder
	if err := tmpl.Execute(&b, urlFields("someone@example.com")); err != nil {
		return nil, fmt.Errorf("ics: URL template: %w", err)
	}
	u, err := url.Parse(strings.TrimSpace(b.String()))
	if err != nil {
		return nil, fmt.Errorf("ics: URL template gives %q: %w", b.String(), err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "webcal", "webcals":
	default:
		return nil, errors.New("ics: URL template must give an http, https or webcal URL")
	}
	return fn, nil
}

func urlFields(mailbox string) map[string]any {
	local, domain := mailbox, ""
	if i := strings.LastIndexByte(mailbox, '@'); i >= 0 {
		local, domain = mailbox[:i], mailbox[i+1:]
	}
	return map[string]any{
		"mailbox":   url.PathEscape(mailbox),
		"localpart": url.PathEscape(local),
		"domain":    url.PathEscape(domain),
		"raw":       map[string]string{"mailbox": mailbox, "localpart": local, "domain": domain},
	}
}

// URLMap builds Config.URL from a table of mailbox → feed URL (a file of
// per-person feeds, or URLs read from the directory). Mailboxes match
// case-insensitively.
func URLMap(m map[string]string) func(mailbox string) (string, bool) {
	folded := make(map[string]string, len(m))
	for k, v := range m {
		folded[strings.ToLower(strings.TrimSpace(k))] = v
	}
	return func(mailbox string) (string, bool) {
		u, ok := folded[strings.ToLower(strings.TrimSpace(mailbox))]
		return u, ok && u != ""
	}
}
