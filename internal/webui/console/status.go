package console

import (
	"context"

	"github.com/phivault/phivault/internal/storage"
)

// KeyScanner lists the stored data-key records ([storage.Reader]).
type KeyScanner interface {
	ScanKeys(ctx context.Context, fn func(storage.KeyRecord) error) error
}
