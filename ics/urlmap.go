package ics

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParseURLMap reads a file of per-person feeds for URLMap: mailbox →
// feed URL from CSV (a header row naming the columns mailbox and url) or
// YAML (a mapping), chosen by the file name's extension. Mailboxes are
// lower-cased; every problem is reported, each naming the file and line
// but never a URL (feed URLs are often secrets).
func ParseURLMap(path string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	add := func(line int, mailbox, u string) {
		mb := strings.ToLower(strings.TrimSpace(mailbox))
		u = strings.TrimSpace(u)
		switch {
		case strings.Count(mb, "@") != 1 || strings.HasPrefix(mb, "@") || strings.HasSuffix(mb, "@"):
			errs = append(errs, fmt.Errorf("%s:%d: %q is not a mail address", path, line, mailbox))
		case !strings.Contains(u, "://"):
			errs = append(errs, fmt.Errorf("%s:%d: the URL of %s is not an absolute URL", path, line, mb))
		case out[mb] != "":
			errs = append(errs, fmt.Errorf("%s:%d: %s is listed twice", path, line, mb))
		default:
			out[mb] = u
		}
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		r := csv.NewReader(bytes.NewReader(data))
		r.Comment = '#'
		r.TrimLeadingSpace = true
		r.FieldsPerRecord = -1
		header, err := r.Read()
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		col := map[string]int{}
		for i, h := range header {
			col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
		}
		mi, ok1 := col["mailbox"]
		ui, ok2 := col["url"]
		if err != io.EOF && (!ok1 || !ok2) {
			line, _ := r.FieldPos(0)
			return nil, fmt.Errorf("%s:%d: the header must name the columns mailbox and url", path, line)
		}
		for err != io.EOF {
			var row []string
			row, err = r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			line, _ := r.FieldPos(0)
			if len(row) <= max(mi, ui) {
				errs = append(errs, fmt.Errorf("%s:%d: has %d fields, the header has %d", path, line, len(row), len(header)))
				continue
			}
			add(line, row[mi], row[ui])
		}
	case ".yaml", ".yml":
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(doc.Content) == 0 {
			return out, nil
		}
		n := doc.Content[0]
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: want a mapping of mailbox: url", path, n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				errs = append(errs, fmt.Errorf("%s:%d: the URL of %s must be a string", path, v.Line, k.Value))
				continue
			}
			add(k.Line, k.Value, v.Value)
		}
	default:
		return nil, fmt.Errorf("%s: must end in .csv, .yaml or .yml", path)
	}
	return out, errors.Join(errs...)
}
