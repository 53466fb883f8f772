"""det.experimental: clients of the master (Determined's
determined.experimental). `from det.experimental import client`."""
