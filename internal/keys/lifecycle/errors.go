package lifecycle

import "errors"

// Errors of the key jobs.
var (
	// ErrKMSRotation means KEK rotation of a KMS key happens in the KMS.
	ErrKMSRotation = errors.New("the KEK lives in a KMS: rotate it there (new key version); phivault keeps using the KMS key URI")
	// ErrEpochBusy means another process holds the KEK epoch job (its
	// lease has not expired). Try again later.
	ErrEpochBusy = errors.New("another phivault process is running the KEK epoch job")
	// ErrEpochLost means another process took the job over while this
	// one ran (this one paused past the lease). This run stopped.
	ErrEpochLost = errors.New("the KEK epoch job was taken over by another process")
)
