"""det's Python API: Determined's Core API for trial processes.

A Determined Core API script runs on det with one changed line::

    import det            # instead of: import determined as det

    info = det.get_cluster_info()          # None outside a trial
    with det.core.init() as core:
        core.train.report_training_metrics(steps_completed=10, metrics={...})

Inside a trial the package speaks det's trial API (proto/det/v1/trial.proto)
to the worker that started the process; started by hand (no
DET_TRIAL_API_ADDR) it runs standalone: hyperparameters from --hparams /
DET_HPARAMS, metrics printed, checkpoints in a local folder.
"""

from det._info import ClusterInfo, TrialInfo, get_cluster_info
from det import core
from det.core import InvalidHP

__all__ = ["ClusterInfo", "InvalidHP", "TrialInfo", "core",
           "get_cluster_info"]
