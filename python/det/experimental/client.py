"""A client of the det master in the shape of Determined's
determined.experimental.client:

    from det.experimental import client
    client.login(master="127.0.0.1:8090", token=None)   # or DET_MASTER/DET_TOKEN
    exp = client.create_experiment("const.yaml", "model_dir/")
    exp.wait()
    print(exp.best_validation_metrics, exp.top_checkpoint().uuid)

It speaks det's client API (proto/det/v1/api.proto) over gRPC as the det
CLI does: DET_MASTER (HOST:PORT, https:// for TLS), DET_TOKEN (sent as
"authorization: Bearer ..."), DET_MASTER_CERT_FILE (the CA that signed the
master's certificate; implies TLS). Every failure of the master is raised
as an APIException (or a subclass) carrying the master's message.
"""

import enum
import os
import time

import grpc

from det.experimental._context import pack_context

DEFAULT_PORT = 8090
_MAX_RECEIVE = 256 << 20


class APIException(Exception):
    """The master refused a call, or could not be reached. .code is the
    gRPC status code name (e.g. "NOT_FOUND"), .message the master's text."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class UnauthenticatedException(APIException):
    """The master needs a token and got none or a wrong one."""


class NotFoundException(APIException):
    """No experiment or trial with that id."""


class MasterNotFoundException(APIException):
    """Nothing answers at the master address."""


class ExperimentState(enum.Enum):
    UNSPECIFIED = 0
    ACTIVE = 1
    PAUSED = 2
    STOPPING_COMPLETED = 3
    STOPPING_CANCELED = 4
    STOPPING_KILLED = 5
    STOPPING_ERROR = 6
    COMPLETED = 7
    CANCELED = 8
    ERROR = 9
    QUEUED = 10


TrialState = ExperimentState
_TERMINAL = {ExperimentState.COMPLETED, ExperimentState.CANCELED,
             ExperimentState.ERROR}


def _parse_master(master):
    rest = master.strip()
    tls = False
    for prefix, is_tls in (("https://", True), ("http://", False),
                           ("grpc://", False)):
        if rest.startswith(prefix):
            rest, tls = rest[len(prefix):], is_tls
            break
    rest = rest.rstrip("/")

    def bad(why):
        return ValueError(f'bad master address "{master}": {why} (write '
                          f'HOST:PORT, e.g. 127.0.0.1:8090, in DET_MASTER or '
                          f'login(master=...))')

    if not rest:
        raise bad("it is empty")
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise bad("missing ']'")
        host, after = rest[:close + 1], rest[close + 1:]
        if after and not after.startswith(":"):
            raise bad("junk after ']'")
        port = after[1:]
    else:
        host, _, port = rest.partition(":")
        if ":" in port:
            raise bad("write IPv6 addresses as [ADDRESS]:PORT")
    if not host or host == "[]":
        raise bad("no host")
    number = DEFAULT_PORT
    if port:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise bad(f'"{port}" is not a port number')
        number = int(port)
    return f"{host}:{number}", tls


class Session:
    """A connection to one master; what login() makes."""

    def __init__(self, master=None, token=None, cert_path=None):
        from det.v1 import api_pb2_grpc
        master = master or os.environ.get("DET_MASTER") or \
            f"127.0.0.1:{DEFAULT_PORT}"
        self.target, tls = _parse_master(master)
        self.token = token if token is not None else \
            os.environ.get("DET_TOKEN", "")
        cert_path = cert_path or os.environ.get("DET_MASTER_CERT_FILE")
        options = [("grpc.max_receive_message_length", _MAX_RECEIVE)]
        if cert_path or tls:
            pem = None
            if cert_path:
                try:
                    with open(cert_path, "rb") as f:
                        pem = f.read()
                except OSError as e:
                    raise ValueError(
                        f"TLS CA certificate (cert_path / DET_MASTER_CERT_FILE)"
                        f": cannot read {cert_path}: {e.strerror}") from None
            creds = grpc.ssl_channel_credentials(root_certificates=pem)
            self._channel = grpc.secure_channel(self.target, creds, options)
        else:
            self._channel = grpc.insecure_channel(self.target, options)
        self.stub = api_pb2_grpc.ApiStub(self._channel)

    def _metadata(self):
        return (("authorization", f"Bearer {self.token}"),) if self.token \
            else ()

    def error(self, e):
        code = e.code()
        message = e.details() or code.name
        if code == grpc.StatusCode.UNAVAILABLE:
            return MasterNotFoundException(
                code.name, f"cannot reach the master at {self.target} "
                f"({message}); is det-master running there? Set DET_MASTER "
                f"(or login(master=...)) to the master's HOST:PORT")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return APIException(code.name, f"the master at {self.target} did "
                                f"not answer in time ({message})")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return UnauthenticatedException(
                code.name, f"{message} (set DET_TOKEN or login(token=...))")
        if code == grpc.StatusCode.NOT_FOUND:
            return NotFoundException(code.name, message)
        return APIException(code.name, message)

    def call(self, method, request, timeout=60.0):
        try:
            return getattr(self.stub, method)(request,
                                              metadata=self._metadata(),
                                              timeout=timeout)
        except grpc.RpcError as e:
            raise self.error(e) from None

    def stream(self, method, request, timeout=None):
        try:
            for item in getattr(self.stub, method)(
                    request, metadata=self._metadata(), timeout=timeout):
                yield item
        except grpc.RpcError as e:
            raise self.error(e) from None

    def close(self):
        self._channel.close()


_session = None


def login(master=None, token=None, cert_path=None):
    """Connects to `master` (default DET_MASTER, then 127.0.0.1:8090) with
    `token` (default DET_TOKEN). Returns the Session; later calls of this
    module use it."""
    global _session
    if _session is not None:
        _session.close()
    _session = Session(master, token, cert_path)
    return _session


def _s():
    return _session if _session is not None else login()


def _api():
    from det.v1 import api_pb2
    return api_pb2


class Checkpoint:
    """A trial's checkpoint: uuid, trial_id, steps_completed, size_bytes,
    file_sha256 (relative path -> hex SHA-256)."""

    def __init__(self, proto, detail=None):
        self.uuid = proto.uuid
        self.trial_id = proto.trial_id
        self.steps_completed = proto.steps_completed
        self.size_bytes = proto.size_bytes
        self.file_sha256 = dict(proto.file_sha256)
        self.report_time = proto.time_us / 1e6
        # From a CheckpointDetail: the validation metrics at its steps
        # ({} when it has none) and the searcher metric's value (or None).
        self.validation_metrics = (dict(detail.validation_metrics)
                                   if detail is not None else {})
        self.searcher_metric = (detail.metric if detail is not None
                                and detail.has_metric else None)

    def __repr__(self):
        return (f"Checkpoint(uuid={self.uuid!r}, trial_id={self.trial_id}, "
                f"steps_completed={self.steps_completed})")


class TrialMetrics:
    """One report: group ("training"/"validation"), steps_completed,
    metrics (dict), end_time (Unix seconds)."""

    def __init__(self, proto):
        self.trial_id = proto.trial_id
        self.group = {1: "training", 2: "validation"}.get(proto.group, "")
        self.steps_completed = proto.steps_completed
        self.metrics = dict(proto.metrics)
        self.end_time = proto.time_us / 1e6

    def __repr__(self):
        return (f"TrialMetrics(group={self.group!r}, steps_completed="
                f"{self.steps_completed}, metrics={self.metrics!r})")


# The master's ranking caps nothing: this asks for every ranked checkpoint.
_ALL_RANKED = 2**31 - 1


def _ranked_checkpoints(session, experiment_id, best):
    """The experiment's ACTIVE checkpoints with a metric, best first, by the
    master's own ranking (the retention rule's); `best` of them, or all for
    0."""
    resp = session.call("GetExperimentCheckpoints",
                        _api().GetExperimentCheckpointsRequest(
                            experiment_id=experiment_id,
                            best=best or _ALL_RANKED))
    return [Checkpoint(d.checkpoint, d) for d in resp.checkpoints]


class Trial:
    def __init__(self, trial_id, session=None, proto=None):
        self.id = trial_id
        self._session = session or _s()
        self._proto = proto

    def reload(self):
        self._proto = self._session.call(
            "GetTrial", _api().GetTrialRequest(trial_id=self.id))
        return self

    def _p(self):
        return self._proto if self._proto is not None else \
            self.reload()._proto

    @property
    def state(self):
        return ExperimentState(self.reload()._proto.state)

    @property
    def experiment_id(self):
        return self._p().experiment_id

    @property
    def hparams(self):
        from det._info import struct_to_dict
        return struct_to_dict(self._p().hparams)

    @property
    def summary_metrics(self):
        p = self._p()
        return {"best_validation": dict(p.best_validation_metrics),
                "latest_validation": dict(p.latest_validation_metrics)}

    def metrics(self, group=None):
        """Every report of the trial, in order: TrialMetrics objects.
        group: None (both), "training" or "validation"."""
        groups = {None: 0, "training": 1, "validation": 2}
        if group not in groups:
            raise ValueError(f"group must be None, 'training' or "
                             f"'validation', got {group!r}")
        resp = self._session.call("GetTrialMetrics", _api().GetTrialMetricsRequest(
            trial_id=self.id, group=groups[group]))
        return iter([TrialMetrics(r) for r in resp.reports])

    def iter_metrics(self, group):
        return self.metrics(group)

    def logs(self, follow=False):
        """The trial's log lines (str, without the newline); with follow,
        keeps yielding until the trial ends."""
        for line in self._session.stream("StreamTrialLogs",
                                         _api().StreamTrialLogsRequest(
                                             trial_id=self.id,
                                             follow=follow)):
            yield line.line

    def latest_checkpoint(self):
        """The trial's latest checkpoint (the one a restart resumes from and
        garbage collection always keeps), or None."""
        c = self.reload()._proto.latest_checkpoint
        return Checkpoint(c) if c.uuid else None

    def top_checkpoint(self):
        """The trial's checkpoint with the best searcher metric (the one
        save_trial_best keeps), as Determined's Trial.top_checkpoint; the
        latest checkpoint when none has a validation at its steps; None
        when the trial has no checkpoint."""
        for c in _ranked_checkpoints(self._session, self.experiment_id, 0):
            if c.trial_id == self.id:
                return c
        return self.latest_checkpoint()

    def __repr__(self):
        return f"Trial(id={self.id})"


class Experiment:
    def __init__(self, experiment_id, session=None, proto=None):
        self.id = experiment_id
        self._session = session or _s()
        self._proto = proto

    def reload(self):
        self._proto = self._session.call(
            "GetExperiment", _api().GetExperimentRequest(
                experiment_id=self.id))
        return self

    @property
    def state(self):
        return ExperimentState(self.reload()._proto.state)

    @property
    def best_validation_metrics(self):
        """The best trial's validation metrics at its best validation
        ({} while no trial validated)."""
        return dict(self.reload()._proto.best_validation_metrics)

    @property
    def best_trial_id(self):
        return self.reload()._proto.best_trial_id or None

    @property
    def progress(self):
        return self.reload()._proto.progress

    @property
    def config(self):
        return self.reload()._proto.config_yaml

    def wait(self, interval=5.0, timeout=None):
        """Blocks until the experiment is COMPLETED, CANCELED or ERROR and
        returns that state; TimeoutError after `timeout` seconds. Follows
        the master's WatchExperiment stream (polls every `interval` s if
        the stream breaks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"experiment {self.id} is still "
                                   f"{self.state.name} after {timeout} s")
            try:
                for e in self._session.stream(
                        "WatchExperiment",
                        _api().ExperimentIdRequest(experiment_id=self.id),
                        timeout=left):
                    self._proto = e
                    if ExperimentState(e.state) in _TERMINAL:
                        return ExperimentState(e.state)
            except APIException as e:
                if e.code not in ("DEADLINE_EXCEEDED", "UNAVAILABLE",
                                  "CANCELLED"):
                    raise
            state = self.state
            if state in _TERMINAL:
                return state
            time.sleep(min(interval, 1.0 if left is None else max(left, 0)))

    def list_trials(self):
        resp = self._session.call("ListTrials", _api().ListTrialsRequest(
            experiment_id=self.id))
        return [Trial(t.id, self._session, t) for t in resp.trials]

    def top_checkpoint(self, sort_by=None, smaller_is_better=None):
        """The experiment's checkpoint with the best searcher metric (the
        validation at its steps), as Determined's
        Experiment.top_checkpoint: the first of `det checkpoint list ID
        --best 1`, which garbage collection keeps as the trial's best. None
        when no checkpoint has a validation. det does not rank checkpoints
        by other metrics: sort_by must be None."""
        if sort_by is not None or smaller_is_better is not None:
            raise NotImplementedError(
                "det ranks checkpoints by the searcher's metric only; call "
                "top_checkpoint() without sort_by/smaller_is_better")
        top = _ranked_checkpoints(self._session, self.id, 1)
        return top[0] if top else None

    def list_checkpoints(self, max_results=None):
        """The experiment's kept checkpoints that have a validation at their
        steps, best searcher metric first (`det checkpoint list ID
        --best N`); every one of them when max_results is None."""
        if max_results is not None and max_results <= 0:
            raise ValueError(f"max_results must be > 0, got {max_results}")
        return _ranked_checkpoints(self._session, self.id, max_results or 0)

    def _change(self, method):
        self._proto = self._session.call(
            method, _api().ExperimentIdRequest(experiment_id=self.id))

    def pause(self):
        self._change("PauseExperiment")

    def activate(self):
        self._change("ActivateExperiment")

    def cancel(self):
        self._change("CancelExperiment")

    def kill(self):
        self._change("KillExperiment")

    def __repr__(self):
        return f"Experiment(id={self.id})"


def create_experiment(config, model_dir=None, activate=True):
    """Creates an experiment from `config` (a path to a YAML file, or a
    dict) with `model_dir` packed as its context (as `det experiment
    create CONFIG DIR` does); returns the Experiment."""
    if isinstance(config, dict):
        import json
        text = json.dumps(config)  # JSON is YAML
    else:
        path = os.fspath(config)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ValueError(f"cannot read the config {path}: "
                             f"{e.strerror}") from None
    req = _api().CreateExperimentRequest(config_yaml=text, activate=activate)
    if model_dir is not None:
        try:
            req.context = pack_context(os.fspath(model_dir))
        except ValueError as e:
            raise ValueError(f"packing context directory {model_dir}: {e}") \
                from None
    resp = _s().call("CreateExperiment", req)
    return Experiment(resp.experiment.id, _s(), resp.experiment)


def get_experiment(experiment_id):
    return Experiment(int(experiment_id), _s()).reload()


def get_trial(trial_id):
    return Trial(int(trial_id), _s()).reload()


def list_experiments():
    resp = _s().call("ListExperiments", _api().ListExperimentsRequest())
    return [Experiment(e.id, _s(), e) for e in resp.experiments]
