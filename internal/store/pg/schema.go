package pg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the version of the schema this code creates and
// understands. Each step of migrations takes a database from version
// i to i+1.
const SchemaVersion = 2

// ErrSchemaTooNew is returned by Open for a database whose schema a newer
// batos created: this code would misread it.
var ErrSchemaTooNew = errors.New("pg: database schema is newer than this batos understands")

// Advisory lock keys. Advisory locks are scoped to the database, so two
// images in two databases of one cluster never wait for each other.
const (
	// commitLockKey serialises commits (and pack's final sweep) across
	// every node: whoever holds it allocates the next TID and checks
	// serials against a current_object no one else is changing.
	commitLockKey int64 = 0x6261746f73_01 // "batos" 1
	// schemaLockKey serialises creating and migrating the schema.
	schemaLockKey int64 = 0x6261746f73_02
	// packLockKey keeps two packs (from any nodes) from running at once.
	packLockKey int64 = 0x6261746f73_03
	// oidLockKey: NewOIDs takes it shared, a commit raising the OID
	// sequence past an OID it wrote takes it exclusively, so the raise
	// never moves the sequence back under a concurrent nextval.
	oidLockKey int64 = 0x6261746f73_04
)

// migrations[i] takes the schema from version i to i+1.
var migrations = []string{
	// 0 -> 1: the initial schema.
	`
CREATE TABLE schema_version (
	version integer NOT NULL
);
INSERT INTO schema_version VALUES (1);

-- Counters kept under the commit lock: last_tid (the newest TID ever
-- committed: pack may remove the newest log entry, TIDs must still never
-- be reused) and packed_before (revisions at or before it may have been
-- packed away, so undo of older transactions is refused).
CREATE TABLE store_meta (
	name  text PRIMARY KEY,
	value bigint NOT NULL
);
INSERT INTO store_meta VALUES ('last_tid', 0), ('packed_before', 0);

-- The log. User, description and extension are bytea: Go strings may hold
-- any bytes, text would refuse NUL and invalid UTF-8. The extension is
-- encoded as sorted length-prefixed pairs. crc covers every column.
CREATE TABLE transaction (
	tid         bigint PRIMARY KEY,
	time_ns     bigint NOT NULL,
	username    bytea NOT NULL,
	description bytea NOT NULL,
	extension   bytea NOT NULL,
	oids        bigint[] NOT NULL,
	crc         bigint NOT NULL
);

-- Every revision of every object. prev_tid is the serial the writer based
-- the revision on (0: it created the object). deleted marks a revision
-- recording that the object ceased to exist (an undone creation). crc
-- covers oid, tid, deleted and data.
CREATE TABLE object_state (
	oid      bigint NOT NULL,
	tid      bigint NOT NULL,
	prev_tid bigint NOT NULL,
	deleted  boolean NOT NULL,
	data     bytea NOT NULL,
	crc      bigint NOT NULL,
	PRIMARY KEY (oid, tid)
);

-- The current revision of each object, what commits check serials
-- against.
CREATE TABLE current_object (
	oid     bigint PRIMARY KEY,
	tid     bigint NOT NULL,
	deleted boolean NOT NULL
);

-- OIDs 0 and 1 (the root) are never allocated.
CREATE SEQUENCE oid_seq AS bigint START 2 MINVALUE 2;

-- Blobs, content-addressed. Chunks are keyed by blob_id, not digest: the
-- digest is known only once the content has been streamed in, and a
-- second upload of the same content must not collide with the first.
-- pinned_tid/pinned_at: an uploaded blob is kept from pack until a
-- revision newer than pinned_tid refers to it (its transaction
-- committed), or the pin expires.
CREATE SEQUENCE blob_id_seq AS bigint;
CREATE TABLE blob (
	digest     bytea PRIMARY KEY,
	blob_id    bigint NOT NULL UNIQUE,
	size       bigint NOT NULL,
	chunks     integer NOT NULL,
	pinned_tid bigint,
	pinned_at  timestamptz
);
CREATE TABLE blob_chunk (
	blob_id   bigint NOT NULL,
	chunk_num integer NOT NULL,
	data      bytea NOT NULL,
	PRIMARY KEY (blob_id, chunk_num)
);
-- Blob content is often compressed already: do not spend CPU on it.
ALTER TABLE blob_chunk ALTER COLUMN data SET STORAGE EXTERNAL;
`,
	// 1 -> 2: leases, for work one node does at a time (a cycle, the
	// heartbeat). expires is the server's clock: nodes' clocks may
	// disagree, the database's is the one every node reads. generation
	// grows every time the lease changes holder.
	`
CREATE TABLE lease (
	name       text PRIMARY KEY,
	holder     text NOT NULL,
	generation bigint NOT NULL,
	expires    timestamptz NOT NULL
);
`,
}

// ErrNoImage is returned by Open with Options.Existing for a database
// that holds no image.
var ErrNoImage = errors.New("pg: the database holds no image")

// migrate creates the schema in an empty database (unless existing, when
// a database without one is refused), or brings an older one up to
// SchemaVersion, under a lock so nodes opening together do it once. A
// newer schema is refused.
func migrate(ctx context.Context, conn *pgx.Conn, existing bool) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLockKey); err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('schema_version') IS NOT NULL").Scan(&exists); err != nil {
		return err
	}
	if !exists && existing {
		return ErrNoImage
	}
	version := 0
	if exists {
		if err := tx.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&version); err != nil {
			return fmt.Errorf("read schema_version: %w", err)
		}
	}
	if version > SchemaVersion {
		return fmt.Errorf("%w: the database is at schema version %d, this batos knows versions up to %d; upgrade batos", ErrSchemaTooNew, version, SchemaVersion)
	}
	for v := version; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate schema from version %d to %d: %w", v, v+1, err)
		}
		if _, err := tx.Exec(ctx, "UPDATE schema_version SET version = $1", v+1); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
