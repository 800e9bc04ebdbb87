package zmqbridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tinylib/msgp/msgp"

	"batos/internal/command"
	"batos/internal/zmqbridge"
)

// rawMap writes a msgpack map from raw entries, key then value, so a
// test can put anything anywhere.
func rawMap(entries ...[]byte) []byte { return rawMapN(uint32(len(entries)/2), entries...) }

// rawMapN is a map whose header claims n entries, whatever follows.
func rawMapN(n uint32, entries ...[]byte) []byte {
	b := msgp.AppendMapHeader(nil, n)
	for _, e := range entries {
		b = append(b, e...)
	}
	return b
}

func mpStr(s string) []byte { return msgp.AppendString(nil, s) }

func mpVal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgp.AppendIntf(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRefusedRequestsKeepTheirID: every request whose id can be read is
// answered with that id, whatever else is wrong with it, and wherever
// the id sits in the map; only bytes with no readable id get nil.
func TestRefusedRequestsKeepTheirID(t *testing.T) {
	_, addr, _ := startServer(t, &fakeService{})
	d := dealer(t, addr)
	deep := append([]byte(strings.Repeat("\x91", 40)), 0xc0)
	many := msgp.AppendArrayHeader(nil, 100_001)
	many = append(many, make([]byte, 100_001)...) // 100,001 zeros: positive fixints
	bad := []struct {
		name    string
		key     []byte // the offending entry's key
		val     []byte // and value
		garbled bool   // no map can be read past it: an id after it is lost
	}{
		{"bad $ref", mpStr("args"), mpVal(t, []any{map[string]any{"$ref": "oid:0"}}), false},
		{"$ref beside another key", mpStr("args"), mpVal(t, []any{map[string]any{"$ref": "oid:3", "x": 1}}), false},
		{"nesting beyond 32", mpStr("args"), deep, false},
		{"more than 100,000 items", mpStr("args"), many, false},
		{"extension type 5", mpStr("args"), []byte{0x91, 0xd4, 0x05, 0x00}, false},
		{"reference of 4 bytes", mpStr("args"), []byte{0x91, 0xd6, 0x01, 0, 0, 0, 1}, false},
		{"integer beyond int64", mpStr("args"), []byte{0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false},
		{"non-string key at the top", mpVal(t, int64(1)), mpStr("x"), false},
		{"non-string key nested", mpStr("kwargs"), []byte{0x81, 0x01, 0x02}, false},
		{"duplicate key", mpStr("command"), mpStr("ping"), false},
		{"invalid byte", mpStr("args"), []byte{0x91, 0xc1}, true},
	}
	ids := []any{int64(7), "req-7", []any{"a", int64(1)}, map[string]any{"n": int64(1)}}
	for _, tc := range bad {
		for _, id := range ids {
			for _, idFirst := range []bool{true, false} {
				if tc.garbled && !idFirst {
					continue
				}
				entries := [][]byte{mpStr("command"), mpStr("send"), mpStr("target"), mpStr("g"), mpStr("selector"), mpStr("s"), tc.key, tc.val}
				if idFirst {
					entries = append([][]byte{mpStr("id"), mpVal(t, id)}, entries...)
				} else {
					entries = append(entries, mpStr("id"), mpVal(t, id))
				}
				r := roundTrip(t, d, rawMap(entries...))
				if !cmp.Equal(r["id"], id) || errKind(r) != command.KindBadRequest {
					t.Errorf("%s, id %v (first: %v): got id %#v, kind %q, want the id and bad_request (%v)", tc.name, id, idFirst, r["id"], errKind(r), r["error"])
				}
			}
		}
	}

	idThen := rawMap(mpStr("id"), mpVal(t, int64(9)), mpStr("command"), mpStr("ping"))
	for _, tc := range []struct {
		name string
		b    []byte
		want any
	}{
		{"trailing bytes", append(idThen[:len(idThen):len(idThen)], 0xc0), int64(9)},
		{"truncated after the id", idThen[:len(idThen)-3], int64(9)},
		{"more entries declared than there are", append([]byte{0x85}, idThen[1:]...), int64(9)},
		{"no id", rawMap(mpStr("command"), mpStr("ping"), mpStr("x"), []byte{0xc1}), nil},
		{"an id of an integer beyond int64", rawMap(mpStr("id"), []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), nil},
		{"an id nested beyond 32", rawMap(mpStr("id"), deep), nil},
		{"an id after garbage", rawMap(mpStr("x"), []byte{0xc1}, mpStr("id"), mpVal(t, int64(9))), nil},
		{"not a map", mpVal(t, []any{"id", int64(9)}), nil},
		// The doc's promise: an id put first is found, however the rest
		// is damaged (here, a header claiming far more than follows).
		{"a map claiming 4 billion entries, id first", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa2, 'i', 'd', 0x09}, int64(9)},
		{"a map claiming 9 entries with two", rawMapN(9, mpStr("id"), mpVal(t, int64(7)), mpStr("command"), mpStr("ping")), int64(7)},
		{"an array claiming 4 billion items before the id", rawMap(mpStr("x"), []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, mpStr("id"), mpVal(t, int64(9))), nil},
	} {
		r := roundTrip(t, d, tc.b)
		if !cmp.Equal(r["id"], tc.want) || errKind(r) != command.KindBadRequest {
			t.Errorf("%s: got id %#v, kind %q, want %#v and bad_request", tc.name, r["id"], errKind(r), tc.want)
		}
	}
}

// TestShuttingDownKeepsTheID: a request that arrives while the server
// stops is answered shutting_down with its id, even one the server
// could not decode whole.
func TestShuttingDownKeepsTheID(t *testing.T) {
	odd := &oddService{release: make(chan struct{})}
	s, err := zmqbridge.Listen(odd, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	addr, _ := s.Endpoints()
	blocked := dealer(t, addr)
	blocked.SendBytes(encode(t, map[string]any{"id": "b", "command": "inspect", "target": "block"}), 0)
	late := dealer(t, addr)
	if r := req(t, late, map[string]any{"id": 0, "command": "ping"}); r["result"] != "pong" {
		t.Fatalf("got %v", r)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// Wait for the shutdown to begin: a ping answered shutting_down.
	for deadline := time.Now().Add(3 * time.Second); ; {
		if r := req(t, late, map[string]any{"id": "probe", "command": "ping"}); errKind(r) == command.KindShuttingDown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never began to shut down")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want any
	}{
		{"a ping", encode(t, map[string]any{"id": int64(41), "command": "ping"}), int64(41)},
		{"a string id", encode(t, map[string]any{"id": "s-1", "command": "eval", "code": "1"}), "s-1"},
		{"a bad request", rawMap(mpStr("id"), mpVal(t, int64(42)), mpStr("args"), []byte{0x91, 0xc1}), int64(42)},
		{"no id", encode(t, map[string]any{"command": "ping"}), nil},
	} {
		r := roundTrip(t, late, tc.b)
		if !cmp.Equal(r["id"], tc.want) || errKind(r) != command.KindShuttingDown {
			t.Errorf("%s: got id %#v, kind %q, want %#v and shutting_down", tc.name, r["id"], errKind(r), tc.want)
		}
	}
	close(odd.release)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	<-served
}
