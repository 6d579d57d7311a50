"""Job descriptions shared by the daemon and the hosts that run the jobs (standard library only)."""
