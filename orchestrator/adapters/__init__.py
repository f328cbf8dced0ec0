"""Seams to the outside world other than the hypervisor, each one narrow and injectable:
``ssh`` (paramiko: a guest's host key, without logging in), ``web`` (one bounded HTTP GET of what
a guest serves), ``ansible`` (ansible-runner: a hook's playbook on the control plane).

May import ``core`` only.
"""
