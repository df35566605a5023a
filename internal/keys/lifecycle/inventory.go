package lifecycle

import (
	"context"
	"slices"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Inventory sums up the key records ("phivault keys status"): what they
// belong to and which KEK key wraps each live one. It holds counts and
// key ids only.
type Inventory struct {
	KEK       string // the KEK's description (key file path or KMS URI)
	PrimaryID uint32 // the KEK key new keys are wrapped under
	// Live data keys by owner kind; Org counts every owner that is not a
	// patient's, a joint owner's or a system key (the organisation's).
	Patients, Joint, Org, System int
	Shredded                     int            // crypto-shredded owners
	ByKEK                        map[uint32]int // live key records per wrapping KEK key id
}

// KEKIDs returns the KEK key ids that wrap live keys, ascending.
func (i Inventory) KEKIDs() []uint32 {
	ids := make([]uint32, 0, len(i.ByKEK))
	for id := range i.ByKEK {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Inventory scans every key record (wrapped keys only: nothing is
// unwrapped) and counts them.
func (m *Manager) Inventory(ctx context.Context) (Inventory, error) {
	kek := m.keys.KEK()
	inv := Inventory{KEK: kek.Description(), PrimaryID: kek.PrimaryID(), ByKEK: map[uint32]int{}}
	err := m.store.ScanKeys(ctx, func(r storage.KeyRecord) error {
		if r.Shredded {
			inv.Shredded++
			return nil
		}
		switch r.Owner.Kind() {
		case ident.OwnerSystem:
			inv.System++
		case ident.OwnerPatient:
			inv.Patients++
		case ident.OwnerJoint:
			inv.Joint++
		default:
			inv.Org++
		}
		inv.ByKEK[r.KEKID]++
		return nil
	})
	return inv, err
}
