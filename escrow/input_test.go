package escrow

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSetupInputMalformed: valid JSON of another shape decodes without an
// error to an empty input that says why.
func TestSetupInputMalformed(t *testing.T) {
	tests := []struct {
		give, wantID, wantMalformed string
	}{
		{give: `{"escrowId":"e1"}`, wantID: "e1"},
		{give: `[1]`, wantMalformed: `got a JSON array, want {"escrowId":"…"}`},
		{give: `{"escrowId":5}`, wantMalformed: "escrowId is a JSON number, want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var in SetupInput
			require.NoError(t, json.Unmarshal([]byte(tt.give), &in))
			assert.Equal(t, tt.wantID, in.EscrowID)
			assert.Equal(t, tt.wantMalformed, in.Malformed())
		})
	}
}
