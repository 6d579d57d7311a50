"""The daemon's hosts: persistent links to them (:mod:`ktrdrd.hosts.link`) and the local hosts it
starts and supervises when none is configured (:mod:`ktrdrd.hosts.supervisor`,
:mod:`ktrdrd.hosts.embedded`).

This package's root imports nothing: :mod:`ktrdrd.hosts.tether` runs as ``python -m`` in front of
every supervised child and must start fast.
"""
