package walletstore

import (
	"fmt"
	"os"
)

// CopyAtomic copies the regular file srcPath to the new file dstPath with
// writeAtomic (never replacing) and returns the number of bytes copied and
// their lowercase hex SHA-256, hashed from the very bytes written. Only the
// tests copy single files; the store copies through Snapshot and Restore.
func CopyAtomic(srcPath, dstPath string) (size int64, sha256hex string, err error) {
	src, err := os.Open(srcPath)
	if err != nil {
		return 0, "", fmt.Errorf("walletstore: copy %s -> %s: open: %w", srcPath, dstPath, err)
	}
	defer func() { _ = src.Close() }()
	if err := checkRegular(src, srcPath); err != nil {
		return 0, "", fmt.Errorf("walletstore: copy %s -> %s: %w", srcPath, dstPath, err)
	}
	res, err := writeAtomic(src, dstPath, filePerm, false, nil)
	if err != nil {
		return 0, "", fmt.Errorf("walletstore: copy %s -> %s: %w", srcPath, dstPath, err)
	}
	return res.size, res.sum, nil
}
