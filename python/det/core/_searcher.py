"""core.searcher: the searcher-operations form of scripts written before
Determined 0.38 (`for op in core.searcher.operations(): ...`).

det's searcher gives a trial its whole length up front (the spec's
target_batches) and wants a validation at each of its validation points
(the ASHA rungs); operations() yields one operation per point still ahead,
so an old script that trains to op.length and validates there feeds every
rung. op.length is in the experiment's length unit when the worker says
which (TrialSpec.length_unit) and in batches otherwise.
"""

import sys


class SearcherOperation:
    def __init__(self, ctx, length, batches, last):
        self._ctx = ctx
        self.length = length
        self._batches = batches
        self._last = last
        self._completed = False

    def report_progress(self, length):
        """Accepted for compatibility; det's master derives progress from
        the trial's reports."""

    def report_completed(self, searcher_metric):
        """Ends this operation. det's searcher reads the searcher metric
        from the validation metrics reported at op.length: report them
        before (Determined's examples do); if none were, this reports
        {searcher metric name: value} when the worker names the metric."""
        if self._completed:
            raise RuntimeError(f"operation of length {self.length} was "
                               f"already completed")
        self._completed = True
        train = self._ctx.train
        if self._batches in train._validated_steps:
            return
        name = getattr(self._ctx._spec, "searcher_metric", "")
        if not name:
            raise RuntimeError(
                f"report_completed({searcher_metric!r}) at length "
                f"{self.length}: report the validation metrics (with the "
                f"searcher's metric) with core.train.report_validation_metrics"
                f"(steps_completed={self._batches}, ...) first; det's "
                f"searcher reads them, not this call's value")
        train.report_validation_metrics(steps_completed=self._batches,
                                        metrics={name: float(searcher_metric)})


class SearcherContext:
    def __init__(self, ctx):
        self._ctx = ctx

    def _to_unit(self, batches):
        spec = self._ctx._spec
        unit = getattr(spec, "length_unit", "") or "batches"
        if unit == "batches":
            return batches
        bs = self._ctx._info.trial.hparams.get("global_batch_size")
        if unit == "records" and isinstance(bs, int):
            return batches * bs
        if unit == "epochs" and isinstance(bs, int) and spec.records_per_epoch:
            return batches * bs // spec.records_per_epoch
        return batches

    def operations(self, searcher_mode=None, auto_ack=True):
        spec = self._ctx._spec
        done = self._ctx._info.trial.steps_completed
        points = sorted(set(spec.validation_points) | {spec.target_batches})
        points = [p for p in points if p > done and p > 0]
        for i, p in enumerate(points):
            op = SearcherOperation(self._ctx, self._to_unit(p), p,
                                   i == len(points) - 1)
            yield op
            if not op._completed:
                print(f"det: searcher operation of length {op.length} ended "
                      f"without report_completed()", file=sys.stderr)
                return
            if self._ctx.preempt.should_preempt():
                return

    def get_configured_units(self):
        return getattr(self._ctx._spec, "length_unit", "") or "batches"
