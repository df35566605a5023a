package storagetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/phivault/phivault/internal/bulk"
	"github.com/phivault/phivault/internal/storage"
)

// RunBulk runs the bulk export store's conformance suite (migration
// 0035, ADR 0049): the per-client job limit, one claim per job among
// concurrent claimers, a lapsed lease claimed again, writes refused to a
// holder that no longer holds, deletion of a job with its files and
// key, and the expired list.
func RunBulk(t *testing.T, open func(t *testing.T) bulk.Store) {
	ctx := t.Context()
	s := open(t)
	job := func(id, client string, created int) bulk.Job {
		return bulk.Job{ID: id, Client: client, State: bulk.StateQueued, Params: []byte("sealed\x00" + id), Key: []byte("wrapped\x00" + id),
			Created: at(created), TxTime: at(created), Expires: at(created + 1000), Progress: "queued"}
	}
	t.Run("limit", func(t *testing.T) {
		for i, id := range []string{"j1", "j2"} {
			if err := s.CreateJob(ctx, job(id, "c1", i), 2); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateJob(ctx, job("j3", "c1", 3), 2); !errors.Is(err, bulk.ErrTooManyJobs) {
			t.Fatalf("third job of c1: %v, want ErrTooManyJobs", err)
		}
		if err := s.CreateJob(ctx, job("k1", "c2", 4), 2); err != nil {
			t.Fatalf("another client's job: %v", err)
		}
		got, err := s.Job(ctx, "j1")
		if err != nil || got.Client != "c1" || got.State != bulk.StateQueued || !bytes.Equal(got.Key, []byte("wrapped\x00j1")) || !got.Created.Equal(at(0)) {
			t.Fatalf("job j1: %+v, %v", got, err)
		}
	})
	t.Run("claim-once", func(t *testing.T) {
		var mu sync.Mutex
		claimed := map[string]string{}
		var wg sync.WaitGroup
		for _, h := range []string{"p1", "p2", "p3", "p4"} {
			wg.Go(func() {
				for {
					j, ok, err := s.ClaimJob(ctx, h, at(10), at(1000))
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						return
					}
					mu.Lock()
					if prev, dup := claimed[j.ID]; dup {
						t.Errorf("job %s claimed by %s and %s", j.ID, prev, h)
					}
					claimed[j.ID] = h
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(claimed) != 3 {
			t.Fatalf("claimed %v, want the 3 queued jobs", claimed)
		}
	})
	t.Run("held", func(t *testing.T) {
		j, _ := s.Job(ctx, "j1")
		other := "p1"
		if j.Holder == "p1" {
			other = "p2"
		}
		if err := s.PutFile(ctx, "j1", other, bulk.File{N: 1, Kind: bulk.KindOutput, Type: "Patient", Count: 1}, []byte("ct")); !errors.Is(err, bulk.ErrLeaseLost) {
			t.Fatalf("a file from a process that does not hold the job: %v, want ErrLeaseLost", err)
		}
		if err := s.PutFile(ctx, "j1", j.Holder, bulk.File{N: 1, Kind: bulk.KindOutput, Type: "Patient", Count: 2}, []byte("ct1")); err != nil {
			t.Fatal(err)
		}
		// Renewed to a shorter lease than its siblings' (at 1000).
		if err := s.RenewLease(ctx, "j1", j.Holder, at(200), "2 resources"); err != nil {
			t.Fatal(err)
		}
		// Its lease has not lapsed: nobody else claims it.
		if _, ok, err := s.ClaimJob(ctx, "p9", at(150), at(300)); err != nil || ok {
			t.Fatalf("claimed a held job: %v %v", ok, err)
		}
		// Lapsed: another process claims it, and the first writes nothing more.
		got, ok, err := s.ClaimJob(ctx, "p9", at(250), at(400))
		if err != nil || !ok || got.ID != "j1" || got.Attempts != 2 {
			t.Fatalf("claiming the lapsed job: %+v %v %v", got, ok, err)
		}
		if err := s.FinishJob(ctx, "j1", j.Holder, bulk.StateDone, "", at(500)); !errors.Is(err, bulk.ErrLeaseLost) {
			t.Fatalf("the old holder finished the job: %v", err)
		}
		if err := s.ResetFiles(ctx, "j1", "p9"); err != nil {
			t.Fatal(err)
		}
		if fs, err := s.Files(ctx, "j1"); err != nil || len(fs) != 0 {
			t.Fatalf("files after reset: %v %v", fs, err)
		}
		for n, kind := range []string{bulk.KindOutput, bulk.KindError} {
			if err := s.PutFile(ctx, "j1", "p9", bulk.File{N: n + 1, Kind: kind, Type: "Observation", Count: 3}, []byte{byte(n), 0, 0xff}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.FinishJob(ctx, "j1", "p9", bulk.StateDone, "", at(500)); err != nil {
			t.Fatal(err)
		}
		fs, err := s.Files(ctx, "j1")
		if err != nil || len(fs) != 2 || fs[1] != (bulk.File{N: 2, Kind: bulk.KindError, Type: "Observation", Count: 3}) {
			t.Fatalf("files: %+v %v", fs, err)
		}
		if d, err := s.FileData(ctx, "j1", 2); err != nil || !bytes.Equal(d, []byte{1, 0, 0xff}) {
			t.Fatalf("file 2: %v %v", d, err)
		}
		if got, _ := s.Job(ctx, "j1"); got.State != bulk.StateDone || !got.Expires.Equal(at(500)) {
			t.Fatalf("finished job: %+v", got)
		}
	})
	t.Run("expire-delete", func(t *testing.T) {
		ids, err := s.Expired(ctx, at(600), 10)
		if err != nil || len(ids) != 1 || ids[0] != "j1" {
			t.Fatalf("expired at 600: %v %v", ids, err)
		}
		if err := s.DeleteJob(ctx, "j1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Job(ctx, "j1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleted job: %v", err)
		}
		if _, err := s.FileData(ctx, "j1", 1); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleted job's file: %v", err)
		}
		if err := s.DeleteJob(ctx, "j1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
		// A slot freed: c1 may start another.
		if err := s.CreateJob(ctx, job("j4", "c1", 700), 2); err != nil {
			t.Fatal(err)
		}
	})
}
