"""Kubernetes jobs rendered from the experiment config: preprocessing as a KubeRay RayJob, training as a
Kubeflow Trainer v2 TrainJob (or a training operator v1 PyTorchJob); offline validation of every manifest
(``validate``); creating, server-side checking and following them through the API (``cluster``). ``command``
is the ``sse-dist launch`` subcommand.

Nothing is imported here: ``sse-dist --help`` should not pay for the Kubernetes client and the JSON Schemas.
"""
