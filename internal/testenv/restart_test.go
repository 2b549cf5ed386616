package testenv

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/internal/devserver"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

func TestTemporalRestart(t *testing.T) {
	tp := StartTemporal(t)
	c := tp.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A workflow nobody polls for: it stays running, in the database.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "restart-probe", TaskQueue: "nobody-polls"}, "Nothing")
	require.NoError(t, err)

	oldPID, hostPort, uiPort := tp.PID, tp.HostPort, tp.UIPort
	down := tp.Restart(t)
	require.Positive(t, down)
	require.NotEqual(t, oldPID, tp.PID)
	require.Equal(t, hostPort, tp.HostPort, "same frontend port")
	require.Equal(t, uiPort, tp.UIPort, "same UI port")
	require.True(t, ProcessGone(oldPID), "old server pid %d still running", oldPID)

	// The client dialled before the restart reconnects by itself, and the
	// workflow survived in the same database file.
	WaitFor(t, 30*time.Second, "the old client reconnects", func() bool {
		_, err := c.CheckHealth(ctx, nil)
		return err == nil
	})
	d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, d.GetWorkflowExecutionInfo().GetStatus())
	require.NoError(t, devserver.Probe(ctx, tp.HostPort), "EscrowState is still registered")

	c.Close()
	tp.Stop()
	err = syscall.Kill(tp.PID, 0)
	require.True(t, errors.Is(err, syscall.ESRCH), "pid %d still exists after Stop: %v", tp.PID, err)
}
