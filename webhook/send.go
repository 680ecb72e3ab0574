package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Headers of every request.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// with the secret.
	SignatureHeader = "X-Presence-Signature"
	// TimestampHeader carries the body's time_ms, so that a receiver can
	// refuse an old request replayed; the body, which is signed, has it too.
	TimestampHeader = "X-Presence-Timestamp"
	// BatchHeader carries the body's id: the same on every try of a batch,
	// so that a receiver can drop a batch it already has.
	BatchHeader = "X-Presence-Batch"
)

// Body is the JSON body of a request.
type Body struct {
	// ID names the batch, the same on every try of it.
	ID string `json:"id"`
	// TimeMS is when this try was sent, in Unix milliseconds.
	TimeMS int64   `json:"time_ms"`
	Events []Event `json:"events"`
}

// Sign returns the signature header's value of body with secret:
// "sha256=" and the hex HMAC-SHA256.
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether sig, a signature header's value, is body's with
// secret, in constant time: what a receiver written in Go calls.
func Verify(body []byte, sig, secret string) bool {
	return hmac.Equal([]byte(sig), []byte(Sign(body, secret)))
}

// post sends one try of a batch; nil only for a 2xx answer.
func (n *Notifier) post(ctx context.Context, id string, events []Event, now time.Time) error {
	b := Body{ID: id, TimeMS: now.UnixMilli(), Events: events}
	body, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("webhook body: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.set.url.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "presence-webhook")
	req.Header.Set(TimestampHeader, strconv.FormatInt(b.TimeMS, 10))
	req.Header.Set(BatchHeader, id)
	if n.set.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(body, n.set.Secret))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		// Without the URL, which may hold a key of the receiver's.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("webhook post: %w", err)
	}
	// Read a little of the answer so that the connection can be reused;
	// a receiver's long answer is not our business.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook post: answered %s", resp.Status)
	}
	return nil
}
