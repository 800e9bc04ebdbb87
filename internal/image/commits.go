package image

import (
	"bytes"
	"context"
	"encoding/json"

	"batos/internal/store"
)

// Commit is a committed transaction as Options.OnCommit is told of it.
type Commit struct {
	TID store.TID
	// Meta is what the log records: the user (the default filled in),
	// the description and the extension.
	Meta store.TxMeta
	// OIDs are the objects the transaction wrote, ascending: created,
	// changed, or, for an undo, restored or deleted.
	OIDs []store.OID
	// Topic and Fields are what the transaction's maker named it (with
	// Tx.SetTopic, or WithTopic on its context); "" and nil when nothing
	// did. The image gives them no meaning: the watcher does.
	Topic  string
	Fields map[string]any
}

// topic is a commit's name and fields, as SetTopic and WithTopic give them.
type topic struct {
	name   string
	fields map[string]any
}

type topicKey struct{}

// WithTopic returns a context under which every transaction that names
// no topic of its own (Tx.SetTopic) commits as topic, with fields. It
// lets the layer that starts some work name the commits made by packages
// that know nothing of who watches them; the innermost WithTopic wins.
// Fields are read, never changed.
func WithTopic(ctx context.Context, name string, fields map[string]any) context.Context {
	return context.WithValue(ctx, topicKey{}, topic{name, fields})
}

// SetTopic names this transaction's commit for Options.OnCommit, with
// fields; it wins over the context's (WithTopic). A later call replaces
// an earlier one. Fields are read, never changed.
func (tx *Tx) SetTopic(name string, fields map[string]any) {
	tx.topic = &topic{name, fields}
}

// topicOf is the topic a transaction set, else its context's.
func topicOf(ctx context.Context, set *topic) topic {
	if set != nil {
		return *set
	}
	t, _ := ctx.Value(topicKey{}).(topic)
	return t
}

// committed tells Options.OnCommit of a commit.
func (db *DB) committed(c Commit) {
	if db.opts.OnCommit != nil {
		db.opts.OnCommit(c)
	}
}

// undone tells Options.OnCommit of the commit undo, which undid tid, as
// the log records it. Should the log not answer (a pack dropped the
// entry meanwhile), the commit is told as the engine writes an undo: what
// tid wrote (wrote), every object of which an undo restores or fails,
// described as undoing tid.
func (db *DB) undone(ctx context.Context, tid, undo store.TID, meta store.TxMeta, wrote []store.OID) {
	c := Commit{TID: undo, Meta: meta, OIDs: wrote}
	if info, err := db.store.Transaction(context.WithoutCancel(ctx), undo); err == nil {
		c.Meta = store.TxMeta{User: info.User, Description: info.Description, Extension: info.Extension}
		c.OIDs = info.OIDs
	} else if c.Meta.Description == "" {
		c.Meta.Description = "undo " + tid.String()
	}
	t := topicOf(ctx, nil)
	c.Topic, c.Fields = t.name, t.fields
	db.committed(c)
}

// notice is a commit's topic and fields as other processes sharing the
// store are told them (store.TxMeta.Notice), when the store is shared:
// they publish its event as this process does. nil when there is
// nothing to tell, or it does not fit.
func (db *DB) notice(t topic) []byte {
	if _, shared := db.store.(store.Watcher); !shared || t.name == "" {
		return nil
	}
	b, err := json.Marshal(struct {
		Topic  string         `json:"topic"`
		Fields map[string]any `json:"fields,omitempty"`
	}{t.name, t.fields})
	if err != nil || len(b) > store.MaxNotice {
		return nil
	}
	return b
}

// DecodeNotice reads a notice another process committed with: the topic
// and fields it named its commit with ("" and nil for a notice that is
// missing or unreadable). Numbers come back as int64 when they are
// whole, else float64.
func DecodeNotice(b []byte) (string, map[string]any) {
	if len(b) == 0 {
		return "", nil
	}
	var n struct {
		Topic  string         `json:"topic"`
		Fields map[string]any `json:"fields"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&n); err != nil {
		return "", nil
	}
	for k, v := range n.Fields {
		if num, ok := v.(json.Number); ok {
			if i, err := num.Int64(); err == nil {
				n.Fields[k] = i
			} else if f, err := num.Float64(); err == nil {
				n.Fields[k] = f
			}
		}
	}
	return n.Topic, n.Fields
}
