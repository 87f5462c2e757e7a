"""Kubernetes jobs rendered from the experiment config: preprocessing as a KubeRay RayJob, training as a
Kubeflow PyTorchJob; offline validation of every manifest (``validate``); creating and following them through
the API (``cluster``). ``command`` is the ``sse-dist launch`` subcommand.

Nothing is imported here: ``sse-dist --help`` should not pay for the Kubernetes client and the JSON Schemas.
"""
