package graph

// The EWS wire format: the SOAP requests the source writes and the parsers
// of Exchange's answers (GetUserAvailability, GetMailTips, SOAP faults).
//
// Requests are written by hand, element by element, in the shape of
// Microsoft's documented samples (prefixes t: and m:, the http://
// namespaces real servers use). Answers are read with encoding/xml by local
// name only, so the https:// namespaces of some doc revisions parse too.
// Every value is read as a string and checked per mailbox: a malformed
// event spoils that mailbox's facts, not the other 99 of the request.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/presencegw/presencegw/rules"
)

// Namespaces of EWS requests.
const (
	nsSOAP     = "http://schemas.xmlsoap.org/soap/envelope/"
	nsTypes    = "http://schemas.microsoft.com/exchange/services/2006/types"
	nsMessages = "http://schemas.microsoft.com/exchange/services/2006/messages"
)

// EWS limits the source works within.
const (
	// EWSMaxMailboxes is GetUserAvailability's maximum of mailboxes per
	// request (ErrorMailboxDataArrayTooBig above it).
	EWSMaxMailboxes = 100
	// EWSMaxWindow is GetUserAvailability's longest TimeWindow (42 days;
	// ErrorTimeIntervalTooBig above it).
	EWSMaxWindow = 42 * 24 * time.Hour
	// EWSMailTipsBatch is the default of recipients per GetMailTips: the
	// MaxRecipientsPerGetMailTipsRequest Exchange reports (50) unless an
	// administrator changed it.
	EWSMailTipsBatch = 50
)

// ErrServerBusy is wrapped by the error of a request Exchange kept
// answering with ErrorServerBusy (throttling) until the retries or the
// caller's deadline ran out.
var ErrServerBusy = errors.New("ews: server busy")

// EWSFault is a SOAP fault: Exchange refused the whole request.
type EWSFault struct {
	Operation string
	// FaultCode and FaultString are the SOAP fault's own fields
	// ("a:ErrorSchemaValidation", English text).
	FaultCode, FaultString string
	// ResponseCode and Message are the EWS error in the fault's detail
	// (ErrorServerBusy, ErrorSchemaValidation, ErrorImpersonateUserDenied …).
	ResponseCode, Message string
	// BackOff is the BackOffMilliseconds of an ErrorServerBusy.
	BackOff time.Duration
	// Violation, Line and Position locate a schema validation error.
	Violation, Line, Position string
}

func (f *EWSFault) Error() string {
	code := f.ResponseCode
	if code == "" {
		code = f.FaultCode
	}
	msg := f.Message
	if msg == "" {
		msg = f.FaultString
	}
	s := fmt.Sprintf("ews %s: SOAP fault %s: %s", f.Operation, code, msg)
	if f.Violation != "" {
		s += " " + f.Violation
	}
	if f.Line != "" || f.Position != "" {
		s += fmt.Sprintf(" (line %s, position %s)", f.Line, f.Position)
	}
	if f.BackOff > 0 {
		s += fmt.Sprintf(" (back off %s)", f.BackOff)
	}
	return s
}

// Is makes errors.Is(err, ErrServerBusy) true for a busy fault.
func (f *EWSFault) Is(target error) bool {
	return target == ErrServerBusy && f.ResponseCode == "ErrorServerBusy"
}

// EWSResponseError is an error ResponseMessage: for one mailbox of a
// request (ErrorMailRecipientNotFound, ErrorNoFreeBusyAccess …), wrapped
// with ErrMailbox into that mailbox's Err, or for a whole request.
type EWSResponseError struct {
	Code, Message string
	// BackOff is the BackOffMilliseconds of an ErrorServerBusy.
	BackOff time.Duration
}

func (e *EWSResponseError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is makes errors.Is(err, ErrServerBusy) true for a busy answer.
func (e *EWSResponseError) Is(target error) bool {
	return target == ErrServerBusy && e.Code == "ErrorServerBusy"
}

// xmlText escapes s for element content and attribute values.
func xmlText(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s))
}

// envelope writes a SOAP request: the headers EWS reads, then the body.
// impersonate, when set, adds ExchangeImpersonation by SmtpAddress;
// tzContext adds TimeZoneContext with a UTC TimeZoneDefinition (Exchange
// 2010 and later).
func envelope(version, impersonate string, tzContext bool, body func(b *bytes.Buffer)) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"` +
		` xmlns:soap="` + nsSOAP + `" xmlns:t="` + nsTypes + `" xmlns:m="` + nsMessages + `">` + "\n")
	b.WriteString("  <soap:Header>\n")
	b.WriteString(`    <t:RequestServerVersion Version="`)
	xmlText(&b, version)
	b.WriteString(`"/>` + "\n")
	if impersonate != "" {
		b.WriteString("    <t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>")
		xmlText(&b, impersonate)
		b.WriteString("</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>\n")
	}
	if tzContext {
		b.WriteString(`    <t:TimeZoneContext><t:TimeZoneDefinition Id="UTC"/></t:TimeZoneContext>` + "\n")
	}
	b.WriteString("  </soap:Header>\n  <soap:Body>\n")
	body(&b)
	b.WriteString("  </soap:Body>\n</soap:Envelope>\n")
	return b.Bytes()
}

// ewsTimeLayout is xs:dateTime without a zone: EWS reads it in the
// request's time zone (UTC here).
const ewsTimeLayout = "2006-01-02T15:04:05"

// availabilityBody writes a GetUserAvailabilityRequest as the documented
// sample does (fixture C of the research notes), with a UTC
// SerializableTimeZone: bias 0 in both standard and daylight time, so the
// transition rules (valid ones, as Exchange validates them) change nothing.
func availabilityBody(mailboxes []string, start, end time.Time, interval time.Duration) func(*bytes.Buffer) {
	return func(b *bytes.Buffer) {
		b.WriteString("    <m:GetUserAvailabilityRequest>\n")
		b.WriteString("      <t:TimeZone>\n        <t:Bias>0</t:Bias>\n" +
			"        <t:StandardTime><t:Bias>0</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>10</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>\n" +
			"        <t:DaylightTime><t:Bias>0</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime>\n" +
			"      </t:TimeZone>\n")
		b.WriteString("      <m:MailboxDataArray>\n")
		for _, mb := range mailboxes {
			b.WriteString("        <t:MailboxData><t:Email><t:Address>")
			xmlText(b, mb)
			b.WriteString("</t:Address></t:Email><t:AttendeeType>Required</t:AttendeeType><t:ExcludeConflicts>false</t:ExcludeConflicts></t:MailboxData>\n")
		}
		b.WriteString("      </m:MailboxDataArray>\n")
		fmt.Fprintf(b, "      <t:FreeBusyViewOptions>\n        <t:TimeWindow><t:StartTime>%s</t:StartTime><t:EndTime>%s</t:EndTime></t:TimeWindow>\n"+
			"        <t:MergedFreeBusyIntervalInMinutes>%d</t:MergedFreeBusyIntervalInMinutes>\n        <t:RequestedView>DetailedMerged</t:RequestedView>\n      </t:FreeBusyViewOptions>\n",
			start.UTC().Format(ewsTimeLayout), end.UTC().Format(ewsTimeLayout), int(interval/time.Minute))
		b.WriteString("    </m:GetUserAvailabilityRequest>\n")
	}
}

// mailTipsBody writes a GetMailTips request as the documented sample does,
// asking only for the out-of-office message (and whether the recipient is
// valid, so an unknown address is reported as such).
func mailTipsBody(sendingAs string, mailboxes []string) func(*bytes.Buffer) {
	return func(b *bytes.Buffer) {
		b.WriteString("    <m:GetMailTips>\n      <m:SendingAs><t:EmailAddress>")
		xmlText(b, sendingAs)
		b.WriteString("</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></m:SendingAs>\n      <m:Recipients>\n")
		for _, mb := range mailboxes {
			b.WriteString("        <t:Mailbox><t:EmailAddress>")
			xmlText(b, mb)
			b.WriteString("</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox>\n")
		}
		b.WriteString("      </m:Recipients>\n      <m:MailTipsRequested>OutOfOfficeMessage InvalidRecipient</m:MailTipsRequested>\n    </m:GetMailTips>\n")
	}
}

// soapEnvelope is an answer: a fault or the operation's response element.
type soapEnvelope[T any] struct {
	XMLName xml.Name `xml:"Envelope"`
	Body    struct {
		Fault    *soapFault `xml:"Fault"`
		Response *T         `xml:",any"`
	} `xml:"Body"`
}

type soapFault struct {
	Code   string `xml:"faultcode"`
	String string `xml:"faultstring"`
	Detail struct {
		ResponseCode string     `xml:"ResponseCode"`
		Message      string     `xml:"Message"`
		MessageXML   messageXML `xml:"MessageXml"`
	} `xml:"detail"`
}

// messageXML is the MessageXml of faults and error messages: named values
// (BackOffMilliseconds) and the exception or schema violation.
type messageXML struct {
	Values []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:",chardata"`
	} `xml:"Value"`
	Violation    string `xml:"Violation"`
	LineNumber   string `xml:"LineNumber"`
	LinePosition string `xml:"LinePosition"`
}

func (m messageXML) backOff() time.Duration {
	for _, v := range m.Values {
		if v.Name == "BackOffMilliseconds" {
			if ms, err := strconv.ParseInt(strings.TrimSpace(v.Value), 10, 64); err == nil && ms > 0 {
				// Clamp before converting: a huge value would overflow.
				return time.Duration(min(ms, int64(24*time.Hour/time.Millisecond))) * time.Millisecond
			}
		}
	}
	return 0
}

func (f *soapFault) err(op string) *EWSFault {
	d := f.Detail
	code := strings.TrimSpace(d.ResponseCode)
	if code == "" {
		// faultcode is a QName ("a:ErrorServerBusy").
		if _, local, ok := strings.Cut(strings.TrimSpace(f.Code), ":"); ok && strings.HasPrefix(local, "Error") {
			code = local
		}
	}
	return &EWSFault{Operation: op, FaultCode: strings.TrimSpace(f.Code), FaultString: strings.TrimSpace(f.String),
		ResponseCode: code, Message: strings.TrimSpace(d.Message), BackOff: d.MessageXML.backOff(),
		Violation: strings.TrimSpace(d.MessageXML.Violation), Line: strings.TrimSpace(d.MessageXML.LineNumber),
		Position: strings.TrimSpace(d.MessageXML.LinePosition)}
}

// responseMessage is an EWS ResponseMessage: the result of one item.
type responseMessage struct {
	Class      string     `xml:"ResponseClass,attr"`
	Text       string     `xml:"MessageText"`
	Code       string     `xml:"ResponseCode"`
	MessageXML messageXML `xml:"MessageXml"`
}

// err is nil for success (and warnings without an error code).
func (m responseMessage) err() *EWSResponseError {
	code := strings.TrimSpace(m.Code)
	if strings.TrimSpace(m.Class) != "Error" && (code == "" || code == "NoError") {
		return nil
	}
	if code == "" {
		code = "Error"
	}
	return &EWSResponseError{Code: code, Message: strings.TrimSpace(m.Text), BackOff: m.MessageXML.backOff()}
}

// decodeSOAP reads an answer into env and returns the operation's
// response element, or the fault as an *EWSFault.
func decodeSOAP[T any](op, want string, raw []byte, name func(*T) string) (*T, error) {
	var env soapEnvelope[T]
	if err := xml.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("ews %s: malformed SOAP answer: %w", op, err)
	}
	if env.XMLName.Local != "Envelope" {
		return nil, fmt.Errorf("ews %s: answer is not a SOAP envelope", op)
	}
	if f := env.Body.Fault; f != nil {
		return nil, f.err(op)
	}
	r := env.Body.Response
	if r == nil {
		return nil, fmt.Errorf("ews %s: SOAP answer without %s", op, want)
	}
	if got := name(r); got != want {
		return nil, fmt.Errorf("ews %s: SOAP answer holds %s, not %s", op, got, want)
	}
	return r, nil
}

// availabilityResponse is a GetUserAvailabilityResponse.
type availabilityResponse struct {
	XMLName   xml.Name
	Responses []struct {
		ResponseMessage responseMessage `xml:"ResponseMessage"`
		View            struct {
			Type   string  `xml:"FreeBusyViewType"`
			Merged *string `xml:"MergedFreeBusy"`
			Events *struct {
				Events []calendarEvent `xml:"CalendarEvent"`
			} `xml:"CalendarEventArray"`
			WorkingHours *struct {
				TimeZone ewsTimeZone `xml:"TimeZone"`
			} `xml:"WorkingHours"`
		} `xml:"FreeBusyView"`
	} `xml:"FreeBusyResponseArray>FreeBusyResponse"`
}

type calendarEvent struct {
	StartTime string `xml:"StartTime"`
	EndTime   string `xml:"EndTime"`
	BusyType  string `xml:"BusyType"`
	Details   *struct {
		Subject   string `xml:"Subject"`
		Location  string `xml:"Location"`
		IsPrivate string `xml:"IsPrivate"`
	} `xml:"CalendarEventDetails"`
}

// busyError returns the first per-item ErrorServerBusy: Exchange throttled
// the request, which is retried whole rather than blamed on a mailbox.
func busyError(msgs []responseMessage) error {
	for _, m := range msgs {
		if e := m.err(); e != nil && e.Code == "ErrorServerBusy" {
			return e
		}
	}
	return nil
}

// parseAvailability reads a GetUserAvailability answer for mailboxes
// (asked in this order; EWS answers in the same order) over the window
// from start, whose merged view has slots of interval. Times without a
// zone are in the request's zone, UTC.
func parseAvailability(raw []byte, mailboxes []string, start time.Time, interval time.Duration) ([]rules.MailboxFacts, error) {
	const op = "GetUserAvailability"
	resp, err := decodeSOAP(op, "GetUserAvailabilityResponse", raw, func(r *availabilityResponse) string { return r.XMLName.Local })
	if err != nil {
		return nil, err
	}
	msgs := make([]responseMessage, len(resp.Responses))
	for i, r := range resp.Responses {
		msgs[i] = r.ResponseMessage
	}
	if err := busyError(msgs); err != nil {
		return nil, fmt.Errorf("ews %s: %w", op, err)
	}
	if len(resp.Responses) != len(mailboxes) {
		return nil, fmt.Errorf("ews %s: %d answers for %d mailboxes", op, len(resp.Responses), len(mailboxes))
	}
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, mb := range mailboxes {
		r := resp.Responses[i]
		out[i].Mailbox = mb
		if e := r.ResponseMessage.err(); e != nil {
			out[i].Err = fmt.Errorf("%w: %s: %w", ErrMailbox, mb, e)
			continue
		}
		v := r.View
		view := strings.TrimSpace(v.Type)
		if view == "None" || view == "" {
			out[i].Err = fmt.Errorf("%w: %s: Exchange returned no free/busy view (FreeBusyViewType %q)", ErrMailbox, mb, view)
			continue
		}
		switch {
		case v.Events != nil:
			out[i].Events, err = ewsEvents(v.Events.Events)
		case v.Merged != nil:
			// MergedOnly (or a view without items): the digits are all
			// there is.
			out[i].Events, err = mergedEvents(*v.Merged, start, interval)
		}
		if err != nil {
			out[i].Events, out[i].Err = nil, fmt.Errorf("%w: %s: %w", ErrMailbox, mb, err)
			continue
		}
		if v.WorkingHours != nil {
			// A zone that cannot be read only costs the status texts
			// their local time; the events are still good.
			if loc, err := v.WorkingHours.TimeZone.location(start.UTC().Year()); err == nil {
				out[i].Location = loc
			}
		}
		markAllDay(out[i].Events, out[i].Location)
	}
	return out, nil
}

// ewsEvents converts CalendarEvents; an event without a readable time
// spoils the mailbox (its facts are not trusted), not the request.
func ewsEvents(in []calendarEvent) ([]rules.Event, error) {
	out := make([]rules.Event, 0, len(in))
	for _, ce := range in {
		start, err := parseEWSTime(ce.StartTime)
		if err != nil {
			return nil, fmt.Errorf("calendar event StartTime: %w", err)
		}
		end, err := parseEWSTime(ce.EndTime)
		if err != nil {
			return nil, fmt.Errorf("calendar event EndTime: %w", err)
		}
		if end.Before(start) {
			return nil, fmt.Errorf("calendar event ends (%s) before it starts (%s)", ce.EndTime, ce.StartTime)
		}
		e := rules.Event{Start: start, End: end, ShowAs: busyType(ce.BusyType)}
		if d := ce.Details; d != nil {
			private, err := strconv.ParseBool(strings.TrimSpace(d.IsPrivate))
			if err != nil {
				// IsPrivate is required with details; unreadable counts
				// as private, so nothing leaks.
				private = true
			}
			e.Private = private
			if !private {
				e.Subject, e.Location = strings.TrimSpace(d.Subject), strings.TrimSpace(d.Location)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// busyType maps LegacyFreeBusyType (types.xsd) to the rules' values.
func busyType(s string) rules.ShowAs {
	switch strings.TrimSpace(s) {
	case "Free":
		return rules.ShowFree
	case "Tentative":
		return rules.ShowTentative
	case "Busy":
		return rules.ShowBusy
	case "OOF":
		return rules.ShowOOF
	case "WorkingElsewhere":
		return rules.ShowWorkingElsewhere
	}
	return rules.ShowUnknown // NoData, or a value newer than this code
}

// mergedEvents turns a MergedFreeBusy string into events: one digit per
// slot from start, 0 free, 1 tentative, 2 busy, 3 OOF, 4 no data; runs of
// the same busy digit become one event.
func mergedEvents(digits string, start time.Time, interval time.Duration) ([]rules.Event, error) {
	digits = strings.TrimSpace(digits)
	if interval <= 0 {
		return nil, errors.New("merged free/busy without an interval")
	}
	var out []rules.Event
	for i := 0; i < len(digits); {
		d := digits[i]
		if d < '0' || d > '4' {
			return nil, fmt.Errorf("MergedFreeBusy has %q at %d, not a digit 0–4", d, i)
		}
		j := i + 1
		for j < len(digits) && digits[j] == d {
			j++
		}
		show := map[byte]rules.ShowAs{'1': rules.ShowTentative, '2': rules.ShowBusy, '3': rules.ShowOOF}[d]
		if show != "" {
			out = append(out, rules.Event{Start: start.Add(time.Duration(i) * interval), End: start.Add(time.Duration(j) * interval), ShowAs: show})
		}
		i = j
	}
	return out, nil
}

// parseEWSTime reads an xs:dateTime: with a zone (Z, -07:00) as given,
// without one in UTC, the zone the source asks in.
func parseEWSTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if len(s) > len(ewsTimeLayout) {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.9999999", s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an xs:dateTime", s)
	}
	return t, nil
}

// mailTipsResponse is a GetMailTipsResponse.
type mailTipsResponse struct {
	XMLName xml.Name
	responseMessage
	Messages []struct {
		responseMessage
		MailTips *struct {
			Address string      `xml:"RecipientAddress>EmailAddress"`
			Pending string      `xml:"PendingMailTips"`
			OOF     *oofMailTip `xml:"OutOfOffice"`
			Invalid string      `xml:"InvalidRecipient"`
		} `xml:"MailTips"`
	} `xml:"ResponseMessages>MailTipsResponseMessageType"`
}

// oofMailTip is the OutOfOffice mail tip (OutOfOfficeMailTip, types.xsd).
type oofMailTip struct {
	Message  string `xml:"ReplyBody>Message"`
	Duration *struct {
		StartTime string `xml:"StartTime"`
		EndTime   string `xml:"EndTime"`
	} `xml:"Duration"`
}

// parseMailTips reads a GetMailTips answer for mailboxes (in the order
// asked; matched by address where the answer names it).
func parseMailTips(raw []byte, mailboxes []string) ([]rules.MailboxFacts, error) {
	const op = "GetMailTips"
	resp, err := decodeSOAP(op, "GetMailTipsResponse", raw, func(r *mailTipsResponse) string { return r.XMLName.Local })
	if err != nil {
		return nil, err
	}
	if e := resp.responseMessage.err(); e != nil {
		return nil, fmt.Errorf("ews %s: %w", op, e)
	}
	msgs := make([]responseMessage, len(resp.Messages))
	byAddr := map[string]int{}
	for i, m := range resp.Messages {
		msgs[i] = m.responseMessage
		if m.MailTips != nil {
			if a := strings.ToLower(strings.TrimSpace(m.MailTips.Address)); a != "" {
				byAddr[a] = i
			}
		}
	}
	if err := busyError(msgs); err != nil {
		return nil, fmt.Errorf("ews %s: %w", op, err)
	}
	if len(resp.Messages) != len(mailboxes) {
		return nil, fmt.Errorf("ews %s: %d answers for %d recipients", op, len(resp.Messages), len(mailboxes))
	}
	out := make([]rules.MailboxFacts, len(mailboxes))
	for i, mb := range mailboxes {
		out[i].Mailbox = mb
		// The answer is in the order asked; where an answer names another
		// of the recipients, trust the name.
		k := i
		if j, ok := byAddr[strings.ToLower(strings.TrimSpace(mb))]; ok {
			k = j
		}
		m := resp.Messages[k]
		if e := m.err(); e != nil {
			out[i].Err = fmt.Errorf("%w: %s: %w", ErrMailbox, mb, e)
			continue
		}
		tips := m.MailTips
		switch {
		case tips == nil:
			out[i].Err = fmt.Errorf("%w: %s: answer without MailTips", ErrMailbox, mb)
			continue
		case strings.EqualFold(strings.TrimSpace(tips.Invalid), "true"):
			out[i].Err = fmt.Errorf("%w: %s: Exchange says the recipient is invalid", ErrMailbox, mb)
			continue
		case strings.Contains(tips.Pending, "OutOfOfficeMessage"):
			// Not evaluated before the server's timeout: no answer, and
			// the previous setting stays until it is asked again.
			out[i].Err = fmt.Errorf("%w: %s: out-of-office mail tip still pending on the server", ErrMailbox, mb)
			continue
		}
		if out[i].AutoReply, err = oofTip(tips.OOF); err != nil {
			out[i].Err = fmt.Errorf("%w: %s: %w", ErrMailbox, mb, err)
		}
	}
	return out, nil
}

// oofTip maps the OutOfOffice mail tip to the setting. Exchange fills the
// tip's message only while automatic replies are on (for the sender: the
// internal reply, as SendingAs is an internal address), and adds Duration
// when they are scheduled, so:
//
//   - no tip or an empty message: disabled (an OOF switched on with an
//     empty text looks the same through mail tips, but sends nothing);
//   - a message and a Duration: scheduled over Duration;
//   - a message alone: always on.
//
// A scheduled reply shows up only once its window has begun, so the start
// of an absence is noticed one auto-reply interval late at worst, its end
// exactly (the window says when).
func oofTip(oof *oofMailTip) (rules.AutoReply, error) {
	if oof == nil || strings.TrimSpace(oof.Message) == "" {
		return rules.AutoReply{Status: rules.AutoReplyDisabled}, nil
	}
	r := rules.AutoReply{Status: rules.AutoReplyAlways, Message: HTMLToText(oof.Message)}
	if d := oof.Duration; d != nil {
		start, err := parseEWSTime(d.StartTime)
		if err != nil {
			return r, fmt.Errorf("out-of-office Duration StartTime: %w", err)
		}
		end, err := parseEWSTime(d.EndTime)
		if err != nil {
			return r, fmt.Errorf("out-of-office Duration EndTime: %w", err)
		}
		r.Status, r.Start, r.End = rules.AutoReplyScheduled, start, end
	}
	return r, nil
}
