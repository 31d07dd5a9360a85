package ldapmap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FileSource reads people from a YAML or CSV file: for small sites without
// a directory server, and for the demo. The file is re-read when its
// content changes.
//
// YAML:
//
//	people:
//	  - mail: alice@example.com         # primary address (required)
//	    aliases: [a.smith@example.com]
//	    jid: alice@chat.example.com     # required
//	    name: Alice Smith
//	    title: Engineer
//	    department: R&D
//	    mailbox: alice@example.com      # default: mail
//	    disabled: false
//
// CSV: a header row naming the same columns (mail and jid required; aliases
// separated by ";").
type FileSource struct {
	name     string
	priority int
	domains  map[string]bool
	path     string
	// data, when set, is read instead of path (the embedded demo).
	data []byte
}

// NewFileSource makes a source over the file at path.
func NewFileSource(name string, priority int, domains []string, path string) *FileSource {
	return &FileSource{name: name, priority: priority, domains: domainSet(domains), path: path}
}

// NewFileSourceData makes a source over file content held in memory; path
// only names it in messages and picks the format by its extension.
func NewFileSourceData(name string, priority int, domains []string, path string, data []byte) *FileSource {
	s := NewFileSource(name, priority, domains, path)
	s.data = data
	return s
}

// Name implements Source.
func (s *FileSource) Name() string { return s.name }

// Priority implements Source.
func (s *FileSource) Priority() int { return s.priority }

// fileRecord is one person as written in the file.
type fileRecord struct {
	Mail       string   `yaml:"mail"`
	Aliases    []string `yaml:"aliases"`
	JID        string   `yaml:"jid"`
	Name       string   `yaml:"name"`
	Title      string   `yaml:"title"`
	Department string   `yaml:"department"`
	Mailbox    string   `yaml:"mailbox"`
	Disabled   bool     `yaml:"disabled"`
	line       int
}

func (s *FileSource) read() ([]byte, error) {
	if s.data != nil {
		return s.data, nil
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("file source %s: %w", s.name, err)
	}
	return b, nil
}

// Full implements Source. A file with any error is rejected as a whole, so
// a half-edited file never removes people; the message names file, line
// and field.
func (s *FileSource) Full(_ context.Context, progress func(int)) (*Snapshot, error) {
	data, err := s.read()
	if err != nil {
		return nil, err
	}
	recs, err := parsePeopleFile(s.path, data)
	if err != nil {
		return nil, fmt.Errorf("file source %s: %w", s.name, err)
	}
	sum := sha256.Sum256(data)
	snap := &Snapshot{People: map[string]*Person{}, Cursor: Cursor{Mark: hex.EncodeToString(sum[:8])}}
	for _, r := range recs {
		if r.Disabled {
			snap.Stats.Disabled++
			continue
		}
		add := addressAdder{domains: s.domains}
		add.add("mail", r.Mail, r.Mail, true)
		for _, a := range r.Aliases {
			add.add("aliases", a, a, false)
		}
		addrs := add.result()
		if len(addrs) == 0 {
			snap.Stats.OutsideDomains++
			continue
		}
		jid, _ := normalizeJID(r.JID) // checked by parsePeopleFile
		p := &Person{
			Source: s.name, DN: fmt.Sprintf("%s:%d", filepath.Base(s.path), r.line),
			JID: jid, JIDFrom: "column jid", MailboxID: r.Mailbox,
			Name: r.Name, Title: r.Title, Department: r.Department, Addresses: addrs,
		}
		if p.MailboxID == "" {
			p.MailboxID = addrs[0].Address
		}
		snap.People[p.DN] = p
		snap.Stats.People++
		snap.Stats.Addresses += len(addrs)
	}
	if progress != nil {
		progress(len(recs))
	}
	return snap, nil
}

// Changes implements Source: a file has no change log, so a changed file
// is read again in full; an unchanged one gives an empty delta.
func (s *FileSource) Changes(_ context.Context, since Cursor) (*Delta, error) {
	data, err := s.read()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:8]) != since.Mark {
		return nil, fmt.Errorf("%w: %s changed", ErrNeedFull, s.path)
	}
	return &Delta{Cursor: since}, nil
}

// parsePeopleFile parses a people file (YAML, or CSV when path ends in
// .csv) and checks every record, reporting all problems with their line.
func parsePeopleFile(path string, data []byte) ([]fileRecord, error) {
	var recs []fileRecord
	var err error
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		recs, err = parseCSV(path, data)
	} else {
		recs, err = parseYAML(path, data)
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	seen := map[string]int{}
	for _, r := range recs {
		bad := func(field, f string, a ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %s", path, r.line, field, fmt.Sprintf(f, a...)))
		}
		if r.Mail == "" {
			bad("mail", "is required")
		} else if a, err := NormalizeAddress(r.Mail); err != nil {
			bad("mail", "%v", err)
		} else if prev, dup := seen[a]; dup {
			bad("mail", "%s is already listed on line %d", a, prev)
		} else {
			seen[a] = r.line
		}
		for _, al := range r.Aliases {
			if _, err := NormalizeAddress(al); err != nil {
				bad("aliases", "%v", err)
			}
		}
		if r.JID == "" {
			bad("jid", "is required")
		} else if _, err := normalizeJID(r.JID); err != nil {
			bad("jid", "%v", err)
		}
	}
	return recs, errors.Join(errs...)
}

func parseYAML(path string, data []byte) ([]fileRecord, error) {
	var doc struct {
		People []yaml.Node `yaml:"people"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, errors.Join(yamlErrors(path, 0, "", err)...)
	}
	var errs []error
	recs := make([]fileRecord, 0, len(doc.People))
	for i := range doc.People {
		n := &doc.People[i]
		var r fileRecord
		if err := n.Decode(&r); err != nil {
			errs = append(errs, yamlErrors(path, n.Line, fmt.Sprintf("people[%d]", i), err)...)
			continue
		}
		// Node.Decode ignores unknown keys: a misspelt "alias" would drop
		// addresses without a word.
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k := n.Content[j]; k.Value != "<<" && !slices.Contains(csvColumns, k.Value) {
				errs = append(errs, fmt.Errorf("%s:%d: people[%d]: unknown field %q (fields: %s)", path, k.Line, i, k.Value, strings.Join(csvColumns, ", ")))
			}
		}
		r.line = n.Line
		recs = append(recs, r)
	}
	return recs, errors.Join(errs...)
}

// yamlErrors turns a yaml.v3 error, which can hold several "line N: ..."
// messages on lines of their own, into one "file:line: what: message"
// error each; line is used for a message without one.
func yamlErrors(path string, line int, what string, err error) []error {
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	errs := make([]error, 0, len(msgs))
	for _, m := range msgs {
		l := line
		if pre, rest, ok := strings.Cut(m, ": "); ok && strings.HasPrefix(pre, "line ") {
			if v, err := strconv.Atoi(pre[len("line "):]); err == nil {
				l, m = v, rest
			}
		}
		loc := path
		if l > 0 {
			loc = fmt.Sprintf("%s:%d", path, l)
		}
		if what != "" {
			loc += ": " + what
		}
		errs = append(errs, fmt.Errorf("%s: %s", loc, strings.ReplaceAll(m, "\n", `\n`)))
	}
	return errs
}

// csvColumns are the columns a people CSV may have.
var csvColumns = []string{"mail", "jid", "name", "title", "department", "mailbox", "aliases", "disabled"}

func parseCSV(path string, data []byte) ([]fileRecord, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	header, err := r.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		hline, _ := r.FieldPos(i) // comment lines can come first
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range csvColumns {
			known = known || c == h
		}
		if !known {
			return nil, fmt.Errorf("%s:%d: column %q: unknown (columns: %s)", path, hline, h, strings.Join(csvColumns, ", "))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("%s:%d: column %q: listed twice", path, hline, h)
		}
		col[h] = i
	}
	var recs []fileRecord
	var errs []error
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			break
		}
		line, _ := r.FieldPos(0)
		if len(row) != len(header) {
			errs = append(errs, fmt.Errorf("%s:%d: has %d fields, the header has %d", path, line, len(row), len(header)))
			continue
		}
		get := func(c string) string {
			if i, ok := col[c]; ok {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		rec := fileRecord{Mail: get("mail"), JID: get("jid"), Name: get("name"), Title: get("title"),
			Department: get("department"), Mailbox: get("mailbox"), line: line}
		for _, a := range strings.Split(get("aliases"), ";") {
			if a = strings.TrimSpace(a); a != "" {
				rec.Aliases = append(rec.Aliases, a)
			}
		}
		if v := get("disabled"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: disabled: %q is not true or false", path, line, v))
			}
			rec.Disabled = b
		}
		recs = append(recs, rec)
	}
	return recs, errors.Join(errs...)
}
