"""netvol's benchmark runner: the same workloads on several targets, one table.

Run `python -m bench --help`. Targets: the local disk (the upper limit), sshfs over
loopback to a private sshd (the peer), and a netvol FUSE mount.
"""
