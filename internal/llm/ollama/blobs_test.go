package ollama_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/ollama"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// opener returns an open function for content that counts its calls.
func opener(content []byte, opens *int) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		*opens++
		return io.NopCloser(bytes.NewReader(content)), nil
	}
}

func TestBlobs(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	ctx := t.Context()
	content := []byte("GGUF pretend weights")
	d := digestOf(content)

	if ok, err := c.HasBlob(ctx, d); err != nil || ok {
		t.Fatalf("before the push: got %v, %v; want false", ok, err)
	}
	opens := 0
	if err := c.PushBlob(ctx, d, opener(content, &opens), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.HasBlob(ctx, d); err != nil || !ok {
		t.Fatalf("after the push: got %v, %v; want true", ok, err)
	}
	if got, ok := o.Blob(d); !ok || !bytes.Equal(got, content) {
		t.Errorf("the server holds %q, %v; want %q", got, ok, content)
	}
	// A second push finds the blob there (200) and succeeds.
	if err := c.PushBlob(ctx, d, opener(content, &opens), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	pushes := requestsTo(o, "/api/blobs/sha256:"+d)
	if len(pushes) != 4 || pushes[1].Method != "POST" || !bytes.Equal(pushes[1].Body, content) {
		t.Errorf("got requests %+v, want HEAD, POST with the content, HEAD, POST", pushes)
	}
}

func TestPushBlobDigestMismatch(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	d := digestOf([]byte("what was meant"))
	opens := 0
	err := c.PushBlob(t.Context(), d, opener([]byte("what was sent"), &opens), 13)
	if !errors.Is(err, ollama.ErrDigestMismatch) {
		t.Fatalf("got %v, want ErrDigestMismatch", err)
	}
	if api := apiError(t, err); api.Status != 400 || !strings.Contains(api.Message, "digest mismatch") {
		t.Errorf("got %+v, want 400 with the server's message", api)
	}
	if ok, _ := c.HasBlob(t.Context(), d); ok || opens != 1 {
		t.Errorf("got blob stored %v after %d opens, want not stored after 1", ok, opens)
	}
}

func TestPushBlobRetry(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	content := []byte("adapter")
	o.FailNext(503, "busy")
	opens := 0
	if err := c.PushBlob(t.Context(), digestOf(content), opener(content, &opens), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	if opens != 2 {
		t.Errorf("got %d opens, want 2: the body is opened afresh for the retry", opens)
	}
}

func TestPushBlobBadBody(t *testing.T) {
	content := []byte("twelve bytes")
	tests := []struct {
		name string
		size int64
		open func() (io.ReadCloser, error)
	}{
		{name: "longer than size", size: 5},
		{name: "shorter than size", size: 50},
		{name: "open fails", size: 12, open: func() (io.ReadCloser, error) { return nil, errors.New("no such blob") }},
		{name: "read fails", size: 12, open: func() (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(bytes.NewReader(content[:4]), failReader{})), nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newFake(t, llmtest.Texts())
			c := newClient(t, o.URL)
			opens := 0
			open := tt.open
			if open == nil {
				open = opener(content, &opens)
			}
			err := c.PushBlob(t.Context(), digestOf(content), open, tt.size)
			if err == nil || errors.Is(err, llm.ErrUnavailable) || llm.Transient(err) {
				t.Errorf("got %v, want an error of the body, not the server's", err)
			}
			if opens > 1 {
				t.Errorf("got %d opens, want no retry", opens)
			}
			if _, ok := o.Blob(digestOf(content)); ok {
				t.Error("the blob was stored")
			}
		})
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestPushBlobUnknownSize(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	content := []byte("chunked")
	opens := 0
	if err := c.PushBlob(t.Context(), digestOf(content), opener(content, &opens), -1); err != nil {
		t.Fatal(err)
	}
	if got, _ := o.Blob(digestOf(content)); !bytes.Equal(got, content) {
		t.Errorf("got %q stored, want %q", got, content)
	}
}

func TestBadDigests(t *testing.T) {
	o := newFake(t, llmtest.Texts())
	c := newClient(t, o.URL)
	for _, d := range []string{"", "abc", "sha256:" + digestOf(nil), strings.ToUpper(digestOf(nil)), digestOf(nil)[:63] + "g"} {
		if _, err := c.HasBlob(t.Context(), d); err == nil {
			t.Errorf("HasBlob(%q): got no error", d)
		}
		if err := c.PushBlob(t.Context(), d, nil, 0); err == nil {
			t.Errorf("PushBlob(%q): got no error", d)
		}
	}
	if n := len(o.Requests()); n != 0 {
		t.Errorf("got %d requests, want none", n)
	}
}
