package chaos

import (
	"time"
)

// jsonReport is the raw report of a run ($ESCROWFLOW_CHAOS_REPORT_JSON):
// what the Markdown table shows, unrounded, plus every note.
type jsonReport struct {
	Seed       uint64         `json:"seed"`
	Plan       string         `json:"plan"`
	ElapsedSec float64        `json:"elapsedSec"`
	Trials     []jsonTrial    `json:"trials"`
	Totals     map[string]int `json:"totals"`
	ByType     map[string]int `json:"failedByType"`
	KillPoints map[string]int `json:"escrowStatesAtWorkerKills"`
	Failures   []string       `json:"failures"`
	Lists      jsonLists      `json:"lists"`
}

type jsonTrial struct {
	N          int           `json:"n"`
	Attempt    int           `json:"attempt"`
	Kind       string        `json:"kind"`
	When       string        `json:"when"`
	Outcomes   []jsonOutcome `json:"outcomes"`
	Recovered  int           `json:"recoveredSteps"`
	DurSec     float64       `json:"durationSec"`
	Missed     string        `json:"faultDidNotLand,omitempty"`
	Superseded bool          `json:"retried,omitempty"`
	NotRun     string        `json:"notRun,omitempty"`
	Problem    string        `json:"problem,omitempty"`
	Notes      []string      `json:"notes,omitempty"`
}

type jsonOutcome struct {
	ID        string `json:"escrowId"`
	Outcome   string `json:"outcome"`
	FailType  string `json:"failType,omitempty"`
	Recovered int    `json:"recoveredSteps"`
}

type jsonLists struct {
	Lost          []string `json:"lost,omitempty"`
	Duplicated    []string `json:"duplicated,omitempty"`
	Mistyped      []string `json:"mistyped,omitempty"`
	Strays        []string `json:"strays,omitempty"`
	StartFailures []string `json:"workerStartFailures,omitempty"`
}

func newJSONReport(rows []*trialResult, f figures, cfg config, elapsed time.Duration) jsonReport {
	r := jsonReport{
		Seed: cfg.seed, Plan: planString(cfg), ElapsedSec: elapsed.Seconds(),
		Trials: []jsonTrial{}, ByType: f.byType, KillPoints: f.killPoints, Failures: f.failures(),
		Totals: map[string]int{
			"planned": f.planned, "trialsRun": f.trials, "notRun": f.notRun, "attemptsRetried": f.retried,
			"problems": f.problems, "escrows": f.escrows, "completed": f.completed, "verified": f.verified,
			"failed": f.failed, "failedTyped": f.failedTyped, "failedUntyped": f.failedUntyped,
			"unverified": f.unverified, "stuck": f.stuck, "snapshotsChanged": f.snapshotsChanged,
			"tempFilesLeft": f.temps, "orphans": f.orphans, "recoveredSteps": f.recovered,
			"snapshotsSeen": f.snapshotsSeen, "lost": len(f.lost), "duplicated": len(f.duplicated),
			"mistyped": len(f.mistyped), "strays": len(f.strays), "workerStartFailures": len(f.startFailures),
		},
		Lists: jsonLists{Lost: f.lost, Duplicated: f.duplicated, Mistyped: f.mistyped, Strays: f.strays, StartFailures: f.startFailures},
	}
	if r.Failures == nil {
		r.Failures = []string{}
	}
	for _, tr := range rows {
		jt := jsonTrial{N: tr.n, Attempt: max(1, tr.attempt), Kind: string(tr.kind), When: tr.when, Recovered: tr.recovered(),
			DurSec: tr.dur.Seconds(), Missed: tr.missed, Superseded: tr.superseded, NotRun: tr.notRun, Problem: tr.problem,
			Notes: tr.notes, Outcomes: []jsonOutcome{}}
		for _, o := range tr.outcomes {
			jt.Outcomes = append(jt.Outcomes, jsonOutcome{ID: o.id, Outcome: o.String(), FailType: o.failType, Recovered: o.recovered})
		}
		r.Trials = append(r.Trials, jt)
	}
	return r
}
