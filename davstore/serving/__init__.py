"""Running a share: what ``davstore serve/mount`` and ``manage.py davstore serve/mount``
share.

:mod:`~davstore.serving.arguments` (the argparse groups), :mod:`~davstore.serving.selection`
(which Storage a command line names), :mod:`~davstore.serving.state_dir` (the state folder),
:mod:`~davstore.serving.listen` (the port), :mod:`~davstore.serving.workers` (``--workers``),
:mod:`~davstore.serving.shutdown` (SIGINT/SIGTERM and the grace period),
:mod:`~davstore.serving.logs` (stderr), :mod:`~davstore.serving.observability` (health,
metrics, access log) with :mod:`~davstore.serving.queued_metrics` and
:mod:`~davstore.serving.store_metrics`, and :mod:`~davstore.serving.exits` (the two
failures a command reports).
"""

from __future__ import annotations

__all__: list[str] = []
