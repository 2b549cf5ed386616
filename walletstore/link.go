package walletstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Link hard-links the wallet files of src (NAME.keys, NAME,
// NAME.address.txt) as dst: no data is copied, so it works on a full disk,
// and dst keeps the files' content of this moment whatever later happens
// to src's names (wallet-rpc replaces a file it saves by renaming a new
// one over it). It is not a snapshot: no manifest is written and nothing
// is verified. Optional files src lacks are skipped; its keys file must
// exist. Existing dst files are never replaced; on error the links made
// are removed.
func (s *Store) Link(src, dst string) (err error) {
	if err := ValidateName(src); err != nil {
		return err
	}
	if err := ValidateName(dst); err != nil {
		return err
	}
	var made []string
	defer func() {
		if err != nil {
			for _, p := range made {
				_ = os.Remove(p)
			}
		}
	}()
	for _, suf := range walletSuffixes {
		from, to := s.path(src, suf), s.path(dst, suf)
		if err := os.Link(from, to); err != nil {
			if errors.Is(err, fs.ErrNotExist) && suf != KeysSuffix {
				continue
			}
			return fmt.Errorf("walletstore: link %q -> %q: %w", src, dst, err)
		}
		made = append(made, to)
	}
	return syncDir(s.dir)
}
