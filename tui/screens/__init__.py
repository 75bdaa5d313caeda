"""The dashboard's screens: start, run, dead letters, help, and the confirmation dialog."""
