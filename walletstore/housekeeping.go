package walletstore

// Listing and removing snapshots and temp files.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Remove deletes NAME.sha256, NAME, NAME.address.txt and NAME.keys, in that
// order, ignoring files that do not exist, then fsyncs the directory. The
// manifest goes first so that an interrupted Remove never leaves a
// committed snapshot with missing files, and the keys file goes last so the
// wallet keeps "existing" until everything else is gone. Removing a name
// that does not exist is not an error.
func (s *Store) Remove(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	var errs []error
	for _, suf := range []string{ManifestSuffix, CacheSuffix, AddressSuffix, KeysSuffix} {
		if err := os.Remove(s.path(name, suf)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := syncDir(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("fsync-dir: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("walletstore: remove %q: %w", name, err)
	}
	return nil
}

// List returns the sorted names of the wallets (valid names with a regular
// NAME.keys file) that start with prefix. Snapshots are wallets too and are
// listed; uncommitted leftovers are listed as well (use Verify to tell).
func (s *Store) List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("walletstore: list: %w", err)
	}
	names := []string{}
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), KeysSuffix)
		if !ok || !e.Type().IsRegular() || ValidateName(n) != nil || !strings.HasPrefix(n, prefix) {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// RemoveTemps deletes leftover temporary files whose TARGET file name
// begins with prefix, and returns how many it removed: this package's own
// ("." + TARGET + ".<digits>.tmp") and monero-wallet-rpc's (TARGET + ".new",
// where TARGET is a valid wallet NAME or NAME.keys: wallet2 saves there and
// renames, so a failed save leaves one behind). Temp files are only
// left behind by a crash, so call it when no write to matching names is in
// progress (e.g. at startup): removing the temp file of a running copy makes
// that copy fail (cleanly).
func (s *Store) RemoveTemps(prefix string) (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("walletstore: remove temps: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range entries {
		target, ok := tempTarget(e.Name())
		if !ok {
			target, ok = walletRPCTempTarget(e.Name())
		}
		if !ok || !e.Type().IsRegular() || !strings.HasPrefix(target, prefix) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		n++
	}
	if n > 0 {
		if err := syncDir(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("fsync-dir: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("walletstore: remove temps: %w", err)
	}
	return n, nil
}

// walletRPCTempTarget parses NAME + ".new" and NAME + ".keys.new" for a
// valid wallet NAME.
func walletRPCTempTarget(file string) (string, bool) {
	target, ok := strings.CutSuffix(file, ".new")
	if !ok {
		return "", false
	}
	if ValidateName(strings.TrimSuffix(target, KeysSuffix)) != nil {
		return "", false
	}
	return target, true
}

// tempTarget parses "." + target + "." + digits + ".tmp".
func tempTarget(file string) (string, bool) {
	inner, ok := strings.CutPrefix(file, ".")
	if !ok {
		return "", false
	}
	inner, ok = strings.CutSuffix(inner, ".tmp")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(inner, '.')
	if i <= 0 {
		return "", false
	}
	digits := inner[i+1:]
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	return inner[:i], true
}
