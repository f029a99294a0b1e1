"""A seeded user simulator for online A/B tests run offline (task ``ab_test``).

* ``oracle``: a preference oracle's scores mapped to click attractiveness, calibrated to a target CTR;
* ``kernels``: the numba session kernel (position-based clicks, conversions, satisfaction, return/churn) and
  its counter-based random numbers;
* ``sessions``: the click-model settings and the vectorised simulation of many users' sessions;
* ``abstats``: the A/B statistics (Welch lift, power and MDE, CUPED); ``sequential``: mSPRT and peeking.
"""
