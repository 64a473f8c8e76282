"""Goal-conditioned agents: RLlib training with hindsight relabelling, and Q sources for P-learning.

Submodules are imported on demand: ``plray.agents.qsource`` needs torch only (plus RLlib's SAC
module class for SAC artifacts), ``plray.agents.train`` and ``plray.agents.her`` need RLlib.
"""
