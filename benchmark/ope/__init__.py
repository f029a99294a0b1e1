"""Off-policy estimation: estimators (estimators.py), hyper-parameter tuning (tuning.py), bootstrap CIs
(interval.py), reward models (reward_model.py), the Bernoulli-TS action distribution (bts.py) and the evaluation
of estimators against an on-policy ground truth (evaluate.py)."""
