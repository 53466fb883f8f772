"""Prints the best validation metrics and the top checkpoint of an
experiment. DET_MASTER / DET_TOKEN / DET_MASTER_CERT_FILE as for the det CLI.
    python3 query_best.py EXPERIMENT_ID"""
import sys

from det.experimental import client

exp = client.get_experiment(int(sys.argv[1]))
print("state:", exp.state.name)
print("best validation metrics:", exp.best_validation_metrics)
top = exp.top_checkpoint()
print("top checkpoint:", top.uuid if top else None)
