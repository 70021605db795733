"""Pictures of runs and models (`s2s plot`): learning curves from metrics.jsonl,
attention and CTC alignments. matplotlib is an optional extra (`s2s[plot]`) that
only these modules import."""
