package bench

import (
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// progress shows each mode's progress on stderr: a bar redrawn in
// place on a terminal, one line per escrow otherwise.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	now    func() time.Time
	mode   Mode
	total  int
	done   int
	failed int
	began  time.Time
	active bool          // a bar is drawn on the current line
	tick   chan struct{} // closed by end to stop the redraw ticker
}

func newProgress(w io.Writer, now func() time.Time) *progress {
	return &progress{w: w, tty: isTerminal(w), now: now}
}

// isTerminal reports whether w is a terminal (TCGETS succeeds on it).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

// note prints a line about the run, above the bar.
func (p *progress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "bench: "+format+"\n", args...)
	if p.active {
		p.draw()
	}
}

func (p *progress) draw() {
	fmt.Fprint(p.w, "\r\x1b[K"+ProgressBar(p.mode, p.done, p.failed, p.total, barWidth, p.now().Sub(p.began)))
}

// start begins a mode of total escrows.
func (p *progress) start(mode Mode, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.total, p.done, p.failed, p.began = mode, total, 0, 0, p.now()
	if !p.tty {
		return
	}
	p.active = true
	p.draw()
	p.tick = make(chan struct{})
	go func(stop chan struct{}) {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.mu.Lock()
				if p.active {
					p.draw()
				}
				p.mu.Unlock()
			}
		}
	}(p.tick)
}

// escrow records a finished escrow.
func (p *progress) escrow(id string, latency time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if err != nil {
		p.failed++
	}
	if p.tty {
		p.draw()
		return
	}
	fmt.Fprintln(p.w, ProgressLine(p.mode, p.done, p.total, id, latency, err))
}

// end finishes the mode's bar.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.active {
		return
	}
	close(p.tick)
	p.draw()
	fmt.Fprintln(p.w)
	p.active = false
}
