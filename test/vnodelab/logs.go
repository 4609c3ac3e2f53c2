package vnodelab

import (
	"io"
	"os"
)

// tailChunk is how much of a log is read per step backwards.
const tailChunk = 64 << 10

// openTail opens a container log file at the start of its last n lines
// (n <= 0: the whole file), limited to limit bytes (<= 0: no limit), the
// way a kubelet answers tailLines and limitBytes: from the end, reading
// only the tail, however long the log.
func openTail(path string, n, limit int) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	size := st.Size()
	start := int64(0)
	if n > 0 {
		start, err = tailStart(f, size, n)
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	var r io.Reader = io.NewSectionReader(f, start, size-start)
	if limit > 0 {
		r = io.LimitReader(r, int64(limit))
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// tailStart is the offset of the first of the last n lines of a file of
// size bytes. A final newline ends the last line; it does not start one.
func tailStart(f io.ReaderAt, size int64, n int) (int64, error) {
	end := size
	if end > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, end-1); err != nil {
			return 0, err
		}
		if last[0] == '\n' {
			end--
		}
	}
	buf := make([]byte, tailChunk)
	found := 0
	for pos := end; pos > 0; {
		step := min(int64(tailChunk), pos)
		pos -= step
		chunk := buf[:step]
		if _, err := f.ReadAt(chunk, pos); err != nil && err != io.EOF {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			found++
			if found == n {
				return pos + int64(i) + 1, nil
			}
		}
	}
	return 0, nil
}
