package ics

import (
	"strings"
	"testing"
)

func TestParseURLMap(t *testing.T) {
	good := []struct{ name, data string }{
		{"feeds.csv", "# per-person feeds\nmailbox,url\nAlice@Example.com, https://cloud.example.com/a.ics?export\nbob@example.com,webcal://cal.example.com/b\n"},
		{"feeds.csv", "url,mailbox\nhttps://cloud.example.com/a.ics?export,alice@example.com\nwebcal://cal.example.com/b,bob@example.com\n"},
		{"feeds.yaml", "alice@example.com: https://cloud.example.com/a.ics?export\nBOB@example.com: webcal://cal.example.com/b\n"},
	}
	for _, g := range good {
		m, err := ParseURLMap(g.name, []byte(g.data))
		if err != nil {
			t.Errorf("%s: %v", g.name, err)
			continue
		}
		if len(m) != 2 || m["alice@example.com"] != "https://cloud.example.com/a.ics?export" || m["bob@example.com"] != "webcal://cal.example.com/b" {
			t.Errorf("%s: %v", g.name, m)
		}
	}
	bad := []struct{ name, data, want string }{
		{"feeds.csv", "mail,link\na@example.com,https://x/y\n", "feeds.csv:1: the header must name the columns mailbox and url"},
		{"feeds.csv", "mailbox,url\nnobody,https://x/secret\na@example.com,/relative/secret\na@example.com,https://x/1\na@example.com,https://x/2\nb@example.com\n",
			"feeds.csv:2: \"nobody\" is not a mail address\nfeeds.csv:3: the URL of a@example.com is not an absolute URL\n" +
				"feeds.csv:5: a@example.com is listed twice\nfeeds.csv:6: has 1 fields, the header has 2"},
		{"feeds.yaml", "- a@example.com\n", "feeds.yaml:1: want a mapping of mailbox: url"},
		{"feeds.yaml", "a@example.com: [https://x]\n", "feeds.yaml:1: the URL of a@example.com must be a string"},
		{"feeds.json", "{}", "feeds.json: must end in .csv, .yaml or .yml"},
	}
	for _, b := range bad {
		_, err := ParseURLMap(b.name, []byte(b.data))
		if err == nil || err.Error() != b.want {
			t.Errorf("%s %q: err = %v\nwant %s", b.name, b.data, err, b.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("a feed URL leaked into the error: %v", err)
		}
	}
}

// The map file parser never panics, and what it accepts is well formed.
func FuzzParseURLMap(f *testing.F) {
	f.Add(true, []byte("mailbox,url\na@example.com,https://x/y.ics\n"))
	f.Add(true, []byte("url,mailbox\n\"https://x/a,b\",a@example.com\nb@x,\n"))
	f.Add(false, []byte("a@example.com: https://x/y.ics\nb@example.com: [1]\n"))
	f.Add(false, []byte("- a\n"))
	f.Fuzz(func(t *testing.T, csv bool, data []byte) {
		name := "feeds.yaml"
		if csv {
			name = "feeds.csv"
		}
		m, err := ParseURLMap(name, data)
		if err != nil {
			return
		}
		for mb, u := range m {
			if mb != strings.ToLower(strings.TrimSpace(mb)) || strings.Count(mb, "@") != 1 || !strings.Contains(u, "://") {
				t.Errorf("accepted %q → %q", mb, u)
			}
		}
	})
}
