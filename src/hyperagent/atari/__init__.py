"""The Atari wing: envpool environments (env), the frame-deduplicated replay (replay), the
actor-learner loop (loop) and the score report (report)."""
