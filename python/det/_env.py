"""Where this process runs: under a det worker, or standalone (by hand).

The worker gives a trial process DET_TRIAL_API_ADDR (loopback host:port),
DET_TRIAL_TOKEN (the per-run secret, sent as "x-det-trial-token" metadata),
DET_RANK and DET_WORLD_SIZE (and DET_RENDEZVOUS for multi-slot trials).
The spec (hyperparameters, lengths, checkpoint to restore) is fetched once
per process with GetSpec and cached here.
"""

import json
import os
import sys
import threading

_lock = threading.Lock()
_spec = None  # det.v1.common_pb2.TrialSpec, once fetched
_stop_hint = False  # the worker's stop hint sent with GetSpec


def on_cluster():
    return bool(os.environ.get("DET_TRIAL_API_ADDR"))


def rank():
    return int(os.environ.get("DET_RANK", "0") or 0)


def world_size():
    return max(1, int(os.environ.get("DET_WORLD_SIZE", "1") or 1))


def spec():
    """The TrialSpec from the worker (on a cluster) or built from the
    standalone flags and environment (by hand)."""
    global _spec, _stop_hint
    with _lock:
        if _spec is None:
            if on_cluster():
                from det import _trial_api
                _spec, _stop_hint = _trial_api.fetch_spec()
            else:
                _spec = _standalone_spec()
        return _spec


def standalone_requested():
    """Whether a standalone run was given hyperparameters or a checkpoint
    (then get_cluster_info() describes it instead of returning None)."""
    return any(_flag(f) is not None for f in
               ("--hparams", "--hparams-file", "--restore",
                "--warm-start")) or any(
        os.environ.get(v) for v in
        ("DET_HPARAMS", "DET_HPARAMS_FILE", "DET_RESTORE_UUID"))


def stop_hint():
    spec()
    return _stop_hint


class StandaloneError(ValueError):
    """A bad standalone flag or hyperparameter file."""


def _flag(name):
    """--name=value or --name value from sys.argv; None when absent."""
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return None


_standalone_data = {}


def _load_hparams():
    text = _flag("--hparams") or os.environ.get("DET_HPARAMS")
    where = "--hparams / DET_HPARAMS"
    path = _flag("--hparams-file") or os.environ.get("DET_HPARAMS_FILE")
    if path:
        where = path
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise StandaloneError(f"cannot read hyperparameters file {path}: "
                                  f"{e.strerror}") from None
        if path.endswith((".yaml", ".yml")):
            return _yaml_hparams(text, path)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise StandaloneError(
            f"hyperparameters from {where} are not valid JSON: {e.msg} at "
            f"line {e.lineno} column {e.colno}") from None
    if not isinstance(value, dict):
        raise StandaloneError(f"hyperparameters from {where} must be a JSON "
                              f"object, e.g. '{{\"learning_rate\": 0.01}}'")
    return value


def _yaml_hparams(text, path):
    try:
        import yaml
    except ImportError:
        raise StandaloneError(
            f"{path}: reading YAML needs python3-yaml; give the "
            f"hyperparameters as JSON instead") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise StandaloneError(f"{path}: not valid YAML: {e}") from None
    if isinstance(doc, dict) and isinstance(doc.get("hyperparameters"), dict):
        if isinstance(doc.get("data"), dict):
            _standalone_data.update(doc["data"])
        doc = doc["hyperparameters"]  # an experiment config: take the
        # constant values (a search range has no single value to run with)
        out = {}
        for k, v in doc.items():
            if isinstance(v, dict) and v.get("type") == "const":
                v = v.get("val")
            elif isinstance(v, dict) and "type" in v:
                raise StandaloneError(
                    f"{path}: hyperparameters.{k} is a search range "
                    f"(type {v['type']}); standalone runs need one value")
            out[k] = v
        return out
    if not isinstance(doc, dict):
        raise StandaloneError(f"{path}: expected a mapping of "
                              f"hyperparameters")
    return doc


def _standalone_spec():
    from google.protobuf import json_format
    from det.v1 import common_pb2
    s = common_pb2.TrialSpec()
    s.trial_id = 1
    s.experiment_id = 1
    s.world_size = 1
    json_format.ParseDict(_load_hparams(), s.hparams)
    if _standalone_data:
        json_format.ParseDict(_standalone_data, s.data)
    s.checkpoint_dir = (_flag("--checkpoint-dir")
                        or os.environ.get("DET_CHECKPOINT_DIR")
                        or "checkpoints")
    target = _flag("--target") or os.environ.get("DET_TARGET_BATCHES")
    try:
        s.target_batches = int(target) if target else 100
    except ValueError:
        raise StandaloneError(f"--target / DET_TARGET_BATCHES must be a "
                              f"number of batches, got {target!r}") from None
    restore = _flag("--restore") or os.environ.get("DET_RESTORE_UUID")
    if restore:
        s.restore_uuid = restore
    warm = _flag("--warm-start") or os.environ.get("DET_WARM_START_DIR")
    if warm and not restore:
        warm = os.path.normpath(warm)
        s.warm_start.uuid = os.path.basename(warm)
        s.warm_start_dir = os.path.dirname(warm) or "."
    return s
