"""Core: errors, topology, lab state, the platform, and the commands the lab runs locally."""
