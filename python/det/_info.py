"""det.get_cluster_info(): what Determined's ClusterInfo gives a trial."""

import os

from det import _env


def struct_to_dict(struct):
    """A google.protobuf.Struct as plain Python values. Struct numbers are
    doubles; whole numbers come back as int, as Determined gives integer
    hyperparameters (so `range(hparams["batches"])` works)."""
    from google.protobuf import json_format

    def fix(v):
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            return int(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return fix(json_format.MessageToDict(struct))


def warm_start_uuid(spec):
    """The warm-start checkpoint of a run with nothing of its own to
    restore, "" for none."""
    if spec.restore_uuid or not spec.HasField("warm_start"):
        return ""
    return spec.warm_start.uuid


class TrialInfo:
    """The trial part of ClusterInfo (Determined's det.TrialInfo).

    det additions: target_batches (the searcher's length in batches) and
    validation_points (where the searcher wants validations, ascending)."""

    def __init__(self, spec):
        self.trial_id = spec.trial_id
        self.experiment_id = spec.experiment_id
        self.trial_seed = spec.seed
        self.trial_run_id = spec.run_id
        self.hparams = struct_to_dict(spec.hparams)
        self.target_batches = spec.target_batches
        self.validation_points = list(spec.validation_points)
        self.data = struct_to_dict(spec.data)
        self.records_per_epoch = spec.records_per_epoch
        # Steps of the checkpoint this run restores from (0 for a fresh
        # start, and for a warm start: as in Determined, a trial that starts
        # from another trial's checkpoint counts its own steps from 0).
        self.steps_completed = 0
        if spec.restore_uuid:
            for c in spec.restore_candidates:
                if c.uuid == spec.restore_uuid:
                    self.steps_completed = c.steps_completed

    def __repr__(self):
        return (f"TrialInfo(trial_id={self.trial_id}, experiment_id="
                f"{self.experiment_id}, hparams={self.hparams!r})")


class ClusterInfo:
    """Determined's det.ClusterInfo, the parts det has."""

    def __init__(self, spec):
        self.trial = TrialInfo(spec)
        # As Determined: the trial's own latest checkpoint, else the one it
        # warm-starts from (searcher.source_trial_id /
        # source_checkpoint_uuid); core.checkpoint.restore_path opens either.
        self.latest_checkpoint = (spec.restore_uuid or warm_start_uuid(spec)
                                  or None)
        self.task_type = "TRIAL"
        self.container_rank = _env.rank()
        self.slot_ids = [int(s) for s in
                         os.environ.get("DET_SLOT_IDS", "").split(",") if s]
        self.agent_id = os.environ.get("DET_WORKER_ID", "")
        self.gpu_uuids = [g for g in os.environ.get(
            "CUDA_VISIBLE_DEVICES", "").split(",") if g]
        # Determined's user_data is the config's `data` section.
        self.user_data = self.trial.data

    def __repr__(self):
        return (f"ClusterInfo(trial={self.trial!r}, latest_checkpoint="
                f"{self.latest_checkpoint!r})")


def get_cluster_info():
    """The running trial's ClusterInfo. Outside a det cluster: None, as
    Determined returns off-cluster, unless the run was given standalone
    hyperparameters (--hparams JSON, --hparams-file FILE, DET_HPARAMS,
    DET_HPARAMS_FILE) or a checkpoint (--restore UUID): then a ClusterInfo
    of trial 1, experiment 1, run 0 with those."""
    if not _env.on_cluster() and not _env.standalone_requested():
        return None
    return ClusterInfo(_env.spec())
