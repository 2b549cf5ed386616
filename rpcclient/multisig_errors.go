package rpcclient

import (
	"errors"
	"strings"
)

// The wallet refusals below mean that a multisig payout cannot go on with
// the multisig infos the signers exchanged for it: nothing was created or
// signed, and the signers must export and import fresh infos first.

// IsStaleMultisig reports sign_multisig refusing a set because the nonces
// it needs are gone: "This signature was made with stale data" (code -35),
// as after a set was signed once in this wallet session.
func IsStaleMultisig(err error) bool {
	var rpcErr *RPCError
	return errors.As(err, &rpcErr) && (rpcErr.Code == CodeMultisigSignature ||
		strings.Contains(strings.ToLower(rpcErr.Message), "stale data"))
}

// IsNothingToSpend reports transfer or sweep_all refusing for want of
// spendable outputs. On a multisig wallet that is what outputs without the
// peers' partial key images look like (measured: -16 "No transaction
// created" and -4 "No unlocked balance" before an import; -17 "not enough
// money" once right after one).
func IsNothingToSpend(err error) bool {
	for _, code := range []int{CodeTxNotPossible, CodeGenericTransferError, CodeNotEnoughMoney, CodeNotEnoughUnlockedMoney} {
		if IsCode(err, code) {
			return true
		}
	}
	return false
}

// IsUnloadableTxSet reports describe_transfer or sign_multisig refusing a
// set this wallet cannot load: bad hex, or a set wallet2 does not parse or
// whose inputs index transfers this wallet does not have (a wallet that
// has not seen the outputs the set spends).
func IsUnloadableTxSet(err error) bool {
	return IsCode(err, CodeBadMultisigTxData) || IsCode(err, CodeBadHex) || IsCode(err, CodeBadUnsignedTxData)
}
