package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"batos/internal/llm"
)

// Default timeouts: generation and embedding can take minutes on a busy
// server; everything else is a small call.
const (
	DefaultChatTimeout = 10 * time.Minute
	DefaultCallTimeout = 30 * time.Second
)

// Options configure a Client. The zero value (or nil) means the
// defaults.
type Options struct {
	// APIKey, if set, is sent as "Authorization: Bearer <key>".
	APIKey string
	// HTTPClient sends the requests; nil means a fresh http.Client with
	// the default transport. Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// Timeout bounds each call, retries included. Zero means
	// DefaultChatTimeout for Chat and Embed and DefaultCallTimeout for
	// the other calls.
	Timeout time.Duration
	// Retry is the policy for transient failures; the zero value means
	// llm.Retry's defaults.
	Retry llm.Retry
}

// Validate reports whether the options are usable.
func (o *Options) Validate() error {
	if o.Timeout < 0 {
		return fmt.Errorf("openai: negative timeout %v", o.Timeout)
	}
	return nil
}

// Client talks to one OpenAI-compatible server. It is safe for
// concurrent use.
type Client struct {
	base   string // server root, no trailing slash
	apiKey string
	hc     *http.Client
	// timeout overrides both defaults when set.
	timeout time.Duration
	retry   llm.Retry
}

var (
	_ llm.Model           = (*Client)(nil)
	_ llm.Lister          = (*Client)(nil)
	_ llm.AdapterLister   = (*Client)(nil)
	_ llm.AdapterLoader   = (*Client)(nil)
	_ llm.ContextReporter = (*Client)(nil)
)

// New returns a Client for the server at baseURL, its root such as
// http://127.0.0.1:8080 (a trailing /v1 is accepted and dropped). opts
// may be nil.
func New(baseURL string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	base, err := normaliseBase(baseURL)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: base, apiKey: opts.APIKey, hc: hc, timeout: opts.Timeout, retry: opts.Retry}, nil
}

// normaliseBase checks a server's base URL and returns its root without
// a trailing slash or /v1.
func normaliseBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("openai: base URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("openai: base URL %q: scheme must be http or https", raw)
	case u.Host == "":
		return "", fmt.Errorf("openai: base URL %q: no host", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("openai: base URL %q: must not have a query or fragment", raw)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/v1")
	u.Path, u.RawPath = strings.TrimRight(p, "/"), ""
	return u.String(), nil
}

// URL is the server root the client talks to.
func (c *Client) URL() string { return c.base }

// callTimeout is the bound on one call of the given default length.
func (c *Client) callTimeout(def time.Duration) time.Duration {
	if c.timeout > 0 {
		return c.timeout
	}
	return def
}

// op names a call in errors: "POST http://host/v1/chat/completions".
func (c *Client) op(method, path string) string {
	return method + " " + c.base + path
}

// send makes one HTTP request. It returns the response only for a 2xx
// status; the caller closes its body. An error status becomes an
// *llm.APIError and a transport failure wraps llm.ErrUnavailable.
func (c *Client) send(ctx context.Context, method, path string, body []byte, accept string) (*http.Response, error) {
	op := c.op(method, path)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("openai: %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, unreachable(ctx, op, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return nil, statusError(op, resp.StatusCode, data)
}

// unreachable wraps a transport error, preferring the context's own
// error when it has ended (the transport's wording varies).
func unreachable(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return llm.Unreachable(op, ctx.Err())
	}
	return llm.Unreachable(op, err)
}

// call runs one request under the retry policy and the timeout, and
// hands a successful response's body, read in full, to decode (which may
// be nil to discard it). in, if not nil, is sent as JSON.
func (c *Client) call(ctx context.Context, timeout time.Duration, method, path string, in any, decode func(op string, body []byte) error) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("openai: encode %s request: %w", path, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout(timeout))
	defer cancel()
	return c.retry.Do(ctx, func() error {
		return c.callOnce(ctx, method, path, body, decode)
	})
}

func (c *Client) callOnce(ctx context.Context, method, path string, body []byte, decode func(op string, body []byte) error) error {
	resp, err := c.send(ctx, method, path, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	op := c.op(method, path)
	data, err := readBody(ctx, op, resp.Body, maxBody)
	if err != nil || decode == nil {
		return err
	}
	return decode(op, data)
}

// decodeJSON returns a decode function for call that unmarshals into out.
func decodeJSON(out any) func(op string, body []byte) error {
	return func(op string, body []byte) error {
		if err := json.Unmarshal(body, out); err != nil {
			return badResponse(op, "decode: %w", err)
		}
		return nil
	}
}

// Health reports whether the server answers: GET /health (llama-server,
// vLLM; 503 while llama-server loads its model), or GET /v1/models on
// servers without /health. It makes one attempt, without retries, so
// that a caller polling a starting server sees its state as it is.
func (c *Client) Health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout(DefaultCallTimeout))
	defer cancel()
	err := c.callOnce(ctx, http.MethodGet, "/health", nil, nil)
	var api *llm.APIError
	if errors.As(err, &api) && api.Status == http.StatusNotFound {
		err = c.callOnce(ctx, http.MethodGet, "/v1/models", nil, nil)
	}
	return err
}
