package chainscan

import (
	"fmt"
	"math/big"
	"strings"
)

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58 block sizes: 8 bytes encode to 11 characters; a shorter last block
// of n characters decodes to blockBytes[n] bytes (-1: impossible).
var blockBytes = [12]int{0, -1, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8}

// DecodeBase58 decodes Monero's block-wise base58.
func DecodeBase58(s string) ([]byte, error) {
	var out []byte
	for len(s) > 0 {
		n := min(11, len(s))
		block := s[:n]
		s = s[n:]
		size := blockBytes[n]
		if size < 0 {
			return nil, fmt.Errorf("bad length")
		}
		v := new(big.Int)
		for _, c := range []byte(block) {
			i := strings.IndexByte(base58Alphabet, c)
			if i < 0 {
				return nil, fmt.Errorf("character %q is not base58", c)
			}
			v.Mul(v, big.NewInt(58))
			v.Add(v, big.NewInt(int64(i)))
		}
		b := v.Bytes()
		if len(b) > size {
			return nil, fmt.Errorf("block overflows")
		}
		out = append(out, make([]byte, size-len(b))...)
		out = append(out, b...)
	}
	return out, nil
}
