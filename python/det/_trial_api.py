"""The client side of the trial <-> worker API (proto/det/v1/trial.proto)."""

import os
import time

import grpc

from det.v1 import common_pb2, trial_pb2, trial_pb2_grpc

GET_SPEC_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 10.0
# How long transient (UNAVAILABLE) failures are retried before a report
# fails; the worker is on loopback, so this only covers a restart of its
# server socket.
RETRY_BUDGET_S = 60.0
# Trailing metadata of GetSpec: "1" when a stop is already requested.
STOP_HINT_KEY = "x-det-stop"

_stub = None


class TrialApiError(RuntimeError):
    """The worker refused a call, or could not be reached."""


def _metadata():
    return (("x-det-trial-token", os.environ.get("DET_TRIAL_TOKEN", "")),)


def stub():
    global _stub
    if _stub is None:
        addr = os.environ["DET_TRIAL_API_ADDR"]
        _stub = trial_pb2_grpc.TrialServiceStub(grpc.insecure_channel(addr))
    return _stub


def describe(e):
    if isinstance(e, grpc.RpcError):
        return f"{e.code().name}: {e.details()}"
    return str(e)


def fetch_spec():
    """Returns (TrialSpec, stop_hint)."""
    try:
        spec, call = stub().GetSpec.with_call(
            trial_pb2.GetSpecRequest(), metadata=_metadata(),
            timeout=GET_SPEC_TIMEOUT_S, wait_for_ready=True)
    except grpc.RpcError as e:
        raise TrialApiError(
            f"cannot get the trial spec from the worker at "
            f"{os.environ.get('DET_TRIAL_API_ADDR')}: {describe(e)}") from None
    hint = any(k == STOP_HINT_KEY and v == "1"
               for k, v in (call.trailing_metadata() or ()))
    return spec, hint


def should_stop():
    """Asks the worker; False when it cannot answer (it also sends
    SIGTERM)."""
    try:
        return stub().ShouldStop(trial_pb2.ShouldStopRequest(),
                                 metadata=_metadata(), timeout=2.0).stop
    except grpc.RpcError:
        return False


def call_with_retry(what, method, request):
    """A unary call, retried with backoff while the worker is UNAVAILABLE."""
    give_up = time.monotonic() + RETRY_BUDGET_S
    backoff = 0.05
    attempt = 0
    while True:
        attempt += 1
        try:
            return method(request, metadata=_metadata(),
                          timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as e:
            if (e.code() != grpc.StatusCode.UNAVAILABLE
                    or time.monotonic() + backoff > give_up):
                raise TrialApiError(
                    f"{what} failed after {attempt} attempt"
                    f"{'s' if attempt > 1 else ''}: {describe(e)}") from None
        time.sleep(backoff)
        backoff = min(backoff * 2, 2.0)


def report_checkpoint(checkpoint):
    call_with_retry("reporting checkpoint", stub().ReportCheckpoint,
                    checkpoint)


__all__ = ["TrialApiError", "common_pb2", "fetch_spec", "should_stop",
           "report_checkpoint", "call_with_retry", "stub"]
