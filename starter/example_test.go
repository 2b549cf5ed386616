package starter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/escrowflow/escrowflow/starter"
)

// Example sets up one escrow and waits for its multisig address. A second
// Start of the same id (a retried request) is not an error for the caller:
// it waits for the setup already under way.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	c, err := starter.Dial(client.Options{HostPort: "127.0.0.1:7233", Namespace: "default"})
	if err != nil {
		log.Print(err)
		return
	}
	defer c.Close()

	run, err := c.Start(ctx, "order-1234")
	switch {
	case errors.Is(err, starter.ErrDuplicateEscrow):
		fmt.Println("already started")
	case err != nil:
		log.Print(err)
		return
	default:
		fmt.Println("started", run.WorkflowID, run.RunID)
	}

	res, err := c.Wait(ctx, "order-1234")
	var failed *starter.EscrowFailedError
	switch {
	case errors.As(err, &failed):
		fmt.Println("setup failed:", failed.Type)
	case err != nil:
		log.Print(err)
	default:
		fmt.Println("multisig address:", res.MultisigAddress)
	}
}
