"""POSIX behaviour tests that run on any directory, the netvol mount included."""
