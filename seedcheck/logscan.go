package seedcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// --- worker log --------------------------------------------------------------

// workerLogScan is what the worker log says about the check.
type workerLogScan struct {
	// PoolSize is pool_size of the last "configuration" line (0 if none).
	PoolSize int
	// Copies and Failed count "atomic copy" and "atomic copy failed" lines
	// of the check's escrows.
	Copies, Failed int
	// PerStep counts "atomic copy" lines per escrow, role and round.
	PerStep map[stepKey]int
	// FailedLines describes the first failures.
	FailedLines []string
}

// readWorkerLog scans the log file at path (see scanWorkerLog). A log
// shorter than from was replaced meanwhile and is read from its start.
func readWorkerLog(path string, from int64, ids map[string]bool) (workerLogScan, error) {
	f, err := os.Open(path)
	if err != nil {
		return workerLogScan{}, fmt.Errorf("worker log: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < from {
		from = 0
	}
	return scanWorkerLog(f, from, ids)
}

// scanWorkerLog reads a worker log in zap's console or JSON format. It takes
// the pool size from any "configuration" line and counts the "atomic copy"
// and "atomic copy failed" lines of the escrows in ids that start at byte
// from or later.
func scanWorkerLog(r io.Reader, from int64, ids map[string]bool) (workerLogScan, error) {
	out := workerLogScan{PerStep: map[stepKey]int{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var pos int64
	for {
		line, err := br.ReadBytes('\n')
		start := pos
		pos += int64(len(line))
		if len(line) > 0 {
			msg, fields, ok := parseLogLine(line)
			switch {
			case !ok:
			case msg == "configuration":
				if n, ok := fields["pool_size"].(float64); ok {
					out.PoolSize = int(n)
				}
			case start < from:
			case msg == "atomic copy" || msg == "atomic copy failed":
				id, _ := fields["escrow_id"].(string)
				if !ids[id] {
					break
				}
				role, _ := fields["role"].(string)
				round, _ := fields["round"].(string)
				if msg == "atomic copy" {
					out.Copies++
					out.PerStep[stepKey{EscrowID: id, Role: role, Round: round}]++
					break
				}
				out.Failed++
				if len(out.FailedLines) < 3 {
					e, _ := fields["error"].(string)
					out.FailedLines = append(out.FailedLines, fmt.Sprintf("%s/%s/%s: %s", id, role, round, e))
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("worker log: %w", err)
		}
	}
}

// parseLogLine splits a zap log line into its message and fields. JSON
// lines are one object with "msg"; console lines are tab-separated: time,
// level, [logger,] caller, message and, when there are fields, a JSON
// object. ok is false for anything else (e.g. a continuation line).
func parseLogLine(line []byte) (msg string, fields map[string]any, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	if bytes.HasPrefix(line, []byte("{")) {
		if err := json.Unmarshal(line, &fields); err != nil {
			return "", nil, false
		}
		msg, ok = fields["msg"].(string)
		return msg, fields, ok
	}
	parts := strings.Split(string(line), "\t")
	if len(parts) < 4 {
		return "", nil, false
	}
	if _, err := time.Parse(time.RFC3339Nano, parts[0]); err != nil {
		return "", nil, false
	}
	last := parts[len(parts)-1]
	if strings.HasPrefix(last, "{") && json.Unmarshal([]byte(last), &fields) == nil {
		return parts[len(parts)-2], fields, true
	}
	return last, map[string]any{}, true
}
