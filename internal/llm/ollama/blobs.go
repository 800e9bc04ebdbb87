package ollama

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"batos/internal/llm"
)

// checkDigest accepts a sha256 digest as 64 lowercase hex digits.
func checkDigest(digest string) error {
	if len(digest) != 64 {
		return fmt.Errorf("ollama: digest %q: want 64 lowercase hex digits", digest)
	}
	for _, r := range digest {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return fmt.Errorf("ollama: digest %q: want 64 lowercase hex digits", digest)
		}
	}
	return nil
}

// blobPath is the API path of a blob given by its hex digest.
func blobPath(digest string) string { return "/api/blobs/sha256:" + digest }

// HasBlob reports whether the server holds the blob with the given
// sha256 digest (64 lowercase hex digits): HEAD /api/blobs/sha256:<hex>.
func (c *Client) HasBlob(ctx context.Context, digest string) (bool, error) {
	if err := checkDigest(digest); err != nil {
		return false, err
	}
	ctx, cancel := c.withTimeout(ctx, DefaultShortTimeout)
	defer cancel()
	var found bool
	err := c.retry.Do(ctx, func() error {
		resp, err := c.send(ctx, http.MethodHead, blobPath(digest), nil, 0, "")
		var api *llm.APIError
		if errors.As(err, &api) && api.Status == http.StatusNotFound {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		drainClose(resp.Body)
		found = true
		return nil
	})
	return found, err
}

// PushBlob uploads a blob of size bytes (negative: unknown, sent
// chunked) under its sha256 digest (64 lowercase hex digits): POST
// /api/blobs/sha256:<hex> with the raw content, streamed.
//
// It takes open rather than an io.Reader so that a failed upload can be
// retried: each attempt opens the content afresh (and PushBlob closes
// it). A body that is not size bytes long, or fails to read, ends the
// push without retry. The server answers 201 when it stored the blob and
// 200 when it had it already; a 400 means the content does not hash to
// digest, reported as an error wrapping ErrDigestMismatch.
func (c *Client) PushBlob(ctx context.Context, digest string, open func() (io.ReadCloser, error), size int64) error {
	if err := checkDigest(digest); err != nil {
		return err
	}
	ctx, cancel := c.withTimeout(ctx, DefaultLongTimeout)
	defer cancel()
	var final error // the caller's body failed: not the server's fault, not retried
	err := c.retry.Do(ctx, func() error {
		rc, err := open()
		if err != nil {
			final = fmt.Errorf("ollama: push blob %s: open: %w", digest, err)
			return nil
		}
		// The transport closes body, possibly after send returns.
		body := &sizedBody{rc: rc, size: size, left: size}
		resp, err := c.send(ctx, http.MethodPost, blobPath(digest), body, size, "application/octet-stream")
		if berr := body.failure(); berr != nil {
			final = fmt.Errorf("ollama: push blob %s: %w", digest, berr)
			return nil
		}
		if err != nil {
			return err
		}
		drainClose(resp.Body)
		return nil
	})
	if final != nil {
		return final
	}
	var api *llm.APIError
	if errors.As(err, &api) && api.Status == http.StatusBadRequest {
		return fmt.Errorf("%w: %w", ErrDigestMismatch, err)
	}
	return err
}

// sizedBody passes a blob's content to the transport and checks that it
// is size bytes long; it remembers the first failure of the caller's
// reader so that it is not mistaken for the server's. The transport may
// read and close it from its own goroutine.
type sizedBody struct {
	rc   io.ReadCloser
	size int64 // negative: unknown, not checked

	mu   sync.Mutex
	left int64
	err  error
	once sync.Once
}

func (b *sizedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	b.left -= int64(n)
	switch {
	case err != nil && err != io.EOF:
		b.err = fmt.Errorf("read body: %w", err)
	case b.size >= 0 && b.left < 0:
		b.err = fmt.Errorf("body longer than its size %d", b.size)
	case b.size >= 0 && err == io.EOF && b.left > 0:
		b.err = fmt.Errorf("body of %d bytes shorter than its size %d", b.size-b.left, b.size)
	}
	if b.err != nil {
		return n, b.err
	}
	return n, err
}

func (b *sizedBody) Close() error {
	var err error
	b.once.Do(func() { err = b.rc.Close() })
	return err
}

func (b *sizedBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
