package walletstore

// Checking snapshots against their manifests.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func compareSum(file string, want FileSum, size int64, sum string) error {
	if size != want.Size {
		return fmt.Errorf("%w: %s: size %d, manifest says %d", ErrCorrupt, file, size, want.Size)
	}
	if sum != want.SHA256 {
		return fmt.Errorf("%w: %s: sha256 %s, manifest says %s", ErrCorrupt, file, sum, want.SHA256)
	}
	return nil
}

// Verify re-reads every file of committed snapshot and checks it against
// the manifest, returning the manifest if all match. Errors are as for
// Restore: ErrNotFound if the snapshot does not exist, ErrCorrupt (naming
// the file) for a missing or invalid manifest, a missing or unexpected
// file, or a size/hash mismatch.
func (s *Store) Verify(snapshot string) (Manifest, error) {
	if err := ValidateName(snapshot); err != nil {
		return Manifest{}, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("walletstore: verify %q: %w", snapshot, err)
	}
	m, err := s.readManifest(snapshot)
	if err != nil {
		return Manifest{}, wrap(err)
	}
	if err := s.checkNoExtraFiles(snapshot, m); err != nil {
		return Manifest{}, wrap(err)
	}
	for _, want := range m.Files {
		p := s.path(snapshot, want.File)
		size, sum, err := hashFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return Manifest{}, wrap(fmt.Errorf("%w: %s: listed in manifest but missing", ErrCorrupt, filepath.Base(p)))
			}
			return Manifest{}, wrap(err)
		}
		if err := compareSum(filepath.Base(p), want, size, sum); err != nil {
			return Manifest{}, wrap(err)
		}
	}
	return m, nil
}

func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = f.Close() }()
	if err := checkRegular(f, path); err != nil {
		return 0, "", fmt.Errorf("%w: %s: %v", ErrCorrupt, filepath.Base(path), err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("%s: read: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// readManifest loads and validates NAME.sha256.
func (s *Store) readManifest(name string) (Manifest, error) {
	p := s.path(name, ManifestSuffix)
	base := filepath.Base(p)
	f, err := os.Open(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return Manifest{}, fmt.Errorf("%s: open: %w", p, err)
		}
		for _, suf := range walletSuffixes {
			if _, serr := os.Lstat(s.path(name, suf)); serr == nil {
				return Manifest{}, fmt.Errorf("%w: %s: manifest missing (uncommitted or damaged snapshot)", ErrCorrupt, base)
			}
		}
		return Manifest{}, fmt.Errorf("%w: snapshot %q", ErrNotFound, name)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: read: %w", p, err)
	}
	if len(data) > maxManifestSize {
		return Manifest{}, fmt.Errorf("%w: %s: larger than %d bytes", ErrCorrupt, base, maxManifestSize)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, base, err)
	}
	if err := checkManifest(name, m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, base, err)
	}
	return m, nil
}

func checkManifest(name string, m Manifest) error {
	if m.Name != name {
		return fmt.Errorf("manifest is for %q", m.Name)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		known := false
		for _, suf := range walletSuffixes {
			if f.File == suf {
				known = true
			}
		}
		if !known {
			return fmt.Errorf("unknown file %q", f.File)
		}
		if seen[f.File] {
			return fmt.Errorf("duplicate file %q", f.File)
		}
		seen[f.File] = true
		if f.Size < 0 {
			return fmt.Errorf("file %q: negative size", f.File)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != sha256.Size || strings.ToLower(f.SHA256) != f.SHA256 {
			return fmt.Errorf("file %q: malformed sha256 %q", f.File, f.SHA256)
		}
	}
	if !seen[KeysSuffix] {
		return fmt.Errorf("no %q file", KeysSuffix)
	}
	return nil
}

// checkNoExtraFiles reports ErrCorrupt if a wallet file of name exists that
// the manifest does not list.
func (s *Store) checkNoExtraFiles(name string, m Manifest) error {
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.File] = true
	}
	for _, suf := range walletSuffixes {
		if listed[suf] {
			continue
		}
		p := s.path(name, suf)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s: present but not in manifest", ErrCorrupt, filepath.Base(p))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: stat: %w", p, err)
		}
	}
	return nil
}
