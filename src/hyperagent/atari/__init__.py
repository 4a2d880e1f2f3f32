"""The Atari wing: envpool environments (env), the frame-deduplicated replay (replay), the
actor-learner loop (loop), a run with its checkpoints and CSVs (runner) and the score report (report)."""
