package graph

import (
	"html"
	"regexp"
	"strings"
)

var (
	// htmlSkip are elements whose content is not text.
	htmlSkip = regexp.MustCompile(`(?is)<(head|style|script|title)\b.*?</(head|style|script|title)\s*>|<!--.*?-->`)
	// htmlBreak are tags that end a line.
	htmlBreak = regexp.MustCompile(`(?i)<\s*(br|/p|/div|/li|/tr|/h[1-6]|p|div|li|tr)\b[^>]*>`)
	htmlTag   = regexp.MustCompile(`(?s)<[^>]*>`)
	spaces    = regexp.MustCompile(`[ \t\x{00a0}]+`)
)

// HTMLToText turns an automatic-reply message (Outlook stores HTML) into
// plain text lines: block tags end lines, other tags go, entities are
// decoded. Only the first line is ever shown, so this needs no full HTML
// parser; a message that is already plain text passes unchanged.
func HTMLToText(s string) string {
	if !strings.Contains(s, "<") {
		return strings.TrimSpace(html.UnescapeString(s))
	}
	s = htmlSkip.ReplaceAllString(s, "")
	s = htmlBreak.ReplaceAllString(s, "\n")
	s = htmlTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	var lines []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(spaces.ReplaceAllString(line, " ")); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}
