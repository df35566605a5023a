package storage

import "context"

type bulkKey struct{}

// WithBulk marks ctx as a bulk load's (a direct import): its writes
// rarely fail, so an engine may commit them together without the
// per-write savepoints that let one failing write roll back alone
// (ADR 0041). A server's requests are not marked: under concurrent
// writes that need facts or conflict, a group without savepoints is
// rolled back and run again too often.
func WithBulk(ctx context.Context) context.Context { return context.WithValue(ctx, bulkKey{}, true) }

// Bulk reports whether ctx was marked by WithBulk.
func Bulk(ctx context.Context) bool { b, _ := ctx.Value(bulkKey{}).(bool); return b }
