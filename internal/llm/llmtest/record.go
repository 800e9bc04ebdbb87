package llmtest

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// RecordedRequest is one HTTP request a fake server received, as it
// arrived: the body is the raw bytes on the wire.
type RecordedRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// maxRecordedBody bounds how much of a request body a fake reads.
const maxRecordedBody = 64 << 20

// recorder keeps the requests a fake server received. It is safe for
// concurrent use; the zero value is ready.
type recorder struct {
	mu   sync.Mutex
	reqs []RecordedRequest
}

// read reads r's body (at most maxRecordedBody bytes), records the
// request, and puts the body back so handlers can decode it.
func (rec *recorder) read(r *http.Request) []byte {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, RecordedRequest{
		Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body,
	})
	return body
}

// requests returns copies of the recorded requests, in arrival order.
func (rec *recorder) requests() []RecordedRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([]RecordedRequest, len(rec.reqs))
	for i, r := range rec.reqs {
		out[i] = RecordedRequest{
			Method: r.Method, Path: r.Path, Header: r.Header.Clone(),
			Body: bytes.Clone(r.Body),
		}
	}
	return out
}
