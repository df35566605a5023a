package lifecycle

import (
	"context"
	"errors"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

// fakeEpochs is an EpochStore that only lists epochs and retired keys.
type fakeEpochs struct {
	epochs  []storage.KEKEpoch
	retired []storage.RetiredKEK
	err     error
}

func (f fakeEpochs) Epochs(context.Context) ([]storage.KEKEpoch, error) { return f.epochs, f.err }
func (f fakeEpochs) RetiredKEKs(context.Context) ([]storage.RetiredKEK, error) {
	return f.retired, f.err
}
func (f fakeEpochs) UpdateEpoch(context.Context, func(storage.EpochTx) error) error {
	return errors.New("fakeEpochs: no transactions")
}

// The erase hook never blocks, however many erasures come before the
// loop reads the wake-up, and they coalesce into one run.
func TestWakeNeverBlocks(t *testing.T) {
	m := New(Deps{})
	for range 3 {
		m.Wake("Patient/p1")
	}
	if n := len(m.wake); n != 1 {
		t.Fatalf("%d wake-ups pending, want 1", n)
	}
}

// With a KMS KEK (no key file) the file-based jobs refuse with
// ErrKMSRotation, and the status says KMS without reading a key file.
func TestKMSRefusesFileJobs(t *testing.T) {
	m := New(Deps{Epochs: fakeEpochs{}})
	if _, _, err := m.RotateKEK(t.Context(), nil); !errors.Is(err, ErrKMSRotation) {
		t.Errorf("RotateKEK: %v, want ErrKMSRotation", err)
	}
	rep, err := m.RunKEKEpoch(t.Context(), EpochOptions{Force: true})
	if !errors.Is(err, ErrKMSRotation) || !rep.Status.KMS {
		t.Errorf("RunKEKEpoch: %v, status KMS %v; want ErrKMSRotation and KMS", err, rep.Status.KMS)
	}
	st, err := m.ErasureStatus(t.Context())
	if err != nil || !st.KMS {
		t.Errorf("ErasureStatus: %+v, %v; want KMS", st, err)
	}
}

func TestInProgress(t *testing.T) {
	for _, tc := range []struct {
		states []storage.EpochState
		want   bool
	}{
		{nil, false},
		{[]storage.EpochState{storage.EpochAdding}, true},
		{[]storage.EpochState{storage.EpochComplete, storage.EpochRewrapping}, true},
		{[]storage.EpochState{storage.EpochRewrapping, storage.EpochRetained}, false},
		{[]storage.EpochState{storage.EpochComplete}, false},
	} {
		var st ErasureStatus
		for i, s := range tc.states {
			st.Epochs = append(st.Epochs, storage.KEKEpoch{Epoch: int64(i + 1), State: s})
		}
		e, ok := st.InProgress()
		if ok != tc.want || (ok && e.Epoch != int64(len(tc.states))) {
			t.Errorf("%v: InProgress = %d, %v; want the newest, %v", tc.states, e.Epoch, ok, tc.want)
		}
	}
}
