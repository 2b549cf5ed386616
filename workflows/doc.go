// Package workflows holds the EscrowSetup and EscrowTrade workflows:
// deterministic code only. Their contracts (names, input, result, status
// and failure types) live in package escrow.
package workflows
