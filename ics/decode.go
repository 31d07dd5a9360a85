package ics

import (
	"fmt"
	"strings"

	"github.com/emersion/go-ical"
)

// SyntaxError is iCalendar text that cannot be read as content lines and
// components (RFC 5545 §3.1, §3.4). Line is the physical line, counted
// from 1, where the offending content line starts.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("ics: line %d: %s", e.Line, e.Msg) }

// maxDepth bounds component nesting. Real calendars nest three deep
// (VCALENDAR › VTIMEZONE › STANDARD, VCALENDAR › VEVENT › VALARM).
const maxDepth = 16

// decode reads iCalendar text into go-ical's component tree, the same
// tree go-ical's own Decoder builds (a fuzz test checks that): property
// and parameter names upper-cased, values as written (escaped text stays
// escaped; go-ical's typed accessors unescape it), folded lines joined.
//
// It exists because go-ical's Decoder reads byte by byte through a
// bufio.Reader and builds each parameter value by string concatenation:
// about 27 MB/s on a Google export. This one takes the whole body (the
// source reads it anyway to enforce the size limit), cuts property names
// and values out of one string without copying, and allocates a
// parameter map only for properties that have parameters. It also
// answers malformed input with a SyntaxError naming the line where
// go-ical's Decoder panics (a parameter value followed by junk, a line
// ending inside the parameters) or reports no position.
//
// Lenient where real feeds need it: a UTF-8 byte-order mark is skipped,
// blank lines are ignored, lines may end in LF or CRLF, and several
// VCALENDAR objects in one body are merged into the first.
func decode(data []byte) (*ical.Calendar, error) {
	cal, _, err := decodeLines(data, nil)
	return cal, err
}

// A filter tells decodeLines what to keep: components by name, and
// properties by their component, name and whole content line. Parse keeps
// only what it reads; the other lines are cut at their name and never
// split further (so a malformed parameter of, say, DESCRIPTION goes
// unreported), which halves the work on a typical export.
type filter interface {
	component(name string) bool
	property(comp, name, line string) bool
}

// decodeLines is decode that also tells the line each component begins
// on, keeping what keep keeps (all when nil).
func decodeLines(data []byte, keep filter) (*ical.Calendar, map[*ical.Component]int, error) {
	d := decoder{src: string(data)}
	begins := map[*ical.Component]int{}
	d.src = strings.TrimPrefix(d.src, "\uFEFF")
	var (
		cal   *ical.Component
		stack []*ical.Component
		lines []int         // BEGIN line of each stack entry
		props [][]ical.Prop // properties of each stack entry, until its END
		skip  []bool        // stack entries that are not kept
		done  bool          // the first VCALENDAR has ended
	)
	for {
		text, line, ok := d.next()
		if !ok {
			break
		}
		if keep != nil && len(stack) > 0 {
			i := 0
			for i < len(text) && text[i] != ';' && text[i] != ':' {
				i++
			}
			if i > 0 && i < len(text) && !isBeginEnd(text[:i]) {
				if skip[len(stack)-1] || !keep.property(stack[len(stack)-1].Name, strings.ToUpper(text[:i]), text) {
					continue
				}
			}
		}
		prop, err := d.parseContentLine(text, line)
		if err != nil {
			if se, ok := err.(*SyntaxError); ok && done && len(stack) == 0 {
				se.Msg = "after END:VCALENDAR: " + se.Msg
			}
			return nil, nil, err
		}
		switch prop.Name {
		case "BEGIN":
			name := strings.ToUpper(prop.Value)
			var c *ical.Component
			switch {
			case len(stack) == 0 && name != ical.CompCalendar:
				return nil, nil, &SyntaxError{line, fmt.Sprintf("expected BEGIN:VCALENDAR, got BEGIN:%s", clip(prop.Value))}
			case len(stack) == 0 && cal != nil:
				c = cal // a second VCALENDAR: its components join the first's
			case len(stack) >= maxDepth:
				return nil, nil, &SyntaxError{line, fmt.Sprintf("components nested more than %d deep", maxDepth)}
			default:
				c = &ical.Component{Name: name}
				begins[c] = line
				if cal == nil {
					cal = c
				}
			}
			dropped := len(stack) > 0 && (skip[len(stack)-1] || keep != nil && !keep.component(name))
			stack, lines, skip = append(stack, c), append(lines, line), append(skip, dropped)
			if len(props) < len(stack) {
				props = append(props, nil)
			}
			props[len(stack)-1] = props[len(stack)-1][:0]
		case "END":
			if len(stack) == 0 {
				return nil, nil, &SyntaxError{line, fmt.Sprintf("END:%s without BEGIN", clip(prop.Value))}
			}
			top := stack[len(stack)-1]
			if !strings.EqualFold(prop.Value, top.Name) {
				return nil, nil, &SyntaxError{line, fmt.Sprintf("END:%s, but BEGIN:%s of line %d is still open", clip(prop.Value), top.Name, lines[len(lines)-1])}
			}
			d.setProps(top, props[len(stack)-1])
			dropped := skip[len(stack)-1]
			stack, lines, skip = stack[:len(stack)-1], lines[:len(lines)-1], skip[:len(skip)-1]
			if dropped {
				continue
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, top)
			} else {
				done = true
			}
		default:
			if len(stack) == 0 {
				if done {
					return nil, nil, &SyntaxError{line, fmt.Sprintf("%s after END:VCALENDAR", clip(prop.Name))}
				}
				return nil, nil, &SyntaxError{line, fmt.Sprintf("expected BEGIN:VCALENDAR, got %s", clip(prop.Name))}
			}
			props[len(stack)-1] = append(props[len(stack)-1], prop)
		}
	}
	if len(stack) > 0 {
		return nil, nil, &SyntaxError{d.line, fmt.Sprintf("unexpected end of data: BEGIN:%s of line %d is never closed", stack[len(stack)-1].Name, lines[len(lines)-1])}
	}
	if cal == nil {
		return nil, nil, &SyntaxError{max(d.line, 1), "no BEGIN:VCALENDAR: not an iCalendar file"}
	}
	return &ical.Calendar{Component: cal}, begins, nil
}

func isBeginEnd(name string) bool {
	return strings.EqualFold(name, "BEGIN") || strings.EqualFold(name, "END")
}

// setProps gives a component its properties, in one map of the right
// size. A component that has them already (the first VCALENDAR, when a
// second one is merged in) keeps its own and gains only new names.
func (d *decoder) setProps(c *ical.Component, props []ical.Prop) {
	had := c.Props != nil
	if !had {
		c.Props = make(ical.Props, len(props))
	}
	for _, p := range props {
		ps, ok := c.Props[p.Name]
		switch {
		case had && ok && !d.merging[p.Name]:
			continue // the first calendar's property wins
		case len(ps) > 0:
			c.Props[p.Name] = append(ps, p)
		default:
			c.Props[p.Name] = d.props.one(p)
			if had {
				if d.merging == nil {
					d.merging = map[string]bool{}
				}
				d.merging[p.Name] = true
			}
		}
	}
	d.merging = nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q…", s[:40])
	}
	return s
}

// decoder splits the text into unfolded content lines.
type decoder struct {
	src  string
	pos  int
	line int // physical lines read so far
	buf  []byte
	// Most properties occur once per component and most parameters have
	// one value: their one-element slices come from slabs, a few
	// allocations for a whole feed instead of one per property.
	props  slab[ical.Prop]
	values slab[string]
	// merging marks the names a merged VCALENDAR adds.
	merging map[string]bool
	// params collects a property's parameters before its map is made.
	params []param
}

type param struct{ name, value string }

// slab hands out one-element slices of larger arrays. Each has capacity
// one, so appending a second element copies it out and never touches a
// neighbour.
type slab[T any] struct{ free []T }

func (s *slab[T]) one(v T) []T {
	if len(s.free) == 0 {
		s.free = make([]T, 256)
	}
	out := s.free[:1:1]
	out[0] = v
	s.free = s.free[1:]
	return out
}

// next returns the next non-empty content line, unfolded, and the
// physical line it starts on.
func (d *decoder) next() (text string, line int, ok bool) {
	for d.pos < len(d.src) {
		line = d.line + 1
		text = d.physical()
		if d.pos < len(d.src) && (d.src[d.pos] == ' ' || d.src[d.pos] == '\t') {
			d.buf = append(d.buf[:0], text...)
			for d.pos < len(d.src) && (d.src[d.pos] == ' ' || d.src[d.pos] == '\t') {
				d.pos++
				d.buf = append(d.buf, d.physical()...)
			}
			text = string(d.buf)
		}
		if text != "" {
			return text, line, true
		}
	}
	return "", 0, false
}

// physical returns the next physical line without its line ending (LF or
// CRLF).
func (d *decoder) physical() string {
	rest := d.src[d.pos:]
	d.line++
	i := strings.IndexByte(rest, '\n')
	if i < 0 {
		d.pos = len(d.src)
		return rest
	}
	d.pos += i + 1
	if i > 0 && rest[i-1] == '\r' {
		i--
	}
	return rest[:i]
}

// parseContentLine splits one unfolded content line, name *(";" param)
// ":" value, as go-ical does.
func (d *decoder) parseContentLine(s string, line int) (ical.Prop, error) {
	i := 0
	for i < len(s) && s[i] != ';' && s[i] != ':' {
		i++
	}
	switch {
	case i == len(s):
		return ical.Prop{}, &SyntaxError{line, fmt.Sprintf("no colon in content line %s", clip(s))}
	case i == 0:
		return ical.Prop{}, &SyntaxError{line, "empty property name"}
	}
	prop := ical.Prop{Name: strings.ToUpper(s[:i])}
	s = s[i:]
	d.params = d.params[:0]
	for s[0] == ';' {
		s = s[1:]
		eq := strings.IndexByte(s, '=')
		switch {
		case eq < 0:
			return prop, &SyntaxError{line, fmt.Sprintf("parameter of %s without '='", prop.Name)}
		case eq == 0:
			return prop, &SyntaxError{line, fmt.Sprintf("empty parameter name in %s", prop.Name)}
		}
		name := strings.ToUpper(s[:eq])
		s = s[eq+1:]
		for {
			var v string
			if len(s) > 0 && s[0] == '"' {
				end := strings.IndexByte(s[1:], '"')
				if end < 0 {
					return prop, &SyntaxError{line, fmt.Sprintf("unterminated quoted value of parameter %s of %s", name, prop.Name)}
				}
				v, s = s[1:1+end], s[2+end:]
			} else {
				j := 0
				for j < len(s) && s[j] != ';' && s[j] != ',' && s[j] != ':' {
					if s[j] == '"' {
						return prop, &SyntaxError{line, fmt.Sprintf("stray double quote in parameter %s of %s", name, prop.Name)}
					}
					j++
				}
				v, s = s[:j], s[j:]
			}
			d.params = append(d.params, param{name, v})
			if len(s) == 0 {
				return prop, &SyntaxError{line, fmt.Sprintf("line ends in parameter %s of %s, before the colon", name, prop.Name)}
			}
			if s[0] != ',' {
				break
			}
			s = s[1:]
		}
		if s[0] != ';' && s[0] != ':' {
			return prop, &SyntaxError{line, fmt.Sprintf("unexpected %q after parameter %s of %s", s[0], name, prop.Name)}
		}
	}
	if len(d.params) > 0 {
		prop.Params = make(ical.Params, len(d.params))
		for _, p := range d.params {
			if vs := prop.Params[p.name]; len(vs) > 0 {
				prop.Params[p.name] = append(vs, p.value)
			} else {
				prop.Params[p.name] = d.values.one(p.value)
			}
		}
	}
	prop.Value = s[1:]
	return prop, nil
}
