package ldapmap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// ftPeopleYAML and ftPeopleCSV (ft: file test) hold the same people; the comments give the
// line each person starts on.
var ftPeopleYAML = strings.Join([]string{
	"# people of the demo",
	"people:",
	"  - mail: Alice.Smith@Example.com", // 3
	"    aliases: [asmith@example.com, ALICE.SMITH@example.com, alice@example.org, alice@other.net, 'mailto:AS@Example.com']",
	"    jid: Alice@Chat.Example.com",
	"    name: Alice Smith",
	"    title: Engineer",
	"    department: R&D",
	"  - mail: bob@example.com", // 9
	"    jid: xmpp:bob@chat.example.com",
	"    mailbox: Bob.Mbx@example.com",
	"  - mail: carol@other.net", // 12: no address in the domains
	"    aliases: [carol@elsewhere.org]",
	"    jid: carol@chat.example.com",
	"  - mail: dave@example.com", // 15: disabled
	"    jid: dave@chat.example.com",
	"    disabled: true",
	"  - mail: erin@other.net", // 18: primary outside, alias inside
	"    aliases: [erin@example.org]",
	"    jid: erin@chat.example.com",
	"    disabled: false",
}, "\n") + "\n"

var ftPeopleCSV = strings.Join([]string{
	"\ufeffMail, JID ,name,title,department,mailbox,aliases,disabled", // as Excel writes it
	`Alice.Smith@Example.com,Alice@Chat.Example.com,Alice Smith,Engineer,R&D,,asmith@example.com; ALICE.SMITH@example.com;alice@example.org;alice@other.net;mailto:AS@Example.com,`, // 2
	"",
	`bob@example.com,xmpp:bob@chat.example.com,,,,Bob.Mbx@example.com,,`,   // 4
	`carol@other.net,carol@chat.example.com,,,,,carol@elsewhere.org,FALSE`, // 5
	`dave@example.com,dave@chat.example.com,,,,,,true`,                     // 6
	"# erin's mailbox is elsewhere",
	`erin@other.net,erin@chat.example.com,,,,,erin@example.org,0`, // 8
}, "\n") + "\n"

// ftWantPeople is what both files give with domains example.com and
// example.org, by DN.
func ftWantPeople(source, file string, lines [5]int) map[string]*Person {
	dn := func(i int) string { return file + ":" + strconv.Itoa(lines[i]) }
	return map[string]*Person{
		dn(0): {
			Source: source, DN: dn(0), JID: "alice@chat.example.com", JIDFrom: "column jid",
			MailboxID: "alice.smith@example.com",
			Name:      "Alice Smith", Title: "Engineer", Department: "R&D",
			Addresses: []Address{
				{Address: "alice.smith@example.com", Attr: "mail", Raw: "Alice.Smith@Example.com", Primary: true},
				{Address: "asmith@example.com", Attr: "aliases"},
				{Address: "alice@example.org", Attr: "aliases"},
				{Address: "as@example.com", Attr: "aliases", Raw: "mailto:AS@Example.com"},
			},
		},
		dn(1): {
			Source: source, DN: dn(1), JID: "bob@chat.example.com", JIDFrom: "column jid",
			MailboxID: "Bob.Mbx@example.com",
			Addresses: []Address{{Address: "bob@example.com", Attr: "mail", Primary: true}},
		},
		// erin's primary address is outside the domains: her alias is all
		// that is left, and (as for LDAP) the mailbox defaults to it.
		dn(4): {
			Source: source, DN: dn(4), JID: "erin@chat.example.com", JIDFrom: "column jid",
			MailboxID: "erin@example.org",
			Addresses: []Address{{Address: "erin@example.org", Attr: "aliases"}},
		},
	}
}

func ftMark(data string) string {
	sum := sha256.Sum256([]byte(data))
	return hex.EncodeToString(sum[:8])
}

func TestFileSourceFull(t *testing.T) {
	domains := []string{"example.com", "Example.ORG"}
	tests := []struct {
		name  string
		file  string
		data  string
		lines [5]int
	}{
		{"yaml", "people.yaml", ftPeopleYAML, [5]int{3, 9, 12, 15, 18}},
		{"yml", "People.YML", ftPeopleYAML, [5]int{3, 9, 12, 15, 18}},
		{"csv", "people.csv", ftPeopleCSV, [5]int{2, 4, 5, 6, 8}},
		{"CSV", "PEOPLE.CSV", ftPeopleCSV, [5]int{2, 4, 5, 6, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tempPath := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(tempPath, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			sources := map[string]*FileSource{
				"data": NewFileSourceData("demo", 5, domains, "/embedded/"+tt.file, []byte(tt.data)),
				"file": NewFileSource("demo", 5, domains, tempPath),
			}
			for kind, s := range sources {
				if s.Name() != "demo" || s.Priority() != 5 {
					t.Errorf("%s: Name, Priority = %q, %d", kind, s.Name(), s.Priority())
				}
				progress := -1
				snap, err := s.Full(context.Background(), func(n int) { progress = n })
				if err != nil {
					t.Fatalf("%s: Full: %v", kind, err)
				}
				want := ftWantPeople("demo", tt.file, tt.lines)
				if !reflect.DeepEqual(snap.People, want) {
					for dn, p := range snap.People {
						t.Logf("got %s: %+v", dn, *p)
					}
					for dn, p := range want {
						t.Logf("want %s: %+v", dn, *p)
					}
					t.Errorf("%s: people differ", kind)
				}
				wantStats := SyncStats{People: 3, Addresses: 6, Disabled: 1, OutsideDomains: 1}
				if snap.Stats != wantStats {
					t.Errorf("%s: stats %+v, want %+v", kind, snap.Stats, wantStats)
				}
				if snap.Cursor != (Cursor{Mark: ftMark(tt.data)}) {
					t.Errorf("%s: cursor %+v, want the content's hash %s", kind, snap.Cursor, ftMark(tt.data))
				}
				if progress != 5 {
					t.Errorf("%s: progress reported %d entries, want 5", kind, progress)
				}
				// A nil progress function is fine.
				if _, err := s.Full(context.Background(), nil); err != nil {
					t.Errorf("%s: Full(nil progress): %v", kind, err)
				}
			}
		})
	}
}

func TestFileSourceNoDomains(t *testing.T) {
	s := NewFileSourceData("all", 0, nil, "people.yaml", []byte(ftPeopleYAML))
	snap, err := s.Full(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantStats := SyncStats{People: 4, Addresses: 5 + 1 + 2 + 2, Disabled: 1}
	if snap.Stats != wantStats {
		t.Errorf("stats %+v, want %+v", snap.Stats, wantStats)
	}
	carol := snap.People["people.yaml:12"]
	if carol == nil {
		t.Fatal("carol missing without a domain filter")
	}
	want := []Address{
		{Address: "carol@other.net", Attr: "mail", Primary: true},
		{Address: "carol@elsewhere.org", Attr: "aliases"},
	}
	if !reflect.DeepEqual(carol.Addresses, want) || carol.MailboxID != "carol@other.net" {
		t.Errorf("carol = %+v", *carol)
	}
	erin := snap.People["people.yaml:18"]
	if erin == nil || erin.MailboxID != "erin@other.net" || len(erin.Addresses) != 2 || !erin.Addresses[0].Primary {
		t.Errorf("erin = %+v, want her mail first and as mailbox", erin)
	}
}

// TestFileSourcePrimaryFirst checks that the primary address comes first
// even when an alias repeats it first, and that the primary keeps its flag.
func TestFileSourcePrimaryFirst(t *testing.T) {
	data := "people:\n  - aliases: [b@example.com, A@example.com]\n    mail: a@example.com\n    jid: a@chat\n"
	snap, err := NewFileSourceData("f", 0, nil, "p.yaml", []byte(data)).Full(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := snap.People["p.yaml:2"]
	want := []Address{
		{Address: "a@example.com", Attr: "mail", Primary: true},
		{Address: "b@example.com", Attr: "aliases"},
	}
	if p == nil || !reflect.DeepEqual(p.Addresses, want) {
		t.Errorf("addresses = %+v, want %+v", p, want)
	}
}

func TestFileSourceEmpty(t *testing.T) {
	for _, tt := range []struct{ file, data string }{
		{"p.yaml", ""},
		{"p.yaml", "people: []\n"},
		{"p.yaml", "# nobody\n"},
		{"p.csv", ""},
		{"p.csv", "mail,jid\n"},
		{"p.csv", "# nobody yet\nmail,jid\n\n"},
	} {
		snap, err := NewFileSourceData("f", 0, nil, tt.file, []byte(tt.data)).Full(context.Background(), nil)
		if err != nil || len(snap.People) != 0 || snap.Stats != (SyncStats{}) {
			t.Errorf("%s %q: %+v, %v; want no people, no error", tt.file, tt.data, snap, err)
		}
	}
}

func TestFileSourceErrors(t *testing.T) {
	cols := "(columns: mail, jid, name, title, department, mailbox, aliases, disabled)"
	fields := "(fields: mail, jid, name, title, department, mailbox, aliases, disabled)"
	tests := []struct {
		name string
		file string
		data []string
		want []string // the error's lines after "file source f: "
	}{
		{
			name: "yaml missing jid", file: "p.yaml",
			data: []string{"people:", "  - mail: a@example.com", "    name: A"},
			want: []string{"p.yaml:2: jid: is required"},
		},
		{
			name: "yaml missing mail", file: "p.yaml",
			data: []string{"people:", "  - jid: a@chat"},
			want: []string{"p.yaml:2: mail: is required"},
		},
		{
			name: "yaml invalid mail", file: "p.yaml",
			data: []string{"people:", "  - mail: alice", "    jid: a@chat"},
			want: []string{`p.yaml:2: mail: "alice" is not an e-mail address (want local@domain)`},
		},
		{
			name: "yaml invalid alias", file: "p.yaml",
			data: []string{"people:", "  - mail: a@example.com", "    aliases: [ok@example.com, '<a@example.com>']", "    jid: a@chat"},
			want: []string{`p.yaml:2: aliases: "<a@example.com>" contains a character not allowed in an address ('<')`},
		},
		{
			name: "yaml invalid jid", file: "p.yaml",
			data: []string{"people:", "  - mail: a@example.com", "    jid: a@chat/phone"},
			want: []string{`p.yaml:2: jid: "a@chat/phone" is not a bare JID (resource or forbidden character)`},
		},
		{
			name: "yaml duplicate mail", file: "p.yaml",
			data: []string{
				"people:",
				"  - mail: a@example.com",
				"    jid: a@chat",
				"  - mail: b@example.com",
				"    jid: b@chat",
				"  - mail: A@Example.COM",
				"    jid: a2@chat",
			},
			want: []string{"p.yaml:6: mail: a@example.com is already listed on line 2"},
		},
		{
			name: "yaml unknown key", file: "p.yaml",
			data: []string{"people:", "  - mail: a@example.com", "    jid: a@chat", "    alias: [b@example.com]"},
			want: []string{`p.yaml:4: people[0]: unknown field "alias" ` + fields},
		},
		{
			name: "yaml unknown top-level key", file: "p.yaml",
			data: []string{"peeple:", "  - mail: a@example.com"},
			want: []string{`p.yaml:1: field peeple not found in type struct { People []yaml.Node "yaml:\"people\"" }`},
		},
		{
			name: "yaml bad disabled", file: "p.yaml",
			data: []string{"people:", "  - mail: a@example.com", "    jid: a@chat", "    disabled: maybe"},
			want: []string{"p.yaml:4: people[0]: cannot unmarshal !!str `maybe` into bool"},
		},
		{
			name: "yaml person not a mapping", file: "p.yaml",
			data: []string{"people:", "  - mail: a@example.com", "    jid: a@chat", "  - b@example.com"},
			want: []string{"p.yaml:4: people[1]: cannot unmarshal !!str `b@examp...` into ldapmap.fileRecord"},
		},
		{
			name: "yaml syntax", file: "p.yaml",
			data: []string{"people:", "  - mail: a@example.com", " jid: a@chat"},
			want: []string{"p.yaml:2: did not find expected key"},
		},
		{
			name: "yaml several problems", file: "p.yaml",
			data: []string{
				"people:",
				"  - mail: a@example.com", // 2: fine
				"    jid: a@chat",
				"  - mail: bad",           // 4
				"  - mail: a@example.com", // 5
				"    jid: '@chat'",
			},
			want: []string{
				`p.yaml:4: mail: "bad" is not an e-mail address (want local@domain)`,
				"p.yaml:4: jid: is required",
				"p.yaml:5: mail: a@example.com is already listed on line 2",
				`p.yaml:5: jid: "@chat" is not a bare JID (want local@domain)`,
			},
		},
		{
			name: "csv unknown column", file: "p.csv",
			data: []string{"mail,jid,phone", "a@example.com,a@chat,1"},
			want: []string{`p.csv:1: column "phone": unknown ` + cols},
		},
		{
			name: "csv unknown column after comments", file: "p.csv",
			data: []string{"# people", "# more", "mail,jid,Phone ", "a@example.com,a@chat,1"},
			want: []string{`p.csv:3: column "phone": unknown ` + cols},
		},
		{
			name: "csv column twice", file: "p.csv",
			data: []string{"mail,jid,MAIL"},
			want: []string{`p.csv:1: column "mail": listed twice`},
		},
		{
			name: "csv field count", file: "p.csv",
			data: []string{"mail,jid", "a@example.com,a@chat,extra", "b@example.com", "c@example.com,c@chat"},
			want: []string{"p.csv:2: has 3 fields, the header has 2", "p.csv:3: has 1 fields, the header has 2"},
		},
		{
			name: "csv bad disabled", file: "p.csv",
			data: []string{"mail,jid,disabled", "a@example.com,a@chat,f", "b@example.com,b@chat,maybe"},
			want: []string{`p.csv:3: disabled: "maybe" is not true or false`},
		},
		{
			name: "csv missing jid", file: "p.csv",
			data: []string{"mail,name", "a@example.com,A"},
			want: []string{"p.csv:2: jid: is required"},
		},
		{
			name: "csv invalid mail", file: "p.csv",
			data: []string{"mail,jid", "a@example.com,a@chat", "a@@example.com,b@chat"},
			want: []string{`p.csv:3: mail: "a@@example.com" has more than one @`},
		},
		{
			name: "csv duplicate mail", file: "p.csv",
			data: []string{"mail,jid", "# a comment", "a@example.com,a@chat", `"Multi",b@chat`, "Sip:A@example.com,c@chat"},
			want: []string{
				`p.csv:4: mail: "Multi" is not an e-mail address (want local@domain)`,
				"p.csv:5: mail: a@example.com is already listed on line 3",
			},
		},
		{
			name: "csv quoting", file: "p.csv",
			data: []string{"mail,jid", `a@example.com,a"b@chat`},
			want: []string{`p.csv: parse error on line 2, column 16: bare " in non-quoted-field`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := strings.Join(tt.data, "\n") + "\n"
			snap, err := NewFileSourceData("f", 0, nil, tt.file, []byte(data)).Full(context.Background(), nil)
			if err == nil {
				t.Fatalf("Full succeeded with %d people, want an error", len(snap.People))
			}
			if snap != nil {
				t.Errorf("Full returned people with its error: a bad file must be rejected as a whole")
			}
			if want := "file source f: " + strings.Join(tt.want, "\n"); err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
		})
	}
}

// TestFileSourceFileChanges checks Changes on a file being edited, and that
// an edit that breaks one line is rejected as a whole.
func TestFileSourceFileChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "people.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	good := "people:\n  - mail: a@example.com\n    jid: a@chat\n  - mail: b@example.com\n    jid: b@chat\n"
	write(good)
	s := NewFileSource("f", 0, nil, path)
	ctx := context.Background()
	snap, err := s.Full(ctx, nil)
	if err != nil || len(snap.People) != 2 {
		t.Fatalf("Full = %v, %v", snap, err)
	}
	cursor := snap.Cursor

	tests := []struct {
		name     string
		content  string // "" removes the file
		needFull bool
		notExist bool
	}{
		{name: "same content", content: good},
		{name: "changed", content: good + "  - mail: c@example.com\n    jid: c@chat\n", needFull: true},
		{name: "whitespace only", content: good + "\n", needFull: true},
		{name: "removed", notExist: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.notExist {
				os.Remove(path)
			} else {
				write(tt.content)
			}
			d, err := s.Changes(ctx, cursor)
			switch {
			case tt.notExist:
				if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNeedFull) {
					t.Errorf("Changes on a removed file: %v, %v; want fs.ErrNotExist", d, err)
				}
				if _, err := s.Full(ctx, nil); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Full on a removed file: %v", err)
				}
			case tt.needFull:
				if !errors.Is(err, ErrNeedFull) || d != nil {
					t.Errorf("Changes = %+v, %v; want ErrNeedFull", d, err)
				}
			default:
				if err != nil || d == nil || d.Cursor != cursor || len(d.Changed) != 0 || len(d.Removed) != 0 || d.Stats != (SyncStats{}) {
					t.Errorf("Changes = %+v, %v; want an empty delta with the same cursor", d, err)
				}
			}
		})
	}

	// A broken edit is rejected as a whole.
	write(good + "  - mail: c@example.com\n")
	if snap, err := s.Full(ctx, nil); err == nil || snap != nil {
		t.Errorf("Full of a file with a bad person = %v, %v; want only an error", snap, err)
	} else if !strings.Contains(err.Error(), path+":6: jid: is required") {
		t.Errorf("error does not name file, line and field: %v", err)
	}
	// A cursor from another content, or none, needs a full read.
	write(good)
	if _, err := s.Changes(ctx, Cursor{}); !errors.Is(err, ErrNeedFull) {
		t.Errorf("Changes with an empty cursor: %v, want ErrNeedFull", err)
	}
	if d, err := s.Changes(ctx, cursor); err != nil || d.Cursor != cursor {
		t.Errorf("Changes after restoring the content = %v, %v", d, err)
	}
}

func TestNormalizeAddress(t *testing.T) {
	long := strings.Repeat("a", 310) + "@example.com" // 322
	tests := []struct {
		in, want string
		err      string // substring of the error; "" for none
	}{
		{in: "alice@example.com", want: "alice@example.com"},
		{in: "Alice.Smith@Example.COM", want: "alice.smith@example.com"},
		{in: "  bob@example.com\t\n", want: "bob@example.com"},
		{in: "mailto:Bob@Example.com", want: "bob@example.com"},
		{in: "MAILTO:bob@example.com", want: "bob@example.com"},
		{in: "sip:carol@example.com", want: "carol@example.com"},
		{in: "SIP:Carol@Example.com", want: "carol@example.com"},
		{in: " sip:carol@example.com ", want: "carol@example.com"},
		{in: "smtp:dave@example.com", want: "smtp:dave@example.com"}, // not a prefix this function knows
		{in: "mailto:sip:erin@example.com", want: "erin@example.com"},
		{in: "Jörg@Bücher.example", want: "jörg@bücher.example"},
		{in: "S\u0130P:alice@example.com", want: "alice@example.com"}, // "SİP:" lower-cases to "sip:"
		{in: "\u212Aate@example.com", want: "kate@example.com"},       // Kelvin sign
		{in: "\xffx@example.com", want: "\ufffdx@example.com"},
		{in: strings.Repeat("\u023a", 154) + "@example.com", err: "longer than 320 characters"}, // 320 bytes, 474 lower-cased
		{in: "o'brien+tag@example.com", want: "o'brien+tag@example.com"},
		{in: strings.Repeat("a", 308) + "@example.com", want: strings.Repeat("a", 308) + "@example.com"}, // 320
		{in: "", err: "empty address"},
		{in: "   ", err: "empty address"},
		{in: "mailto:", err: "empty address"},
		{in: "mailto:alice", err: `"alice" is not an e-mail address`},
		{in: "alice", err: `"alice" is not an e-mail address (want local@domain)`},
		{in: "alice@", err: "is not an e-mail address"},
		{in: "@example.com", err: "is not an e-mail address"},
		{in: "sip:@example.com", err: "is not an e-mail address"},
		{in: "a@b@example.com", err: `"a@b@example.com" has more than one @`},
		{in: "a@@example.com", err: "has more than one @"},
		{in: "al ice@example.com", err: "contains a character not allowed"},
		{in: "alice@exa\tmple.com", err: "contains a character not allowed"},
		{in: "alice\x00@example.com", err: "contains a character not allowed"},
		{in: "alice\x7f@example.com", err: "contains a character not allowed"},
		{in: "alice\u00a0x@example.com", err: "contains a character not allowed"},
		{in: "Alice <alice@example.com>", err: "contains a character not allowed"},
		{in: "<alice@example.com>", err: "contains a character not allowed"},
		{in: "alice@example.com,bob@example.com", err: "more than one @"},
		{in: "alice,bob@example.com", err: "contains a character not allowed"},
		{in: long, err: "longer than 320 characters"},
		{in: "mailto:" + long, err: "longer than 320 characters"},
	}
	for _, tt := range tests {
		got, err := NormalizeAddress(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeAddress(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
			if got != "" {
				t.Errorf("NormalizeAddress(%q) returned %q with its error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeJID(t *testing.T) {
	tests := []struct {
		in, want string
		err      string
	}{
		{in: "alice@chat.example.com", want: "alice@chat.example.com"},
		{in: "Alice@Chat.Example.COM", want: "alice@chat.example.com"},
		{in: "  bob@chat.example.com \n", want: "bob@chat.example.com"},
		{in: "xmpp:Bob@chat.example.com", want: "bob@chat.example.com"},
		{in: "XMPP:bob@chat.example.com", want: "bob@chat.example.com"},
		{in: "sip:carol@example.com", want: "carol@example.com"},
		{in: "chat.example.com", err: "is not a bare JID (want local@domain)"}, // a server, not a person
		{in: "", err: "empty JID"},
		{in: "xmpp:", err: "empty JID"},
		{in: "@chat.example.com", err: "is not a bare JID (want local@domain)"},
		{in: "alice@", err: "is not a bare JID (want local@domain)"},
		{in: "alice@chat.example.com/phone", err: "resource or forbidden character"},
		{in: "al ice@chat", err: "resource or forbidden character"},
		{in: "al\tice@chat", err: "resource or forbidden character"},
		{in: `a"b@chat`, err: "resource or forbidden character"},
		{in: "a&b@chat", err: "resource or forbidden character"},
		{in: "a'b@chat", err: "resource or forbidden character"},
		{in: "<a@chat>", err: "resource or forbidden character"},
		{in: "a@b@chat", err: `"a@b@chat" has more than one @`},
		{in: "mailto:a@chat", err: "resource or forbidden character"},
		{in: "a\x00b@chat", err: "resource or forbidden character"},
		{in: strings.Repeat("a", 3072) + "@chat", err: "longer than 3071 bytes"},
	}
	for _, tt := range tests {
		got, err := normalizeJID(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("normalizeJID(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("normalizeJID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "Alice.Smith@Example.COM", " mailto:Bob@Example.com ", "SIP:carol@example.com",
		"mailto:sip:a@b", "sip:@b", "a@b@c", "@", "", "x <a@b>", "a\x00@b", "Jörg@Bücher.example",
		"\u0130@example.com", "\xff@b", strings.Repeat("A", 318) + "@b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeAddress(s)
		if err != nil {
			if got != "" {
				t.Errorf("NormalizeAddress(%q) = %q with error %v", s, got, err)
			}
			return
		}
		if strings.ToLower(got) != got {
			t.Errorf("NormalizeAddress(%q) = %q, not lower-case", s, got)
		}
		if strings.Count(got, "@") != 1 || strings.HasPrefix(got, "@") || strings.HasSuffix(got, "@") {
			t.Errorf("NormalizeAddress(%q) = %q, want local@domain", s, got)
		}
		if len(got) > 320 {
			t.Errorf("NormalizeAddress(%q) = %q, longer than 320", s, got)
		}
		if strings.ContainsAny(got, " \t\r\n<>,") {
			t.Errorf("NormalizeAddress(%q) = %q, has a forbidden character", s, got)
		}
		again, err := NormalizeAddress(got)
		if err != nil || again != got {
			t.Errorf("NormalizeAddress(%q) = %q, but normalizing that gives %q, %v", s, got, again, err)
		}
	})
}

func FuzzParsePeopleFile(f *testing.F) {
	f.Add(ftPeopleYAML, false)
	f.Add(ftPeopleCSV, true)
	f.Add("people:\n  - mail: a@b\n    jid: a@c\n    alias: x\n", false)
	f.Add("people:\n  - a\n  - {mail: [1], jid: {x: y}, disabled: maybe}\n", false)
	f.Add("people: &a [*a]\n", false)
	f.Add("mail,jid,disabled\n\"a@b\",\"x\ny@c\",true\n", true)
	f.Add("# c\nmail,jid,foo\n", true)
	f.Add("mail,jid\na@b,c@d,e\nf\n", true)
	f.Fuzz(func(t *testing.T, data string, isCSV bool) {
		file := "people.yaml"
		if isCSV {
			file = "people.csv"
		}
		recs, perr := parsePeopleFile(file, []byte(data))
		snap, err := NewFileSourceData("f", 0, []string{"b", "example.com"}, file, []byte(data)).Full(context.Background(), nil)
		if (perr == nil) != (err == nil) {
			t.Fatalf("parsePeopleFile error %v, Full error %v", perr, err)
		}
		if err != nil {
			if snap != nil {
				t.Fatalf("Full returned people with error %v", err)
			}
			for _, l := range strings.Split(perr.Error(), "\n") {
				if !strings.HasPrefix(l, file) {
					t.Errorf("error line does not name the file: %q", l)
				}
			}
			return
		}
		st := snap.Stats
		if st.People != len(snap.People) || st.People+st.Disabled+st.OutsideDomains != len(recs) {
			t.Errorf("stats %+v for %d records and %d people", st, len(recs), len(snap.People))
		}
		n := 0
		for dn, p := range snap.People {
			if p.DN != dn || !strings.HasPrefix(dn, file+":") || p.JID == "" || len(p.Addresses) == 0 || p.MailboxID == "" {
				t.Errorf("bad person %+v", *p)
			}
			if j, err := normalizeJID(p.JID); err != nil || j != p.JID {
				t.Errorf("JID %q is not normalized: %q, %v", p.JID, j, err)
			}
			seen := map[string]bool{}
			for i, a := range p.Addresses {
				if na, err := NormalizeAddress(a.Address); err != nil || na != a.Address {
					t.Errorf("address %q is not normalized", a.Address)
				}
				if seen[a.Address] {
					t.Errorf("address %q listed twice", a.Address)
				}
				seen[a.Address] = true
				if a.Primary && i != 0 {
					t.Errorf("primary address at position %d", i)
				}
				if d := domainOf(a.Address); d != "b" && d != "example.com" {
					t.Errorf("address %q outside the domains", a.Address)
				}
			}
			n += len(p.Addresses)
		}
		if n != st.Addresses {
			t.Errorf("stats count %d addresses, people have %d", st.Addresses, n)
		}
	})
}
