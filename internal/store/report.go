package store

import "fmt"

// ProblemKind classifies what Verify found wrong.
type ProblemKind int

const (
	CorruptRecord ProblemKind = iota + 1
	CorruptTransaction
	DanglingReference
	MissingBlob
	CorruptBlob
	UndecodableRecord
	CorruptFile
	// LogMismatch: the revisions and the transaction log disagree, a
	// revision with no log entry naming it or a log entry naming an
	// object that has no revision from that transaction (and that pack
	// did not remove).
	LogMismatch
)

func (k ProblemKind) String() string {
	switch k {
	case CorruptRecord:
		return "corrupt-record"
	case CorruptTransaction:
		return "corrupt-transaction"
	case DanglingReference:
		return "dangling-reference"
	case MissingBlob:
		return "missing-blob"
	case CorruptBlob:
		return "corrupt-blob"
	case UndecodableRecord:
		return "undecodable-record"
	case CorruptFile:
		return "corrupt-file"
	case LogMismatch:
		return "log-mismatch"
	}
	return fmt.Sprintf("ProblemKind(%d)", int(k))
}

// ParseProblemKind reads a kind as String writes it; an unknown name is 0.
func ParseProblemKind(s string) ProblemKind {
	for k := CorruptRecord; k <= LogMismatch; k++ {
		if k.String() == s {
			return k
		}
	}
	return 0
}

// Problem is one thing Verify found wrong.
type Problem struct {
	Kind   ProblemKind
	OID    OID // the object concerned, if any
	TID    TID // the revision or transaction concerned, if any
	Target OID // for a dangling reference: the missing object
	Digest Digest
	// Page and Bucket place a corrupt-file problem in the engine's file:
	// the page concerned (0 is also the first meta page, and Detail says
	// which) and the bucket whose tree holds it, if any.
	Page   uint64
	Bucket string
	Detail string
}

func (p Problem) String() string {
	switch p.Kind {
	case DanglingReference:
		if p.OID == 0 {
			return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
		}
		return fmt.Sprintf("%s: %s at %s refers to missing %s", p.Kind, p.OID, p.TID, p.Target)
	case MissingBlob:
		return fmt.Sprintf("%s: %s at %s refers to missing blob %s", p.Kind, p.OID, p.TID, p.Digest)
	case CorruptBlob:
		return fmt.Sprintf("%s: blob %s: %s", p.Kind, p.Digest, p.Detail)
	case CorruptFile:
		s := p.Kind.String()
		if p.Bucket != "" {
			s += ": bucket " + p.Bucket
		}
		switch {
		case p.OID != 0:
			s += fmt.Sprintf(": reading %s", p.OID)
		case p.TID != 0:
			s += fmt.Sprintf(": reading transaction %s", p.TID)
		}
		return s + ": " + p.Detail
	case CorruptTransaction:
		return fmt.Sprintf("%s: transaction %s: %s", p.Kind, p.TID, p.Detail)
	}
	return fmt.Sprintf("%s: %s at %s: %s", p.Kind, p.OID, p.TID, p.Detail)
}

// Report is the outcome of Verify.
type Report struct {
	Objects      int
	Revisions    int
	Transactions int
	Blobs        int
	BlobBytes    int64
	Problems     []Problem
}

// OK reports whether verification found nothing wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }
