package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"batos/internal/store"
)

// Tx is a transaction on a snapshot of the image. It belongs to the
// goroutine running the View or Update function and ends when that
// function returns.
type Tx struct {
	db       *DB
	ctx      context.Context
	snapshot store.TID
	writable bool
	done     bool
	objects  objectTable // every object loaded or created here
	meta     store.TxMeta
	topic    *topic // SetTopic's, else the context's
}

// Snapshot is the last transaction this one sees.
func (tx *Tx) Snapshot() store.TID { return tx.snapshot }

// Writable reports whether this is an Update transaction.
func (tx *Tx) Writable() bool { return tx.writable }

// Context is the context the transaction runs under.
func (tx *Tx) Context() context.Context { return tx.ctx }

// Note sets the description the log records for this transaction.
func (tx *Tx) Note(description string) { tx.meta.Description = description }

// SetUser sets who the log records as making this transaction.
func (tx *Tx) SetUser(user string) { tx.meta.User = user }

// SetExtension records an extra key and value in the log entry.
func (tx *Tx) SetExtension(key, value string) {
	if tx.meta.Extension == nil {
		tx.meta.Extension = map[string]string{}
	}
	tx.meta.Extension[key] = value
}

func (tx *Tx) check(write bool) error {
	if tx.done {
		return ErrTxDone
	}
	if write && !tx.writable {
		return ErrReadOnly
	}
	return nil
}

// Root returns the root object.
func (tx *Tx) Root() (*Object, error) {
	o, err := tx.Object(RootOID)
	if err != nil && isNotFound(err) {
		return nil, ErrNoRoot
	}
	return o, err
}

// Object returns the object oid as this transaction sees it, loading it
// on first use. Loading the same OID twice returns the same *Object.
func (tx *Tx) Object(oid store.OID) (*Object, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	if o := tx.objects.get(oid); o != nil {
		return o, nil
	}
	slots, rec, err := tx.db.load(tx.ctx, oid, tx.snapshot)
	if err != nil {
		return nil, err
	}
	o := tx.objects.alloc()
	*o = Object{tx: tx, oid: oid, serial: rec.Serial, slots: slots}
	if tx.writable {
		// The cached state is shared: this transaction gets its own list
		// of slots once it changes one or hands out a container (own),
		// whose values are copied as they are handed out. Commit compares
		// what it would write with the encoding it started from: the
		// record, when it was read, else the state's own encoding,
		// made when needed (original), which is the same bytes: the
		// decoder accepts only canonical ones.
		o.base, o.orig = slots, rec.Data
	}
	tx.objects.put(o)
	return o, nil
}

// Deref returns the object a Ref value names.
func (tx *Tx) Deref(v Value) (*Object, error) {
	r, ok := v.(Ref)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotObject, Repr(v))
	}
	return tx.Object(store.OID(r))
}

// New creates an object with the given slots, in order.
func (tx *Tx) New(slots ...Slot) (*Object, error) {
	if err := tx.check(true); err != nil {
		return nil, err
	}
	if err := checkSlots(slots); err != nil {
		return nil, err
	}
	oids, err := tx.db.store.NewOIDs(tx.ctx, 1)
	if err != nil {
		return nil, err
	}
	o := &Object{tx: tx, oid: oids[0], slots: cloneSlots(slots), created: true}
	tx.objects.put(o)
	return o, nil
}

// PutBlob streams r into the image's blob store and returns a reference
// to store in a slot. The blob is durable before PutBlob returns.
func (tx *Tx) PutBlob(r io.Reader) (BlobRef, error) {
	if err := tx.check(true); err != nil {
		return BlobRef{}, err
	}
	b, err := tx.db.store.PutBlob(tx.ctx, r)
	if err != nil {
		return BlobRef{}, err
	}
	return BlobRef{Digest: b.Digest, Size: b.Size}, nil
}

// OpenBlob streams a blob back; the reader fails at the end if the
// content does not match its digest.
func (tx *Tx) OpenBlob(b BlobRef) (io.ReadCloser, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	return tx.db.store.OpenBlob(tx.ctx, b.Digest)
}

// commit writes every object that is new or whose encoding changed, so a
// change anywhere inside a slot's value is saved without being declared.
func (tx *Tx) commit() (store.TID, error) {
	if tx.Untouched() {
		return 0, nil
	}
	var writes []store.Write
	var written []*Object
	for _, o := range tx.objects.sorted() {
		oid := o.oid
		if o.untouched() {
			continue
		}
		orig, err := o.original()
		if err != nil {
			return 0, err
		}
		data, err := encodeState(o.slots, len(orig)+len(orig)/8)
		var big *TooLargeError
		if errors.As(err, &big) {
			big.Object = describe(o)
			return 0, big
		}
		if err != nil {
			return 0, fmt.Errorf("encode %s: %w", oid, err)
		}
		if o.created || !bytes.Equal(data, orig) {
			if err := tx.checkNewRefs(o); err != nil {
				return 0, err
			}
			writes = append(writes, store.Write{OID: oid, Serial: o.serial, Data: data})
			written = append(written, o)
		}
	}
	if len(writes) == 0 {
		return 0, nil
	}
	if err := tx.ctx.Err(); err != nil {
		return 0, err // a cancelled transaction never commits
	}
	meta := tx.meta
	if meta.User == "" {
		meta.User = tx.db.opts.User
	}
	meta.Notice = tx.db.notice(topicOf(tx.ctx, tx.topic))
	tid, err := tx.db.store.Commit(tx.ctx, meta, writes)
	if err != nil {
		return 0, err
	}
	// The next transaction to load these revisions finds them decoded, in
	// place of the revisions they supersede. The cache gets copies: the
	// caller may still hold the values.
	for i, o := range written {
		var old cacheKey
		if !o.created {
			old = cacheKey{o.oid, o.serial}
		}
		tx.db.cache.replace(old, cacheKey{o.oid, tid}, o.cacheCopy(), writes[i].Data)
	}
	if tx.db.opts.OnCommit != nil {
		oids := make([]store.OID, len(writes))
		for i, w := range writes {
			oids[i] = w.OID
		}
		t := topicOf(tx.ctx, tx.topic)
		tx.db.committed(Commit{TID: tid, Meta: meta, OIDs: oids, Topic: t.name, Fields: t.fields})
	}
	return tid, nil
}

// Untouched reports whether every object the transaction loaded is
// untouched and it created none: a read-only send in an Update ends so,
// with nothing to sort or encode, and nothing to commit. Its maker may
// then skip naming the commit (Note, SetTopic). Only fn's goroutine may
// call it.
func (tx *Tx) Untouched() bool { return tx.objects.untouched() }

// checkNewRefs refuses a write that adds a reference to an object that
// does not exist: at the snapshot, or created in this transaction. Only
// references the object did not hold before are looked up, so rewriting a
// container of many references stays cheap.
func (tx *Tx) checkNewRefs(o *Object) error {
	c := newRefCollector()
	for _, s := range o.slots {
		c.walk(s.Value)
	}
	refs := c.oids
	if len(refs) == 0 {
		return nil
	}
	// The state as loaded is at hand decoded (the cache's, shared): its
	// references are walked, not decoded again from its encoding.
	var before refCollector
	if !o.created {
		for _, s := range o.base {
			before.walk(s.Value)
		}
	}
	for _, r := range refs {
		if before.seenOIDs[r] || tx.objects.get(r) != nil {
			continue
		}
		if _, err := tx.db.store.LoadAt(tx.ctx, r, tx.snapshot); err != nil {
			if isNotFound(err) {
				return fmt.Errorf("%w: %s refers to %s, which does not exist", ErrDangling, o.oid, r)
			}
			return err
		}
	}
	return nil
}

func (tx *Tx) end() {
	tx.done = true
	tx.db.finish(tx)
}

func cloneSlots(slots []Slot) []Slot {
	c := make([]Slot, len(slots))
	for i, s := range slots {
		c[i] = Slot{Name: s.Name, Value: Clone(s.Value)}
	}
	return c
}

func checkSlots(slots []Slot) error {
	seen := make(map[string]bool, len(slots))
	for _, s := range slots {
		if err := CheckSlotName(s.Name); err != nil {
			return err
		}
		if seen[s.Name] {
			return fmt.Errorf("%w: slot %q given twice", ErrSlotName, s.Name)
		}
		seen[s.Name] = true
		if s.Value == nil {
			return fmt.Errorf("%w: slot %q has no value", ErrInvalid, s.Name)
		}
	}
	return nil
}

// describe names o in a message: its OID and, if it has one, its name
// slot ("oid:3 (genesis)").
func describe(o *Object) string {
	if n, ok := o.Get("name"); ok {
		if s, ok := n.(String); ok {
			return fmt.Sprintf("%s (%s)", o.oid, string(s))
		}
	}
	return o.oid.String()
}
