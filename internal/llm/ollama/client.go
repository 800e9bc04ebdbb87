package ollama

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"batos/internal/llm"
)

// DefaultURL is where Ollama listens unless told otherwise.
const DefaultURL = "http://127.0.0.1:11434"

// Default timeouts: generating, embedding, creating a model and pushing
// a blob can take minutes; everything else is a small call.
const (
	DefaultLongTimeout  = 10 * time.Minute
	DefaultShortTimeout = 30 * time.Second
)

// Options configure a Client. The zero value (or nil) means the
// defaults.
type Options struct {
	// HTTPClient sends the requests; nil means a fresh http.Client with
	// the default transport. Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// Timeout bounds each call, retries included. Zero means
	// DefaultLongTimeout for Chat, Embed, Load, Create and PushBlob, and
	// DefaultShortTimeout for the other calls; when set, it applies to
	// every call.
	Timeout time.Duration
	// Retry is the policy for transient failures; the zero value means
	// llm.Retry's defaults.
	Retry llm.Retry
}

// Validate reports whether the options are usable.
func (o *Options) Validate() error {
	if o.Timeout < 0 {
		return fmt.Errorf("ollama: negative timeout %v", o.Timeout)
	}
	return nil
}

// Client talks to one Ollama server. It is safe for concurrent use.
type Client struct {
	base    string // server root, no trailing slash
	hc      *http.Client
	timeout time.Duration // overrides both defaults when set
	retry   llm.Retry

	// Limits on what is read; fields so that tests can lower them.
	maxAnswer int64 // a JSON answer
	maxLine   int   // one line of a stream
}

var (
	_ llm.Model           = (*Client)(nil)
	_ llm.Lister          = (*Client)(nil)
	_ llm.LoadedLister    = (*Client)(nil)
	_ llm.BlobStore       = (*Client)(nil)
	_ llm.ModelCreator    = (*Client)(nil)
	_ llm.ContextReporter = (*Client)(nil)
)

// New returns a Client for the server at baseURL (DefaultURL when
// empty). opts may be nil.
func New(baseURL string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(baseURL) == "" {
		baseURL = DefaultURL
	}
	base, err := normaliseBase(baseURL)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{
		base: base, hc: hc, timeout: opts.Timeout, retry: opts.Retry,
		maxAnswer: maxAnswer, maxLine: maxLine,
	}, nil
}

// normaliseBase checks a server's base URL and returns it without a
// trailing slash. A path is kept, for servers behind a proxy.
func normaliseBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("ollama: base URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("ollama: base URL %q: scheme must be http or https", raw)
	case u.Host == "":
		return "", fmt.Errorf("ollama: base URL %q: no host", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("ollama: base URL %q: must not have a query or fragment", raw)
	}
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), ""
	return u.String(), nil
}

// URL is the server root the client talks to.
func (c *Client) URL() string { return c.base }

// withTimeout bounds a call of the given default length.
func (c *Client) withTimeout(ctx context.Context, def time.Duration) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		def = c.timeout
	}
	return context.WithTimeout(ctx, def)
}

// op names a call in errors: "POST http://127.0.0.1:11434/api/chat".
func (c *Client) op(method, path string) string {
	return method + " " + c.base + path
}

// send makes one HTTP request with a body of size bytes (negative:
// unknown) of type ctype. It returns the response only for a 2xx
// status; the caller closes its body with drainClose. An error status
// becomes an *llm.APIError and a transport failure wraps
// llm.ErrUnavailable.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, size int64, ctype string) (*http.Response, error) {
	op := c.op(method, path)
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("ollama: %s: %w", op, err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json, application/x-ndjson")
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

// sendJSON is send with a JSON body (nil: none).
func (c *Client) sendJSON(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	if body == nil {
		return c.send(ctx, method, path, nil, 0, "")
	}
	return c.send(ctx, method, path, bytes.NewReader(body), int64(len(body)), "application/json")
}

// call runs one JSON request under the retry policy and a timeout of
// the given default length, and decodes the answer into out (nil:
// discard it). in, if not nil, is sent as JSON.
func (c *Client) call(ctx context.Context, timeout time.Duration, method, path string, in, out any) error {
	body, err := encode(path, in)
	if err != nil {
		return err
	}
	ctx, cancel := c.withTimeout(ctx, timeout)
	defer cancel()
	return c.retry.Do(ctx, func() error {
		resp, err := c.sendJSON(ctx, method, path, body)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return c.decode(ctx, c.op(method, path), resp.Body, out)
	})
}

// encode marshals a request body; nil stays nil.
func encode(path string, in any) ([]byte, error) {
	if in == nil {
		return nil, nil
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("ollama: encode %s request: %w", path, err)
	}
	return body, nil
}

// decode reads a JSON answer of at most c.maxAnswer bytes into out (nil:
// read and discard it). An answer that reports an error is an
// *llm.APIError even with a 2xx status.
func (c *Client) decode(ctx context.Context, op string, r io.Reader, out any) error {
	data, err := readBody(ctx, op, r, c.maxAnswer)
	if err != nil {
		return err
	}
	if msg, ok := parseError(data); ok {
		return &llm.APIError{Op: op, Status: http.StatusOK, Message: msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return badResponse(op, "decode: %w", err)
	}
	return nil
}

// drainClose reads what is left of a body, up to a bound, so that the
// connection can be reused, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, maxDrain)
	body.Close()
}

// closeStream closes a streamed body without draining it: after a
// failure the server may still be producing, and after the done object
// there is nothing worth waiting for (the connection is not reused).
func closeStream(body io.ReadCloser) { body.Close() }
