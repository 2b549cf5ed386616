package walletstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOpen(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))

	tests := []struct {
		name    string
		give    string
		wantErr bool
	}{
		{name: "creates nested dir", give: filepath.Join(parent, "a", "b", "wallets")},
		{name: "existing dir", give: parent},
		{name: "not a dir", give: file, wantErr: true},
		{name: "below a file", give: filepath.Join(file, "sub"), wantErr: true},
		{name: "empty", give: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.give)
			if tt.wantErr {
				require.Error(t, err)
				require.Nil(t, s)
				return
			}
			require.NoError(t, err)
			require.True(t, filepath.IsAbs(s.Dir()))
			require.Equal(t, filepath.Clean(tt.give), s.Dir())
			info, err := os.Stat(s.Dir())
			require.NoError(t, err)
			require.True(t, info.IsDir())
		})
	}
	requirePerm(t, filepath.Join(parent, "a", "b", "wallets"), dirPerm)
	requirePerm(t, filepath.Join(parent, "a"), dirPerm)
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give walletFiles
	}{
		{name: "all files", give: testWallet(1, 10_000)},
		{name: "large cache", give: testWallet(2, 3<<20+17)},
		{name: "empty cache", give: testWallet(3, 0)},
		{
			name: "no address file",
			give: walletFiles{KeysSuffix: randBytes(4, 1500), CacheSuffix: randBytes(5, 4000)},
		},
		{name: "keys only", give: walletFiles{KeysSuffix: randBytes(6, 1500)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			writeWallet(t, s, "live", tt.give)
			before := time.Now().UTC()

			m, err := s.Snapshot("live", "snap-1")
			require.NoError(t, err)

			// Manifest: independently computed sums, canonical order.
			var want []FileSum
			for _, suf := range []string{KeysSuffix, CacheSuffix, AddressSuffix} {
				if b, ok := tt.give[suf]; ok {
					want = append(want, FileSum{File: suf, Size: int64(len(b)), SHA256: sha256Hex(b)})
				}
			}
			require.Equal(t, "snap-1", m.Name)
			require.Equal(t, "live", m.Source)
			require.Equal(t, want, m.Files)
			require.False(t, m.Created.Before(before.Add(-time.Second)))
			require.Equal(t, m, readManifestFile(t, s, "snap-1"))

			requireWalletEqual(t, s, "snap-1", tt.give)
			for suf := range tt.give {
				requirePerm(t, s.path("snap-1", suf), filePerm)
			}
			requirePerm(t, s.path("snap-1", ManifestSuffix), filePerm)

			vm, err := s.Verify("snap-1")
			require.NoError(t, err)
			require.Equal(t, m, vm)

			rm, err := s.Restore("snap-1", "restored")
			require.NoError(t, err)
			require.Equal(t, m, rm)
			requireWalletEqual(t, s, "restored", tt.give)
			for suf := range tt.give {
				requirePerm(t, s.path("restored", suf), filePerm)
			}
			_, err = os.Lstat(s.path("restored", ManifestSuffix))
			require.ErrorIs(t, err, os.ErrNotExist, "restore must not create a manifest")

			// Source untouched.
			requireWalletEqual(t, s, "live", tt.give)
			requireNoTemps(t, s.Dir())
		})
	}
}

func TestSnapshotRefusesExisting(t *testing.T) {
	orphan := []byte("someone else's cache")
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store)
		give  string // dst
	}{
		{
			name: "committed snapshot",
			setup: func(t *testing.T, s *Store) {
				writeWallet(t, s, "other", testWallet(20, 5000))
				_, err := s.Snapshot("other", "snap")
				require.NoError(t, err)
			},
			give: "snap",
		},
		{
			name: "uncommitted leftover keys",
			setup: func(t *testing.T, s *Store) {
				writeWallet(t, s, "snap", walletFiles{KeysSuffix: []byte("old keys")})
			},
			give: "snap",
		},
		{
			name: "manifest only",
			setup: func(t *testing.T, s *Store) {
				require.NoError(t, os.WriteFile(s.path("snap", ManifestSuffix), []byte("{}"), 0o600))
			},
			give: "snap",
		},
		{
			name: "orphan cache file without keys",
			setup: func(t *testing.T, s *Store) {
				require.NoError(t, os.WriteFile(s.path("snap", CacheSuffix), orphan, 0o600))
			},
			give: "snap",
		},
		{
			name: "orphan address file without keys",
			setup: func(t *testing.T, s *Store) {
				require.NoError(t, os.WriteFile(s.path("snap", AddressSuffix), orphan, 0o600))
			},
			give: "snap",
		},
		{name: "dst is src", setup: func(*testing.T, *Store) {}, give: "live"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			writeWallet(t, s, "live", testWallet(21, 8000))
			tt.setup(t, s)
			before := readTree(t, s.Dir())

			m, err := s.Snapshot("live", tt.give)
			require.ErrorIs(t, err, ErrExists)
			require.Equal(t, Manifest{}, m)
			require.Equal(t, before, readTree(t, s.Dir()), "existing files must be byte-identical and nothing added")
		})
	}
}

func TestSnapshotSourceMissing(t *testing.T) {
	s, _ := newTestStore(t)
	// A cache without keys is not a wallet.
	require.NoError(t, os.WriteFile(s.path("live", CacheSuffix), []byte("cache"), 0o600))
	before := readTree(t, s.Dir())

	_, err := s.Snapshot("live", "snap")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Snapshot("nothing", "snap")
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, before, readTree(t, s.Dir()))
}

func TestCorruptSnapshot(t *testing.T) {
	flip := func(suf string, off int) func(t *testing.T, s *Store) {
		return func(t *testing.T, s *Store) {
			p := s.path("snap", suf)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			if off < 0 {
				off += len(b)
			}
			b[off] ^= 0x01
			require.NoError(t, os.WriteFile(p, b, 0o600))
		}
	}
	editManifest := func(edit func(m *Manifest)) func(t *testing.T, s *Store) {
		return func(t *testing.T, s *Store) {
			m := readManifestFile(t, s, "snap")
			edit(&m)
			b, err := json.Marshal(m)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(s.path("snap", ManifestSuffix), b, 0o600))
		}
	}
	tests := []struct {
		name     string
		give     func(t *testing.T, s *Store)
		wantFile string // must be named in the error
	}{
		{name: "flip first byte of keys", give: flip(KeysSuffix, 0), wantFile: "snap.keys"},
		{name: "flip last byte of cache", give: flip(CacheSuffix, -1), wantFile: "snap"},
		{name: "flip middle byte of cache", give: flip(CacheSuffix, 100_000), wantFile: "snap"},
		{name: "flip address", give: flip(AddressSuffix, 5), wantFile: "snap.address.txt"},
		{
			name: "truncated cache",
			give: func(t *testing.T, s *Store) {
				require.NoError(t, os.Truncate(s.path("snap", CacheSuffix), 1000))
			},
			wantFile: "snap",
		},
		{
			name: "appended to keys",
			give: func(t *testing.T, s *Store) {
				f, err := os.OpenFile(s.path("snap", KeysSuffix), os.O_APPEND|os.O_WRONLY, 0)
				require.NoError(t, err)
				_, err = f.Write([]byte{0})
				require.NoError(t, err)
				require.NoError(t, f.Close())
			},
			wantFile: "snap.keys",
		},
		{
			name: "listed address file missing",
			give: func(t *testing.T, s *Store) {
				require.NoError(t, os.Remove(s.path("snap", AddressSuffix)))
			},
			wantFile: "snap.address.txt",
		},
		{
			name: "unlisted address file present",
			give: editManifest(func(m *Manifest) {
				m.Files = m.Files[:2]
			}),
			wantFile: "snap.address.txt",
		},
		{
			name: "manifest missing (uncommitted)",
			give: func(t *testing.T, s *Store) {
				require.NoError(t, os.Remove(s.path("snap", ManifestSuffix)))
			},
			wantFile: "snap.sha256",
		},
		{
			name: "manifest garbage",
			give: func(t *testing.T, s *Store) {
				require.NoError(t, os.WriteFile(s.path("snap", ManifestSuffix), []byte("{not json"), 0o600))
			},
			wantFile: "snap.sha256",
		},
		{
			name:     "manifest for another name",
			give:     editManifest(func(m *Manifest) { m.Name = "other" }),
			wantFile: "snap.sha256",
		},
		{
			name:     "manifest without keys",
			give:     editManifest(func(m *Manifest) { m.Files = m.Files[1:] }),
			wantFile: "snap.sha256",
		},
		{
			name:     "manifest with unknown file",
			give:     editManifest(func(m *Manifest) { m.Files[1].File = "/../../etc/passwd" }),
			wantFile: "snap.sha256",
		},
		{
			name:     "manifest with malformed hash",
			give:     editManifest(func(m *Manifest) { m.Files[0].SHA256 = strings.ToUpper(m.Files[0].SHA256) }),
			wantFile: "snap.sha256",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			writeWallet(t, s, "live", testWallet(30, 200_000))
			_, err := s.Snapshot("live", "snap")
			require.NoError(t, err)
			tt.give(t, s)
			before := readTree(t, s.Dir())

			_, err = s.Verify("snap")
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), tt.wantFile)

			m, err := s.Restore("snap", "restored")
			require.ErrorIs(t, err, ErrCorrupt)
			require.Contains(t, err.Error(), tt.wantFile)
			require.Equal(t, Manifest{}, m)
			requireNoWallet(t, s, "restored")
			requireNoTemps(t, s.Dir())
			require.Equal(t, before, readTree(t, s.Dir()), "a failed restore changes nothing")
		})
	}
}

func TestSnapshotNotFound(t *testing.T) {
	s, _ := newTestStore(t)
	_, err := s.Verify("nope")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Restore("nope", "restored")
	require.ErrorIs(t, err, ErrNotFound)
	requireNoWallet(t, s, "restored")
}

func TestRestoreRefusesExisting(t *testing.T) {
	tests := []struct {
		name string
		give string // suffix of a pre-existing dst file
	}{
		{name: "keys", give: KeysSuffix},
		{name: "cache", give: CacheSuffix},
		{name: "address", give: AddressSuffix},
		{name: "manifest", give: ManifestSuffix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			writeWallet(t, s, "live", testWallet(40, 50_000))
			_, err := s.Snapshot("live", "snap")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(s.path("dst", tt.give), []byte("precious"), 0o600))
			before := readTree(t, s.Dir())

			_, err = s.Restore("snap", "dst")
			require.ErrorIs(t, err, ErrExists)
			require.Equal(t, before, readTree(t, s.Dir()))

			_, err = s.Restore("snap", "snap")
			require.ErrorIs(t, err, ErrExists)
			require.Equal(t, before, readTree(t, s.Dir()))
		})
	}
}

func TestInterruptedCopy(t *testing.T) {
	const cacheSize = 100_000
	tests := []struct {
		name  string
		index int // which file write (0-based) fails
		after int // bytes written before ENOSPC
		run   func(s *Store) error
		dst   string
	}{
		{
			name:  "CopyAtomic half way",
			index: 0, after: cacheSize / 2,
			run: func(s *Store) error {
				_, _, err := CopyAtomic(s.path("live", CacheSuffix), s.path("copy", CacheSuffix))
				return err
			},
			dst: "copy",
		},
		{
			name:  "CopyAtomic before first byte",
			index: 0, after: 0,
			run: func(s *Store) error {
				_, _, err := CopyAtomic(s.path("live", CacheSuffix), s.path("copy", CacheSuffix))
				return err
			},
			dst: "copy",
		},
		{
			name: "Snapshot keys", index: 0, after: 700,
			run: func(s *Store) error { _, err := s.Snapshot("live", "snap"); return err },
			dst: "snap",
		},
		{
			name: "Snapshot cache after keys committed", index: 1, after: cacheSize / 2,
			run: func(s *Store) error { _, err := s.Snapshot("live", "snap"); return err },
			dst: "snap",
		},
		{
			name: "Snapshot address", index: 2, after: 10,
			run: func(s *Store) error { _, err := s.Snapshot("live", "snap"); return err },
			dst: "snap",
		},
		{
			name: "Snapshot manifest", index: 3, after: 20,
			run: func(s *Store) error { _, err := s.Snapshot("live", "snap"); return err },
			dst: "snap",
		},
		{
			name: "Restore cache", index: 1, after: cacheSize / 2,
			run: func(s *Store) error { _, err := s.Restore("base", "restored"); return err },
			dst: "restored",
		},
		{
			name: "Restore address", index: 2, after: 1,
			run: func(s *Store) error { _, err := s.Restore("base", "restored"); return err },
			dst: "restored",
		},
		{
			name: "AtomicCreateFile", index: 0, after: 3,
			run: func(s *Store) error {
				return AtomicCreateFile(s.path("marker", CacheSuffix), []byte("0123456789"), filePerm)
			},
			dst: "marker",
		},
		{
			name: "AtomicWriteFile", index: 0, after: 3,
			run: func(s *Store) error {
				return AtomicWriteFile(s.path("marker", CacheSuffix), []byte("0123456789"), filePerm)
			},
			dst: "marker",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			live := testWallet(50, cacheSize)
			writeWallet(t, s, "live", live)
			_, err := s.Snapshot("live", "base")
			require.NoError(t, err)
			before := readTree(t, s.Dir())

			injectENOSPC(t, tt.index, tt.after)
			err = tt.run(s)
			require.Error(t, err)
			require.ErrorIs(t, err, syscall.ENOSPC)
			require.True(t, IsDiskFull(err), "IsDiskFull(%v)", err)

			requireWalletEqual(t, s, "live", live)
			requireNoWallet(t, s, tt.dst)
			requireNoTemps(t, s.Dir())
			require.Equal(t, before, readTree(t, s.Dir()))
		})
	}
}

func TestInterruptedCopyErrorNamesStep(t *testing.T) {
	s, _ := newTestStore(t)
	writeWallet(t, s, "live", testWallet(51, 1000))
	injectENOSPC(t, 0, 10)
	_, _, err := CopyAtomic(s.path("live", KeysSuffix), s.path("copy", KeysSuffix))
	require.ErrorContains(t, err, "write:")
	var se *stepError
	require.True(t, errors.As(err, &se))
	require.Equal(t, "write", se.step)
}

var badNames = []struct {
	name string
	give string
}{
	{name: "parent traversal", give: "../x"},
	{name: "slash", give: "a/b"},
	{name: "absolute", give: "/abs"},
	{name: "dotdot", give: ".."},
	{name: "dot", give: "."},
	{name: "empty", give: ""},
	{name: "NUL", give: "a\x00b"},
	{name: "leading space", give: " space"},
	{name: "inner space", give: "a b"},
	{name: "unicode", give: "ñ"},
	{name: "201 chars", give: strings.Repeat("a", 201)},
	{name: "keys suffix", give: "x.keys"},
	{name: "address suffix", give: "x.address.txt"},
	{name: "manifest suffix", give: "x.sha256"},
	{name: "tmp suffix", give: "x.tmp"},
	{name: "backslash", give: `a\b`},
	{name: "hidden", give: ".hidden"},
	{name: "leading dash", give: "-rf"},
	{name: "inner dotdot", give: "a..b"},
	{name: "colon", give: "a:b"},
	{name: "newline", give: "a\nb"},
}

func TestValidateName(t *testing.T) {
	for _, tt := range badNames {
		t.Run("bad "+tt.name, func(t *testing.T) {
			err := ValidateName(tt.give)
			require.ErrorIs(t, err, ErrInvalidName)
			require.Contains(t, err.Error(), fmt.Sprintf("%q", tt.give))
		})
	}
	good := []string{"a", "A", "0", "wallet-1", "escrow_42.snap.2024-01-01", "x.key", "x.keys2", strings.Repeat("z", 200)}
	for _, give := range good {
		t.Run("good "+give[:min(len(give), 20)], func(t *testing.T) {
			require.NoError(t, ValidateName(give))
		})
	}
}

func TestBadNamesTouchNothing(t *testing.T) {
	s, parent := newTestStore(t)
	writeWallet(t, s, "good", testWallet(60, 2000))
	_, err := s.Snapshot("good", "snap")
	require.NoError(t, err)
	before := readTree(t, parent)

	for _, tt := range badNames {
		t.Run(tt.name, func(t *testing.T) {
			calls := []struct {
				name string
				run  func() error
			}{
				{"Snapshot src", func() error { _, err := s.Snapshot(tt.give, "good2"); return err }},
				{"Snapshot dst", func() error { _, err := s.Snapshot("good", tt.give); return err }},
				{"Restore snapshot", func() error { _, err := s.Restore(tt.give, "good2"); return err }},
				{"Restore dst", func() error { _, err := s.Restore("snap", tt.give); return err }},
				{"Verify", func() error { _, err := s.Verify(tt.give); return err }},
				{"Remove", func() error { return s.Remove(tt.give) }},
				{"Exists", func() error { _, err := s.Exists(tt.give); return err }},
			}
			for _, c := range calls {
				err := c.run()
				require.ErrorIs(t, err, ErrInvalidName, c.name)
				require.Contains(t, err.Error(), fmt.Sprintf("%q", tt.give), c.name)
			}
			require.Equal(t, before, readTree(t, parent), "nothing may be created, changed or removed")
		})
	}
}

func TestConcurrentSnapshotsSameDst(t *testing.T) {
	const workers = 8
	s, _ := newTestStore(t)
	live := testWallet(70, 2<<20)
	writeWallet(t, s, "live", live)

	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, workers)
	)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.Snapshot("live", "snap")
		}()
	}
	close(start)
	wg.Wait()

	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, ErrExists)
	}
	require.Equal(t, 1, ok, "exactly one snapshot must win: %v", errs)

	m, err := s.Verify("snap")
	require.NoError(t, err)
	require.Len(t, m.Files, 3)
	requireWalletEqual(t, s, "snap", live)
	requireNoTemps(t, s.Dir())

	// Same for concurrent restores of one snapshot to one dst.
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Restore("snap", "restored")
		}()
	}
	wg.Wait()
	ok = 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, ErrExists)
	}
	require.Equal(t, 1, ok, "exactly one restore must win: %v", errs)
	requireWalletEqual(t, s, "restored", live)
	requireNoTemps(t, s.Dir())
}

func TestListAndExists(t *testing.T) {
	s, _ := newTestStore(t)
	for _, n := range []string{"b1", "a2", "a1", "ab"} {
		writeWallet(t, s, n, walletFiles{KeysSuffix: []byte(n)})
	}
	// Not wallets: cache without keys, hidden/invalid names, a directory,
	// a temp file, a manifest.
	require.NoError(t, os.WriteFile(s.path("a3", CacheSuffix), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), ".a4.keys"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), ".a1.keys.123.tmp"), nil, 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(s.Dir(), "a5.keys"), 0o700))
	require.NoError(t, os.WriteFile(s.path("a6", ManifestSuffix), nil, 0o600))
	require.NoError(t, os.Symlink(s.path("a1", KeysSuffix), s.path("a7", KeysSuffix)))

	tests := []struct {
		name string
		give string
		want []string
	}{
		{name: "all", give: "", want: []string{"a1", "a2", "ab", "b1"}},
		{name: "prefix a", give: "a", want: []string{"a1", "a2", "ab"}},
		{name: "exact", give: "a1", want: []string{"a1"}},
		{name: "none", give: "zz", want: []string{}},
		{name: "traversal prefix matches nothing", give: "../", want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(tt.give)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	for _, tt := range []struct {
		give string
		want bool
	}{{"a1", true}, {"a3", false}, {"a6", false}, {"zz", false}} {
		got, err := s.Exists(tt.give)
		require.NoError(t, err)
		require.Equal(t, tt.want, got, tt.give)
	}
}

func TestRemoveTemps(t *testing.T) {
	s, _ := newTestStore(t)
	writeWallet(t, s, "a1", testWallet(80, 100))
	mk := func(pattern string) string {
		f, err := os.CreateTemp(s.Dir(), pattern)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		return filepath.Base(f.Name())
	}
	tempA1Keys := mk(".a1.keys.*.tmp")
	tempA1 := mk(".a1.*.tmp")
	tempA2Manifest := mk(".a2.sha256.*.tmp")
	tempB := mk(".b1.address.txt.*.tmp")
	// monero-wallet-rpc's own leftovers of a failed save.
	for _, n := range []string{"a1.new", "a1.keys.new", "b1.keys.new"} {
		require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), n), nil, 0o600))
	}
	// Look-alikes that must survive.
	keep := []string{".a1.keys.12x.tmp", ".a1.keys.tmp", "a1.123.tmp", ".a1.keys.123.tmpx", ".a1.keys.123",
		"a1.address.txt.new", "a1.new.keys", ".a1.new", "a1.keys.new.x", "a 1.new"}
	for _, n := range keep {
		require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), n), nil, 0o600))
	}
	require.NoError(t, os.Mkdir(filepath.Join(s.Dir(), ".a9.1.tmp"), 0o700))

	tests := []struct {
		name     string
		give     string
		want     int
		wantGone []string
	}{
		{name: "prefix a1", give: "a1", want: 4, wantGone: []string{tempA1Keys, tempA1, "a1.new", "a1.keys.new"}},
		{name: "again is a no-op", give: "a1", want: 0},
		{name: "everything else", give: "", want: 3, wantGone: []string{tempA2Manifest, tempB, "b1.keys.new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RemoveTemps(tt.give)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			names := dirNames(t, s.Dir())
			for _, n := range tt.wantGone {
				require.NotContains(t, names, n)
			}
			for _, n := range keep {
				require.Contains(t, names, n)
			}
		})
	}
	requireWalletEqual(t, s, "a1", testWallet(80, 100))
	require.Contains(t, dirNames(t, s.Dir()), ".a9.1.tmp")
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store)
	}{
		{
			name: "committed snapshot",
			setup: func(t *testing.T, s *Store) {
				_, err := s.Snapshot("live", "x")
				require.NoError(t, err)
			},
		},
		{
			name: "wallet without address",
			setup: func(t *testing.T, s *Store) {
				writeWallet(t, s, "x", walletFiles{KeysSuffix: []byte("k"), CacheSuffix: []byte("c")})
			},
		},
		{
			name: "orphan manifest",
			setup: func(t *testing.T, s *Store) {
				require.NoError(t, os.WriteFile(s.path("x", ManifestSuffix), []byte("{}"), 0o600))
			},
		},
		{name: "nothing", setup: func(*testing.T, *Store) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			live := testWallet(90, 1000)
			writeWallet(t, s, "live", live)
			// Similar names that must survive.
			writeWallet(t, s, "x2", walletFiles{KeysSuffix: []byte("k2")})
			writeWallet(t, s, "x.2", walletFiles{KeysSuffix: []byte("k3")})
			tt.setup(t, s)

			require.NoError(t, s.Remove("x"))
			requireNoWallet(t, s, "x")
			requireWalletEqual(t, s, "live", live)
			requireWalletEqual(t, s, "x2", walletFiles{KeysSuffix: []byte("k2")})
			requireWalletEqual(t, s, "x.2", walletFiles{KeysSuffix: []byte("k3")})
			ok, err := s.Exists("x")
			require.NoError(t, err)
			require.False(t, ok)
		})
	}
}

func TestSnapshotAfterRemoveOfLeftover(t *testing.T) {
	// An interrupted snapshot leaves files without a manifest; they block
	// a new snapshot until removed.
	s, _ := newTestStore(t)
	live := testWallet(100, 5000)
	writeWallet(t, s, "live", live)
	writeWallet(t, s, "snap", walletFiles{KeysSuffix: []byte("half")})

	_, err := s.Verify("snap")
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = s.Snapshot("live", "snap")
	require.ErrorIs(t, err, ErrExists)

	require.NoError(t, s.Remove("snap"))
	_, err = s.Snapshot("live", "snap")
	require.NoError(t, err)
	_, err = s.Verify("snap")
	require.NoError(t, err)
	requireWalletEqual(t, s, "snap", live)
}
