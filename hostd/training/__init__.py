"""``hostd training``: TrainingHostService, jobs in warm worker processes (docs/training-host.md)."""
