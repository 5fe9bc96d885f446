"""Training: datasets and input pipelines, the distributed resumable loop, schedules, evaluation."""
