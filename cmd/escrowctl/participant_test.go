package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/participant"
)

func TestParticipantPrintKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buyer")
	inv := invoke(t, &fakeEscrows{}, nil, "participant", "--print-key", "--dir", dir)
	require.NoError(t, inv.err)
	want, err := participant.PublicKey(dir)
	require.NoError(t, err)
	assert.Equal(t, want+"\n", inv.stdout.String(), "the key it created and printed")
	assert.Empty(t, inv.dialed, "printing a key needs no Temporal")
	info, err := os.Stat(filepath.Join(dir, participant.KeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestParticipantUsage(t *testing.T) {
	tests := []struct {
		name string
		give []string
		want string
	}{
		{"no dir", []string{"participant", "--escrow", "x", "--role", "buyer"}, "--dir is required"},
		{"no escrow", []string{"participant", "--role", "buyer", "--dir", "d"}, "want --escrow ID"},
		{"bad peer key", []string{"participant", "--peer-key", "arbiter=ab", "--dir", "d"}, "want buyer=KEY or vendor=KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invoke(t, &fakeEscrows{}, nil, tt.give...)
			require.Error(t, inv.err)
			assert.Equal(t, 2, exitCode(inv.err))
			assert.True(t, strings.Contains(inv.err.Error(), tt.want), inv.err.Error())
			assert.Empty(t, inv.dialed)
		})
	}
}

func TestStartWithExternalParticipants(t *testing.T) {
	f := &fakeEscrows{}
	inv := invoke(t, f, nil, "start", "--external-buyer", "aa", "--participant-deadline", "5m", "e1")
	require.NoError(t, inv.err)
	require.Len(t, f.inputs, 1)
	assert.Equal(t, escrow.SetupInput{EscrowID: "e1", ParticipantDeadline: "5m",
		Custody:      map[escrow.Role]escrow.Custody{escrow.Buyer: escrow.CustodyExternal},
		Participants: map[escrow.Role]escrow.Participant{escrow.Buyer: {PublicKey: "aa"}},
	}, f.inputs[0])

	inv = invoke(t, f, nil, "start", "e2")
	require.NoError(t, inv.err)
	assert.Equal(t, escrow.SetupInput{EscrowID: "e2"}, f.inputs[1], "all hosted without the flags")
}
