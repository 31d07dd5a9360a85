package graph

import (
	"context"
	"errors"
	"fmt"
	"time"

	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/presencegw/presencegw/rules"
)

// MaxBatch is JSON batching's limit of requests per $batch.
const MaxBatch = 20

// autoRepliesBySettings reads automaticRepliesSetting (and the mailbox
// time zone) of up to MaxBatch mailboxes with one $batch of
// GET users/{id}/mailboxSettings: the way that needs only
// MailboxSettings.Read, at one request per mailbox. Graph throttles each
// inner request alone and the SDK does not look inside a batch, so inner
// 429/503/504 are retried here, after their Retry-After, up to MaxRetries.
func (s *Source) autoRepliesBySettings(ctx context.Context, mailboxes []string) ([]rules.MailboxFacts, error) {
	out := make([]rules.MailboxFacts, len(mailboxes))
	pending := make([]int, len(mailboxes)) // indexes still to read
	for i, mb := range mailboxes {
		out[i].Mailbox = mb
		pending[i] = i
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		batch := msgraphcore.NewBatchRequest(s.adapter)
		ids := map[string]int{}
		for _, i := range pending {
			cfg := &users.ItemMailboxSettingsRequestBuilderGetRequestConfiguration{
				QueryParameters: &users.ItemMailboxSettingsRequestBuilderGetQueryParameters{Select: []string{"automaticRepliesSetting", "timeZone"}},
				Headers:         newHeaders(`outlook.timezone="UTC"`),
			}
			info, err := s.client.Users().ByUserId(mailboxes[i]).MailboxSettings().ToGetRequestInformation(ctx, cfg)
			if err != nil {
				return nil, err
			}
			item, err := batch.AddBatchRequestStep(*info)
			if err != nil {
				return nil, err
			}
			ids[*item.GetId()] = i
		}
		resp, err := batch.Send(ctx, s.adapter)
		if err != nil {
			return nil, fmt.Errorf("graph $batch mailboxSettings (%d mailboxes): %w", len(pending), describe(err))
		}
		var retry []int
		var wait time.Duration
		for id, i := range ids {
			item := resp.GetResponseById(id)
			if item == nil || item.GetStatus() == nil {
				out[i].Err = fmt.Errorf("%w: %s is missing from the $batch answer", ErrMailbox, mailboxes[i])
				continue
			}
			status := int(*item.GetStatus())
			switch {
			case retryable(status):
				s.throttle.throttled.Add(1)
				if d, ok := retryAfter(item.GetHeaders()["Retry-After"]); ok && d > wait {
					wait = d
				}
				retry = append(retry, i)
				continue
			case status >= 400:
				out[i].Err = fmt.Errorf("%w: %s: %v", ErrMailbox, mailboxes[i], itemError(status, item.GetBody()))
				continue
			}
			ms, err := msgraphcore.GetBatchResponseById[models.MailboxSettingsable](resp, id, models.CreateMailboxSettingsFromDiscriminatorValue)
			if err != nil {
				out[i].Err = fmt.Errorf("%w: %s: %v", ErrMailbox, mailboxes[i], err)
				continue
			}
			out[i].AutoReply, out[i].Err = settingsReply(ms.GetAutomaticRepliesSetting())
			if tz := deref(ms.GetTimeZone()); tz != "" {
				if loc, err := LoadZone(tz); err == nil {
					out[i].Location = loc
				}
			}
		}
		if len(retry) == 0 {
			break
		}
		if attempt >= s.cfg.MaxRetries {
			for _, i := range retry {
				out[i].Err = fmt.Errorf("%s: still throttled after %d retries: %w", mailboxes[i], attempt, errThrottled)
			}
			break
		}
		if wait == 0 {
			wait = time.Second << attempt
		}
		s.throttle.pause(wait)
		s.log.Warn("graph $batch items throttled, retrying", "items", len(retry), "wait", wait)
		if err := s.throttle.waitPause(ctx); err != nil {
			return nil, err
		}
		pending = retry
	}
	return out, nil
}

// errThrottled marks mailboxes Graph kept throttling.
var errThrottled = errors.New("throttled")

// settingsReply turns an automaticRepliesSetting into the rules' setting.
func settingsReply(ar models.AutomaticRepliesSettingable) (rules.AutoReply, error) {
	if ar == nil || ar.GetStatus() == nil {
		return rules.AutoReply{Status: rules.AutoReplyDisabled}, nil
	}
	r := rules.AutoReply{Message: HTMLToText(deref(ar.GetInternalReplyMessage()))}
	switch *ar.GetStatus() {
	case models.ALWAYSENABLED_AUTOMATICREPLIESSTATUS:
		r.Status = rules.AutoReplyAlways
	case models.SCHEDULED_AUTOMATICREPLIESSTATUS:
		var err error
		r.Status = rules.AutoReplyScheduled
		if r.Start, r.End, err = window(ar.GetScheduledStartDateTime(), ar.GetScheduledEndDateTime()); err != nil {
			return r, err
		}
	default:
		r.Status = rules.AutoReplyDisabled
	}
	return r, nil
}

// itemError reads Graph's error object from a batch item's body (the
// SDK's own path needs an error factory per type).
func itemError(status int, body map[string]any) error {
	e := &StatusError{Status: status}
	if obj, ok := body["error"].(map[string]any); ok {
		e.Code, e.Message = str(obj["code"]), str(obj["message"])
	}
	return e
}

// str reads a JSON string the SDK parsed (as string or *string).
func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case *string:
		if v != nil {
			return *v
		}
	}
	return ""
}
