package export

import "context"

// Sink receives batches of records. Send returns nil only once the sink
// has accepted the whole batch; on an error the exporter sends the same
// batch again later. Implementations are used by one exporter goroutine
// at a time.
type Sink interface {
	// Name identifies the sink in configuration, cursors and logs.
	Name() string
	Send(ctx context.Context, batch []Record) error
	Close() error
}
