"""Serving world models to planners on Ray Serve.

* :mod:`plray.serve.registry`: world-model artifacts in a directory (or a pyarrow URI), by id and
  version, hot-reloaded;
* :mod:`plray.serve.engine`: validated, vectorised predict / rollout / plan;
* :mod:`plray.serve.codec`: JSON and Arrow IPC bodies;
* :mod:`plray.serve.app`: the Serve deployment with its FastAPI ingress (``build_app``, ``run``);
* :mod:`plray.serve.client`: a Python client; :mod:`plray.serve.planner`: a CEM planner that
  drives a served model through ``rollout``.

Importing this package does not import Ray; ``plray.serve.app`` does. See docs/serve.md.
"""
