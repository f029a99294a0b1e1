#!/bin/bash
# Acceptance (final code): SASRec (published defaults) on ML-100K, global temporal split, windows of 100 requests
cd /work/wt-replay
for s in 0 1 2; do
  OMP_NUM_THREADS=1 nice .venv/bin/recux task=replay model=sasrec split=global_temporal task.window.size=100 \
    seed=$s logger=none trainer.enable_progress_bar=false \
    hydra.run.dir=/work/acc/replay/sasrec_global_temporal_s$s > /work/acc/replay/sasrec_global_temporal_s$s.log 2>&1
done
OMP_NUM_THREADS=1 nice .venv/bin/recux task=replay model=sasrec split=temporal task.window.size=500 \
  seed=0 logger=none trainer.enable_progress_bar=false \
  hydra.run.dir=/work/acc/replay/sasrec_temporal_s0 > /work/acc/replay/sasrec_temporal_s0.log 2>&1
